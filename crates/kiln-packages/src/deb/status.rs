//! `/var/lib/dpkg/status`: what an image already has, so a build adds only what is missing.

use super::index::{Dependency, IndexError, parse_provides, parse_source};
use crate::deb822;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub provides: Vec<Dependency>,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
}

/// The packages dpkg records as installed (`Status: install ok installed`).
pub fn parse_status(text: &str) -> Result<Vec<InstalledPackage>, IndexError> {
    let mut installed = Vec::new();
    deb822::for_each_stanza(text, 1, |stanza| {
        if stanza.get("Status").is_none_or(|s| s.split_whitespace().last() != Some("installed")) {
            return Ok(());
        }
        // Installed packages name no file: only who they are and what they provide is read.
        let required = |field: &'static str| {
            stanza.get(field).map(str::to_string).ok_or(IndexError::Missing { line: stanza.line, field })
        };
        let (source_name, source_version) = parse_source(stanza.get("Source"));
        installed.push(InstalledPackage {
            provides: parse_provides(stanza.get("Provides").unwrap_or_default()).unwrap_or_default(),
            name: required("Package")?,
            version: required("Version")?,
            architecture: required("Architecture")?,
            source_name,
            source_version,
        });
        Ok::<(), IndexError>(())
    })?;
    Ok(installed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_installed_packages_count() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nProvides: x\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n";
        let installed = super::parse_status(text).unwrap();
        assert_eq!(installed.len(), 1);
        assert_eq!(installed[0].provides[0].name, "x");
    }
}
