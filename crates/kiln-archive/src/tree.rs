//! A file-system entry taken out of a package archive, already proven to stay inside the
//! image root, so layer writers can trust every path they are given.

use bytes::Bytes;

/// One entry of a package's file tree. `path` is relative to the image root, normalised
/// (no leading `/`, no `.` or `..` components, no empty components, no trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` at most).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File {
        data: Bytes,
    },
    /// The target exactly as the archive stores it; relative or absolute, it was checked to
    /// resolve inside the root.
    Symlink {
        target: String,
    },
    /// Another regular file of the same archive, as a normalised root-relative path.
    Hardlink {
        target: String,
    },
}
