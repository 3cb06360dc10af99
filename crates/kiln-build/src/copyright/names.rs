//! Debian's licence short names (DEP-5: `GPL-2+`, `Expat`, `GPL-3+ with Autoconf exception`)
//! as SPDX identifiers and `WITH` exceptions, looked up in the SPDX list the `spdx` crate
//! carries, so only names SPDX really lacks become `LicenseRef-…`.

/// The SPDX expression for one Debian licence name: an identifier, `id WITH exception`, or
/// (for Debian's `Perl`) an `OR` of two; `None` when SPDX has no identifier for it.
pub(crate) fn spdx_term(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches(['.', ';']);
    if let Some((base, exception)) = split_with(name) {
        let base = licence(base)?;
        if base.contains(' ') {
            return None;
        }
        let exception = exception_for(exception, &base)?;
        return Some(format!("{base} WITH {exception}"));
    }
    licence(name)
}

/// `LicenseRef-` and `name` in SPDX's idstring alphabet (letters, digits, `.`, `-`), `+`
/// spelled out as `-or-later`.
pub fn licence_ref(name: &str) -> String {
    let mut id = String::new();
    for c in name.trim().chars() {
        match c {
            c if c.is_ascii_alphanumeric() || c == '.' => id.push(c),
            '+' => id.push_str("-or-later-"),
            _ => id.push('-'),
        }
    }
    let mut collapsed = String::with_capacity(id.len());
    for c in id.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let trimmed = collapsed.trim_matches(['-', '.']);
    let trimmed: String = trimmed.chars().take(100).collect();
    if trimmed.is_empty() { "LicenseRef-unnamed".to_string() } else { format!("LicenseRef-{trimmed}") }
}

/// `X with Y exception` → (`X`, `Y exception`), the word `with` in any case.
fn split_with(name: &str) -> Option<(&str, &str)> {
    let lower = name.to_ascii_lowercase();
    let at = lower.find(" with ")?;
    Some((name[..at].trim(), name[at + 6..].trim()))
}

/// A licence name without an exception.
fn licence(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "expat" | "mit" | "mit/x11" => Some("MIT"),
        "artistic" | "artistic-1" | "artistic-1.0" => Some("Artistic-1.0-Perl"),
        "artistic-2" => Some("Artistic-2.0"),
        "perl" => return Some("Artistic-1.0-Perl OR GPL-1.0-or-later".to_string()),
        "psf-2" | "psf" => Some("PSF-2.0"),
        "python" | "python-2" => Some("Python-2.0"),
        "zope-2.1" => Some("ZPL-2.1"),
        "zope-2.0" => Some("ZPL-2.0"),
        "cc0" => Some("CC0-1.0"),
        "apache-2" => Some("Apache-2.0"),
        "mpl-2" => Some("MPL-2.0"),
        "ssleay" => Some("SSLeay-standalone"),
        "bsd-2-clause-freebsd" => Some("BSD-2-Clause-FreeBSD"),
        _ => None,
    };
    if let Some(id) = alias {
        return known(id);
    }
    if let Some(id) = gnu(&lower) {
        return Some(id);
    }
    if let Some(id) = spdx::license_id(name).filter(|id| !id.is_deprecated() && !name.ends_with('+')) {
        return Some(id.name.to_string());
    }
    // Debian writes `BSD-3-clause` and `zlib`; SPDX ids compare case-insensitively.
    spdx::identifiers::LICENSES
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(name))
        .and_then(|l| spdx::license_id(l.name))
        .filter(|id| !id.is_deprecated())
        .map(|id| id.name.to_string())
}

fn known(id: &str) -> Option<String> {
    spdx::license_id(id).map(|id| id.name.to_string())
}

/// The GNU family (`GPL`, `LGPL`, `AGPL`, `GFDL`, `GFDL-NIV`), a version (`2`, `2.1`,
/// `v3`) and `+` or `-or-later` / `-only`, as SPDX's `-only` / `-or-later` ids. A name
/// without a version means any version, as SPDX reads it: the earliest, or later.
pub(crate) fn gnu(lower: &str) -> Option<String> {
    let (family, rest) = ["gfdl-niv", "agpl", "lgpl", "gpl", "gfdl"]
        .iter()
        .find_map(|family| lower.strip_prefix(family).map(|rest| (*family, rest)))?;
    let (rest, or_later) = if let Some(rest) = rest.strip_suffix('+') {
        (rest, true)
    } else if let Some(rest) = rest.strip_suffix("-or-later") {
        (rest, true)
    } else if let Some(rest) = rest.strip_suffix("-only") {
        (rest, false)
    } else {
        (rest, false)
    };
    let version = rest.trim_start_matches(['-', 'v']);
    if version.is_empty() {
        let earliest = match family {
            "lgpl" => "2",
            "gfdl" | "gfdl-niv" => "1.1",
            _ => "1",
        };
        return gnu_id(family, earliest, true);
    }
    gnu_id(family, version, or_later)
}

/// `family` at `version` (`2` is `2.0`), checked against the SPDX list.
pub(crate) fn gnu_id(family: &str, version: &str, or_later: bool) -> Option<String> {
    if !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') || version.is_empty() {
        return None;
    }
    let version = if version.contains('.') { version.to_string() } else { format!("{version}.0") };
    let base = match family {
        "gfdl-niv" => format!("GFDL-{version}-no-invariants"),
        other => format!("{}-{version}", other.to_ascii_uppercase()),
    };
    spdx::gnu_license_id(&base, or_later).map(|id| id.name.to_string())
}

/// Debian's `Autoconf exception`, `GCC-3.1 exception`, `Classpath-exception-2.0`: the SPDX
/// exception of that name, the one matching `base`'s major version when SPDX has several
/// (`Autoconf-exception-2.0` for the GPL-2, `-3.0` for the GPL-3).
fn exception_for(text: &str, base: &str) -> Option<&'static str> {
    let dashed: String = text.split_whitespace().collect::<Vec<_>>().join("-");
    if let Some(found) = spdx::identifiers::EXCEPTIONS.iter().find(|e| e.name.eq_ignore_ascii_case(&dashed)) {
        return Some(found.name);
    }
    let lower = dashed.to_ascii_lowercase();
    let stem = lower.strip_suffix("-exception").unwrap_or(&lower);
    // `GCC-3.1 exception`, `Font-2.0 exception`: the version is the exception's own.
    if let Some((name, version)) = stem.rsplit_once('-').filter(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()))
        && let Some(found) = spdx::identifiers::EXCEPTIONS
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(&format!("{name}-exception-{version}")))
    {
        return Some(found.name);
    }
    let prefix = format!("{stem}-exception");
    let candidates: Vec<&'static str> = spdx::identifiers::EXCEPTIONS
        .iter()
        .map(|e| e.name)
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            lower == prefix
                || lower
                    .strip_prefix(&format!("{prefix}-"))
                    .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        })
        .collect();
    if let [only] = candidates.as_slice() {
        return Some(only);
    }
    let major = base.split('-').nth(1).and_then(|v| v.split('.').next())?;
    let matching =
        candidates.iter().find(|name| name.rsplit('-').next().and_then(|v| v.split('.').next()) == Some(major));
    // No exception version for this licence version (Bison's 2.2 serves the GPL-3 too):
    // the newest.
    matching.or(candidates.last()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names_become_spdx() {
        for (debian, spdx) in [
            ("GPL-2+", "GPL-2.0-or-later"),
            ("GPL-2", "GPL-2.0-only"),
            ("GPL-3.0+", "GPL-3.0-or-later"),
            ("GPL", "GPL-1.0-or-later"),
            ("LGPL-2.1+", "LGPL-2.1-or-later"),
            ("LGPL-2+", "LGPL-2.0-or-later"),
            ("LGPL-3", "LGPL-3.0-only"),
            ("AGPL-3+", "AGPL-3.0-or-later"),
            ("GFDL-1.3+", "GFDL-1.3-or-later"),
            ("GFDL-NIV-1.2+", "GFDL-1.2-no-invariants-or-later"),
            ("Expat", "MIT"),
            ("BSD-3-clause", "BSD-3-Clause"),
            ("BSD-2-clause", "BSD-2-Clause"),
            ("zlib", "Zlib"),
            ("Apache-2.0", "Apache-2.0"),
            ("Artistic", "Artistic-1.0-Perl"),
            ("PSF-2", "PSF-2.0"),
            ("CC0", "CC0-1.0"),
            ("ISC", "ISC"),
            ("MPL-2.0", "MPL-2.0"),
            ("OpenSSL", "OpenSSL"),
            ("SSLeay", "SSLeay-standalone"),
            ("GPL-3+ with Autoconf exception", "GPL-3.0-or-later WITH Autoconf-exception-3.0"),
            ("GPL-2+ with Autoconf exception", "GPL-2.0-or-later WITH Autoconf-exception-2.0"),
            ("GPL-3+ with GCC-3.1 exception", "GPL-3.0-or-later WITH GCC-exception-3.1"),
            ("GPL-2+ with Libtool exception", "GPL-2.0-or-later WITH Libtool-exception"),
            ("GPL-2 with Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"),
            ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
            ("GPL-3+ with Bison exception", "GPL-3.0-or-later WITH Bison-exception-2.2"),
        ] {
            assert_eq!(spdx_term(debian).as_deref(), Some(spdx), "{debian}");
        }
        for unknown in ["public-domain", "GPL-2+ with OpenSSL exception", "Unicode-data-whatever", "BSD", "GPL-7"] {
            assert_eq!(spdx_term(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn refs_are_spdx_idstrings() {
        assert_eq!(licence_ref("public-domain"), "LicenseRef-public-domain");
        assert_eq!(licence_ref("GPL-2+ with OpenSSL exception"), "LicenseRef-GPL-2-or-later-with-OpenSSL-exception");
        assert_eq!(licence_ref(" GPL-2+ "), "LicenseRef-GPL-2-or-later");
        assert_eq!(licence_ref("ü"), "LicenseRef-unnamed");
        for name in ["a/b c", "x,y;z", "Ünïcode (x)", "---"] {
            let id = licence_ref(name);
            let idstring = id.strip_prefix("LicenseRef-").unwrap_or_default();
            assert!(!idstring.is_empty() && idstring.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)));
        }
    }
}
