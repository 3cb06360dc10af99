//! The package catalog: which packages of which ecosystem developers may put into images.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::{ValidationErrors, check_text, check_version};

/// Where a package comes from. System ecosystems (`deb`, `rpm`, `apk`) hold OS packages;
/// the others hold language packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Deb,
    Rpm,
    Apk,
    Pypi,
    Npm,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 5] = [Ecosystem::Deb, Ecosystem::Rpm, Ecosystem::Apk, Ecosystem::Pypi, Ecosystem::Npm];

    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
        }
    }

    /// Why Kiln refuses sources and catalog entries of this ecosystem: it cannot build from
    /// it yet, and storing them would let a definition look governed while nothing used them.
    pub fn unbuildable(self) -> Option<String> {
        match self {
            Ecosystem::Deb | Ecosystem::Pypi | Ecosystem::Npm => None,
            Ecosystem::Rpm | Ecosystem::Apk => {
                Some(format!("{} packages cannot be built into images yet: use deb, pypi or npm", self.as_str()))
            }
        }
    }

    pub fn parse(text: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// The one spelling of a name under which the ecosystem itself treats names as equal.
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            // PEP 503: case-insensitive, runs of `-`, `_`, `.` are one separator.
            Ecosystem::Pypi => {
                let mut out = String::with_capacity(name.len());
                for c in name.chars() {
                    if "-_.".contains(c) {
                        if !out.ends_with('-') {
                            out.push('-');
                        }
                    } else {
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            _ => name.to_string(),
        }
    }

    pub fn name_problem(self, name: &str) -> Option<String> {
        let valid = match self {
            Ecosystem::Deb => {
                name.len() >= 2
                    && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
            }
            Ecosystem::Rpm | Ecosystem::Apk => {
                name.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
            }
            Ecosystem::Pypi => {
                name.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && name.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            }
            Ecosystem::Npm => is_npm_name(name),
        };
        if name.is_empty() || name.len() > 214 || !valid {
            Some(format!("{name:?} is not a valid {} package name", self.as_str()))
        } else {
            None
        }
    }
}

fn is_npm_name(name: &str) -> bool {
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
    };
    match name.strip_prefix('@') {
        Some(scoped) => matches!(scoped.split_once('/'), Some((scope, pkg)) if plain(scope) && plain(pkg)),
        None => plain(name),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    #[default]
    Approved,
    Denied,
}

/// A catalog entry. It is identified by ecosystem and name together: `requests` on PyPI
/// and a Debian package of the same name are different entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Package {
    pub ecosystem: Ecosystem,
    /// The package's name in its ecosystem; PyPI names are stored normalized (PEP 503).
    #[schema(example = "libpq5")]
    pub name: String,
    /// Versions or version constraints developers may use; empty allows every version.
    #[serde(default)]
    #[schema(example = json!(["15.14-0+deb12u1"]))]
    pub allowed_versions: Vec<String>,
    /// SPDX licence expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "PostgreSQL")]
    pub license: Option<String>,
    #[serde(default)]
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub organization: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Package {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Some(problem) = self.ecosystem.unbuildable() {
            errors.push("ecosystem", problem);
        } else if let Some(problem) = self.ecosystem.name_problem(&self.name) {
            errors.push("name", problem);
        }
        if self.allowed_versions.len() > 256 {
            errors.push("allowedVersions", "has more than 256 entries");
        }
        for (i, version) in self.allowed_versions.iter().enumerate() {
            check_version(&mut errors, &format!("allowedVersions[{i}]"), version);
        }
        if let Some(license) = &self.license {
            check_text(&mut errors, "license", license, 1024);
        }
        if let Some(notes) = &self.notes {
            check_text(&mut errors, "notes", notes, 16 * 1024);
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypi_names_normalize() {
        assert_eq!(Ecosystem::Pypi.normalize_name("Zope.Interface"), "zope-interface");
        assert_eq!(Ecosystem::Pypi.normalize_name("a__b-.c"), "a-b-c");
        assert_eq!(Ecosystem::Deb.normalize_name("libstdc++6"), "libstdc++6");
    }

    #[test]
    fn names_checked_per_ecosystem() {
        assert!(Ecosystem::Deb.name_problem("libstdc++6").is_none());
        assert!(Ecosystem::Deb.name_problem("LibPQ").is_some());
        assert!(Ecosystem::Npm.name_problem("@types/node").is_none());
        assert!(Ecosystem::Npm.name_problem("@types").is_some());
        assert!(Ecosystem::Pypi.name_problem("zope.interface").is_none());
        assert!(Ecosystem::Pypi.name_problem("-bad").is_some());
    }
}
