//! Installing a wheel as an installer would (the binary distribution format spec): every
//! file checked against RECORD, `.data` directories spread to their schemes, console scripts
//! written, INSTALLER and a new RECORD added — as image entries, never touching a disk. What
//! a wheel unpacks to is reserved from the build's memory budget before it is held, so zip
//! bombs, one or many at once, are refused by name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Seek};

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::Target;
use crate::memory::{MemoryBudget, OverBudget, ReadError, read_reserved};
use kiln_archive::tree::{Entry, EntryKind};

/// Bounds on what one wheel may unpack to, so a zip bomb ends in an error.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 1 << 30, max_entries: 100_000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("not a wheel (zip): {0}")]
    Zip(String),
    #[error("no .dist-info directory with METADATA and RECORD")]
    NoDistInfo,
    #[error("entry {0:?} leaves the install directory: the wheel is refused")]
    Escape(String),
    #[error("entry {0:?} is a symbolic link: wheels may not contain links")]
    Link(String),
    #[error("entry {path:?} hashes to {actual} but RECORD lists {expected}: the wheel was altered")]
    Hash { path: String, expected: String, actual: String },
    #[error("entry {0:?} is not listed in RECORD: the wheel was altered")]
    Unlisted(String),
    #[error("unpacks to more than {limit} bytes: refused as a possible zip bomb (raise the limit if it is genuine)")]
    TooBig { limit: u64 },
    #[error("holds more than {limit} entries: refused")]
    TooMany { limit: usize },
    #[error("reading {path:?}: {why}")]
    Read { path: String, why: String },
    #[error("entry {path:?} inflates past {over}: refused as a possible zip bomb")]
    OverBudget { path: String, over: OverBudget },
}

impl WheelError {
    /// True when the build's memory budget refused the wheel: raising it lets a genuine one in.
    pub fn is_over_budget(&self) -> bool {
        matches!(self, WheelError::OverBudget { .. })
    }
}

/// The `METADATA` text of a wheel.
pub fn read_metadata(wheel: &[u8]) -> Result<String, WheelError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(wheel)).map_err(|e| WheelError::Zip(e.to_string()))?;
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let path = names
        .iter()
        .find(|n| n.matches('/').count() == 1 && n.ends_with(".dist-info/METADATA"))
        .ok_or(WheelError::NoDistInfo)?;
    let mut file = archive.by_name(path).map_err(|e| WheelError::Zip(e.to_string()))?;
    let mut text = String::new();
    file.by_ref()
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| WheelError::Read { path: path.clone(), why: e.to_string() })?;
    Ok(text)
}

fn record_hash(data: &[u8]) -> String {
    format!("sha256={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data)))
}

/// `path,hash,size` lines; paths containing commas are quoted.
fn parse_record(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (path, rest) = if let Some(quoted) = line.strip_prefix('"') {
            match quoted.split_once("\",") {
                Some((path, rest)) => (path.replace("\"\"", "\""), rest),
                None => continue,
            }
        } else {
            match line.split_once(',') {
                Some((path, rest)) => (path.to_string(), rest),
                None => (line.to_string(), ""),
            }
        };
        let hash = rest.split(',').next().unwrap_or_default().to_string();
        out.insert(path, hash);
    }
    out
}

/// A normalised relative path, or `None` if it could climb out.
fn safe_path(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// One installed distribution's entries, ready for a layer.
#[derive(Debug, Clone)]
pub struct InstalledWheel {
    pub entries: Vec<Entry>,
    /// Console scripts written to `usr/local/bin`.
    pub scripts: Vec<String>,
}

/// Installs `wheel` (read from a file, or bytes in a `Cursor`) for `target`; paths are
/// relative to the image root. What it holds is reserved from `memory` and stays reserved
/// while the budget (the build) lives; a wheel refused half-way gives its share back.
pub fn install_wheel<R: Read + Seek>(
    wheel: R,
    target: &Target,
    limits: &Limits,
    memory: &MemoryBudget,
) -> Result<InstalledWheel, WheelError> {
    let mut reservation = memory.reservation();
    let mut archive = zip::ZipArchive::new(wheel).map_err(|e| WheelError::Zip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(WheelError::TooMany { limit: limits.max_entries });
    }
    let names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let dist_info = names
        .iter()
        .filter_map(|n| n.split_once(".dist-info/").map(|(dir, _)| format!("{dir}.dist-info")))
        .find(|dir| !dir.contains('/'))
        .ok_or(WheelError::NoDistInfo)?;
    let data_dir = format!("{}.data", dist_info.trim_end_matches(".dist-info"));
    let mut files: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(|e| WheelError::Zip(e.to_string()))?;
        let name = file.name().map_err(|e| WheelError::Zip(e.to_string()))?.into_owned();
        if file.is_dir() {
            safe_path(&name).ok_or_else(|| WheelError::Escape(name.clone()))?;
            continue;
        }
        if file.is_symlink() {
            return Err(WheelError::Link(name));
        }
        let path = safe_path(&name).ok_or_else(|| WheelError::Escape(name.clone()))?;
        let executable = file.unix_mode().is_some_and(|m| m & 0o111 != 0);
        // Read at most one byte past the limit: declared sizes in a zip can lie, so the
        // declared size is only trusted to refuse early, never to stop reading.
        let room = limits.max_bytes.saturating_sub(total);
        let declared = file.size().min(room.saturating_add(1));
        let data = read_reserved(&mut file.by_ref().take(room.saturating_add(1)), declared, &mut reservation).map_err(
            |e| match e {
                ReadError::OverBudget(over) => WheelError::OverBudget { path: name.clone(), over },
                ReadError::Io(e) => WheelError::Read { path: name.clone(), why: e.to_string() },
            },
        )?;
        total += data.len() as u64;
        if total > limits.max_bytes {
            return Err(WheelError::TooBig { limit: limits.max_bytes });
        }
        files.insert(path, (data, executable));
    }
    let record_path = format!("{dist_info}/RECORD");
    let record_text =
        files.get(&record_path).map(|(d, _)| String::from_utf8_lossy(d).into_owned()).ok_or(WheelError::NoDistInfo)?;
    let record = parse_record(&record_text);
    for (path, (data, _)) in &files {
        if path == &record_path || path.ends_with(".dist-info/RECORD.jws") || path.ends_with(".dist-info/RECORD.p7s") {
            continue;
        }
        let expected = record.get(path).ok_or_else(|| WheelError::Unlisted(path.clone()))?;
        let actual = record_hash(data);
        if expected != &actual {
            return Err(WheelError::Hash { path: path.clone(), expected: expected.clone(), actual });
        }
    }

    let site = target.site_packages();
    let python = format!("python{}.{}", target.python.0, target.python.1);
    let distribution = dist_info.split('-').next().unwrap_or_default().to_string();
    let mut out: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
    for (path, (data, executable)) in files {
        if path == record_path {
            continue;
        }
        let mode = if executable { 0o755 } else { 0o644 };
        let destination = match path.strip_prefix(&format!("{data_dir}/")) {
            Some(rest) => {
                let (scheme, inner) = rest.split_once('/').unwrap_or((rest, ""));
                match scheme {
                    "purelib" | "platlib" => format!("{site}/{inner}"),
                    "scripts" => {
                        out.insert(format!("usr/local/bin/{inner}"), (rewrite_shebang(data), 0o755));
                        continue;
                    }
                    "headers" => format!("usr/local/include/{python}/{distribution}/{inner}"),
                    "data" => format!("usr/local/{inner}"),
                    other => return Err(WheelError::Escape(format!("{data_dir}/{other}"))),
                }
            }
            None => format!("{site}/{path}"),
        };
        safe_path(&destination).ok_or_else(|| WheelError::Escape(path.clone()))?;
        out.insert(destination, (data, mode));
    }
    let mut scripts = Vec::new();
    if let Some((text, _)) = out.get(&format!("{site}/{dist_info}/entry_points.txt")) {
        for (name, module, function) in console_scripts(&String::from_utf8_lossy(text)) {
            let path = format!("usr/local/bin/{name}");
            safe_path(&path).filter(|p| p.matches('/').count() == 3).ok_or_else(|| WheelError::Escape(path.clone()))?;
            out.insert(path, (script(&module, &function).into_bytes(), 0o755));
            scripts.push(name);
        }
    }
    out.insert(format!("{site}/{dist_info}/INSTALLER"), (b"kiln\n".to_vec(), 0o644));
    // The new RECORD lists what is installed, relative to site-packages as installers do.
    let mut record = String::new();
    let site_depth = site.split('/').count();
    for (path, (data, _)) in &out {
        let relative = match path.strip_prefix(&format!("{site}/")) {
            Some(inner) => inner.to_string(),
            None => format!("{}{path}", "../".repeat(site_depth)),
        };
        record.push_str(&format!("{},{},{}\n", csv_field(&relative), record_hash(data), data.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    out.insert(format!("{site}/{dist_info}/RECORD"), (record.into_bytes(), 0o644));

    let mut directories = BTreeSet::new();
    for path in out.keys() {
        let mut parent = path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            directories.insert(up.to_string());
            parent = up;
        }
    }
    let mut entries: Vec<Entry> = directories
        .into_iter()
        .map(|path| Entry { path, kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 })
        .collect();
    entries.extend(out.into_iter().map(|(path, (data, mode))| Entry {
        path,
        kind: EntryKind::File { data: Bytes::from(data) },
        mode,
        uid: 0,
        gid: 0,
    }));
    reservation.keep();
    Ok(InstalledWheel { entries, scripts })
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// `#!python` (and `#!pythonw`) scripts point at the image's interpreter.
fn rewrite_shebang(data: Vec<u8>) -> Vec<u8> {
    for prefix in [&b"#!pythonw"[..], &b"#!python"[..]] {
        if let Some(rest) = data.strip_prefix(prefix) {
            let mut out = b"#!/usr/bin/python3".to_vec();
            out.extend_from_slice(rest);
            return out;
        }
    }
    data
}

/// `[console_scripts]` and `[gui_scripts]` entries: (name, module, attribute path).
fn console_scripts(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).trim().to_string();
            continue;
        }
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        let value = value.split('[').next().unwrap_or_default().trim();
        let Some((module, function)) = value.split_once(':') else { continue };
        out.push((name.trim().to_string(), module.trim().to_string(), function.trim().to_string()));
    }
    out
}

fn script(module: &str, function: &str) -> String {
    let head = function.split('.').next().unwrap_or(function);
    format!(
        "#!/usr/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {head}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({function}())\n"
    )
}
