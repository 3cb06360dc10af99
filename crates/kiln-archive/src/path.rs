//! Paths taken from archives become `SafePath`s at the boundary: relative, normalised and
//! unable to climb, so nothing built from one can name a file outside the root it is joined to.

use std::fmt;

/// Why an archive path or link target was refused; `path` is the raw value as the archive had it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{path:?} is an absolute path")]
    Absolute { path: String },
    #[error("{path:?} climbs out with ..")]
    Climbs { path: String },
    #[error("{path:?} holds a NUL byte")]
    Nul { path: String },
    #[error("{path:?} is not UTF-8")]
    NotUtf8 { path: String },
    #[error("{path:?} is longer than {MAX_PATH} bytes")]
    TooLong { path: String },
}

/// Longer names than Linux's PATH_MAX cannot be created anyway.
pub const MAX_PATH: usize = 4096;

/// A root-relative path: no leading `/`, no `.`, `..` or empty components, no NUL, at least one
/// component. The only way to get one is `SafePath::parse` (or `join` of a checked name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SafePath(String);

impl SafePath {
    /// `./usr/bin/x` → `usr/bin/x`; `Ok(None)` for the root itself (`.`, `./`); an error for
    /// anything absolute or climbing.
    pub fn parse(raw: &str) -> Result<Option<SafePath>, PathError> {
        if raw.len() > MAX_PATH {
            return Err(PathError::TooLong { path: shorten(raw) });
        }
        if raw.contains('\0') {
            return Err(PathError::Nul { path: raw.to_string() });
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute { path: raw.to_string() });
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::Climbs { path: raw.to_string() }),
                other => parts.push(other),
            }
        }
        Ok(if parts.is_empty() { None } else { Some(SafePath(parts.join("/"))) })
    }

    /// `parse` for raw bytes, refusing names that are not UTF-8.
    pub fn parse_bytes(raw: &[u8]) -> Result<Option<SafePath>, PathError> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| PathError::NotUtf8 { path: String::from_utf8_lossy(raw).into_owned() })?;
        SafePath::parse(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit_once('/').map_or(self.0.as_str(), |(_, name)| name)
    }

    /// The directory holding this path; `None` when it sits in the root.
    pub fn parent(&self) -> Option<SafePath> {
        self.0.rsplit_once('/').map(|(dir, _)| SafePath(dir.to_string()))
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether `self` lies strictly below `dir`.
    pub fn is_under(&self, dir: &SafePath) -> bool {
        self.0.strip_prefix(&dir.0).is_some_and(|rest| rest.starts_with('/'))
    }

    /// `self/name` for a single component `name` (no `/`, not `.` or `..`, not empty).
    pub fn child(parent: Option<&SafePath>, name: &str) -> Result<SafePath, PathError> {
        let joined = match parent {
            Some(parent) => format!("{}/{name}", parent.0),
            None => name.to_string(),
        };
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(PathError::Climbs { path: joined });
        }
        match SafePath::parse(&joined)? {
            Some(path) => Ok(path),
            None => Err(PathError::Climbs { path: joined }),
        }
    }
}

impl fmt::Display for SafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a symlink at `path` whose target is `target` resolves inside the root. Absolute
/// targets are resolved inside the image's own root, never the host's, so they stay inside;
/// relative ones may not climb above the root at any step.
pub fn link_stays_inside(path: &SafePath, target: &str) -> bool {
    if target.is_empty() || target.contains('\0') {
        return false;
    }
    if target.starts_with('/') {
        return true;
    }
    let mut depth = path.components().count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fn shorten(raw: &str) -> String {
    let end = (0..=64).rev().find(|&i| raw.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &raw[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Option<String> {
        SafePath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).map(|p| p.as_str().to_string())
    }

    #[test]
    fn normalises_what_archives_write() {
        assert_eq!(parsed("./usr/bin/x").as_deref(), Some("usr/bin/x"));
        assert_eq!(parsed("usr//lib/./x/").as_deref(), Some("usr/lib/x"));
        assert_eq!(parsed("./"), None);
        assert_eq!(parsed("."), None);
    }

    #[test]
    fn refuses_escapes() {
        for raw in ["/etc/passwd", "../x", "a/../../x", "a/..", "a/b/../c", "a\0b"] {
            assert!(SafePath::parse(raw).is_err(), "{raw} was accepted");
        }
        assert!(matches!(SafePath::parse_bytes(b"a/\xff"), Err(PathError::NotUtf8 { .. })));
        assert!(matches!(SafePath::parse(&"a/".repeat(3000)), Err(PathError::TooLong { .. })));
    }

    #[test]
    fn children_are_single_components() {
        let dir = SafePath::parse("a/b").ok().flatten();
        assert_eq!(SafePath::child(dir.as_ref(), "c").map(|p| p.to_string()), Ok("a/b/c".to_string()));
        for bad in ["", ".", "..", "c/d"] {
            assert!(SafePath::child(dir.as_ref(), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_targets_must_stay_inside() {
        let at = |p: &str| SafePath::parse(p).ok().flatten().unwrap_or_else(|| panic!("{p}"));
        assert!(link_stays_inside(&at("usr/bin/python3"), "python3.11"));
        assert!(link_stays_inside(&at("lib"), "usr/lib"));
        assert!(link_stays_inside(&at("etc/alternatives/x"), "/usr/bin/x"));
        assert!(link_stays_inside(&at("a/b/c"), "../../x"));
        assert!(!link_stays_inside(&at("a/b/c"), "../../../x"));
        assert!(!link_stays_inside(&at("esc"), ".."));
        assert!(!link_stays_inside(&at("a/b"), "c/../../../x"));
        assert!(!link_stays_inside(&at("a"), ""));
        assert!(!link_stays_inside(&at("a"), "b\0c"));
    }
}
