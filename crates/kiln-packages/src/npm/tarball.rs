//! Checking a tarball against the registry's integrity before anything reads it, and opening
//! it the way npm does: one top directory stripped, links ignored, modes normalised. Every
//! path is proven to stay inside the package directory and the bytes and entry count are
//! bounded, so a hostile or broken tarball ends in an error instead of a bad image; what a
//! tarball holds is also reserved from the build's memory budget, shared with its other steps.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;
use sha2::Digest;

use crate::memory::{MemoryBudget, ReadError, read_reserved};

#[derive(Debug, PartialEq, Eq)]
pub enum IntegrityProblem {
    Missing,
    Invalid,
    Mismatch { expected: String, actual: String },
}

fn digest(algorithm: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm {
        "sha512" => sha2::Sha512::digest(bytes).to_vec(),
        "sha384" => sha2::Sha384::digest(bytes).to_vec(),
        "sha256" => sha2::Sha256::digest(bytes).to_vec(),
        "sha1" => sha1::Sha1::digest(bytes).to_vec(),
        _ => return None,
    })
}

/// Verifies `bytes` against an SRI string (its strongest known algorithm), or the legacy hex
/// `shasum` when there is no SRI. Returns the SRI that was checked.
pub fn verify(bytes: &[u8], integrity: Option<&str>, shasum: Option<&str>) -> Result<String, IntegrityProblem> {
    const STRENGTH: [&str; 4] = ["sha1", "sha256", "sha384", "sha512"];
    if let Some(sri) = integrity.filter(|s| !s.trim().is_empty()) {
        let mut hashes: Vec<(usize, &str, Vec<u8>)> = Vec::new();
        for token in sri.split_whitespace() {
            let token = token.split('?').next().unwrap_or(token);
            let Some((algorithm, b64)) = token.split_once('-') else { continue };
            let Some(rank) = STRENGTH.iter().position(|a| *a == algorithm) else { continue };
            let Ok(expected) = STANDARD.decode(b64) else { return Err(IntegrityProblem::Invalid) };
            hashes.push((rank, STRENGTH[rank], expected));
        }
        let Some(best) = hashes.iter().map(|(rank, _, _)| *rank).max() else {
            return Err(IntegrityProblem::Invalid);
        };
        let algorithm = STRENGTH[best];
        let actual = digest(algorithm, bytes).ok_or(IntegrityProblem::Invalid)?;
        if hashes.iter().any(|(rank, _, expected)| *rank == best && *expected == actual) {
            return Ok(format!("{algorithm}-{}", STANDARD.encode(&actual)));
        }
        return Err(IntegrityProblem::Mismatch {
            expected: sri.to_string(),
            actual: format!("{algorithm}-{}", STANDARD.encode(&actual)),
        });
    }
    let Some(shasum) = shasum.filter(|s| !s.trim().is_empty()) else { return Err(IntegrityProblem::Missing) };
    let expected = hex::decode(shasum.trim()).map_err(|_| IntegrityProblem::Invalid)?;
    let actual = sha1::Sha1::digest(bytes).to_vec();
    if expected == actual {
        Ok(format!("sha1-{}", STANDARD.encode(&actual)))
    } else {
        Err(IntegrityProblem::Mismatch {
            expected: format!("shasum {shasum}"),
            actual: format!("shasum {}", hex::encode(actual)),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Directory,
    File { data: Bytes, executable: bool },
}

#[derive(Debug, Default)]
pub struct Unpacked {
    /// Paths relative to the package directory, normalised.
    pub items: BTreeMap<String, Item>,
    /// The tarball's own package.json, which is what npm trusts over the packument.
    pub manifest: Option<Value>,
    /// Symlinks, hard links and top-level stray files npm also leaves out.
    pub skipped: Vec<String>,
    pub bytes: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UnpackProblem {
    Corrupt(String),
    Unsafe { path: String, why: String },
    TooBig(String),
}

/// Counts decompressed bytes so a gzip bomb stops at the budget rather than filling memory.
struct Limited<R> {
    inner: R,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.hit.set(true);
            return Err(std::io::Error::other("decompressed size limit reached"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `package/lib/x.js` → `lib/x.js`; `None` for the top directory itself or a stray top file.
fn strip(raw: &str) -> Result<Option<String>, UnpackProblem> {
    let unsafe_ = |why: &str| UnpackProblem::Unsafe { path: raw.to_string(), why: why.to_string() };
    if raw.starts_with('/') || raw.starts_with('\\') || raw.get(1..2) == Some(":") {
        return Err(unsafe_("is an absolute path"));
    }
    let mut parts = Vec::new();
    for part in raw.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_("climbs out with ..")),
            other => parts.push(other),
        }
    }
    if parts.len() < 2 {
        return Ok(None);
    }
    Ok(Some(parts[1..].join("/")))
}

/// Opens a `.tgz` (or plain tar); `budget` is the unpacked bytes still allowed and shrinks.
/// What it holds is reserved from `memory` for as long as the budget lives.
pub fn unpack(
    archive: &[u8],
    budget: &mut u64,
    max_entries: u64,
    memory: &MemoryBudget,
) -> Result<Unpacked, UnpackProblem> {
    let mut reservation = memory.reservation();
    let hit = Rc::new(Cell::new(false));
    // Tar headers and padding come on top of file data: about a kilobyte per entry at most.
    let cap = budget.saturating_add(max_entries.saturating_mul(1536)).saturating_add(1 << 20);
    let reader: Box<dyn Read> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(archive))
    } else {
        Box::new(archive)
    };
    let limited = Limited { inner: reader, left: cap, hit: hit.clone() };
    let mut tar = tar::Archive::new(limited);
    let mut out = Unpacked::default();
    let too_big = |why: String| UnpackProblem::TooBig(why);
    let corrupt = |e: std::io::Error, hit: &Rc<Cell<bool>>| {
        if hit.get() {
            UnpackProblem::TooBig(format!("decompresses to more than {cap} bytes"))
        } else {
            UnpackProblem::Corrupt(e.to_string())
        }
    };
    let mut count = 0u64;
    for entry in tar.entries().map_err(|e| corrupt(e, &hit))? {
        let mut entry = entry.map_err(|e| corrupt(e, &hit))?;
        count += 1;
        if count > max_entries {
            return Err(too_big(format!("has more than {max_entries} entries")));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                // Checked for escapes all the same: npm drops links, a hostile one is still news.
                strip(&raw)?;
                out.skipped.push(format!("{raw} (link)"));
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Directory => {}
            other => {
                return Err(UnpackProblem::Unsafe {
                    path: raw,
                    why: format!("is a {other:?} entry (devices, fifos and the like are not allowed)"),
                });
            }
        }
        let Some(path) = strip(&raw)? else {
            if kind != tar::EntryType::Directory {
                out.skipped.push(format!("{raw} (outside the package directory)"));
            }
            continue;
        };
        if kind == tar::EntryType::Directory {
            out.items.insert(path, Item::Directory);
            continue;
        }
        let size = entry.header().size().map_err(|e| corrupt(e, &hit))?;
        if size > *budget {
            return Err(too_big(format!("unpacks to more than the size limit ({path} alone is {size} bytes)")));
        }
        let data = read_reserved(&mut (&mut entry).take(size), size, &mut reservation).map_err(|e| match e {
            ReadError::OverBudget(over) => too_big(format!("has {path}, which inflates past {over}")),
            ReadError::Io(e) => corrupt(e, &hit),
        })?;
        *budget -= data.len() as u64;
        out.bytes += data.len() as u64;
        let executable = entry.header().mode().map_err(|e| corrupt(e, &hit))? & 0o111 != 0;
        if path == "package.json" {
            out.manifest = serde_json::from_slice(&data).ok();
        }
        out.items.insert(path, Item::File { data: Bytes::from(data), executable });
    }
    for path in out.items.keys() {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if let Some(Item::File { .. }) = out.items.get(parent) {
                return Err(UnpackProblem::Unsafe { path: path.clone(), why: format!("lies below the file {parent}") });
            }
            at = parent;
        }
    }
    reservation.keep();
    Ok(out)
}
