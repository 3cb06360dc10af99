//! `/var/lib/dpkg/status`: control stanzas with a `Status:` line, in dpkg's own field order,
//! merged with what the parent image already had.

use std::collections::BTreeMap;

use super::conffile_hashes;
use crate::package::UnpackedPackage;

/// dpkg's order of known fields when it writes the status file (`fieldinfos` in dpkg's
/// `lib/dpkg/parse.c`); other fields (`Homepage`, `Built-Using`, …) follow in their own order.
const FIELD_ORDER: [&str; 32] = [
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// One field with its continuation lines, exactly as written (no trailing newline).
struct Field<'a> {
    name: &'a str,
    text: String,
}

fn fields(stanza: &str) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    for line in stanza.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.text.push('\n');
                last.text.push_str(line);
            }
        } else if let Some((name, _)) = line.split_once(':') {
            out.push(Field { name: name.trim(), text: line.to_string() });
        }
    }
    out
}

fn field_value<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        (!line.starts_with([' ', '\t']) && field.eq_ignore_ascii_case(name)).then(|| value.trim())
    })
}

/// The package's control stanza as dpkg would record it once installed: `Status: install ok
/// installed`, a `Conffiles:` field with each conffile's md5, fields in dpkg's order. Ends
/// with a newline and no blank line.
pub fn status_stanza(package: &UnpackedPackage) -> String {
    let mut fields: Vec<Field<'_>> = fields(&package.control)
        .into_iter()
        .filter(|f| !f.name.eq_ignore_ascii_case("Status") && !f.name.eq_ignore_ascii_case("Conffiles"))
        .collect();
    fields.push(Field { name: "Status", text: "Status: install ok installed".into() });
    let conffiles = conffile_hashes(package);
    if !conffiles.is_empty() {
        let lines: String = conffiles.iter().map(|(path, md5)| format!("\n {path} {md5}")).collect();
        fields.push(Field { name: "Conffiles", text: format!("Conffiles:{lines}") });
    }
    let rank = |name: &str| FIELD_ORDER.iter().position(|known| known.eq_ignore_ascii_case(name)).unwrap_or(usize::MAX);
    // A stable sort keeps unknown fields in the control file's order, after the known ones.
    fields.sort_by_key(|f| rank(f.name));
    let mut out = String::new();
    for field in fields {
        out.push_str(&field.text);
        out.push('\n');
    }
    out
}

/// The parent's status text with `new` stanzas (from [`status_stanza`]) added: a new stanza
/// replaces the parent's of the same package (and, for `Multi-Arch: same`, the same
/// architecture). Stanzas come out sorted by package name, then architecture, each followed
/// by a blank line, as dpkg writes them; the parent's stanzas keep their exact text.
pub fn merge_status(parent: &str, new: &[String]) -> String {
    let mut stanzas: BTreeMap<(String, String), String> = BTreeMap::new();
    for stanza in split_stanzas(parent).chain(new.iter().map(String::as_str)) {
        let Some(name) = field_value(stanza, "Package") else { continue };
        let arch = field_value(stanza, "Architecture").unwrap_or_default().to_string();
        let same = field_value(stanza, "Multi-Arch") == Some("same");
        if !same {
            stanzas.retain(|(n, _), _| n != name);
        }
        stanzas.insert((name.to_string(), arch), format!("{}\n", stanza.trim_end_matches('\n')));
    }
    let mut out = String::new();
    for stanza in stanzas.values() {
        out.push_str(stanza);
        out.push('\n');
    }
    out
}

fn split_stanzas(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches(['\n', '\r']);
            if rest.is_empty() {
                return None;
            }
            let end = rest.find("\n\n").map_or(rest.len(), |i| i + 1);
            let (stanza, tail) = rest.split_at(end);
            rest = tail;
            if !stanza.trim().is_empty() {
                return Some(stanza);
            }
        }
    })
}

/// A package the status file says is installed, for the inventory of a parent image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    pub multi_arch: Option<String>,
}

/// Every stanza of `status` whose `Status:` ends in `installed`, in file order.
pub fn installed_packages(status: &str) -> Vec<InstalledPackage> {
    split_stanzas(status)
        .filter(|s| field_value(s, "Status").is_some_and(|v| v.ends_with(" installed")))
        .filter_map(|s| {
            let name = field_value(s, "Package")?.to_string();
            let version = field_value(s, "Version")?.to_string();
            // `Source: glibc (2.36-9)` names the source version only when it differs.
            let (source_name, source_version) = match field_value(s, "Source") {
                Some(source) => match source.split_once(" (") {
                    Some((n, v)) => (Some(n.to_string()), Some(v.trim_end_matches(')').to_string())),
                    None => (Some(source.to_string()), None),
                },
                None => (None, None),
            };
            Some(InstalledPackage {
                name,
                version,
                architecture: field_value(s, "Architecture").unwrap_or_default().to_string(),
                source_name,
                source_version,
                multi_arch: field_value(s, "Multi-Arch").map(str::to_string),
            })
        })
        .collect()
}
