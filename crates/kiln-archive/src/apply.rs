//! The one way Kiln writes image layers into a directory. Every path is resolved beneath the
//! root by a checked walk that treats symlinks as the container would (absolute targets from
//! the root, `..` stopping at the root) and never follows one out of it; whiteouts and opaque
//! directories remove only inside the root; an entry never writes through an existing link.
//! The root must be a directory only this applier writes to while it runs.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::entry::{Entry, EntryKind, LayerError, Limits, for_each_entry};
use crate::path::SafePath;

/// Symlinks followed while resolving one path, as Linux's own limit.
const MAX_LINK_HOPS: usize = 40;

/// Applies layers bottom to top onto `root`, then `finish` sets directory modes (kept
/// writable until the end so a read-only directory of a lower layer can still be filled).
pub struct Applier {
    root: PathBuf,
    limits: Limits,
    directory_modes: Vec<(PathBuf, u32)>,
    /// Ownership is kept when Kiln may set it (as root); otherwise files belong to Kiln.
    keep_owners: bool,
}

fn io_error(path: &Path, source: io::Error) -> LayerError {
    LayerError::Io { path: path.display().to_string(), source }
}

fn refused(entry: &SafePath, why: impl Into<String>) -> LayerError {
    LayerError::Unsafe { entry: entry.to_string(), why: why.into() }
}

impl Applier {
    /// An applier for `root`, which must exist and be a directory (not a symlink).
    pub fn new(root: &Path, limits: Limits) -> Result<Applier, LayerError> {
        let meta = fs::symlink_metadata(root).map_err(|e| io_error(root, e))?;
        if !meta.is_dir() {
            return Err(io_error(root, io::Error::other("the root is not a directory")));
        }
        Ok(Applier { root: root.to_path_buf(), limits, directory_modes: Vec::new(), keep_owners: true })
    }

    /// Applies one layer (gzip, zstd or plain tar) over what lower layers left.
    pub fn apply(&mut self, layer: impl Read) -> Result<(), LayerError> {
        // Paths this layer wrote (and the directories created for them): whiteouts and opaque
        // markers hide lower layers only, wherever they sit in the tar.
        let mut written: HashSet<PathBuf> = HashSet::new();
        let limits = self.limits;
        for_each_entry(layer, limits, |entry| self.apply_entry(entry, &mut written))
    }

    /// Sets the modes directories were given, deepest first.
    pub fn finish(mut self) -> Result<(), LayerError> {
        self.directory_modes.sort_by(|a, b| b.0.cmp(&a.0));
        self.directory_modes.dedup_by(|a, b| a.0 == b.0);
        for (path, mode) in &self.directory_modes {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    fs::set_permissions(path, fs::Permissions::from_mode(*mode)).map_err(|e| io_error(path, e))?
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_entry(&mut self, entry: Entry<'_>, written: &mut HashSet<PathBuf>) -> Result<(), LayerError> {
        let Entry { path, kind, mode, uid, gid, mtime, data } = entry;
        // Setuid and setgid bits are dropped: nothing Kiln unpacks needs them on the host.
        let mode = mode & 0o1777;
        let Some(path) = path else {
            return match kind {
                EntryKind::Opaque => self.make_opaque(&self.root.clone(), written),
                // The root's own entry (`./`) changes nothing: its mode is Kiln's.
                _ => Ok(()),
            };
        };
        match kind {
            EntryKind::Whiteout => {
                let Some(dir) = self.resolve_dir(path.parent().as_ref(), false, written)? else { return Ok(()) };
                let target = dir.join(path.file_name());
                if !written.contains(&target) {
                    remove(&target)?;
                }
                Ok(())
            }
            EntryKind::Opaque => match self.resolve_dir(Some(&path), false, written)? {
                Some(dir) => self.make_opaque(&dir, written),
                None => Ok(()),
            },
            EntryKind::Directory => {
                let target = self.place(&path, written)?;
                match fs::symlink_metadata(&target) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        remove(&target)?;
                        create_dir(&target)?;
                    }
                    Err(_) => create_dir(&target)?,
                }
                self.own(&target, uid, gid)?;
                self.directory_modes.push((target.clone(), mode));
                written.insert(target);
                Ok(())
            }
            EntryKind::File { .. } => {
                let target = self.place(&path, written)?;
                remove(&target)?;
                // create_new is O_CREAT|O_EXCL: it never follows a link left at the name.
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode_bits(0o600)
                    .open(&target)
                    .map_err(|e| io_error(&target, e))?;
                io::copy(data, &mut file).map_err(|e| io_error(&target, e))?;
                file.flush().map_err(|e| io_error(&target, e))?;
                let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                let _ = file.set_modified(time);
                drop(file);
                self.own(&target, uid, gid)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(|e| io_error(&target, e))?;
                written.insert(target);
                Ok(())
            }
            EntryKind::Symlink { target: link } => {
                let target = self.place(&path, written)?;
                remove(&target)?;
                symlink(&link, &target).map_err(|e| io_error(&target, e))?;
                self.own(&target, uid, gid)?;
                written.insert(target);
                Ok(())
            }
            EntryKind::Hardlink { target: source } => {
                let Some(dir) = self.resolve_dir(source.parent().as_ref(), false, written)? else {
                    return Err(refused(&path, format!("is a hard link to {source}, which does not exist")));
                };
                let source_path = dir.join(source.file_name());
                match fs::symlink_metadata(&source_path) {
                    Ok(meta) if meta.is_file() => {}
                    _ => {
                        return Err(refused(&path, format!("is a hard link to {source}, which is not a regular file")));
                    }
                }
                let target = self.place(&path, written)?;
                if target == source_path {
                    return Ok(());
                }
                remove(&target)?;
                fs::hard_link(&source_path, &target).map_err(|e| io_error(&target, e))?;
                written.insert(target);
                Ok(())
            }
        }
    }

    /// The host path for `path`: its parent resolved (and created) beneath the root, its own
    /// name never followed.
    fn place(&mut self, path: &SafePath, written: &mut HashSet<PathBuf>) -> Result<PathBuf, LayerError> {
        let dir = self.resolve_dir(path.parent().as_ref(), true, written)?;
        let dir = dir.ok_or_else(|| refused(path, "has no directory to live in"))?;
        // The directories holding what this layer writes are part of it for opaque markers.
        let mut ancestor = dir.clone();
        while ancestor != self.root && ancestor.starts_with(&self.root) && written.insert(ancestor.clone()) {
            ancestor.pop();
        }
        Ok(dir.join(path.file_name()))
    }

    /// Walks `dir` component by component from the root. A symlink met on the way is read
    /// and its target walked instead, from the root if absolute; `..` stops at the root.
    /// Every step is checked with `lstat`, so the path returned holds no symlink. Missing
    /// directories are created when `create`, else the answer is `None`.
    fn resolve_dir(
        &mut self,
        dir: Option<&SafePath>,
        create: bool,
        written: &mut HashSet<PathBuf>,
    ) -> Result<Option<PathBuf>, LayerError> {
        let Some(dir) = dir else { return Ok(Some(self.root.clone())) };
        let mut pending: VecDeque<String> = dir.components().map(str::to_string).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    resolved.pop();
                    continue;
                }
                _ => {}
            }
            let here = self.host_path(&resolved).join(&part);
            match fs::symlink_metadata(&here) {
                Ok(meta) if meta.is_dir() => resolved.push(part),
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(refused(dir, format!("passes more than {MAX_LINK_HOPS} symlinks")));
                    }
                    let target = fs::read_link(&here).map_err(|e| io_error(&here, e))?;
                    let target = target.to_string_lossy();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for (i, step) in target.split('/').enumerate() {
                        pending.insert(i, step.to_string());
                    }
                }
                Ok(_) => {
                    return Err(refused(
                        dir,
                        format!("needs {} to be a directory, and it is not", resolved_name(&resolved, &part)),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    create_dir(&here)?;
                    self.directory_modes.push((here.clone(), 0o755));
                    written.insert(here);
                    resolved.push(part);
                }
                Err(e) => return Err(io_error(&here, e)),
            }
        }
        Ok(Some(self.host_path(&resolved)))
    }

    fn host_path(&self, parts: &[String]) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(parts);
        path
    }

    /// Removes from `dir` everything lower layers put there; what this layer wrote stays.
    fn make_opaque(&self, dir: &Path, written: &HashSet<PathBuf>) -> Result<(), LayerError> {
        let children = fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
        for child in children {
            let child = child.map_err(|e| io_error(dir, e))?.path();
            if !written.contains(&child) {
                remove(&child)?;
            } else if fs::symlink_metadata(&child).is_ok_and(|m| m.is_dir()) {
                self.make_opaque(&child, written)?;
            }
        }
        Ok(())
    }

    fn own(&mut self, path: &Path, uid: u64, gid: u64) -> Result<(), LayerError> {
        if !self.keep_owners {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else { return Ok(()) };
        match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            Ok(()) => Ok(()),
            // Without the privilege the files stay Kiln's, as rootless unpacking does.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                self.keep_owners = false;
                Ok(())
            }
            Err(e) => Err(io_error(path, e)),
        }
    }
}

fn resolved_name(resolved: &[String], part: &str) -> String {
    let mut parts = resolved.to_vec();
    parts.push(part.to_string());
    parts.join("/")
}

fn create_dir(path: &Path) -> Result<(), LayerError> {
    // Owner-writable until `finish` sets the layer's own mode.
    fs::DirBuilder::new().mode_bits(0o755).create(path).map_err(|e| io_error(path, e))
}

/// Removes `path` itself, never what a link there points at; a missing path is fine.
fn remove(path: &Path) -> Result<(), LayerError> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| io_error(path, e))
}

/// `mode` for std's builders, under one name for files and directories.
trait ModeBits {
    fn mode_bits(&mut self, mode: u32) -> &mut Self;
}

impl ModeBits for fs::OpenOptions {
    fn mode_bits(&mut self, mode: u32) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, mode)
    }
}

impl ModeBits for fs::DirBuilder {
    fn mode_bits(&mut self, mode: u32) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, mode)
    }
}

#[cfg(test)]
mod tests;
