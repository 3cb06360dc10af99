//! Debs built here, hostile and honest, through `read_deb`.

use std::io::{Read, Write};

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
        let mut header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
        header.set_mtime(BUILT);
        out.append(&header, bytes.as_slice()).unwrap();
    }
    out.into_inner().unwrap()
}

/// When the test packages were "built", as dpkg-deb records it in the ar members.
const BUILT: u64 = 1_733_000_000;

fn refused(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> String {
    match read_deb(&deb(tar_with(entries))[..], &MemoryBudget::unlimited()) {
        Err(e) => e.to_string(),
        Ok(p) => panic!("accepted {:?}", p.entries),
    }
}

#[test]
fn honest_packages_unpack_with_normalised_paths() {
    let memory = MemoryBudget::new(1 << 20);
    let package = read_deb(
        &deb(tar_with(&[
            ("./", tar::EntryType::Directory, "", b""),
            ("./usr/bin/tool", tar::EntryType::Regular, "", b"#!/bin/sh\n"),
            ("./usr/bin/alias", tar::EntryType::Symlink, "tool", b""),
            ("./usr/bin/abs", tar::EntryType::Symlink, "/etc/passwd", b""),
            ("./usr/bin/hard", tar::EntryType::Link, "./usr/bin/tool", b""),
        ]))[..],
        &memory,
    )
    .unwrap();
    assert!(memory.held() > 0, "what the package holds stays reserved");
    assert_eq!(package.built, Some(BUILT as i64), "the data member's time dates the package");
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
        let _ = read_deb(&good[..cut], &MemoryBudget::unlimited());
    }
    assert!(read_deb(&b"not an archive"[..], &MemoryBudget::unlimited()).is_err());
}

/// A `.deb` whose members are named as given (so their compression is told by the name).
fn deb_with(control: (&str, Vec<u8>), data: (&str, Vec<u8>)) -> Vec<u8> {
    let mut out = ar::Builder::new(Vec::new());
    for (name, bytes) in [("debian-binary", b"2.0\n".to_vec()), control, data] {
        out.append(&ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64), bytes.as_slice()).unwrap();
    }
    out.into_inner().unwrap()
}

fn plain_control() -> (&'static str, Vec<u8>) {
    ("control.tar", tar_with(&[("./control", tar::EntryType::Regular, "", b"Package: bomb\nVersion: 1\n")]))
}

fn header(path: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// Streams `files` (path, size of zeros) as a tar into `out`, never holding a file whole.
fn zeros_tar(out: &mut impl std::io::Write, files: &[(&str, u64)]) {
    for (path, size) in files {
        out.write_all(header(path, *size).as_bytes()).unwrap();
        std::io::copy(&mut std::io::repeat(0).take(*size), out).unwrap();
        let padding = (512 - size % 512) % 512;
        std::io::copy(&mut std::io::repeat(0).take(padding), out).unwrap();
    }
    out.write_all(&[0; 1024]).unwrap();
}

/// Four bombs of `count` files of 8 MiB zeros each (`data.tar.zst`, a few kilobytes).
fn zst_bomb(count: usize) -> Vec<u8> {
    let names: Vec<String> = (0..count).map(|i| format!("./usr/share/bomb/part{i}")).collect();
    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 8 << 20)).collect();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    zeros_tar(&mut encoder, &files);
    deb_with(plain_control(), ("data.tar.zst", encoder.finish().unwrap()))
}

#[test]
fn a_file_declared_larger_than_the_budget_is_refused_before_it_is_inflated() {
    // The bomb: a data.tar.xz holding a 3 GiB file of zeros. Its header alone is
    // enough to refuse it, so the stream here stops after the first megabyte.
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
    encoder.write_all(header("./usr/share/bomb/zeros", 3 << 30).as_bytes()).unwrap();
    std::io::copy(&mut std::io::repeat(0).take(1 << 20), &mut encoder).unwrap();
    let bomb = deb_with(plain_control(), ("data.tar.xz", encoder.finish().unwrap()));
    let memory = MemoryBudget::new(256 << 20);
    let error = read_deb(&bomb[..], &memory).unwrap_err();
    let message = error.to_string();
    assert!(error.is_over_budget(), "{message}");
    assert!(message.contains("data.tar.xz: usr/share/bomb/zeros inflates past"), "{message}");
    assert!(message.contains("the build's memory limit of 256 MiB"), "{message}");
    assert!(message.contains("decompression bomb"), "{message}");
    assert_eq!(memory.held(), 0, "a refused package gives its reservation back");
}

#[test]
fn a_bomb_of_many_files_stops_at_the_budget_and_names_the_file() {
    let memory = MemoryBudget::new(64 << 20);
    let error = read_deb(&zst_bomb(32)[..], &memory).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("data.tar.zst: usr/share/bomb/part"), "{message}");
    assert!(message.contains("64 MiB"), "{message}");
    assert!(memory.peak() <= 64 << 20, "held {} at most", memory.peak());
    assert_eq!(memory.held(), 0);
}

#[test]
fn four_bombs_at_once_share_one_budget() {
    let memory = MemoryBudget::new(64 << 20);
    let bomb = zst_bomb(16);
    let errors: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..4).map(|_| scope.spawn(|| read_deb(&bomb[..], &memory).map(|_| ()).unwrap_err().to_string())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for message in &errors {
        assert!(message.contains("data.tar.zst: usr/share/bomb/part"), "{message}");
    }
    assert!(memory.peak() <= 64 << 20, "four bombs held {} together", memory.peak());
    assert_eq!(memory.held(), 0);
}

#[test]
fn a_member_cut_at_a_bound_says_so_instead_of_unexpected_eof() {
    // A control archive inflating past its own bound, whatever the build's budget.
    let mut control = Vec::new();
    zeros_tar(&mut control, &[("./control", 100 << 20)]);
    let data = ("data.tar", tar_with(&[("./usr/x", tar::EntryType::Regular, "", b"x")]));
    let message = read_deb(&deb_with(("control.tar", control), data.clone())[..], &MemoryBudget::unlimited())
        .unwrap_err()
        .to_string();
    assert!(message.contains("control.tar inflates past 64 MiB"), "{message}");
    assert!(!message.contains("EOF"), "{message}");

    // A GNU long name the tar reader would hold whole.
    let mut long = tar::Header::new_gnu();
    long.set_entry_type(tar::EntryType::GNULongName);
    long.set_size(16 << 20);
    long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    long.set_cksum();
    let mut tar = long.as_bytes().to_vec();
    tar.extend(std::iter::repeat_n(b'a', 16 << 20));
    zeros_tar(&mut tar, &[("./usr/x", 1)]);
    let message = read_deb(&deb_with(plain_control(), ("data.tar", tar))[..], &MemoryBudget::unlimited())
        .unwrap_err()
        .to_string();
    assert!(message.contains("data.tar has an entry whose headers pass 1 MiB"), "{message}");
}
