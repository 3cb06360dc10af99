//! Opening a `.deb` without dpkg: the `ar` wrapper, the control archive and the data
//! archive (gz, xz, zst or plain), turned into entries that are proven to stay inside the
//! image root. Anything that could escape (`..`, escaping symlinks, outside hard links,
//! device files, paths through a symlink) is refused, naming the entry. Members are streamed
//! from the reader through the decompressor into the tar reader; only file contents are held,
//! each reserved from the build's memory budget first, so a decompression bomb is refused by
//! name instead of filling memory.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

use bytes::Bytes;

use crate::memory::{MemoryBudget, OverBudget, ReadError, Reservation, human, read_reserved};
use kiln_archive::tree::{Entry, EntryKind};

/// Entries one archive may hold: far above any real package, low enough that the
/// bookkeeping of a hostile one stays small.
const MAX_ENTRIES: u64 = 1_000_000;
/// What a control archive may decompress to in all (real ones hold kilobytes; md5sums of
/// the largest packages a few megabytes).
const MAX_CONTROL: u64 = 64 << 20;
/// Bytes the tar reader may pull between two entries' contents: the header, its long-name
/// and pax extensions (which the reader holds in memory whole) and the padding.
const MAX_HEADERS: u64 = 1 << 20;
/// Memory an entry costs beside its contents: its path and the bookkeeping around it.
const ENTRY_OVERHEAD: u64 = 128;
/// The most an xz decoder may allocate: enough for `xz -9e` (64 MiB dictionaries), not for a
/// stream declaring a 1.5 GiB dictionary it would then fill.
const XZ_MEMORY: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub control: String,
    pub md5sums: Option<String>,
    pub conffiles: Vec<String>,
    pub maintainer_scripts: BTreeMap<String, Vec<u8>>,
    pub entries: Vec<Entry>,
    /// When the package was built: its data member's `ar` time (dpkg-deb writes the
    /// package's SOURCE_DATE_EPOCH there), so images can date themselves by their newest input.
    pub built: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("not a Debian package: {0}")]
    NotADeb(String),
    #[error("corrupt {member}: {message}")]
    Corrupt { member: String, message: String },
    #[error("entry {path:?} {why}: the package is refused")]
    Unsafe { path: String, why: String },
    /// Holding what the archive decompresses to would pass the build's memory budget.
    #[error("{member}: {} past {over}: refused as a possible decompression bomb", inflates(.path))]
    OverBudget { member: String, path: Option<String>, over: OverBudget },
    #[error("{member} {why}: refused as a possible decompression bomb")]
    Bomb { member: String, why: String },
}

fn inflates(path: &Option<String>) -> String {
    match path {
        Some(path) => format!("{path} inflates"),
        None => "its contents inflate".to_string(),
    }
}

impl UnpackError {
    /// True when the build's memory budget, not a fixed bound, refused the package: raising
    /// the budget lets a genuine one through.
    pub fn is_over_budget(&self) -> bool {
        matches!(self, UnpackError::OverBudget { .. })
    }
}

fn corrupt(member: &str, message: impl ToString) -> UnpackError {
    UnpackError::Corrupt { member: member.to_string(), message: message.to_string() }
}

/// The decompressed stream of `member`, told by its name.
fn decoder<'a>(member: &str, raw: impl Read + 'a) -> Result<Box<dyn Read + 'a>, UnpackError> {
    Ok(if member.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else if member.ends_with(".xz") {
        let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMORY, 0).map_err(|e| corrupt(member, e))?;
        Box::new(liblzma::read::XzDecoder::new_stream(io::BufReader::new(raw), stream))
    } else if member.ends_with(".zst") {
        // zstd's own default refuses frames wanting a window above 128 MiB.
        Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| corrupt(member, e))?)
    } else if member.ends_with(".tar") {
        Box::new(raw)
    } else {
        return Err(corrupt(member, "unknown compression"));
    })
}

/// How many decompressed bytes the tar reader may still pull, so headers and skipped data
/// stay bounded while contents are bounded by the budget as they are read.
struct Meter {
    /// Until the next entry's contents are granted.
    allowance: Cell<u64>,
    /// For the whole member (`u64::MAX`: only the budget bounds it).
    total: Cell<u64>,
    /// Which bound stopped the reader, if one did.
    hit: Cell<Option<&'static str>>,
}

struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let meter = &self.meter;
        let room = meter.allowance.get().min(meter.total.get());
        if room == 0 && !buf.is_empty() {
            let which = if meter.total.get() == 0 { "total" } else { "headers" };
            meter.hit.set(Some(which));
            return Err(io::Error::other(format!("the {which} bound of the archive was reached")));
        }
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        meter.allowance.set(meter.allowance.get() - n as u64);
        meter.total.set(meter.total.get() - n as u64);
        Ok(n)
    }
}

/// One tar member read entry by entry, its errors told apart: a bound reached, or a broken
/// archive.
struct TarReader<'r> {
    member: String,
    meter: Rc<Meter>,
    total: u64,
    archive: tar::Archive<Metered<Box<dyn Read + 'r>>>,
}

impl<'r> TarReader<'r> {
    fn new(member: &str, raw: impl Read + 'r, total: u64) -> Result<TarReader<'r>, UnpackError> {
        let meter = Rc::new(Meter { allowance: Cell::new(MAX_HEADERS), total: Cell::new(total), hit: Cell::new(None) });
        let inner = decoder(member, raw)?;
        let archive = tar::Archive::new(Metered { inner, meter: meter.clone() });
        Ok(TarReader { member: member.to_string(), meter, total, archive })
    }

    /// An I/O error as the user should read it: a bound reached by name, else corruption.
    fn error(member: &str, meter: &Meter, total: u64, e: io::Error) -> UnpackError {
        match meter.hit.get() {
            Some("total") => UnpackError::Bomb {
                member: member.to_string(),
                why: format!("inflates past {}, the most such an archive may hold", human(total)),
            },
            Some(_) => UnpackError::Bomb {
                member: member.to_string(),
                why: format!("has an entry whose headers pass {}", human(MAX_HEADERS)),
            },
            None => corrupt(member, e),
        }
    }

    /// Calls `each` with every entry; the contents of an entry are read by `each` through
    /// `read_contents`, the rest is skipped within the header bound.
    fn for_each(
        &mut self,
        mut each: impl FnMut(&mut tar::Entry<'_, Metered<Box<dyn Read + 'r>>>, &Meter) -> Result<(), UnpackError>,
    ) -> Result<(), UnpackError> {
        let (member, total) = (self.member.clone(), self.total);
        let meter = self.meter.clone();
        let mut entries = self.archive.entries().map_err(|e| Self::error(&member, &meter, total, e))?;
        let mut count = 0u64;
        loop {
            meter.allowance.set(MAX_HEADERS);
            let Some(entry) = entries.next() else { return Ok(()) };
            let mut entry = entry.map_err(|e| Self::error(&member, &meter, total, e))?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(UnpackError::Bomb { member, why: format!("holds more than {MAX_ENTRIES} entries") });
            }
            each(&mut entry, &meter).map_err(|e| match e {
                UnpackError::Corrupt { message, .. } if meter.hit.get().is_some() => {
                    Self::error(&member, &meter, total, io::Error::other(message))
                }
                other => other,
            })?;
        }
    }
}

/// Reads an entry's contents whole, reserving them from the budget first; `path` names the
/// entry in errors.
fn read_contents<R: Read>(
    member: &str,
    path: &str,
    entry: &mut tar::Entry<'_, R>,
    meter: &Meter,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, UnpackError> {
    let size = entry.size();
    meter.allowance.set(meter.allowance.get().saturating_add(size));
    read_reserved(entry, size, reservation).map_err(|e| match e {
        ReadError::OverBudget(over) => {
            UnpackError::OverBudget { member: member.to_string(), path: Some(path.to_string()), over }
        }
        ReadError::Io(e) => corrupt(member, e),
    })
}

/// `./usr/bin/x` → `usr/bin/x`; `None` for the root itself; an error for escapes.
fn normalise(raw: &str) -> Result<Option<String>, UnpackError> {
    let trimmed = raw.strip_prefix("./").unwrap_or(raw);
    if trimmed.starts_with('/') {
        return Err(UnpackError::Unsafe { path: raw.into(), why: "is an absolute path".into() });
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(UnpackError::Unsafe { path: raw.into(), why: "climbs out with ..".into() }),
            other => parts.push(other),
        }
    }
    Ok(if parts.is_empty() { None } else { Some(parts.join("/")) })
}

/// Whether a symlink at `path` (already normalised) pointing at `target` stays inside the
/// root, by the same rule image layers are held to.
fn link_stays_inside(path: &str, target: &str) -> bool {
    match kiln_archive::SafePath::parse(path) {
        Ok(Some(path)) => kiln_archive::link_stays_inside(&path, target),
        _ => false,
    }
}

/// The entries of a tar archive, refusing anything that could leave the root: `..`,
/// absolute paths, symlinks pointing outside, paths below a symlink, hard links to anything
/// but an earlier file, devices and fifos. `member` names the archive in errors. For an
/// archive already in memory and bounded by its caller (function code).
pub fn safe_entries(member: &str, tar: &[u8]) -> Result<Vec<Entry>, UnpackError> {
    let memory = MemoryBudget::unlimited();
    let mut reservation = memory.reservation();
    let mut reader = TarReader::new(&format!("{member}.tar"), tar, u64::MAX)?;
    reader.member = member.to_string();
    entries_of(&mut reader, &mut reservation)
}

fn entries_of(reader: &mut TarReader<'_>, reservation: &mut Reservation) -> Result<Vec<Entry>, UnpackError> {
    let member = reader.member.clone();
    let member = member.as_str();
    let mut entries = Vec::new();
    let mut kinds: HashMap<String, bool> = HashMap::new(); // path → is a regular file
    let mut symlinks: HashSet<String> = HashSet::new();
    reader.for_each(|entry, meter| {
        let raw = entry.path().map_err(|e| corrupt(member, e))?.to_string_lossy().into_owned();
        let Some(path) = normalise(&raw)? else { return Ok(()) };
        // Every ancestor, not every symlink: a hostile archive of many links stays linear.
        let mut ancestor = path.as_str();
        while let Some((up, _)) = ancestor.rsplit_once('/') {
            if symlinks.contains(up) {
                return Err(UnpackError::Unsafe { path: raw, why: format!("lies below the symlink {up}") });
            }
            ancestor = up;
        }
        reservation.grow(ENTRY_OVERHEAD + path.len() as u64).map_err(|over| UnpackError::OverBudget {
            member: member.to_string(),
            path: Some(path.clone()),
            over,
        })?;
        let header = entry.header();
        let mode = header.mode().map_err(|e| corrupt(member, e))? & 0o7777;
        let uid = header.uid().map_err(|e| corrupt(member, e))? as u32;
        let gid = header.gid().map_err(|e| corrupt(member, e))? as u32;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let data = read_contents(member, &path, entry, meter, reservation)?;
                EntryKind::File { data: Bytes::from(data) }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(member, e))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if target.is_empty() || !link_stays_inside(&path, &target) {
                    return Err(UnpackError::Unsafe {
                        path: raw,
                        why: format!("is a symlink to {target:?}, outside the image root"),
                    });
                }
                symlinks.insert(path.clone());
                EntryKind::Symlink { target }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| corrupt(member, e))?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let raw_target = target;
                let target = normalise(&raw_target).ok().flatten().unwrap_or_default();
                if kinds.get(&target) != Some(&true) {
                    return Err(UnpackError::Unsafe {
                        path: raw,
                        why: format!("is a hard link to {raw_target:?}, which is not an earlier file of the package"),
                    });
                }
                EntryKind::Hardlink { target }
            }
            other => {
                return Err(UnpackError::Unsafe {
                    path: raw,
                    why: format!("is a {other:?} entry (devices, fifos and the like are not allowed)"),
                });
            }
        };
        kinds.insert(path.clone(), matches!(kind, EntryKind::File { .. }));
        entries.push(Entry { path, kind, mode, uid, gid });
        Ok(())
    })?;
    Ok(entries)
}

fn read_control(
    reader: &mut TarReader<'_>,
    package: &mut DebPackage,
    reservation: &mut Reservation,
) -> Result<(), UnpackError> {
    let member = reader.member.clone();
    let member = member.as_str();
    reader.for_each(|entry, meter| {
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Ok(());
        }
        let path = entry.path().map_err(|e| corrupt(member, e))?.to_string_lossy().into_owned();
        let Some(name) = normalise(&path)? else { return Ok(()) };
        let content = read_contents(member, &name, entry, meter, reservation)?;
        match name.as_str() {
            "control" => package.control = String::from_utf8_lossy(&content).into_owned(),
            "md5sums" => package.md5sums = Some(String::from_utf8_lossy(&content).into_owned()),
            "conffiles" => {
                package.conffiles = String::from_utf8_lossy(&content)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            }
            other => {
                package.maintainer_scripts.insert(other.to_string(), content);
            }
        }
        Ok(())
    })
}

/// Reads a `.deb` from `deb` front to back, never holding a member whole: what its files
/// hold is reserved from `memory`, the build's budget, and stays reserved while the build
/// lives; a package refused half-way gives its share back.
pub fn read_deb(deb: impl Read, memory: &MemoryBudget) -> Result<DebPackage, UnpackError> {
    let mut archive = ar::Archive::new(deb);
    let mut reservation = memory.reservation();
    let mut version = None;
    let (mut control_seen, mut data_seen) = (false, false);
    let mut package = DebPackage {
        control: String::new(),
        md5sums: None,
        conffiles: Vec::new(),
        maintainer_scripts: BTreeMap::new(),
        entries: Vec::new(),
        built: None,
    };
    while let Some(member) = archive.next_entry() {
        let mut member = member.map_err(|e| UnpackError::NotADeb(e.to_string()))?;
        let name = String::from_utf8_lossy(member.header().identifier()).trim_end_matches('/').to_string();
        let twice = || UnpackError::NotADeb(format!("{name} comes after another member of its kind"));
        match name.as_str() {
            "debian-binary" => {
                let mut content = Vec::new();
                (&mut member).take(64).read_to_end(&mut content).map_err(|e| corrupt(&name, e))?;
                version = Some(String::from_utf8_lossy(&content).trim().to_string());
            }
            n if n.starts_with("control.tar") => {
                if std::mem::replace(&mut control_seen, true) {
                    return Err(twice());
                }
                let mut reader = TarReader::new(n, &mut member, MAX_CONTROL)?;
                read_control(&mut reader, &mut package, &mut reservation)?;
            }
            n if n.starts_with("data.tar") => {
                if std::mem::replace(&mut data_seen, true) {
                    return Err(twice());
                }
                package.built = i64::try_from(member.header().mtime()).ok().filter(|t| *t > 0);
                let mut reader = TarReader::new(n, &mut member, u64::MAX)?;
                package.entries = entries_of(&mut reader, &mut reservation)?;
            }
            _ => {}
        }
    }
    match version.as_deref() {
        Some(v) if v.starts_with("2.") => {}
        Some(v) => return Err(UnpackError::NotADeb(format!("format {v:?} is not 2.x"))),
        None => return Err(UnpackError::NotADeb("no debian-binary member".into())),
    }
    if !control_seen {
        return Err(UnpackError::NotADeb("no control.tar member".into()));
    }
    if !data_seen {
        return Err(UnpackError::NotADeb("no data.tar member".into()));
    }
    if package.control.is_empty() {
        return Err(UnpackError::NotADeb("control.tar has no control file".into()));
    }
    reservation.keep();
    Ok(package)
}

#[cfg(test)]
mod tests;
