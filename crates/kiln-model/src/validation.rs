//! Field-level validation errors shared by the API and the definition-file loader, so both
//! can point a user at the exact field (and, for files, the line) that is wrong.

use serde::Serialize;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// One problem with one field; `field` is a dotted path such as `systemDependencies.packages[2].name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// 1-based line in the submitted file, when the object came from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// 0-based index of the document in a multi-document file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), line: None, column: None, document: None }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(doc) = self.document {
            write!(f, "document {doc}: ")?;
        }
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, "line {line} column {col}: ")?;
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in one object, collected rather than stopping at the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }
}

/// Longest object name: short enough to be a DNS label and an OCI path component.
pub const MAX_NAME_LEN: usize = 63;
/// Dispatch's name rule, restricted to ASCII.
pub const NAME_PATTERN: &str = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$";
pub const LANGUAGE_PATTERN: &str = r"^[a-z][a-z0-9._-]*$";
pub const ENV_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";
/// Debian and RPM versions, PEP 440 specifiers and semver ranges all fit in this alphabet.
pub const VERSION_PATTERN: &str = r"^[A-Za-z0-9.+~:_*<>=!^|, -]+$";

fn compiled(pattern: &'static str) -> Regex {
    // The patterns are constants of this file; a failure here is a programming error caught by tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| compiled(NAME_PATTERN));
static LANGUAGE_RE: LazyLock<Regex> = LazyLock::new(|| compiled(LANGUAGE_PATTERN));
static ENV_NAME_RE: LazyLock<Regex> = LazyLock::new(|| compiled(ENV_NAME_PATTERN));
static VERSION_RE: LazyLock<Regex> = LazyLock::new(|| compiled(VERSION_PATTERN));

pub fn check_name(errors: &mut ValidationErrors, field: &str, value: &str) {
    if value.is_empty() {
        errors.push(field, "is required");
    } else if value.len() > MAX_NAME_LEN {
        errors.push(field, format!("is {} characters long; the limit is {MAX_NAME_LEN}", value.len()));
    } else if !NAME_RE.is_match(value) {
        errors.push(
            field,
            format!(
                "{value:?} is not a valid name: use letters, digits, '_' and '-', starting with a letter, digit or '_'"
            ),
        );
    }
}

pub fn check_language(errors: &mut ValidationErrors, field: &str, value: &str) {
    if value.is_empty() {
        errors.push(field, "is required");
    } else if value.len() > MAX_NAME_LEN || !LANGUAGE_RE.is_match(value) {
        errors.push(
            field,
            format!("{value:?} is not a valid language: use lower-case letters and digits, such as python3 or nodejs"),
        );
    }
}

pub fn check_env_name(errors: &mut ValidationErrors, field: &str, value: &str) {
    if !ENV_NAME_RE.is_match(value) || value.len() > 255 {
        errors.push(field, format!("{value:?} is not a valid environment variable name"));
    }
}

pub fn check_version(errors: &mut ValidationErrors, field: &str, value: &str) {
    if value.is_empty() || value.len() > 128 || !VERSION_RE.is_match(value) {
        errors.push(field, format!("{value:?} is not a valid version"));
    }
}

pub fn check_text(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) {
    if value.len() > max {
        errors.push(field, format!("is {} bytes long; the limit is {max}", value.len()));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        errors.push(field, "contains control characters");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dispatch_rule() {
        for ok in ["python3-postgres", "my_base", "0day", "_x"] {
            let mut e = ValidationErrors::default();
            check_name(&mut e, "name", ok);
            assert!(e.is_empty(), "{ok}: {e}");
        }
        for bad in ["", "-x", "a.b", "a/b", "é", &"a".repeat(64)] {
            let mut e = ValidationErrors::default();
            check_name(&mut e, "name", bad);
            assert_eq!(e.0.len(), 1, "{bad:?} should be rejected");
            assert_eq!(e.0[0].field, "name");
        }
    }

    #[test]
    fn versions_accept_ecosystem_spellings() {
        for ok in ["9.6.4-1", "1:2.36-9+deb12u4", ">=2.7,<3", "^4.17.0", "1.0~rc1"] {
            let mut e = ValidationErrors::default();
            check_version(&mut e, "v", ok);
            assert!(e.is_empty(), "{ok}");
        }
        let mut e = ValidationErrors::default();
        check_version(&mut e, "v", "1.0; rm -rf /");
        assert!(!e.is_empty());
    }
}
