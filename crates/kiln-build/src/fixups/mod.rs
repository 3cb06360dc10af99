//! What maintainer scripts would have done, done without running them (Kiln has no `RUN`):
//! alternatives symlinks, the CA bundle and the accounts, plus a report of every script that
//! was skipped so the build log says exactly what an image lacks compared with `apt-get`.
//!
//! `ldconfig` is not needed: Debian's glibc searches the multiarch directories
//! (`/lib/<triplet>`, `/usr/lib/<triplet>`) and `/lib`, `/usr/lib` by default, so every
//! library packaged there is found without `/etc/ld.so.cache`, only by a few more `open`
//! calls. Only directories added through `/etc/ld.so.conf.d` would need the cache; those
//! files are listed in the report as skipped (set `LD_LIBRARY_PATH` if a package needs them).

pub mod accounts;
pub mod alternatives;

use std::collections::{BTreeMap, BTreeSet};

use kiln_archive::tree::{Entry, EntryKind};

use crate::package::UnpackedPackage;
pub use accounts::{Accounts, KILN_HOME, KILN_UID, KILN_USER, merge_accounts};

/// The CA bundle TLS libraries read on Debian.
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
const CA_SOURCE_DIR: &str = "usr/share/ca-certificates/";

/// Files for the metadata layer and lines for the build log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fixups {
    pub entries: Vec<Entry>,
    pub report: Vec<String>,
}

/// Everything the new packages' scripts would have done that an image needs, given the
/// parent's account files (absent for a root image).
pub fn fixups(packages: &[UnpackedPackage], parent_passwd: Option<&str>, parent_group: Option<&str>) -> Fixups {
    let mut out = Fixups::default();
    let shipped: BTreeMap<&str, &EntryKind> =
        packages.iter().flat_map(|p| p.entries.iter().map(|e| (e.path.as_str(), &e.kind))).collect();
    let done = alternatives_links(packages, &shipped, &mut out);
    ca_bundle(packages, &mut out);
    accounts(parent_passwd, parent_group, &mut out);
    report_scripts(packages, &done, &mut out.report);
    out
}

/// Applies the chosen alternatives; returns per package what was done, for the report.
fn alternatives_links(
    packages: &[UnpackedPackage],
    shipped: &BTreeMap<&str, &EntryKind>,
    out: &mut Fixups,
) -> BTreeMap<String, Vec<String>> {
    let mut found = Vec::new();
    let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in packages {
        if let Some(script) = package.maintainer_scripts.get("postinst") {
            let parsed = alternatives::parse_script(&package.name, &String::from_utf8_lossy(script));
            found.extend(parsed.found);
            out.report.extend(parsed.unusable.into_iter().map(|u| format!("alternatives skipped: {u}")));
        }
    }
    let exists = |path: &str| shipped.contains_key(path.trim_start_matches('/'));
    let is_real_file =
        |path: &str| shipped.get(path.trim_start_matches('/')).is_some_and(|k| !matches!(k, EntryKind::Symlink { .. }));
    for (name, alt) in alternatives::choose(&found) {
        if !exists(&alt.path) || is_real_file(&alt.link) {
            out.report.push(format!(
                "alternatives skipped: {name} -> {} from {} (target not shipped or {} is a real file)",
                alt.path, alt.package, alt.link
            ));
            continue;
        }
        let mut links = vec![(alt.link.as_str(), name.as_str(), alt.path.as_str())];
        links.extend(alt.slaves.iter().filter(|s| exists(&s.2)).map(|(l, n, p)| (l.as_str(), n.as_str(), p.as_str())));
        for (link, name, path) in links {
            out.entries.push(symlink(&format!("etc/alternatives/{name}"), path));
            out.entries.push(symlink(link.trim_start_matches('/'), &format!("/etc/alternatives/{name}")));
            done.entry(alt.package.clone()).or_default().push(format!("{link} -> /etc/alternatives/{name} -> {path}"));
        }
    }
    done
}

/// Whether a package file is one of the certificates the CA bundle is made from.
pub fn feeds_ca_bundle(path: &str) -> bool {
    path.starts_with(CA_SOURCE_DIR) && path.ends_with(".crt")
}

fn ca_bundle(packages: &[UnpackedPackage], out: &mut Fixups) {
    if !packages.iter().any(|p| p.name == "ca-certificates") {
        return;
    }
    let certs: BTreeMap<&str, &[u8]> = packages
        .iter()
        .flat_map(|p| &p.entries)
        .filter(|e| feeds_ca_bundle(&e.path))
        .filter_map(|e| match &e.kind {
            EntryKind::File { data } => Some((e.path.as_str(), data.as_ref())),
            _ => None,
        })
        .collect();
    let mut bundle = Vec::new();
    for data in certs.values() {
        bundle.extend_from_slice(data);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    out.entries.push(file(CA_BUNDLE, bundle, 0o644, 0));
    out.report.push(format!(
        "ca-certificates: wrote /{CA_BUNDLE} from {} certificates; per-certificate symlinks in /etc/ssl/certs not made",
        certs.len()
    ));
}

fn accounts(parent_passwd: Option<&str>, parent_group: Option<&str>, out: &mut Fixups) {
    let accounts = merge_accounts(parent_passwd, parent_group);
    out.entries.push(file("etc/passwd", accounts.passwd.into_bytes(), 0o644, 0));
    out.entries.push(file("etc/group", accounts.group.into_bytes(), 0o644, 0));
    out.entries.push(dir("root", 0o700, 0));
    out.entries.push(dir(KILN_HOME.trim_start_matches('/'), 0o755, KILN_UID));
    out.report.extend(accounts.log);
}

fn report_scripts(packages: &[UnpackedPackage], done: &BTreeMap<String, Vec<String>>, report: &mut Vec<String>) {
    let mut sorted: Vec<&UnpackedPackage> = packages.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.architecture.cmp(&b.architecture)));
    for package in sorted {
        for script in package.maintainer_scripts.keys() {
            let instead = match script.as_str() {
                "postinst" => match done.get(&package.name) {
                    Some(links) => format!("instead: alternatives {}", links.join(", ")),
                    None if package.name == "ca-certificates" => format!("instead: wrote /{CA_BUNDLE}"),
                    None => "nothing done instead".to_string(),
                },
                "prerm" | "postrm" => "not needed: nothing is removed at build time".to_string(),
                "preinst" | "config" => "nothing done instead".to_string(),
                _ => continue,
            };
            report.push(format!("not run: {} {script}; {instead}", package.name));
        }
        let ld_conf: BTreeSet<&str> = package
            .entries
            .iter()
            .filter(|e| e.path.starts_with("etc/ld.so.conf.d/") && matches!(e.kind, EntryKind::File { .. }))
            .map(|e| e.path.as_str())
            .collect();
        for path in ld_conf {
            report.push(format!(
                "ldconfig skipped: {} ships /{path}; libraries outside the multiarch directories need LD_LIBRARY_PATH",
                package.name
            ));
        }
    }
}

pub(crate) fn symlink(path: &str, target: &str) -> Entry {
    Entry { path: path.into(), kind: EntryKind::Symlink { target: target.into() }, mode: 0o777, uid: 0, gid: 0 }
}

pub(crate) fn file(path: &str, data: Vec<u8>, mode: u32, owner: u32) -> Entry {
    Entry { path: path.into(), kind: EntryKind::File { data: data.into() }, mode, uid: owner, gid: owner }
}

pub(crate) fn dir(path: &str, mode: u32, owner: u32) -> Entry {
    Entry { path: path.into(), kind: EntryKind::Directory, mode, uid: owner, gid: owner }
}

#[cfg(test)]
mod tests;
