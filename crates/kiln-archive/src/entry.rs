//! Image layers read entry by entry through one checker: every name becomes a `SafePath`,
//! whiteouts become typed removals, and anything that could reach outside the root (absolute
//! or climbing names, links leaving the root, devices) or exhaust the host (too many entries,
//! too many bytes) is refused naming the entry. Readers and the applier share it.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use crate::path::{PathError, SafePath, link_stays_inside};

/// Bounds on one layer; a layer past them is refused as a likely bomb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in one layer.
    pub max_entries: u64,
    /// Bytes of file content one layer unpacks to.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_entries: 1_000_000, max_bytes: 32 << 30 }
    }
}

/// What an entry does to the tree below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    File {
        size: u64,
    },
    /// The target as the layer stores it; it was checked to resolve inside the root.
    Symlink {
        target: String,
    },
    /// Another path below the root, earlier in this layer or in a lower one.
    Hardlink {
        target: SafePath,
    },
    /// `.wh.NAME`: removes `NAME` (the entry's path) from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: hides everything the layers below hold in the directory (the entry's
    /// path, `None` for the root).
    Opaque,
}

/// One checked entry. For `Whiteout`, `path` is what is removed; for `Opaque`, the directory
/// made opaque (`None` only for the root itself).
pub struct Entry<'e> {
    pub path: Option<SafePath>,
    pub kind: EntryKind,
    /// Permission bits, setuid and setgid included (`0o7777` at most).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// The file's content, for `File` entries.
    pub data: &'e mut dyn Read,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("the layer is not a readable tar{}: {source}", compression_note(.compression))]
    Corrupt { compression: Option<&'static str>, source: io::Error },
    #[error("entry {entry:?} {why}")]
    Unsafe { entry: String, why: String },
    #[error("the layer holds more than {limit} entries: refused as a possible bomb")]
    TooManyEntries { limit: u64 },
    #[error("entry {entry:?} takes the layer past {limit} bytes unpacked: refused as a possible bomb")]
    TooLarge { entry: String, limit: u64 },
    #[error(
        "the entry after {after:?} has headers (long names, pax records) past {limit} bytes: refused as a possible bomb"
    )]
    HugeHeaders { after: String, limit: u64 },
    #[error("writing {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Bytes the tar reader may pull between two entries' contents: a header with its long-name
/// and pax extensions, which the reader holds in memory whole, and padding.
pub const MAX_HEADERS: u64 = 1 << 20;

/// Counts what the tar reader takes from below, so headers cannot grow without bound while
/// contents are bounded by the entry sizes the limits already check.
struct Metered<R> {
    inner: R,
    allowance: Rc<Cell<u64>>,
    exhausted: Rc<Cell<bool>>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.allowance.get();
        if room == 0 && !buf.is_empty() {
            self.exhausted.set(true);
            return Err(io::Error::other("the headers bound of the layer was reached"));
        }
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.allowance.set(room - n as u64);
        Ok(n)
    }
}

fn compression_note(compression: &Option<&'static str>) -> String {
    compression.map(|c| format!(" ({c})")).unwrap_or_default()
}

impl LayerError {
    /// True when the layer itself is hostile or broken, not the machine applying it.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, LayerError::Io { .. })
    }
}

fn unsafe_entry(entry: &str, why: impl Into<String>) -> LayerError {
    LayerError::Unsafe { entry: entry.to_string(), why: why.into() }
}

fn path_error(entry: &str, error: PathError) -> LayerError {
    let why = match error {
        PathError::Absolute { .. } => "is an absolute path".to_string(),
        PathError::Climbs { .. } => "climbs out of the root with ..".to_string(),
        other => format!("has an unusable name: {other}"),
    };
    unsafe_entry(entry, why)
}

/// How the layer is compressed, told from its first bytes (never from a media type a client
/// chose): gzip, zstd, or a plain tar.
fn decompressed<'a>(layer: impl Read + 'a) -> io::Result<(Box<dyn Read + 'a>, Option<&'static str>)> {
    let mut buffered = BufReader::with_capacity(64 << 10, layer);
    let head = buffered.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        (Box::new(flate2::read::MultiGzDecoder::new(buffered)), Some("gzip"))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?), Some("zstd"))
    } else {
        (Box::new(buffered), None)
    })
}

/// Feeds every entry of `layer` (gzip, zstd or plain tar) to `each` once it passed the
/// checks; the first refusal (or error from `each`) stops the walk. Entries `each` does not
/// read are skipped without being held in memory.
pub fn for_each_entry<R: Read>(
    layer: R,
    limits: Limits,
    mut each: impl FnMut(Entry<'_>) -> Result<(), LayerError>,
) -> Result<(), LayerError> {
    let (reader, compression) =
        decompressed(layer).map_err(|source| LayerError::Corrupt { compression: None, source })?;
    let allowance = Rc::new(Cell::new(MAX_HEADERS));
    let exhausted = Rc::new(Cell::new(false));
    let metered = Metered { inner: reader, allowance: allowance.clone(), exhausted: exhausted.clone() };
    let mut previous = String::from("the start");
    let failed = |source: io::Error, previous: &str| match exhausted.get() {
        true => LayerError::HugeHeaders { after: previous.to_string(), limit: MAX_HEADERS },
        false => LayerError::Corrupt { compression, source },
    };
    let corrupt = |source| LayerError::Corrupt { compression, source };
    let mut archive = tar::Archive::new(metered);
    let (mut count, mut bytes) = (0u64, 0u64);
    let entries = archive.entries().map_err(|e| failed(e, &previous))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| failed(e, &previous))?;
        // The entry's contents (and what skipping them reads) are bounded by its size,
        // which the limits check; what comes after may hold only headers.
        allowance.set(entry.size().saturating_add(512).saturating_add(MAX_HEADERS));
        count += 1;
        if count > limits.max_entries {
            return Err(LayerError::TooManyEntries { limit: limits.max_entries });
        }
        let raw_bytes = entry.path_bytes().into_owned();
        let raw = String::from_utf8_lossy(&raw_bytes).into_owned();
        previous.clone_from(&raw);
        let header = entry.header();
        let mode = header.mode().map_err(corrupt)? & 0o7777;
        let uid = header.uid().map_err(corrupt)?;
        let gid = header.gid().map_err(corrupt)?;
        let mtime = header.mtime().unwrap_or(0);
        let entry_type = header.entry_type();
        let path = SafePath::parse_bytes(&raw_bytes).map_err(|e| path_error(&raw, e))?;
        let (path, kind) = match entry_type {
            tar::EntryType::Directory => (path, EntryKind::Directory),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let name = path.as_ref().map(SafePath::file_name).unwrap_or_default();
                if let Some(removed) = whiteout(&raw, path.as_ref(), name)? {
                    removed
                } else {
                    let size = entry.size();
                    bytes = bytes.saturating_add(size);
                    if bytes > limits.max_bytes {
                        return Err(LayerError::TooLarge { entry: raw, limit: limits.max_bytes });
                    }
                    let Some(path) = path else { return Err(unsafe_entry(&raw, "is a file in place of the root")) };
                    (Some(path), EntryKind::File { size })
                }
            }
            tar::EntryType::Symlink => {
                let target = link_name(&mut entry, &raw)?;
                let Some(path) = path else { return Err(unsafe_entry(&raw, "is a symlink in place of the root")) };
                if !link_stays_inside(&path, &target) {
                    return Err(unsafe_entry(&raw, format!("is a symlink to {target:?}, outside the root")));
                }
                (Some(path), EntryKind::Symlink { target })
            }
            tar::EntryType::Link => {
                let target = link_name(&mut entry, &raw)?;
                let Some(path) = path else { return Err(unsafe_entry(&raw, "is a hard link in place of the root")) };
                match SafePath::parse(&target) {
                    Ok(Some(target)) => (Some(path), EntryKind::Hardlink { target }),
                    Ok(None) => return Err(unsafe_entry(&raw, "is a hard link to the root")),
                    Err(e) => {
                        return Err(unsafe_entry(&raw, format!("is a hard link to {target:?}, which {}", why(&e))));
                    }
                }
            }
            // PAX and GNU extension headers are folded into the next entry by the reader.
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(unsafe_entry(
                    &raw,
                    format!("is a {other:?} entry: devices, fifos and other special files are not allowed in layers"),
                ));
            }
        };
        each(Entry { path, kind, mode, uid, gid, mtime, data: &mut entry })?;
    }
    Ok(())
}

fn why(error: &PathError) -> &'static str {
    match error {
        PathError::Absolute { .. } => "is an absolute path",
        PathError::Climbs { .. } => "climbs out of the root",
        _ => "is not a usable name",
    }
}

fn link_name<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &str) -> Result<String, LayerError> {
    let bytes = entry.link_name_bytes().map(|b| b.into_owned()).unwrap_or_default();
    let target = String::from_utf8(bytes).map_err(|_| unsafe_entry(raw, "has a link target that is not UTF-8"))?;
    if target.is_empty() {
        return Err(unsafe_entry(raw, "is a link without a target"));
    }
    Ok(target)
}

/// `.wh.NAME` → a whiteout of `dir/NAME`; `.wh..wh..opq` → `dir` made opaque; other
/// `.wh..wh.` names (aufs bookkeeping) are refused, as is a whiteout of `.` or `..`.
type Removal = (Option<SafePath>, EntryKind);

fn whiteout(raw: &str, path: Option<&SafePath>, name: &str) -> Result<Option<Removal>, LayerError> {
    let Some(hidden) = name.strip_prefix(".wh.") else { return Ok(None) };
    let dir = path.and_then(SafePath::parent);
    if hidden == ".wh..opq" {
        return Ok(Some((dir, EntryKind::Opaque)));
    }
    if hidden.starts_with(".wh.") {
        return Err(unsafe_entry(raw, "is an aufs metadata entry, not a whiteout"));
    }
    let removed = SafePath::child(dir.as_ref(), hidden)
        .map_err(|_| unsafe_entry(raw, format!("is a whiteout of {hidden:?}, which is not a name in its directory")))?;
    Ok(Some((Some(removed), EntryKind::Whiteout)))
}

/// Reads a whole layer through the checker, writing nothing: how foreign layers are judged
/// when they arrive.
pub fn check_layer<R: Read>(layer: R, limits: Limits) -> Result<(), LayerError> {
    for_each_entry(layer, limits, |_| Ok(()))
}
