//! Reads one file out of a stack of gzip tar layers the way an overlay mount would show it,
//! so the server can fetch `/var/lib/dpkg/status` or `/etc/passwd` from any parent image
//! without unpacking it.

use std::io::{self, Read};

use flate2::read::GzDecoder;

/// Files bigger than this are not read into memory; `dpkg/status` of a large image is a few MB.
pub const MAX_READ_SIZE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("layer {layer} (counting from 0 at the bottom) is not a readable gzip tar: {source}")]
    Corrupt { layer: usize, source: io::Error },
    #[error("{path} in layer {layer} is {size} bytes, more than the {MAX_READ_SIZE}-byte limit")]
    TooLarge { path: String, layer: usize, size: u64 },
}

/// The content of `path` (with or without a leading `/`) in the image made of `layers`
/// (gzip tars, bottom to top), or `None` when no layer has it, a whiteout (`.wh.<name>`, or
/// `.wh..wh..opq` on a parent directory) removed it, or it is not a regular file at the top
/// (a directory, symlink or hard link: callers look for plain files such as `etc/passwd`).
pub fn read_file_from_layers<R: Read>(
    layers: impl IntoIterator<Item = R>,
    path: &str,
) -> Result<Option<Vec<u8>>, ReadError> {
    let wanted = path.trim_start_matches('/').trim_end_matches('/');
    let mut current: Option<Vec<u8>> = None;
    for (index, layer) in layers.into_iter().enumerate() {
        let corrupt = |source| ReadError::Corrupt { layer: index, source };
        // Whiteouts hide lower layers only, whatever their place in this layer's tar.
        let mut hidden_below = false;
        let mut here: Option<Option<Vec<u8>>> = None;
        let mut archive = tar::Archive::new(GzDecoder::new(layer));
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw = entry.path().map_err(corrupt)?.to_string_lossy().into_owned();
            let name = normalise(&raw);
            let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
            if base == ".wh..wh..opq" {
                hidden_below |= dir.is_empty() || is_under(wanted, dir);
                continue;
            }
            if let Some(removed) = base.strip_prefix(".wh.") {
                let removed = if dir.is_empty() { removed.to_string() } else { format!("{dir}/{removed}") };
                hidden_below |= wanted == removed || is_under(wanted, &removed);
                continue;
            }
            if is_under(wanted, name) && !entry.header().entry_type().is_dir() {
                // A file or link where a parent directory should be hides everything below it.
                hidden_below = true;
                here = None;
                continue;
            }
            if name != wanted {
                continue;
            }
            if !entry.header().entry_type().is_file() {
                here = Some(None);
                continue;
            }
            let size = entry.size();
            if size > MAX_READ_SIZE {
                return Err(ReadError::TooLarge { path: wanted.to_string(), layer: index, size });
            }
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut data).map_err(corrupt)?;
            here = Some(Some(data));
        }
        match here {
            Some(found) => current = found,
            None if hidden_below => current = None,
            None => {}
        }
    }
    Ok(current)
}

/// Every regular file whose path `wanted` accepts, as the stacked `layers` show it: a file in
/// an upper layer replaces a lower one, and whiteouts (`.wh.<name>`, `.wh..wh..opq`) remove
/// what lower layers hold. Used to list the language packages an image already contains.
pub fn read_files_from_layers<R: Read>(
    layers: impl IntoIterator<Item = R>,
    wanted: impl Fn(&str) -> bool,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, ReadError> {
    let mut found = std::collections::BTreeMap::new();
    for (index, layer) in layers.into_iter().enumerate() {
        let corrupt = |source| ReadError::Corrupt { layer: index, source };
        let mut removed: Vec<(String, bool)> = Vec::new();
        let mut added = Vec::new();
        let mut archive = tar::Archive::new(GzDecoder::new(layer));
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            let raw = entry.path().map_err(corrupt)?.to_string_lossy().into_owned();
            let name = normalise(&raw).to_string();
            let (dir, base) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
            if base == ".wh..wh..opq" {
                removed.push((dir.to_string(), true));
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                removed.push((if dir.is_empty() { gone.to_string() } else { format!("{dir}/{gone}") }, false));
                continue;
            }
            if !entry.header().entry_type().is_file() || !wanted(&name) {
                continue;
            }
            let size = entry.size();
            if size > MAX_READ_SIZE {
                return Err(ReadError::TooLarge { path: name, layer: index, size });
            }
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            entry.read_to_end(&mut data).map_err(corrupt)?;
            added.push((name, data));
        }
        // Whiteouts hide lower layers only, wherever they sit in this layer's tar.
        for (path, opaque) in removed {
            found.retain(|name: &String, _| {
                let under = is_under(name, &path) || (path.is_empty() && opaque);
                !(under || (!opaque && *name == path))
            });
        }
        found.extend(added);
    }
    Ok(found)
}

fn normalise(raw: &str) -> &str {
    let mut name = raw.trim_end_matches('/');
    while let Some(rest) = name.strip_prefix("./") {
        name = rest;
    }
    name.trim_start_matches('/')
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::write_layer;
    use kiln_packages::archive::{Entry, EntryKind};

    fn file(path: &str, data: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File { data: data.as_bytes().to_vec().into() },
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn layers(stack: &[Vec<Entry>]) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        stack
            .iter()
            .map(|entries| {
                let blob = write_layer(entries, 0, dir.path()).unwrap_or_else(|e| panic!("{e}"));
                std::fs::read(blob.path).unwrap_or_default()
            })
            .collect()
    }

    fn read(stack: &[Vec<Entry>], path: &str) -> Option<String> {
        let blobs = layers(stack);
        read_file_from_layers(blobs.iter().map(|b| b.as_slice()), path)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    }

    #[test]
    fn many_files_are_read_through_whiteouts() {
        let meta = "usr/local/lib/python3.11/dist-packages/six-1.16.0.dist-info/METADATA";
        let other = "usr/local/lib/python3.11/dist-packages/idna-3.0.dist-info/METADATA";
        let stack = [
            vec![file(meta, "Name: six"), file(other, "Name: idna"), file("etc/passwd", "x")],
            vec![file("usr/local/lib/python3.11/dist-packages/.wh.idna-3.0.dist-info", "")],
        ];
        let blobs = layers(&stack);
        let found = read_files_from_layers(blobs.iter().map(|b| b.as_slice()), |p| p.ends_with(".dist-info/METADATA"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found.keys().collect::<Vec<_>>(), [meta]);
    }

    #[test]
    fn upper_layers_win() {
        let stack = [vec![file("etc/passwd", "one")], vec![file("etc/other", "x")], vec![file("etc/passwd", "two")]];
        assert_eq!(read(&stack, "/etc/passwd").as_deref(), Some("two"));
        assert_eq!(read(&stack[..2], "etc/passwd").as_deref(), Some("one"));
        assert_eq!(read(&stack, "etc/missing"), None);
    }

    #[test]
    fn whiteouts_hide_lower_files() {
        let base = vec![file("etc/passwd", "one"), file("var/lib/dpkg/status", "s")];
        let removed = [base.clone(), vec![file("etc/.wh.passwd", "")]];
        assert_eq!(read(&removed, "etc/passwd"), None);
        assert_eq!(read(&removed, "var/lib/dpkg/status").as_deref(), Some("s"));
        let opaque = [base.clone(), vec![file("var/lib/dpkg/.wh..wh..opq", ""), file("var/lib/dpkg/status", "new")]];
        assert_eq!(read(&opaque, "var/lib/dpkg/status").as_deref(), Some("new"));
        let opaque_empty = [base.clone(), vec![file("var/lib/.wh..wh..opq", "")]];
        assert_eq!(read(&opaque_empty, "var/lib/dpkg/status"), None);
        let dir_removed = [base, vec![file(".wh.etc", "")], vec![file("etc/group", "g")]];
        assert_eq!(read(&dir_removed, "etc/passwd"), None);
    }

    #[test]
    fn reports_corrupt_layers() {
        let bad: [&[u8]; 1] = [b"not gzip"];
        assert!(matches!(read_file_from_layers(bad, "etc/passwd"), Err(ReadError::Corrupt { layer: 0, .. })));
    }
}
