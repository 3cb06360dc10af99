//! Fix-up tests over small fake packages.

use super::*;
use crate::dpkg::tests::package;

fn with_file(mut p: UnpackedPackage, path: &str, data: &str) -> UnpackedPackage {
    p.entries.push(file(path, data.as_bytes().to_vec(), 0o644, 0));
    p
}

#[test]
fn alternatives_become_symlinks() {
    let mut less = with_file(package("less", None), "usr/bin/less", "bin");
    less.maintainer_scripts
        .insert("postinst".into(), b"update-alternatives --install /usr/bin/pager pager /usr/bin/less 77\n".to_vec());
    let out = fixups(&[less], None, None);
    assert!(out.entries.contains(&symlink("etc/alternatives/pager", "/usr/bin/less")));
    assert!(out.entries.contains(&symlink("usr/bin/pager", "/etc/alternatives/pager")));
    assert!(out.report.iter().any(|l| l.starts_with("not run: less postinst; instead: alternatives /usr/bin/pager")));
}

#[test]
fn missing_targets_are_reported_not_linked() {
    let mut p = package("tool", None);
    p.maintainer_scripts
        .insert("postinst".into(), b"update-alternatives --install /usr/bin/t t /usr/bin/nope 1\n".to_vec());
    let out = fixups(&[p], None, None);
    assert!(!out.entries.iter().any(|e| e.path.contains("alternatives")));
    assert!(out.report.iter().any(|l| l.starts_with("alternatives skipped: t")));
}

#[test]
fn ca_bundle_concatenates_sorted_certificates() {
    let ca = with_file(package("ca-certificates", None), "usr/share/ca-certificates/mozilla/B.crt", "B");
    let ca = with_file(ca, "usr/share/ca-certificates/mozilla/A.crt", "A\n");
    let ca = with_file(ca, "usr/share/ca-certificates/mozilla/readme", "no");
    let out = fixups(&[ca], None, None);
    let bundle = out.entries.iter().find(|e| e.path == CA_BUNDLE).map(|e| e.kind.clone());
    assert_eq!(bundle, Some(EntryKind::File { data: "A\nB\n".into() }));
    assert!(fixups(&[package("other", None)], None, None).entries.iter().all(|e| e.path != CA_BUNDLE));
}

#[test]
fn accounts_and_ldconfig_are_reported() {
    let p = with_file(package("libfoo", None), "etc/ld.so.conf.d/foo.conf", "/opt/foo/lib\n");
    let out = fixups(&[p], None, None);
    assert!(out.entries.iter().any(|e| e.path == "etc/passwd"));
    assert!(out.entries.contains(&dir("home/kiln", 0o755, 1000)));
    assert!(out.report.iter().any(|l| l.starts_with("ldconfig skipped: libfoo ships /etc/ld.so.conf.d/foo.conf")));
    assert!(out.report.iter().any(|l| l == "not run: libfoo postinst; nothing done instead"));
}
