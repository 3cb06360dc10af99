//! The inventory of an assembled image: every package with its purl, licence and (for the
//! packages this build added) the digest of the layer that holds it.

use std::collections::BTreeMap;

use kiln_model::inventory::{InventoryItem, LicenseKind, PackageLicense};
use kiln_model::package::Ecosystem;

use crate::dpkg::InstalledPackage;
use crate::package::UnpackedPackage;

/// `pkg:deb/<vendor>/<name>@<version>?arch=<arch>&distro=<distro>&epoch=<n>`, the shape syft
/// and trivy write and match: the epoch goes to a qualifier, qualifiers sorted by key. The
/// vendor is the distro's first word (`debian-12` → `debian`), `debian` without a distro.
pub fn deb_purl(name: &str, version: &str, architecture: &str, distro: Option<&str>) -> String {
    let vendor = distro.and_then(|d| d.split('-').next()).filter(|v| !v.is_empty()).unwrap_or("debian");
    let (epoch, version) = match version.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => (Some(epoch), rest),
        _ => (None, version),
    };
    let mut qualifiers = Vec::new();
    if !architecture.is_empty() {
        qualifiers.push(format!("arch={}", encode(architecture)));
    }
    if let Some(distro) = distro {
        qualifiers.push(format!("distro={}", encode(distro)));
    }
    if let Some(epoch) = epoch {
        qualifiers.push(format!("epoch={epoch}"));
    }
    let query = if qualifiers.is_empty() { String::new() } else { format!("?{}", qualifiers.join("&")) };
    format!("pkg:deb/{}/{}@{}{query}", encode(vendor), encode(name), encode(version))
}

/// Percent-encodes what would break a purl's structure; Debian's `+`, `~` and `.` stay, as
/// in the purls syft writes.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_~+".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `package`'s item; `packages` (this build's) lend a licence through a doc directory link.
pub(crate) fn new_item(
    package: &UnpackedPackage,
    packages: &[UnpackedPackage],
    layer: Option<String>,
    distro: Option<&str>,
) -> InventoryItem {
    let identity = DebIdentity {
        name: &package.name,
        version: &package.version,
        architecture: &package.architecture,
        source_name: package.source_name.as_deref(),
        source_version: package.source_version.as_deref(),
    };
    deb_item(&identity, crate::package::licence_of(package, packages), distro, layer)
}

/// What names a Debian package in an inventory, whether this build added it or it was there.
struct DebIdentity<'a> {
    name: &'a str,
    version: &'a str,
    architecture: &'a str,
    source_name: Option<&'a str>,
    source_version: Option<&'a str>,
}

fn deb_item(
    package: &DebIdentity<'_>,
    license: Option<&PackageLicense>,
    distro: Option<&str>,
    layer: Option<String>,
) -> InventoryItem {
    InventoryItem {
        ecosystem: Ecosystem::Deb,
        name: package.name.to_string(),
        version: package.version.to_string(),
        architecture: package.architecture.to_string(),
        source_name: package.source_name.filter(|s| *s != package.name).map(str::to_string),
        source_version: package.source_version.filter(|v| *v != package.version).map(str::to_string),
        license: license.map(|l| l.expression.clone()),
        license_kind: license.map(|l| l.kind),
        license_texts: license.map(|l| l.texts.clone()).unwrap_or_default(),
        purl: deb_purl(package.name, package.version, package.architecture, distro),
        layer,
    }
}

pub(crate) fn runtime_item(package: &crate::package::RuntimePackage, layer: Option<String>) -> InventoryItem {
    InventoryItem {
        ecosystem: package.ecosystem,
        name: package.name.clone(),
        version: package.version.clone(),
        architecture: String::new(),
        source_name: None,
        source_version: None,
        license: package.license.clone(),
        // A wheel's or npm package's metadata is the package's own word.
        license_kind: package.license.as_ref().map(|_| LicenseKind::Declared),
        license_texts: Vec::new(),
        purl: package.purl.clone(),
        layer,
    }
}

/// The package whose copyright file `path` is (`usr/share/doc/<package>/copyright`), for
/// reading an image's licences out of its layers.
pub fn copyright_owner(path: &str) -> Option<&str> {
    let package = path.strip_prefix("usr/share/doc/")?.strip_suffix("/copyright")?;
    (!package.is_empty() && !package.contains('/')).then_some(package)
}

/// Licences read from the copyright files an image's layers hold, by package name.
pub fn licences_from_copyright_files(found: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, PackageLicense> {
    found
        .iter()
        .filter_map(|(path, data)| {
            let package = copyright_owner(path)?;
            let license = crate::copyright::license_of(&String::from_utf8_lossy(data))?;
            Some((package.to_string(), license))
        })
        .collect()
}

/// Items for the packages an installed dpkg `status` lists. A package without a copyright
/// file of its own shares one with a package of the same source (Debian links such doc
/// directories to a sibling's), so it takes that sibling's licence.
pub(crate) fn installed_items(
    packages: &[InstalledPackage],
    distro: Option<&str>,
    licences: &BTreeMap<String, PackageLicense>,
) -> Vec<InventoryItem> {
    let source_of = |p: &InstalledPackage| p.source_name.clone().unwrap_or_else(|| p.name.clone());
    let mut by_source: BTreeMap<String, &PackageLicense> = BTreeMap::new();
    for package in packages {
        if let Some(license) = licences.get(&package.name) {
            by_source.entry(source_of(package)).or_insert(license);
        }
    }
    packages
        .iter()
        .map(|package| {
            let license = licences.get(&package.name).or_else(|| by_source.get(&source_of(package)).copied());
            let identity = DebIdentity {
                name: &package.name,
                version: &package.version,
                architecture: &package.architecture,
                source_name: package.source_name.as_deref(),
                source_version: package.source_version.as_deref(),
            };
            deb_item(&identity, license, distro, None)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_match_syft() {
        assert_eq!(
            deb_purl("libpq5", "15.8-0+deb12u1", "amd64", Some("debian-12")),
            "pkg:deb/debian/libpq5@15.8-0+deb12u1?arch=amd64&distro=debian-12"
        );
        assert_eq!(deb_purl("adduser", "1:3.134", "all", None), "pkg:deb/debian/adduser@3.134?arch=all&epoch=1");
        assert_eq!(deb_purl("x", "1 2", "", None), "pkg:deb/debian/x@1%202");
    }

    #[test]
    fn only_a_doc_directorys_own_copyright_file_names_a_package() {
        assert_eq!(copyright_owner("usr/share/doc/libc6/copyright"), Some("libc6"));
        for path in [
            "usr/share/doc/copyright",
            "usr/share/doc/a/b/copyright",
            "usr/share/doc/a/copyright.gz",
            "doc/a/copyright",
        ] {
            assert_eq!(copyright_owner(path), None, "{path}");
        }
    }

    #[test]
    fn parent_packages_take_their_own_licence_or_their_sourcess() {
        let installed = |name: &str, source: Option<&str>| InstalledPackage {
            name: name.into(),
            version: "1".into(),
            architecture: "amd64".into(),
            source_name: source.map(str::to_string),
            source_version: None,
            multi_arch: None,
        };
        let mut found = BTreeMap::new();
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: MIT\n";
        found.insert("usr/share/doc/libfoo1/copyright".to_string(), dep5.as_bytes().to_vec());
        found.insert("usr/share/doc/libfoo1/changelog.gz".to_string(), b"x".to_vec());
        let licences = licences_from_copyright_files(&found);
        let packages = [installed("libfoo1", Some("foo")), installed("foo-data", Some("foo")), installed("bar", None)];
        let items = installed_items(&packages, None, &licences);
        let license = |at: usize| (items[at].license.as_deref(), items[at].license_kind);
        assert_eq!(license(0), (Some("MIT"), Some(LicenseKind::Declared)));
        assert_eq!(license(1), (Some("MIT"), Some(LicenseKind::Declared)));
        assert_eq!(license(2), (None, None));
    }
}
