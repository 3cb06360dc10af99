//! Core metadata (`METADATA`, the email-header format every wheel carries): what a
//! distribution depends on, which Pythons it supports and under which licence it ships.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: String,
    pub version: String,
    pub requires_dist: Vec<String>,
    pub requires_python: Option<String>,
    pub license: Option<String>,
}

/// The header block; continuation lines (leading whitespace) belong to the field above.
pub fn parse_metadata(text: &str) -> CoreMetadata {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let first = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let all = |key: &str| fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let classifiers = all("classifier");
    let license = first("license-expression")
        .filter(|v| !v.is_empty())
        .or_else(|| first("license").and_then(|v| spdx_from_license_field(&v)))
        .or_else(|| spdx_from_classifiers(&classifiers));
    CoreMetadata {
        name: first("name").unwrap_or_default(),
        version: first("version").unwrap_or_default(),
        requires_dist: all("requires-dist"),
        requires_python: first("requires-python").filter(|v| !v.is_empty()),
        license,
    }
}

/// Common short `License:` values mapped to SPDX; a pasted licence text is not an identifier.
fn spdx_from_license_field(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.contains('\n') || value.len() > 60 {
        return None;
    }
    let known = [
        ("mit", "MIT"),
        ("mit license", "MIT"),
        ("bsd", "BSD-3-Clause"),
        ("bsd license", "BSD-3-Clause"),
        ("new bsd", "BSD-3-Clause"),
        ("bsd-3-clause", "BSD-3-Clause"),
        ("3-clause bsd", "BSD-3-Clause"),
        ("bsd-2-clause", "BSD-2-Clause"),
        ("apache 2.0", "Apache-2.0"),
        ("apache-2.0", "Apache-2.0"),
        ("apache license 2.0", "Apache-2.0"),
        ("apache software license", "Apache-2.0"),
        ("apache license, version 2.0", "Apache-2.0"),
        ("isc", "ISC"),
        ("isc license", "ISC"),
        ("psf", "PSF-2.0"),
        ("psf license", "PSF-2.0"),
        ("python software foundation license", "PSF-2.0"),
        ("lgpl", "LGPL-3.0-or-later"),
        ("lgpl with exceptions", "LGPL-3.0-or-later WITH LGPL-3.0-linking-exception"),
        ("mpl-2.0", "MPL-2.0"),
        ("mpl 2.0", "MPL-2.0"),
        ("dual license", ""),
    ];
    let lower = value.to_ascii_lowercase();
    if let Some((_, spdx)) = known.iter().find(|(k, _)| *k == lower) {
        return (!spdx.is_empty()).then(|| spdx.to_string());
    }
    // Already an SPDX-looking identifier such as `BSD-3-Clause` or `Apache-2.0 OR MIT`.
    let looks_spdx = value.split_whitespace().all(|w| {
        ["AND", "OR", "WITH"].contains(&w) || w.chars().all(|c| c.is_ascii_alphanumeric() || "-.+()".contains(c))
    });
    (looks_spdx && value.chars().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())).then(|| value.to_string())
}

fn spdx_from_classifiers(classifiers: &[String]) -> Option<String> {
    let map = [
        ("MIT License", "MIT"),
        ("BSD License", "BSD-3-Clause"),
        ("Apache Software License", "Apache-2.0"),
        ("ISC License (ISCL)", "ISC"),
        ("Python Software Foundation License", "PSF-2.0"),
        ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
        ("GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0-only"),
        ("GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"),
        ("GNU General Public License v3 (GPLv3)", "GPL-3.0-only"),
        ("GNU General Public License v2 (GPLv2)", "GPL-2.0-only"),
        ("The Unlicense (Unlicense)", "Unlicense"),
    ];
    let mut found: Vec<&str> = classifiers
        .iter()
        .filter_map(|c| c.strip_prefix("License :: OSI Approved :: ").or_else(|| c.strip_prefix("License :: ")))
        .filter_map(|name| map.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
        .collect();
    found.dedup();
    match found.len() {
        0 => None,
        1 => Some(found[0].to_string()),
        _ => Some(found.join(" OR ")),
    }
}
