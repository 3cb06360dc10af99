//! The inventory of an assembled image: every package with its purl, licence and (for the
//! packages this build added) the digest of the layer that holds it.

use kiln_model::inventory::{InventoryItem, LicenseKind};
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
    let license = crate::package::licence_of(package, packages);
    InventoryItem {
        ecosystem: Ecosystem::Deb,
        name: package.name.clone(),
        version: package.version.clone(),
        architecture: package.architecture.clone(),
        source_name: package.source_name.clone().filter(|s| *s != package.name),
        source_version: package.source_version.clone().filter(|v| *v != package.version),
        license: license.map(|l| l.expression.clone()),
        license_kind: license.map(|l| l.kind),
        license_texts: license.map(|l| l.texts.clone()).unwrap_or_default(),
        purl: deb_purl(&package.name, &package.version, &package.architecture, distro),
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

pub(crate) fn parent_item(package: &InstalledPackage, distro: Option<&str>) -> InventoryItem {
    InventoryItem {
        ecosystem: Ecosystem::Deb,
        name: package.name.clone(),
        version: package.version.clone(),
        architecture: package.architecture.clone(),
        source_name: package.source_name.clone().filter(|s| *s != package.name),
        source_version: package.source_version.clone().filter(|v| *v != package.version),
        license: None,
        license_kind: None,
        license_texts: Vec::new(),
        purl: deb_purl(&package.name, &package.version, &package.architecture, distro),
        layer: None,
    }
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
}
