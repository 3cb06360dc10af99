//! Licences from Debian's machine-readable copyright files (DEP-5), in SPDX terms, so the
//! inventory and SBOM can say under which licences an image's packages are.

use crate::deb822;

fn spdx(name: &str) -> String {
    let known = match name.trim() {
        "GPL-2+" => "GPL-2.0-or-later",
        "GPL-2" => "GPL-2.0-only",
        "GPL-3+" => "GPL-3.0-or-later",
        "GPL-3" => "GPL-3.0-only",
        "LGPL-2+" => "LGPL-2.0-or-later",
        "LGPL-2.1+" => "LGPL-2.1-or-later",
        "LGPL-2.1" => "LGPL-2.1-only",
        "LGPL-3+" => "LGPL-3.0-or-later",
        "LGPL-3" => "LGPL-3.0-only",
        "BSD-2-clause" => "BSD-2-Clause",
        "BSD-3-clause" => "BSD-3-Clause",
        "BSD-4-clause" => "BSD-4-Clause",
        "Expat" | "MIT" => "MIT",
        "Apache-2.0" => "Apache-2.0",
        "PSF-2" => "PSF-2.0",
        "Zlib" | "zlib" => "Zlib",
        "ISC" => "ISC",
        "MPL-2.0" => "MPL-2.0",
        "public-domain" => "LicenseRef-public-domain",
        // Names that already are SPDX identifiers.
        spdx @ ("BSD-3-Clause" | "BSD-2-Clause" | "PostgreSQL" | "Unlicense" | "CC0-1.0" | "OpenSSL"
        | "Artistic-2.0") => spdx,
        other => {
            let cleaned: String = other
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
                .collect();
            return format!("LicenseRef-{cleaned}");
        }
    };
    known.to_string()
}

/// The distinct licences of a DEP-5 file's `Files:` stanzas, joined with ` AND `.
pub fn license_of(text: &str) -> Option<String> {
    if !text.lines().next().is_some_and(|l| l.starts_with("Format:") && l.contains("copyright-format")) {
        return None;
    }
    let stanzas = deb822::parse(text).ok()?;
    let mut names: Vec<String> = Vec::new();
    for stanza in stanzas.iter().filter(|s| s.get("Files").is_some()) {
        let Some(license) = stanza.get("License") else { continue };
        let first_line = license.lines().next().unwrap_or_default();
        for part in first_line.split(" or ").flat_map(|p| p.split(" and ")).flat_map(|p| p.split(',')) {
            let part = part.trim();
            if !part.is_empty() {
                names.push(spdx(part));
            }
        }
    }
    names.sort();
    names.dedup();
    if names.is_empty() { None } else { Some(names.join(" AND ")) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dep5_licences_become_spdx() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n\nFiles: lib/*\nLicense: Expat\n text\n\nLicense: Expat\n full text\n";
        assert_eq!(super::license_of(text).as_deref(), Some("GPL-2.0-or-later AND MIT"));
        assert_eq!(super::license_of("This package was debianized by…"), None);
    }

    #[test]
    fn real_copyright_files_mostly_read() {
        let mut read = 0;
        for entry in std::fs::read_dir("/usr/share/doc").expect("/usr/share/doc").flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path().join("copyright"))
                && super::license_of(&text).is_some()
            {
                read += 1;
            }
        }
        assert!(read > 10, "only {read} machine-readable copyright files found");
    }
}
