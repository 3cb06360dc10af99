//! Native extensions in wheels link against a few system libraries the manylinux policy lets
//! them expect (libstdc++, libgcc_s, …); this finds what installed wheels need and which
//! Debian package provides it, since a minimal image has only what `python3` pulled in.

use std::collections::BTreeSet;

use kiln_archive::tree::{Entry, EntryKind};

/// Sonames the ELF files among `entries` need that none of them provides.
pub fn needed_libraries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    let mut provided = BTreeSet::new();
    for entry in entries {
        let EntryKind::File { data } = &entry.kind else { continue };
        if !data.starts_with(b"\x7fELF") {
            continue;
        }
        if let Some(name) = entry.path.rsplit('/').next() {
            provided.insert(name.to_string());
        }
        if let Ok(elf) = goblin::elf::Elf::parse(data) {
            if let Some(soname) = elf.soname {
                provided.insert(soname.to_string());
            }
            needed.extend(elf.libraries.iter().map(|l| l.to_string()));
        }
    }
    needed.retain(|name| !provided.contains(name));
    needed
}

/// Libraries glibc itself provides: every image with Python has them.
const GLIBC: [&str; 9] = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libcrypt.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

pub fn provided_by_glibc(soname: &str) -> bool {
    GLIBC.contains(&soname)
}

/// The Debian package holding a library manylinux wheels may link against, or `None` for
/// one glibc itself provides or one Kiln does not know.
pub fn debian_package_for(soname: &str) -> Option<&'static str> {
    if provided_by_glibc(soname) {
        return None;
    }
    let known = [
        ("libstdc++.so.6", "libstdc++6"),
        ("libgcc_s.so.1", "libgcc-s1"),
        ("libgomp.so.1", "libgomp1"),
        ("libz.so.1", "zlib1g"),
        ("libexpat.so.1", "libexpat1"),
        ("libffi.so.8", "libffi8"),
        ("libglib-2.0.so.0", "libglib2.0-0"),
        ("libX11.so.6", "libx11-6"),
        ("libGL.so.1", "libgl1"),
    ];
    known.iter().find(|(name, _)| *name == soname).map(|(_, package)| *package)
}
