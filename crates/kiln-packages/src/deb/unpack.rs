//! Opening a `.deb` without dpkg: the `ar` wrapper, the control archive and the data
//! archive (gz, xz, zst or plain), turned into entries that are proven to stay inside the
//! image root. Anything that could escape (`..`, escaping symlinks, outside hard links,
//! device files, paths through a symlink) is refused, naming the entry.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use bytes::Bytes;

use crate::archive::{Entry, EntryKind};

/// Largest member of a package read into memory.
const MAX_MEMBER: u64 = 2 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub control: String,
    pub md5sums: Option<String>,
    pub conffiles: Vec<String>,
    pub maintainer_scripts: BTreeMap<String, Vec<u8>>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("not a Debian package: {0}")]
    NotADeb(String),
    #[error("corrupt {member}: {message}")]
    Corrupt { member: String, message: String },
    #[error("entry {path:?} {why}: the package is refused")]
    Unsafe { path: String, why: String },
}

fn corrupt(member: &str, message: impl ToString) -> UnpackError {
    UnpackError::Corrupt { member: member.to_string(), message: message.to_string() }
}

fn decompress(name: &str, bytes: Vec<u8>) -> Result<Vec<u8>, UnpackError> {
    let mut out = Vec::new();
    let result = if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes.as_slice()).take(MAX_MEMBER).read_to_end(&mut out)
    } else if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(bytes.as_slice()).take(MAX_MEMBER).read_to_end(&mut out)
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(bytes.as_slice()).and_then(|d| d.take(MAX_MEMBER).read_to_end(&mut out))
    } else if name.ends_with(".tar") {
        return Ok(bytes);
    } else {
        return Err(corrupt(name, "unknown compression"));
    };
    result.map_err(|e| corrupt(name, e))?;
    Ok(out)
}

/// `./usr/bin/x` → `usr/bin/x`; `None` for the root itself; an error for escapes.
fn normalise(raw: &str) -> Result<Option<String>, UnpackError> {
    let trimmed = raw.strip_prefix("./").unwrap_or(raw);
    if trimmed.starts_with('/') {
        return Err(UnpackError::Unsafe { path: raw.into(), why: "is an absolute path".into() });
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(UnpackError::Unsafe { path: raw.into(), why: "climbs out with ..".into() }),
            other => parts.push(other),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

/// Whether a symlink at `path` pointing at `target` stays inside the root.
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        // Resolved inside the image's own root, never the host's.
        return true;
    }
    let mut depth: i64 = path.matches('/').count() as i64;
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

fn read_tar(
    member: &str,
    bytes: &[u8],
    mut each: impl FnMut(tar::Entry<'_, &[u8]>) -> Result<(), UnpackError>,
) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(|e| corrupt(member, e))? {
        each(entry.map_err(|e| corrupt(member, e))?)?;
    }
    Ok(())
}

/// The entries of a tar archive, refusing anything that could leave the root: `..`,
/// absolute paths, symlinks pointing outside, paths below a symlink, hard links to anything
/// but an earlier file, devices and fifos. `member` names the archive in errors.
pub fn safe_entries(member: &str, tar: &[u8]) -> Result<Vec<Entry>, UnpackError> {
    let mut entries = Vec::new();
    let mut kinds: HashMap<String, bool> = HashMap::new(); // path → is a regular file
    let mut symlinks: Vec<String> = Vec::new();
    read_tar(member, tar, |mut entry| {
        let raw = entry.path().map_err(|e| corrupt(member, e))?.to_string_lossy().into_owned();
        let Some(path) = normalise(&raw)? else { return Ok(()) };
        if let Some(link) = symlinks.iter().find(|l| path.starts_with(&format!("{l}/"))) {
            return Err(UnpackError::Unsafe { path: raw, why: format!("lies below the symlink {link}") });
        }
        let header = entry.header();
        let mode = header.mode().map_err(|e| corrupt(member, e))? & 0o7777;
        let uid = header.uid().map_err(|e| corrupt(member, e))? as u32;
        let gid = header.gid().map_err(|e| corrupt(member, e))? as u32;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(|e| corrupt(member, e))?;
                EntryKind::File { data: Bytes::from(data) }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(member, e))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if target.is_empty() || !link_stays_inside(&path, &target) {
                    return Err(UnpackError::Unsafe {
                        path: raw,
                        why: format!("is a symlink to {target:?}, outside the image root"),
                    });
                }
                symlinks.push(path.clone());
                EntryKind::Symlink { target }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(member, e))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let raw_target = target;
                let target = normalise(&raw_target).ok().flatten().unwrap_or_default();
                if kinds.get(&target) != Some(&true) {
                    return Err(UnpackError::Unsafe {
                        path: raw,
                        why: format!("is a hard link to {raw_target:?}, which is not an earlier file of the package"),
                    });
                }
                EntryKind::Hardlink { target }
            }
            other => {
                return Err(UnpackError::Unsafe {
                    path: raw,
                    why: format!("is a {other:?} entry (devices, fifos and the like are not allowed)"),
                });
            }
        };
        kinds.insert(path.clone(), matches!(kind, EntryKind::File { .. }));
        entries.push(Entry { path, kind, mode, uid, gid });
        Ok(())
    })?;
    Ok(entries)
}

pub fn read_deb(bytes: &[u8]) -> Result<DebPackage, UnpackError> {
    let mut archive = ar::Archive::new(bytes);
    let (mut version, mut control_tar, mut data_tar) = (None, None, None);
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| UnpackError::NotADeb(e.to_string()))?;
        let name = String::from_utf8_lossy(member.header().identifier()).trim_end_matches('/').to_string();
        let mut content = Vec::new();
        (&mut member).take(MAX_MEMBER).read_to_end(&mut content).map_err(|e| corrupt(&name, e))?;
        match name.as_str() {
            "debian-binary" => version = Some(String::from_utf8_lossy(&content).trim().to_string()),
            n if n.starts_with("control.tar") => control_tar = Some(decompress(n, content)?),
            n if n.starts_with("data.tar") => data_tar = Some(decompress(n, content)?),
            _ => {}
        }
    }
    match version.as_deref() {
        Some(v) if v.starts_with("2.") => {}
        Some(v) => return Err(UnpackError::NotADeb(format!("format {v:?} is not 2.x"))),
        None => return Err(UnpackError::NotADeb("no debian-binary member".into())),
    }
    let control_tar = control_tar.ok_or_else(|| UnpackError::NotADeb("no control.tar member".into()))?;
    let data_tar = data_tar.ok_or_else(|| UnpackError::NotADeb("no data.tar member".into()))?;
    let mut package = DebPackage {
        control: String::new(),
        md5sums: None,
        conffiles: Vec::new(),
        maintainer_scripts: BTreeMap::new(),
        entries: Vec::new(),
    };
    read_tar("control.tar", &control_tar, |mut entry| {
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Ok(());
        }
        let path = entry.path().map_err(|e| corrupt("control.tar", e))?.to_string_lossy().into_owned();
        let Some(name) = normalise(&path)? else { return Ok(()) };
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| corrupt("control.tar", e))?;
        match name.as_str() {
            "control" => package.control = String::from_utf8_lossy(&content).into_owned(),
            "md5sums" => package.md5sums = Some(String::from_utf8_lossy(&content).into_owned()),
            "conffiles" => {
                package.conffiles = String::from_utf8_lossy(&content)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            }
            other => {
                package.maintainer_scripts.insert(other.to_string(), content);
            }
        }
        Ok(())
    })?;
    if package.control.is_empty() {
        return Err(UnpackError::NotADeb("control.tar has no control file".into()));
    }
    package.entries = safe_entries("data.tar", &data_tar)?;
    Ok(package)
}

#[cfg(test)]
mod tests;
