//! Parsing of image references (`host[:port]/path[:tag][@digest]`) so a base image's
//! reference is checked when it is registered, not when a pull fails much later.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A parsed image reference, following the grammar of the distribution project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (with port), if the reference names one.
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference is empty")]
    Empty,
    #[error("reference is {0} characters long; the limit is 255 for the name")]
    TooLong(usize),
    #[error("{0:?} is not a valid registry host")]
    BadRegistry(String),
    #[error("{0:?} is not a valid repository path component: use lower-case letters, digits and single separators")]
    BadPathComponent(String),
    #[error("{0:?} is not a valid tag")]
    BadTag(String),
    #[error("{0:?} is not a valid digest: use sha256:<64 hex> or sha512:<128 hex>")]
    BadDigest(String),
}

static PATH_COMPONENT: LazyLock<Regex> = LazyLock::new(|| built(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$"));
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    built(
        r"^(?:(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?$",
    )
});
static TAG: LazyLock<Regex> = LazyLock::new(|| built(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));
static DIGEST: LazyLock<Regex> = LazyLock::new(|| built(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"));

fn built(pattern: &'static str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                if !DIGEST.is_match(digest) {
                    return Err(ReferenceError::BadDigest(digest.to_string()));
                }
                (rest, Some(digest.to_string()))
            }
            None => (input, None),
        };
        // A tag follows the last ':' only if no '/' comes after it (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(tag) = &tag
            && !TAG.is_match(tag)
        {
            return Err(ReferenceError::BadTag(tag.clone()));
        }
        if name.len() > 255 {
            return Err(ReferenceError::TooLong(name.len()));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                if !DOMAIN.is_match(first) {
                    return Err(ReferenceError::BadRegistry(first.to_string()));
                }
                (Some(first.to_string()), remainder)
            }
            _ => (None, name),
        };
        if repository.is_empty() {
            return Err(ReferenceError::BadPathComponent(String::new()));
        }
        for component in repository.split('/') {
            if !PATH_COMPONENT.is_match(component) {
                return Err(ReferenceError::BadPathComponent(component.to_string()));
            }
        }
        Ok(Reference { registry, repository: repository.to_string(), tag, digest })
    }
}

/// Checks a registry host (`name[:port]` or `[v6]:port`) as references name it.
pub fn check_registry_host(host: &str) -> Result<(), String> {
    if DOMAIN.is_match(host) {
        Ok(())
    } else {
        Err(format!("{host:?} is not a registry host such as registry.example:5000"))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let r = Reference::parse("berndtj/my-python-base:0.0.1").unwrap();
        assert_eq!(
            (r.registry, r.repository.as_str(), r.tag.as_deref()),
            (None, "berndtj/my-python-base", Some("0.0.1"))
        );
        let r = Reference::parse("127.0.0.1:5000/org/py3:latest").unwrap();
        assert_eq!(r.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "org/py3");
        let r = Reference::parse("localhost:5000/a").unwrap();
        assert_eq!((r.registry.as_deref(), r.tag), (Some("localhost:5000"), None));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("debian@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.to_string(), format!("debian@{d}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "a/UPPER", "a//b", "a:", "a:-x", "a@sha256:abc", "host.com/", "../etc", "a b"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
