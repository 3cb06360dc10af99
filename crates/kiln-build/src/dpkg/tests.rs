//! dpkg record tests against stanzas shaped like bookworm's.

use std::collections::BTreeMap;

use super::*;

pub(crate) fn package(name: &str, multi_arch: Option<&str>) -> UnpackedPackage {
    let ma = multi_arch.map(|m| format!("Multi-Arch: {m}\n")).unwrap_or_default();
    UnpackedPackage {
        name: name.into(),
        version: "1.0-1".into(),
        architecture: "amd64".into(),
        source_name: None,
        source_version: None,
        multi_arch: multi_arch.map(str::to_string),
        control: format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n{ma}Maintainer: M <m@example.org>\nInstalled-Size: 10\n\
             Depends: libc6 (>= 2.34)\nSection: libs\nPriority: optional\nHomepage: https://example.org\n\
             Description: a test package\n long text\n .\n more\n"
        ),
        md5sums: Some("d41d8cd98f00b204e9800998ecf8427e  usr/lib/x\n".into()),
        conffiles: vec!["/etc/x.conf".into()],
        maintainer_scripts: BTreeMap::from([("postinst".to_string(), b"#!/bin/sh\n".to_vec())]),
        entries: vec![
            Entry { path: "etc".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 },
            Entry { path: "etc/x.conf".into(), kind: EntryKind::File { data: "".into() }, mode: 0o644, uid: 0, gid: 0 },
            Entry { path: "usr/lib/x".into(), kind: EntryKind::File { data: "".into() }, mode: 0o644, uid: 0, gid: 0 },
        ],
        license: None,
        origin: Some(format!("sha256:{name}")),
        built: None,
        slimmed_bytes: None,
    }
}

#[test]
fn info_files_follow_dpkg_naming() {
    let entries = info_entries(&package("libx1", Some("same")));
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "var/lib/dpkg/info/libx1:amd64.list",
            "var/lib/dpkg/info/libx1:amd64.md5sums",
            "var/lib/dpkg/info/libx1:amd64.conffiles",
            "var/lib/dpkg/info/libx1:amd64.postinst",
        ]
    );
    assert_eq!(entries[3].mode, 0o755);
    let plain = info_entries(&package("tool", Some("foreign")));
    assert_eq!(plain[0].path, "var/lib/dpkg/info/tool.list");
    assert_eq!(list_file(&package("tool", None)), "/.\n/etc\n/etc/x.conf\n/usr/lib/x\n");
}

#[test]
fn status_stanza_uses_dpkg_field_order() {
    let stanza = status_stanza(&package("tool", None));
    assert_eq!(
        stanza,
        "Package: tool\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 10\n\
         Maintainer: M <m@example.org>\nArchitecture: amd64\nVersion: 1.0-1\nDepends: libc6 (>= 2.34)\n\
         Conffiles:\n /etc/x.conf d41d8cd98f00b204e9800998ecf8427e\n\
         Description: a test package\n long text\n .\n more\nHomepage: https://example.org\n"
    );
}

#[test]
fn merge_replaces_and_sorts() {
    let parent = "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
                  Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9\n\n";
    let merged = merge_status(parent, &[status_stanza(&package("tool", None)), status_stanza(&package("abc", None))]);
    let names: Vec<&str> = merged.lines().filter_map(|l| l.strip_prefix("Package: ")).collect();
    assert_eq!(names, ["abc", "tool", "zlib1g"]);
    assert!(!merged.contains("0.9"));
    assert!(merged.ends_with("Version: 1\n\n"));
    assert_eq!(merge_status("", &[]), "");
    let installed = installed_packages(&merged);
    assert_eq!(installed.len(), 3);
    assert_eq!(installed[1].version, "1.0-1");
}

#[test]
fn parses_source_versions() {
    let status = "Package: libc6\nStatus: install ok installed\nSource: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\n\
                  Architecture: amd64\nMulti-Arch: same\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n";
    let installed = installed_packages(status);
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].source_name.as_deref(), Some("glibc"));
    assert_eq!(installed[0].source_version.as_deref(), Some("2.36-9"));
    assert_eq!(installed[0].multi_arch.as_deref(), Some("same"));
}
