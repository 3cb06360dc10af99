//! Turns a package's entries into the exact, ordered list a layer holds: one entry per path,
//! every parent directory present, hard links pointing backwards. Kept apart from the byte
//! writer so the rules can be read (and tested) without tar in the way.

use std::collections::{BTreeMap, BTreeSet};

use kiln_archive::tree::{Entry, EntryKind};

use super::LayerError;

/// Sorts `entries` bytewise by path and applies the layer rules:
///
/// - **Duplicates: the last one given wins**, whole (kind, mode and owner): callers list the
///   entries of a lower-priority source first, so a later package or a fix-up overrides.
/// - A missing parent directory is added as `0755`, owned by root.
/// - A parent that is not a directory is an error: tar extraction never follows symlinks.
/// - Each set of hard-linked paths stores the data once, under the path that sorts first; the
///   others become tar hard links to it, so an extractor always meets the target first.
pub(crate) fn normalise(entries: &[Entry]) -> Result<Vec<Entry>, LayerError> {
    let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in entries {
        check_path(&entry.path)?;
        tree.insert(entry.path.clone(), entry.clone());
    }
    add_parents(&mut tree)?;
    resolve_hardlinks(&mut tree)?;
    Ok(tree.into_values().collect())
}

fn check_path(path: &str) -> Result<(), LayerError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.contains('\0')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad { Err(LayerError::InvalidPath { path: path.to_string() }) } else { Ok(()) }
}

fn add_parents(tree: &mut BTreeMap<String, Entry>) -> Result<(), LayerError> {
    let mut missing = BTreeSet::new();
    for path in tree.keys() {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            let parent = &path[..end + slash];
            end += slash + 1;
            match tree.get(parent) {
                Some(Entry { kind: EntryKind::Directory, .. }) => {}
                Some(_) => {
                    return Err(LayerError::ParentNotDirectory { path: path.clone(), parent: parent.to_string() });
                }
                None => {
                    missing.insert(parent.to_string());
                }
            }
        }
    }
    for path in missing {
        let entry = Entry { path: path.clone(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 };
        tree.insert(path, entry);
    }
    Ok(())
}

fn resolve_hardlinks(tree: &mut BTreeMap<String, Entry>) -> Result<(), LayerError> {
    // Group every hard link under the regular file it finally names.
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, entry) in tree.iter() {
        let EntryKind::Hardlink { target } = &entry.kind else { continue };
        let file = final_target(tree, path, target)?;
        groups.entry(file).or_default().insert(path.clone());
    }
    for (file, links) in groups {
        let Some(first) = links.iter().next().filter(|first| **first < file).cloned() else {
            for link in &links {
                set_link(tree, link, &file);
            }
            continue;
        };
        // A link sorts before its file: move the data up to the first path so the archive
        // never names a target it has not written yet.
        let Some(data_entry) = tree.get(&file).cloned() else { continue };
        tree.insert(first.clone(), Entry { path: first.clone(), ..data_entry });
        for other in links.iter().skip(1).chain(std::iter::once(&file)) {
            set_link(tree, other, &first);
        }
    }
    Ok(())
}

fn set_link(tree: &mut BTreeMap<String, Entry>, path: &str, target: &str) {
    if let Some(entry) = tree.get_mut(path) {
        entry.kind = EntryKind::Hardlink { target: target.to_string() };
    }
}

/// Follows hard link to hard link until a regular file; a chain longer than the tree is a loop.
fn final_target(tree: &BTreeMap<String, Entry>, path: &str, target: &str) -> Result<String, LayerError> {
    let mut current = target.to_string();
    for _ in 0..=tree.len() {
        match tree.get(&current).map(|e| &e.kind) {
            Some(EntryKind::File { .. }) => return Ok(current),
            Some(EntryKind::Hardlink { target }) => current = target.clone(),
            _ => break,
        }
    }
    Err(LayerError::DanglingHardlink { path: path.to_string(), target: target.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &'static [u8]) -> Entry {
        Entry { path: path.into(), kind: EntryKind::File { data: data.into() }, mode: 0o644, uid: 0, gid: 0 }
    }

    fn link(path: &str, target: &str) -> Entry {
        Entry { path: path.into(), kind: EntryKind::Hardlink { target: target.into() }, mode: 0o644, uid: 0, gid: 0 }
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn sorts_bytewise_and_adds_parents() {
        let out = normalise(&[file("a/b/c", b"1"), file("a-b", b"2"), file("B", b"3")]).unwrap_or_default();
        assert_eq!(paths(&out), ["B", "a", "a-b", "a/b", "a/b/c"]);
        assert_eq!(out[1].mode, 0o755);
        assert_eq!(out[1].kind, EntryKind::Directory);
    }

    #[test]
    fn last_duplicate_wins() {
        let out = normalise(&[file("x", b"old"), file("x", b"new")]).unwrap_or_default();
        assert_eq!(out, [file("x", b"new")]);
    }

    #[test]
    fn rejects_non_directory_parents_and_bad_paths() {
        let symlink = Entry {
            path: "lib".into(),
            kind: EntryKind::Symlink { target: "usr/lib".into() },
            mode: 0o777,
            uid: 0,
            gid: 0,
        };
        assert!(matches!(
            normalise(&[symlink, file("lib/x", b"")]),
            Err(LayerError::ParentNotDirectory { parent, .. }) if parent == "lib"
        ));
        for bad in ["/abs", "a/../b", "a//b", "", "a/"] {
            assert!(normalise(&[file(bad, b"")]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hard_links_point_to_the_first_path() {
        let out = normalise(&[file("z", b"data"), link("a", "z"), link("m", "z")]).unwrap_or_default();
        assert_eq!(out[0], file("a", b"data"));
        assert_eq!(out[1], link("m", "a"));
        assert_eq!(out[2], link("z", "a"));
        let out = normalise(&[file("a", b"data"), link("b", "a")]).unwrap_or_default();
        assert_eq!(out, [file("a", b"data"), link("b", "a")]);
        assert!(matches!(normalise(&[link("b", "nowhere")]), Err(LayerError::DanglingHardlink { .. })));
        assert!(normalise(&[link("a", "b"), link("b", "a")]).is_err());
    }
}
