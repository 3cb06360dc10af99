//! The applier against layers a hostile image could hold: each must be refused or contained,
//! and nothing outside the root may change.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::entry::check_layer;

/// One raw tar entry: the name and link are written byte for byte, as an attacker would.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
    Hardlink(String, String),
    Char(String),
    Fifo(String),
}

pub(crate) fn tar_of(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        let (name, kind, link, data): (&str, tar::EntryType, &str, &[u8]) = match entry {
            Raw::File(n, d) => (n, tar::EntryType::Regular, "", d),
            Raw::Dir(n) => (n, tar::EntryType::Directory, "", b""),
            Raw::Symlink(n, t) => (n, tar::EntryType::Symlink, t, b""),
            Raw::Hardlink(n, t) => (n, tar::EntryType::Link, t, b""),
            Raw::Char(n) => (n, tar::EntryType::Char, "", b""),
            Raw::Fifo(n) => (n, tar::EntryType::Fifo, "", b""),
        };
        let old = header.as_old_mut();
        let n = name.len().min(99);
        old.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        let l = link.len().min(99);
        old.linkname[..l].copy_from_slice(&link.as_bytes()[..l]);
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(if kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        header.set_mtime(1);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append(&header, data).unwrap_or_else(|e| panic!("{e}"));
    }
    builder.into_inner().unwrap_or_else(|e| panic!("{e}"))
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap_or_else(|e| panic!("{e}"));
    gz.finish().unwrap_or_else(|e| panic!("{e}"))
}

/// Every path below `dir` with its kind, content or link and modification time.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let time = meta.modified().ok();
        let what = if meta.file_type().is_symlink() {
            format!("link {:?}", fs::read_link(&path).ok())
        } else if meta.is_dir() {
            if let Ok(children) = fs::read_dir(&path) {
                stack.extend(children.flatten().map(|c| c.path()));
            }
            format!("dir {:o}", meta.permissions().mode())
        } else {
            format!("file {:?} {:o}", fs::read(&path).ok(), meta.permissions().mode())
        };
        found.insert(path, format!("{what} {time:?}"));
    }
    found
}

struct Scene {
    _temp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn scene() -> Scene {
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = temp.path().join("root");
    let outside = temp.path().join("outside");
    fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    fs::create_dir_all(outside.join("dir")).unwrap_or_else(|e| panic!("{e}"));
    fs::write(outside.join("canary"), "alive").unwrap_or_else(|e| panic!("{e}"));
    fs::write(outside.join("dir/victim"), "alive").unwrap_or_else(|e| panic!("{e}"));
    Scene { root, outside, _temp: temp }
}

fn apply_all(root: &Path, layers: &[Vec<Raw>]) -> Result<(), LayerError> {
    let mut applier = Applier::new(root, Limits::default())?;
    for layer in layers {
        applier.apply(&gzip(&tar_of(layer))[..])?;
    }
    applier.finish()
}

fn file(name: &str, data: &str) -> Raw {
    Raw::File(name.to_string(), data.as_bytes().to_vec())
}

fn link(name: &str, target: &str) -> Raw {
    Raw::Symlink(name.to_string(), target.to_string())
}

#[test]
fn whiteouts_remove_what_lower_layers_added() {
    let s = scene();
    apply_all(
        &s.root,
        &[
            vec![file("a/keep", "1"), file("a/gone", "2"), file("b/x", "3"), file("c/sub/old", "4")],
            vec![
                file("a/.wh.gone", ""),
                file("b/.wh..wh..opq", ""),
                file("b/y", "4"),
                file("c/sub/new", "5"),
                file("c/.wh..wh..opq", ""),
            ],
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let r = &s.root;
    assert!(r.join("a/keep").exists() && !r.join("a/gone").exists());
    assert!(!r.join("b/x").exists() && r.join("b/y").exists());
    assert!(r.join("c/sub/new").exists() && !r.join("c/sub/old").exists(), "opaque hides lower files only");
}

#[test]
fn a_layer_keeps_its_own_files_whatever_the_order() {
    let s = scene();
    apply_all(
        &s.root,
        &[vec![file("d/old", "1")], vec![file("d/new", "2"), file("d/.wh..wh..opq", ""), file("d/.wh.new", "")]],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.root.join("d/new").exists() && !s.root.join("d/old").exists());
}

#[test]
fn hostile_names_are_refused_and_nothing_outside_changes() {
    let s = scene();
    let before = snapshot(s.outside.parent().unwrap_or(&s.outside));
    let abs = s.outside.display().to_string();
    let refused = [
        vec![file("../outside/canary", "owned")],
        vec![file(&format!("{abs}/canary"), "owned")],
        vec![file("../outside/dir/.wh.victim", "")],
        vec![file("../outside/dir/.wh..wh..opq", "")],
        vec![link("esc", "../outside")],
        vec![link("a/b/esc", "../../../outside")],
        vec![file("ok", "1"), Raw::Hardlink("h".into(), "../outside/canary".into())],
        vec![Raw::Hardlink("h".into(), format!("{abs}/canary"))],
        vec![Raw::Char("dev/evil".into())],
        vec![Raw::Fifo("fifo".into())],
        vec![file("a/.wh..wh..plnk", "")],
        vec![file(".wh...", "")],
    ];
    for layer in refused {
        let result = apply_all(&s.root, std::slice::from_ref(&layer));
        assert!(matches!(result, Err(LayerError::Unsafe { .. })), "{layer:?} gave {result:?}");
    }
    let after = snapshot(s.outside.parent().unwrap_or(&s.outside));
    let outside_only = |m: &BTreeMap<PathBuf, String>| {
        m.iter().filter(|(p, _)| !p.starts_with(&s.root)).map(|(p, v)| (p.clone(), v.clone())).collect::<Vec<_>>()
    };
    assert_eq!(outside_only(&before), outside_only(&after));
}

#[test]
fn links_are_followed_inside_the_root_only() {
    let s = scene();
    let abs = s.outside.display().to_string();
    apply_all(
        &s.root,
        &[
            // Absolute links are the image's own: they lead to the root's copy of the path.
            vec![link("esc", &abs), link("up", "/"), link("loop1", "loop2"), link("loop2", "loop1")],
            vec![file("esc/.wh.canary", ""), file("esc/dir/.wh..wh..opq", ""), file("esc/planted", "x")],
            vec![file("up/.wh.nothing", ""), link("esc/dir/victim", "/etc/shadow"), file("esc/dir/victim", "over")],
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read_to_string(s.outside.join("canary")).ok().as_deref(), Some("alive"));
    assert_eq!(fs::read_to_string(s.outside.join("dir/victim")).ok().as_deref(), Some("alive"));
    let inside = s.root.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(inside.join("planted")).ok().as_deref(), Some("x"));
    assert_eq!(fs::read_to_string(inside.join("dir/victim")).ok().as_deref(), Some("over"), "a file replaces the link");
    let looped = apply_all(&s.root, &[vec![file("loop1/x", "1")]]);
    assert!(matches!(looped, Err(LayerError::Unsafe { ref why, .. }) if why.contains("symlinks")), "{looped:?}");
}

#[test]
fn hard_links_need_a_regular_file_inside() {
    let s = scene();
    let abs = format!("{}/canary", s.outside.display());
    let pointing = apply_all(&s.root, &[vec![link("l", &abs)], vec![Raw::Hardlink("h".into(), "l".into())]]);
    assert!(matches!(pointing, Err(LayerError::Unsafe { .. })), "{pointing:?}");
    apply_all(&s.root, &[vec![file("f", "data")], vec![Raw::Hardlink("g".into(), "f".into())]])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read_to_string(s.root.join("g")).ok().as_deref(), Some("data"));
}

#[test]
fn bombs_stop_at_the_limits() {
    let s = scene();
    let mut applier = Applier::new(&s.root, Limits { max_entries: 3, max_bytes: 10 }).unwrap_or_else(|e| panic!("{e}"));
    let many = tar_of(&[file("a", ""), file("b", ""), file("c", ""), file("d", "")]);
    assert!(matches!(applier.apply(&many[..]), Err(LayerError::TooManyEntries { limit: 3 })));
    let big = tar_of(&[file("a", "12345"), file("b", "123456")]);
    let result = applier.apply(&big[..]);
    assert!(matches!(result, Err(LayerError::TooLarge { ref entry, limit: 10 }) if entry == "b"), "{result:?}");
}

#[test]
fn huge_long_names_are_refused_before_they_are_held() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    let ok = builder.append_data(&mut header.clone(), "first", &b"1"[..]);
    assert!(ok.is_ok(), "{ok:?}");
    let long = format!("a/{}", "b".repeat(2 << 20));
    let appended = builder.append_data(&mut header, &long, &b"2"[..]);
    assert!(appended.is_ok(), "{appended:?}");
    let tar = builder.into_inner().unwrap_or_else(|e| panic!("{e}"));
    let result = check_layer(&tar[..], Limits::default());
    assert!(matches!(&result, Err(LayerError::HugeHeaders { after, .. }) if after == "first"), "{result:?}");
}

#[test]
fn layers_may_be_plain_or_zstd() {
    let s = scene();
    let tar = tar_of(&[file("plain", "1")]);
    let zstd = zstd::encode_all(&tar_of(&[file("zstd", "2")])[..], 3).unwrap_or_else(|e| panic!("{e}"));
    let mut applier = Applier::new(&s.root, Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    applier.apply(&tar[..]).unwrap_or_else(|e| panic!("{e}"));
    applier.apply(&zstd[..]).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.root.join("plain").exists() && s.root.join("zstd").exists());
    let garbage = applier.apply(&gzip(b"not a tar at all, just some bytes")[..]);
    assert!(matches!(garbage, Err(LayerError::Corrupt { compression: Some("gzip"), .. })), "{garbage:?}");
}

mod property;
