//! Reads one file out of a stack of gzip tar layers the way an overlay mount would show it,
//! so the server can fetch `/var/lib/dpkg/status` or `/etc/passwd` from any parent image
//! without unpacking it.

use std::collections::HashSet;
use std::io::Read;

use kiln_archive::{EntryKind, LayerError, Limits, SafePath, for_each_entry};

/// Files bigger than this are not read into memory; `dpkg/status` of a large image is a few MB.
pub const MAX_READ_SIZE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The layer is broken or hostile; `LayerError::is_refusal` tells the two from a local fault.
    #[error("layer {layer} (counting from 0 at the bottom): {source}")]
    Layer { layer: usize, source: LayerError },
    #[error("{path} in layer {layer} is {size} bytes, more than the {MAX_READ_SIZE}-byte limit")]
    TooLarge { path: String, layer: usize, size: u64 },
}

impl ReadError {
    /// True when a layer holds an entry that could escape the root or exhaust the host (as
    /// opposed to one that cannot be read at all).
    pub fn is_unsafe(&self) -> bool {
        matches!(self, ReadError::Layer { source, .. } if source.is_refusal() && !matches!(source, LayerError::Corrupt { .. }))
    }
}

/// The content of `path` (with or without a leading `/`) in the image made of `layers`
/// (gzip, zstd or plain tars, bottom to top), or `None` when no layer has it, a whiteout
/// removed it, or it is not a regular file at the top (a directory, symlink or hard link:
/// callers look for plain files such as `etc/passwd`). Every entry passes the layer checker.
pub fn read_file_from_layers<R: Read>(
    layers: impl IntoIterator<Item = R>,
    path: &str,
) -> Result<Option<Vec<u8>>, ReadError> {
    let wanted = path.trim_start_matches('/').trim_end_matches('/');
    let mut found = read_files_from_layers(layers, |name| name == wanted)?;
    Ok(found.remove(wanted))
}

/// Every regular file whose path `wanted` accepts, as the stacked `layers` show it: a file in
/// an upper layer replaces a lower one, whiteouts (`.wh.<name>`, `.wh..wh..opq`) remove
/// what lower layers hold, and a non-directory placed over a directory hides what was below
/// it. Used to list the language packages an image already contains.
pub fn read_files_from_layers<R: Read>(
    layers: impl IntoIterator<Item = R>,
    wanted: impl Fn(&str) -> bool,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, ReadError> {
    let mut found = std::collections::BTreeMap::new();
    for (index, layer) in layers.into_iter().enumerate() {
        // Whiteouts hide lower layers only, wherever they sit in this layer's tar.
        let mut removed: Vec<(Option<SafePath>, bool)> = Vec::new();
        // Paths this layer puts something at; what lower layers held below them is hidden.
        let mut covered: HashSet<String> = HashSet::new();
        let mut replaced: Vec<String> = Vec::new();
        let mut added: Vec<(String, Vec<u8>)> = Vec::new();
        let mut oversized = None;
        let walked = for_each_entry(layer, Limits::default(), |entry| {
            let Some(path) = entry.path else {
                if entry.kind == EntryKind::Opaque {
                    removed.push((None, true));
                }
                return Ok(());
            };
            match entry.kind {
                EntryKind::Whiteout => removed.push((Some(path), false)),
                EntryKind::Opaque => removed.push((Some(path), true)),
                // A directory merges with the one below; it only replaces a file of its name.
                EntryKind::Directory => replaced.push(path.as_str().to_string()),
                EntryKind::Symlink { .. } | EntryKind::Hardlink { .. } => {
                    covered.insert(path.as_str().to_string());
                }
                EntryKind::File { size } => {
                    covered.insert(path.as_str().to_string());
                    if !wanted(path.as_str()) {
                        return Ok(());
                    }
                    if size > MAX_READ_SIZE {
                        oversized = Some((path.as_str().to_string(), size));
                        return Err(LayerError::TooLarge { entry: path.as_str().to_string(), limit: MAX_READ_SIZE });
                    }
                    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                    entry
                        .data
                        .read_to_end(&mut data)
                        .map_err(|source| LayerError::Corrupt { compression: None, source })?;
                    added.push((path.as_str().to_string(), data));
                }
            }
            Ok(())
        });
        if let Some((path, size)) = oversized {
            return Err(ReadError::TooLarge { path, layer: index, size });
        }
        walked.map_err(|source| ReadError::Layer { layer: index, source })?;
        for (path, opaque) in removed {
            found.retain(|name: &String, _| match &path {
                None => !opaque,
                Some(path) => !(is_under(name, path.as_str()) || (!opaque && name == path.as_str())),
            });
        }
        found.retain(|name: &String, _| !covered.contains(name) && !ancestors(name).any(|dir| covered.contains(dir)));
        for name in replaced {
            found.remove(&name);
        }
        found.extend(added);
    }
    Ok(found)
}

/// `a/b/c` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::write_layer;
    use kiln_archive::tree::{Entry, EntryKind};

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
    fn hostile_entries_are_refused_as_unsafe() {
        let mut header = tar::Header::new_gnu();
        let name = b"../../tmp/x/.wh.victim";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(0);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b""[..]).unwrap_or_else(|e| panic!("{e}"));
        let layer = builder.into_inner().unwrap_or_else(|e| panic!("{e}"));
        let result = read_file_from_layers([&layer[..]], "etc/passwd");
        assert!(
            matches!(&result, Err(e) if e.is_unsafe() && e.to_string().contains("../../tmp/x/.wh.victim")),
            "{result:?}"
        );
    }

    #[test]
    fn reports_corrupt_layers() {
        let bad: [&[u8]; 1] = [b"not gzip"];
        assert!(matches!(read_file_from_layers(bad, "etc/passwd"), Err(ReadError::Layer { layer: 0, .. })));
    }
}
