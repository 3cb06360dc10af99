//! The builder's view of an unpacked Debian package: exactly the fields it needs, so it does
//! not depend on how kiln-packages lays out its own types (the server maps one to the other).

use std::collections::BTreeMap;

use kiln_archive::tree::{Entry, EntryKind};

/// One package, unpacked and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedPackage {
    pub name: String,
    pub version: String,
    /// Debian architecture (`amd64`, `all`, …).
    pub architecture: String,
    /// The source package when it differs from `name` (the `Source:` field without version).
    pub source_name: Option<String>,
    /// The source version when it differs from `version`.
    pub source_version: Option<String>,
    /// The `Multi-Arch:` field (`same`, `foreign`, `allowed`), if any.
    pub multi_arch: Option<String>,
    /// The deb's `DEBIAN/control` stanza, verbatim.
    pub control: String,
    /// The deb's `DEBIAN/md5sums`, verbatim (paths without a leading `/`).
    pub md5sums: Option<String>,
    /// `DEBIAN/conffiles`: absolute paths, one per element.
    pub conffiles: Vec<String>,
    /// Other `DEBIAN/` members by name: `preinst`, `postinst`, `prerm`, `postrm`, `config`,
    /// `triggers`, `templates`, `shlibs`, `symbols`.
    pub maintainer_scripts: BTreeMap<String, Vec<u8>>,
    /// The data archive's entries, in archive order.
    pub entries: Vec<Entry>,
    /// The licence from the package's copyright file, when one could be told.
    pub license: Option<kiln_model::PackageLicense>,
    /// What the package was unpacked from, such as `sha256:<hex>` of the `.deb`: the same
    /// origin always unpacks to the same entries, so its layers can be reused by
    /// [`crate::assemble::layer_key`]. `None` makes its layers be written every time.
    pub origin: Option<String>,
    /// When the package was built (seconds since the epoch), if the `.deb` says.
    pub built: Option<i64>,
    /// `Some(bytes of file data)` once [`UnpackedPackage::slimmed`] dropped the data.
    pub slimmed_bytes: Option<u64>,
}

impl UnpackedPackage {
    /// `name` or `name:arch`, as dpkg names a package's files in `/var/lib/dpkg/info`: only
    /// `Multi-Arch: same` packages carry the architecture, since only they may be installed
    /// for two architectures at once.
    pub fn dpkg_name(&self) -> String {
        if self.multi_arch.as_deref() == Some("same") {
            format!("{}:{}", self.name, self.architecture)
        } else {
            self.name.clone()
        }
    }

    /// Bytes of file data, the size the layering plan ranks packages by.
    pub fn unpacked_size(&self) -> u64 {
        self.slimmed_bytes.unwrap_or_else(|| file_bytes(&self.entries))
    }

    /// The package without the file data that only its layer needs: every path, kind, mode
    /// and owner stays (for dpkg's `.list`, the alternatives and merged `/usr`), and so does
    /// the data of the files the image metadata is made from (conffiles for their hashes,
    /// the certificates of the CA bundle). Enough to assemble an image whose layers for this
    /// package are reused, at a fraction of the memory; never enough to write those layers.
    pub fn slimmed(&self) -> UnpackedPackage {
        let conffiles: std::collections::HashSet<&str> =
            self.conffiles.iter().map(|c| c.trim_start_matches('/')).collect();
        let keep = |path: &str| conffiles.contains(path) || crate::fixups::feeds_ca_bundle(path);
        let entries = self
            .entries
            .iter()
            .map(|entry| match &entry.kind {
                EntryKind::File { .. } if !keep(&entry.path) => {
                    Entry { kind: EntryKind::File { data: bytes::Bytes::new() }, ..entry.clone() }
                }
                _ => entry.clone(),
            })
            .collect();
        UnpackedPackage { entries, slimmed_bytes: Some(self.unpacked_size()), ..self.clone() }
    }

    pub fn is_slimmed(&self) -> bool {
        self.slimmed_bytes.is_some()
    }
}

/// The licence of `package`: its own, or, when it ships no copyright file but links its
/// doc directory to a sibling's (`/usr/share/doc/libstdc++6` → `gcc-12-base`, as Debian
/// policy allows when the sibling is a dependency), the licence of the package among
/// `packages` that holds the linked directory's copyright file.
pub(crate) fn licence_of<'a>(
    package: &'a UnpackedPackage,
    packages: &'a [UnpackedPackage],
) -> Option<&'a kiln_model::PackageLicense> {
    if package.license.is_some() {
        return package.license.as_ref();
    }
    let dir = format!("usr/share/doc/{}", package.name);
    let target = package.entries.iter().find_map(|entry| match &entry.kind {
        EntryKind::Symlink { target } if entry.path == dir => Some(target.as_str()),
        _ => None,
    })?;
    if target.is_empty() || target.contains('/') || target == "." || target == ".." {
        return None;
    }
    let copyright = format!("usr/share/doc/{target}/copyright");
    packages
        .iter()
        .filter(|other| other.entries.iter().any(|e| e.path == copyright))
        .find_map(|other| other.license.as_ref())
}

/// A language package (a wheel, an npm tarball) already laid out at its installed paths: the
/// builder layers it and lists it, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePackage {
    pub ecosystem: kiln_model::package::Ecosystem,
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    pub purl: String,
    /// Where the package sits when one name may be installed more than once (npm nests
    /// other versions under `node_modules/a/node_modules/b`); `None` for Python.
    pub location: Option<String>,
    pub entries: Vec<Entry>,
}

impl RuntimePackage {
    pub fn unpacked_size(&self) -> u64 {
        file_bytes(&self.entries)
    }
}

/// Bytes of file data in `entries`.
pub(crate) fn file_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { data } => data.len() as u64,
            _ => 0,
        })
        .sum()
}

/// The first components that merged-`/usr` systems (Debian 12 and later) turn into symlinks
/// into `/usr`.
pub const MERGED_USR_DIRS: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// Rewrites `bin/x` to `usr/bin/x` (and the same for the other [`MERGED_USR_DIRS`]), which is
/// what dpkg's writes through the `/bin -> usr/bin` symlink amount to. Without it a layer's
/// `bin/` directory would replace the parent's symlink and hide all of `/usr/bin`. Symlink
/// targets stay as they are: they resolve exactly as they would on a merged system. Returns
/// the rewritten entries and which top-level directories were used.
pub fn merge_usr(entries: &[Entry]) -> (Vec<Entry>, Vec<&'static str>) {
    let mut used = Vec::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let top = entry.path.split('/').next().unwrap_or_default();
        let Some(dir) = MERGED_USR_DIRS.iter().find(|d| **d == top) else {
            out.push(entry.clone());
            continue;
        };
        if !used.contains(dir) {
            used.push(*dir);
        }
        if entry.path == *dir {
            // The directory itself becomes the image's symlink; `usr/<dir>` comes as a parent.
            continue;
        }
        let kind = match &entry.kind {
            EntryKind::Hardlink { target } => EntryKind::Hardlink { target: usr_path(target) },
            other => other.clone(),
        };
        out.push(Entry { path: format!("usr/{}", entry.path), kind, ..entry.clone() });
    }
    used.sort();
    (out, used)
}

fn usr_path(path: &str) -> String {
    let top = path.split('/').next().unwrap_or_default();
    if MERGED_USR_DIRS.contains(&top) { format!("usr/{path}") } else { path.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry { path: path.into(), kind, mode: 0o755, uid: 0, gid: 0 }
    }

    #[test]
    fn merges_usr_like_dpkg_through_symlinks() {
        let entries = [
            entry("bin", EntryKind::Directory),
            entry("bin/bash", EntryKind::File { data: "x".into() }),
            entry("bin/rbash", EntryKind::Hardlink { target: "bin/bash".into() }),
            entry("lib64/ld.so", EntryKind::Symlink { target: "/lib/x86_64-linux-gnu/ld.so".into() }),
            entry("usr/bin/env", EntryKind::File { data: "y".into() }),
            entry("library/x", EntryKind::Directory),
        ];
        let (out, used) = merge_usr(&entries);
        let paths: Vec<&str> = out.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["usr/bin/bash", "usr/bin/rbash", "usr/lib64/ld.so", "usr/bin/env", "library/x"]);
        assert_eq!(out[1].kind, EntryKind::Hardlink { target: "usr/bin/bash".into() });
        assert_eq!(out[2].kind, EntryKind::Symlink { target: "/lib/x86_64-linux-gnu/ld.so".into() });
        assert_eq!(used, ["bin", "lib64"]);
    }

    fn package(name: &str, entries: Vec<Entry>, license: Option<&str>) -> UnpackedPackage {
        UnpackedPackage {
            name: name.into(),
            version: "1".into(),
            architecture: "amd64".into(),
            source_name: None,
            source_version: None,
            multi_arch: None,
            control: String::new(),
            md5sums: None,
            conffiles: Vec::new(),
            maintainer_scripts: BTreeMap::new(),
            entries,
            license: license.map(|expression| kiln_model::PackageLicense {
                expression: expression.into(),
                kind: kiln_model::LicenseKind::Concluded,
                texts: Vec::new(),
            }),
            origin: None,
            slimmed_bytes: None,
            built: None,
        }
    }

    #[test]
    fn a_doc_directory_link_lends_the_siblings_licence() {
        let base = package(
            "gcc-12-base",
            vec![entry("usr/share/doc/gcc-12-base/copyright", EntryKind::File { data: "GPL".into() })],
            Some("GPL-3.0-or-later WITH GCC-exception-3.1"),
        );
        let link = |target: &str| entry("usr/share/doc/libstdc++6", EntryKind::Symlink { target: target.into() });
        let linked = package("libstdc++6", vec![link("gcc-12-base")], None);
        let packages = [base.clone(), linked.clone()];
        let found = licence_of(&linked, &packages).map(|l| l.expression.as_str());
        assert_eq!(found, Some("GPL-3.0-or-later WITH GCC-exception-3.1"));
        // Without the sibling in the build, or through a link that leaves the doc tree, nothing.
        assert_eq!(licence_of(&linked, std::slice::from_ref(&linked)), None);
        let climbing = package("libstdc++6", vec![link("../../../etc")], None);
        assert_eq!(licence_of(&climbing, &[base.clone(), climbing.clone()]), None);
        // A package's own licence wins.
        let own = package("libstdc++6", vec![link("gcc-12-base")], Some("MIT"));
        assert_eq!(licence_of(&own, &[base, own.clone()]).map(|l| l.expression.as_str()), Some("MIT"));
    }
}
