//! The dpkg database records an unpacked package would have left, so `dpkg -l`, syft and
//! trivy see what is installed: per-package files in `/var/lib/dpkg/info` (in the package's
//! own layer) and the single `/var/lib/dpkg/status` (in the image's metadata layer).

mod status;

use kiln_archive::tree::{Entry, EntryKind};
use md5::{Digest as _, Md5};

pub use status::{InstalledPackage, installed_packages, merge_status, status_stanza};

use crate::package::UnpackedPackage;

/// Where dpkg keeps its per-package files.
pub const INFO_DIR: &str = "var/lib/dpkg/info";
/// The status database, one stanza per package.
pub const STATUS_PATH: &str = "var/lib/dpkg/status";

/// Control members dpkg keeps executable in the info directory.
const SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

/// The `/var/lib/dpkg/info/<name>.*` files of one package: `.list`, `.md5sums`, `.conffiles`
/// and its control members (scripts kept so a later `apt-get remove` on top of the image runs
/// them, as it would after a real install). They depend on the package alone.
pub fn info_entries(package: &UnpackedPackage) -> Vec<Entry> {
    let base = format!("{INFO_DIR}/{}", package.dpkg_name());
    let mut out = vec![info_file(format!("{base}.list"), list_file(package).into_bytes(), 0o644)];
    if let Some(md5sums) = package.md5sums.as_ref().filter(|m| !m.is_empty()) {
        out.push(info_file(format!("{base}.md5sums"), md5sums.clone().into_bytes(), 0o644));
    }
    if !package.conffiles.is_empty() {
        let text: String = package.conffiles.iter().map(|c| format!("{c}\n")).collect();
        out.push(info_file(format!("{base}.conffiles"), text.into_bytes(), 0o644));
    }
    for (member, data) in &package.maintainer_scripts {
        let mode = if SCRIPTS.contains(&member.as_str()) { 0o755 } else { 0o644 };
        out.push(info_file(format!("{base}.{member}"), data.clone(), mode));
    }
    out
}

/// `/.` then every path of the data archive with a leading `/`, in archive order, once each:
/// the shape dpkg writes (the paths as the package ships them, before any merged-`/usr` move).
pub fn list_file(package: &UnpackedPackage) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::from("/.\n");
    for entry in &package.entries {
        if seen.insert(entry.path.as_str()) {
            out.push('/');
            out.push_str(&entry.path);
            out.push('\n');
        }
    }
    out
}

/// `(path, md5)` of each conffile, from the entries themselves: debs' md5sums leave conffiles
/// out, but the status `Conffiles:` field needs their hashes for later upgrades.
pub fn conffile_hashes(package: &UnpackedPackage) -> Vec<(String, String)> {
    package
        .conffiles
        .iter()
        .filter_map(|conffile| {
            let path = conffile.trim_start_matches('/');
            package.entries.iter().rev().find(|e| e.path == path).and_then(|e| match &e.kind {
                EntryKind::File { data } => Some((conffile.clone(), hex::encode(Md5::digest(data)))),
                _ => None,
            })
        })
        .collect()
}

fn info_file(path: String, data: Vec<u8>, mode: u32) -> Entry {
    Entry { path, kind: EntryKind::File { data: data.into() }, mode, uid: 0, gid: 0 }
}

#[cfg(test)]
pub(crate) mod tests;
