//! Layer writer tests: byte-identical output, a tree that untars exactly as intended, and the
//! gzip level measurement behind [`super::GZIP_LEVEL`].

use std::io::Read;
use std::time::Instant;

use flate2::read::GzDecoder;

use super::*;

pub(crate) fn file(path: &str, data: &[u8], mode: u32) -> Entry {
    Entry { path: path.into(), kind: EntryKind::File { data: data.to_vec().into() }, mode, uid: 0, gid: 0 }
}

fn sample() -> Vec<Entry> {
    let long = format!("usr/share/doc/{}/README", "very-long-directory-name-".repeat(8));
    vec![
        file("usr/bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
        Entry {
            path: "usr/bin/alias".into(),
            kind: EntryKind::Symlink { target: "tool".into() },
            mode: 0o777,
            uid: 0,
            gid: 0,
        },
        Entry {
            path: "usr/bin/hard".into(),
            kind: EntryKind::Hardlink { target: "usr/bin/tool".into() },
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
        Entry { path: "home/kiln".into(), kind: EntryKind::Directory, mode: 0o700, uid: 1000, gid: 1000 },
        file(&long, b"long", 0o644),
    ]
}

/// (path, type, mode, uid, gid, mtime, link target, data) of one extracted entry.
type Extracted = (String, tar::EntryType, u32, u64, u64, u64, String, Vec<u8>);

fn untar(blob: &LayerBlob) -> Vec<Extracted> {
    let bytes = std::fs::read(&blob.path).unwrap_or_default();
    let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
    let mut out = Vec::new();
    for entry in archive.entries().into_iter().flatten() {
        let Ok(mut entry) = entry else { panic!("bad entry") };
        let path = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let link = entry.link_name().ok().flatten().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap_or_default();
        out.push((
            path,
            header.entry_type(),
            header.mode().unwrap_or_default(),
            header.uid().unwrap_or_default(),
            header.gid().unwrap_or_default(),
            header.mtime().unwrap_or_default(),
            link,
            data,
        ));
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
    }
    out
}

#[test]
fn same_input_gives_identical_bytes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let one = write_layer(&sample(), 1_700_000_000, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut reversed = sample();
    reversed.reverse();
    let two = write_layer(&reversed, 1_700_000_000, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one, two);
    let bytes = std::fs::read(&one.path).unwrap_or_default();
    assert_eq!(Digest::sha256(&bytes), one.digest);
    assert_eq!(bytes.len() as u64, one.size);
    // Gzip header: no FNAME flag, MTIME zero.
    assert_eq!(&bytes[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    let mut tar = Vec::new();
    GzDecoder::new(bytes.as_slice()).read_to_end(&mut tar).unwrap_or_default();
    assert_eq!(Digest::sha256(&tar), one.diff_id);
    let other = write_layer(&sample(), 1_700_000_001, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(other.digest, one.digest, "the epoch is part of the content");
}

#[test]
fn untars_to_the_expected_tree() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blob = write_layer(&sample(), 1_700_000_000, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let tree = untar(&blob);
    let names: Vec<&str> = tree.iter().map(|t| t.0.as_str()).collect();
    let long = format!("usr/share/doc/{}/README", "very-long-directory-name-".repeat(8));
    let mut expected = vec!["home/", "home/kiln/", "usr/", "usr/bin/", "usr/bin/alias", "usr/bin/hard", "usr/bin/tool"];
    expected.extend(["usr/share/", "usr/share/doc/"]);
    let long_dir = format!("usr/share/doc/{}/", "very-long-directory-name-".repeat(8));
    expected.push(&long_dir);
    expected.push(&long);
    assert_eq!(names, expected);
    assert!(tree.iter().all(|t| t.5 == 1_700_000_000), "every mtime is the epoch");
    let by_name = |n: &str| tree.iter().find(|t| t.0 == n).cloned().unwrap_or_else(|| panic!("{n} missing"));
    assert_eq!(by_name("home/").2, 0o755);
    assert_eq!((by_name("home/kiln/").2, by_name("home/kiln/").3, by_name("home/kiln/").4), (0o700, 1000, 1000));
    // `hard` sorts before `tool`, so it carries the data and `tool` links back to it.
    let hard = by_name("usr/bin/hard");
    assert_eq!((hard.1, hard.7.as_slice()), (tar::EntryType::Regular, &b"#!/bin/sh\necho hi\n"[..]));
    let tool = by_name("usr/bin/tool");
    assert_eq!((tool.1, tool.6.as_str(), tool.2), (tar::EntryType::Link, "usr/bin/hard", 0o755));
    let alias = by_name("usr/bin/alias");
    assert_eq!((alias.1, alias.6.as_str()), (tar::EntryType::Symlink, "tool"));
    assert_eq!(by_name(&long).7, b"long");

    // And a real extraction: the hard link target exists before the link.
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&blob.path).unwrap_or_default();
    tar::Archive::new(GzDecoder::new(bytes.as_slice())).unpack(root.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(root.path().join("usr/bin/tool")).unwrap_or_default(), b"#!/bin/sh\necho hi\n");
}

#[test]
fn rejects_negative_epochs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(write_layer(&sample(), -1, dir.path()), Err(LayerError::NegativeEpoch(-1))));
}

/// Reads a host tree into entries, stopping near `limit` bytes of file data.
fn host_tree(root: &std::path::Path, prefix: &str, limit: u64, out: &mut Vec<Entry>, total: &mut u64) {
    let Ok(dir) = std::fs::read_dir(root) else { return };
    let mut children: Vec<_> = dir.flatten().collect();
    children.sort_by_key(|c| c.file_name());
    for child in children {
        if *total >= limit {
            return;
        }
        let name = format!("{prefix}{}", child.file_name().to_string_lossy());
        let Ok(meta) = child.path().symlink_metadata() else { continue };
        if meta.is_dir() {
            out.push(Entry { path: name.clone(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 });
            host_tree(&child.path(), &format!("{name}/"), limit, out, total);
        } else if meta.is_file() {
            let data = std::fs::read(child.path()).unwrap_or_default();
            *total += data.len() as u64;
            out.push(file(&name, &data, 0o644));
        }
    }
}

#[test]
#[ignore = "measurement over host files; run by hand to refresh the GZIP_LEVEL numbers"]
fn gzip_level_measurement() {
    let mut entries = Vec::new();
    let mut total = 0;
    for (root, prefix) in [("/usr/lib/python3.11", "usr/lib/python3.11/"), ("/usr/share/perl", "usr/share/perl/")] {
        host_tree(std::path::Path::new(root), prefix, 50 << 20, &mut entries, &mut total);
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    println!("tree: {} entries, {:.1} MB of file data", entries.len(), total as f64 / 1e6);
    for level in [1, 2, 3, 4, 5, 6, 9] {
        let start = Instant::now();
        let blob = write_layer_at_level(&entries, 0, dir.path(), level).unwrap_or_else(|e| panic!("{e}"));
        let secs = start.elapsed().as_secs_f64();
        println!(
            "level {level}: {:.1} MB gzip ({:.1}%), {secs:.2} s",
            blob.size as f64 / 1e6,
            100.0 * blob.size as f64 / total as f64
        );
    }
}
