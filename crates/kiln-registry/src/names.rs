//! What the distribution spec allows as repository names, tags and references, checked
//! before any of them reaches a store key or a file path.

use std::sync::LazyLock;

use kiln_oci::Digest;
use regex::Regex;

use crate::error::{Code, RegistryError};

/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$").expect("constant pattern")
});
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$").expect("constant pattern"));

pub fn check_repository(name: &str) -> Result<(), RegistryError> {
    if name.len() > MAX_NAME_LEN || !NAME_RE.is_match(name) {
        return Err(RegistryError::new(
            Code::NameInvalid,
            format!(
                "repository name {name:?} is invalid: use lower-case path components of letters and digits separated by '.', '_' or '-', at most {MAX_NAME_LEN} characters"
            ),
        ));
    }
    Ok(())
}

pub fn is_tag(reference: &str) -> bool {
    TAG_RE.is_match(reference)
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(value: &str) -> Result<Reference, RegistryError> {
        if value.contains(':') {
            return parse_digest(value).map(Reference::Digest);
        }
        if is_tag(value) {
            Ok(Reference::Tag(value.to_string()))
        } else {
            Err(RegistryError::new(
                Code::TagInvalid,
                format!("{value:?} is neither a tag (letters, digits, '_', '.', '-', at most 128) nor a digest"),
            ))
        }
    }
}

pub fn parse_digest(value: &str) -> Result<Digest, RegistryError> {
    value.parse::<Digest>().map_err(|e| {
        let code = if e.is_unsupported() { Code::Unsupported } else { Code::DigestInvalid };
        RegistryError::new(code, format!("digest {value:?}: {e}"))
    })
}

/// The repository organisation: its first path component.
pub fn organisation(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec() {
        for good in ["a", "acme/app", "acme/app.v2/x_y", "a__b/c--d"] {
            assert!(check_repository(good).is_ok(), "{good}");
        }
        for bad in ["", "Acme/app", "acme/../x", "../etc", "acme//app", "acme/app/", "-a", "a/.b", &"a".repeat(256)] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(Reference::parse("v1.0").unwrap(), Reference::Tag("v1.0".into()));
        assert!(matches!(Reference::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(), Reference::Digest(_)));
        assert_eq!(Reference::parse("sha256:xyz").unwrap_err().code, Code::DigestInvalid);
        assert_eq!(Reference::parse(".bad").unwrap_err().code, Code::TagInvalid);
        assert_eq!(Reference::parse(&"t".repeat(129)).unwrap_err().code, Code::TagInvalid);
    }
}
