//! Debs built here, hostile and honest, through `read_deb`.

use super::*;

fn tar_with(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        // Write the name bytes directly so hostile paths survive the builder's own checks.
        let name = header.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        if !link.is_empty() {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn deb(data: Vec<u8>) -> Vec<u8> {
    let control = tar_with(&[("./control", tar::EntryType::Regular, "", b"Package: t\nVersion: 1\n")]);
    let mut out = ar::Builder::new(Vec::new());
    for (name, bytes) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar", control), ("data.tar", data)] {
        out.append(&ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64), bytes.as_slice()).unwrap();
    }
    out.into_inner().unwrap()
}

fn refused(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> String {
    match read_deb(&deb(tar_with(entries))) {
        Err(e) => e.to_string(),
        Ok(p) => panic!("accepted {:?}", p.entries),
    }
}

#[test]
fn honest_packages_unpack_with_normalised_paths() {
    let package = read_deb(&deb(tar_with(&[
        ("./", tar::EntryType::Directory, "", b""),
        ("./usr/bin/tool", tar::EntryType::Regular, "", b"#!/bin/sh\n"),
        ("./usr/bin/alias", tar::EntryType::Symlink, "tool", b""),
        ("./usr/bin/abs", tar::EntryType::Symlink, "/etc/passwd", b""),
        ("./usr/bin/hard", tar::EntryType::Link, "./usr/bin/tool", b""),
    ])))
    .unwrap();
    let paths: Vec<&str> = package.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["usr/bin/tool", "usr/bin/alias", "usr/bin/abs", "usr/bin/hard"]);
    assert!(package.control.starts_with("Package: t"));
}

#[test]
fn escapes_are_refused_by_name() {
    assert!(refused(&[("../etc/passwd", tar::EntryType::Regular, "", b"x")]).contains("\"../etc/passwd\" climbs out"));
    assert!(refused(&[("./a/../../x", tar::EntryType::Regular, "", b"x")]).contains("climbs out"));
    assert!(refused(&[("./usr/x", tar::EntryType::Symlink, "../../etc", b"")]).contains("outside the image root"));
    assert!(refused(&[("./usr/x", tar::EntryType::Link, "/etc/shadow", b"")]).contains("hard link"));
    assert!(refused(&[("./dev/sda", tar::EntryType::Block, "", b"")]).contains("not allowed"));
    assert!(refused(&[("./dev/c", tar::EntryType::Char, "", b"")]).contains("not allowed"));
    let through =
        refused(&[("./etc", tar::EntryType::Symlink, "/tmp", b""), ("./etc/x", tar::EntryType::Regular, "", b"x")]);
    assert!(through.contains("below the symlink etc"), "{through}");
}

#[test]
fn truncated_and_corrupt_input_errors_without_panicking() {
    let good = deb(tar_with(&[("./usr/bin/tool", tar::EntryType::Regular, "", &[7u8; 3000])]));
    for cut in (0..good.len()).step_by(97) {
        let _ = read_deb(&good[..cut]);
    }
    assert!(read_deb(b"not an archive").is_err());
}
