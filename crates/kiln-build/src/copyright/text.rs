//! A licence concluded from a copyright file written as free text: the licence grants it
//! quotes (the GNU "version 2 … or any later version" wording, the MIT, ISC and BSD
//! permission notices, the PSF agreement), the `/usr/share/common-licenses/…` files it
//! points to and the `License:` lines some carry. Every licence found is ANDed: a guess
//! that errs towards naming too many, never passed off as declared.

use kiln_model::inventory::LicenseText;

use super::names::{gnu, gnu_id};

/// The SPDX expression the text's licences add up to, and the texts of the `LicenseRef-`s
/// in it; `None` when the text names no licence Kiln knows.
pub(crate) fn conclude(text: &str) -> Option<(String, Vec<LicenseText>)> {
    let flat = flatten(text);
    let mut found: Vec<String> = Vec::new();
    let mut texts = Vec::new();
    gnu_licences(&flat, &mut found);
    for (phrase, id) in PHRASES {
        if flat.contains(phrase) {
            found.push(id.to_string());
        }
    }
    bsd(&flat, &mut found);
    if flat.contains("python software foundation license version 2") {
        let stack = flat.contains("beopen.com license agreement") && flat.contains("cnri license agreement");
        found.push(if stack { "Python-2.0" } else { "PSF-2.0" }.to_string());
    }
    if flat.contains("apache license") && (flat.contains("version 2.0") || flat.contains("apache license 2.0")) {
        found.push("Apache-2.0".to_string());
    }
    if let Some(at) = flat.find("mozilla public license") {
        let window = &flat[at..flat.len().min(at + 120)];
        if window.contains("2.0") {
            found.push("MPL-2.0".to_string());
        } else if window.contains("1.1") {
            found.push("MPL-1.1".to_string());
        }
    }
    if flat.contains("gcc runtime library exception") {
        found.push("GPL-3.0-or-later WITH GCC-exception-3.1".to_string());
    }
    found.extend(license_lines(text));
    let public_domain = public_domain(text);
    if !public_domain.is_empty() {
        found.push(PUBLIC_DOMAIN.to_string());
        let text = super::cut(&public_domain.join("\n\n"), super::MAX_TEXT).to_string();
        texts.push(LicenseText { id: PUBLIC_DOMAIN.to_string(), name: "public-domain".to_string(), text });
    }
    let expression = super::join_and(found)?;
    Some((expression, texts))
}

const PUBLIC_DOMAIN: &str = "LicenseRef-public-domain";

/// Wording that names one licence wherever it stands (text lower-cased, spaces collapsed).
const PHRASES: [(&str, &str); 11] = [
    ("permission is hereby granted, free of charge, to any person obtaining a copy", "MIT"),
    ("distribute this software for any purpose with or without fee is hereby granted", "ISC"),
    ("distribute this software and its documentation for any purpose", "HPND"),
    ("the zlib license", "Zlib"),
    ("altered source versions must be plainly marked as such", "Zlib"),
    ("fsf all permissive license", "FSFAP"),
    ("copying and distribution of this file, with or without modification, are permitted in any medium", "FSFAP"),
    ("gives unlimited permission to copy and/or distribute it, with or without modifications", "FSFULLR"),
    ("artistic license 2.0", "Artistic-2.0"),
    ("the openssl license", "OpenSSL"),
    ("creative commons cc0", "CC0-1.0"),
];

/// Lower case, comment markers at line starts gone, all whitespace one space.
fn flatten(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['*', '#', '/', ';', '%']).trim();
        for word in line.split_whitespace() {
            out.push_str(&word.to_lowercase());
            out.push(' ');
        }
    }
    out
}

/// Names of the GNU family in prose, longest first so `lesser` is not read as plain GPL.
const GNU_NAMES: [(&str, &str); 8] = [
    ("gnu affero general public license", "agpl"),
    ("gnu lesser general public license", "lgpl"),
    ("gnu library general public license", "lgpl"),
    ("lesser general public license", "lgpl"),
    ("library general public license", "lgpl"),
    ("gnu free documentation license", "gfdl"),
    ("gnu general public license", "gpl"),
    ("gnu gpl", "gpl"),
];

/// GNU licences: each mention with the version and "or later" wording that follow it (up
/// to the next mention), short forms (`GPLv2+`, `LGPL-2.1`), and `common-licenses` files.
/// A family granted with a version drops its unversioned mentions and bare file pointers.
fn gnu_licences(flat: &str, found: &mut Vec<String>) {
    let mut mentions: Vec<(usize, usize, &str)> = Vec::new();
    for (name, family) in GNU_NAMES {
        for (at, _) in flat.match_indices(name) {
            if !mentions.iter().any(|(start, end, _)| at >= *start && at < *end) {
                mentions.push((at, at + name.len(), family));
            }
        }
    }
    mentions.sort();
    // (family, Some(spdx id) when the version is known)
    let mut grants: Vec<(&str, Option<String>)> = Vec::new();
    for (index, (_, end, family)) in mentions.iter().enumerate() {
        let next = mentions.get(index + 1).map_or(flat.len(), |(start, _, _)| *start);
        let window = &flat[*end..floor_boundary(flat, next.min(end + 240)).max(*end)];
        grants.push((family, version_in(window).and_then(|v| gnu_id(family, &v, or_later(window)))));
    }
    for word in flat.split(|c: char| c.is_whitespace() || "(),;:\"'`[]<>".contains(c)) {
        let word = word.trim_end_matches('.');
        let short = word
            .strip_prefix("gplv")
            .map(|v| format!("gpl-{v}"))
            .or_else(|| word.strip_prefix("lgplv").map(|v| format!("lgpl-{v}")));
        let candidate = short.as_deref().unwrap_or(word);
        let family = ["lgpl-", "agpl-", "gpl-"].iter().find(|f| candidate.starts_with(*f));
        if let Some(family) = family
            && candidate[family.len()..].starts_with(|c: char| c.is_ascii_digit())
            && let Some(id) = gnu(candidate)
        {
            grants.push((family.trim_end_matches('-'), Some(id)));
        }
    }
    let mut pointers: Vec<(&str, Option<String>)> = Vec::new();
    for (at, marker) in flat.match_indices("/usr/share/common-licenses/") {
        let rest = &flat[at + marker.len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".+-".contains(*c)).collect();
        let name = name.trim_end_matches('.');
        match name {
            "apache-2.0" => found.push("Apache-2.0".to_string()),
            "artistic" => found.push("Artistic-1.0-Perl".to_string()),
            "bsd" => found.push("BSD-3-Clause".to_string()),
            "mpl-1.1" => found.push("MPL-1.1".to_string()),
            "mpl-2.0" => found.push("MPL-2.0".to_string()),
            "cc0-1.0" => found.push("CC0-1.0".to_string()),
            _ => {
                let family = ["gfdl", "lgpl", "agpl", "gpl"].into_iter().find(|f| name.starts_with(f));
                if let Some(family) = family {
                    let versioned = name.len() > family.len();
                    pointers.push((family, if versioned { gnu(name) } else { None }));
                }
            }
        }
    }
    for family in ["gpl", "lgpl", "agpl", "gfdl"] {
        let versioned: Vec<String> =
            grants.iter().filter(|(f, id)| *f == family && id.is_some()).filter_map(|(_, id)| id.clone()).collect();
        if !versioned.is_empty() {
            found.extend(versioned);
            continue;
        }
        let pointed: Vec<String> =
            pointers.iter().filter(|(f, _)| *f == family).filter_map(|(_, id)| id.clone()).collect();
        if !pointed.is_empty() {
            found.extend(pointed);
            continue;
        }
        let named = grants.iter().any(|(f, _)| *f == family) || pointers.iter().any(|(f, _)| *f == family);
        if named && let Some(id) = gnu(family) {
            found.push(id);
        }
    }
}

/// `version 2`, `version 2.1`, `v. 3`, `2.1 of the license` in a mention's window.
fn version_in(window: &str) -> Option<String> {
    let words: Vec<&str> = window.split([' ', ',', ';', '(', ')']).filter(|w| !w.is_empty()).collect();
    for (index, word) in words.iter().enumerate() {
        if matches!(*word, "version" | "v." | "v" | "versions")
            && let Some(next) = words.get(index + 1)
        {
            let number = next.trim_end_matches(['.', ':']);
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Some(number.to_string());
            }
        }
    }
    None
}

fn or_later(window: &str) -> bool {
    ["any later version", "or later", "or any later", "or newer", "or, at your option, any later"]
        .iter()
        .any(|phrase| window.contains(phrase))
}

/// BSD notices by their clauses: an advertising clause makes four, an endorsement clause
/// three, neither two.
fn bsd(flat: &str, found: &mut Vec<String>) {
    const GRANT: &str =
        "redistribution and use in source and binary forms, with or without modification, are permitted";
    let starts: Vec<usize> = flat.match_indices(GRANT).map(|(at, _)| at).collect();
    for (index, at) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(flat.len()).min(at + 2000);
        let notice = &flat[*at..floor_boundary(flat, end)];
        let id = if notice.contains("advertising materials") {
            "BSD-4-Clause"
        } else if notice.contains("endorse or promote") {
            "BSD-3-Clause"
        } else {
            "BSD-2-Clause"
        };
        found.push(id.to_string());
    }
}

/// `License:` lines whose every licence SPDX knows (`License: Apache-2.0`).
fn license_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(value) = line.strip_prefix("License:").map(str::trim) else { continue };
        let mut refs = Vec::new();
        if let Some(expression) = super::dep5_expression(value, &mut refs)
            && refs.is_empty()
        {
            out.push(expression);
        }
    }
    out
}

/// The paragraphs (blank-line separated) that put something in the public domain.
fn public_domain(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|p| {
            let flat = flatten(p);
            flat.contains("public domain")
                && ["placed in", "released into", "released to", "is in the", "are in the", "dedicated to", "into the"]
                    .iter()
                    .any(|w| flat.contains(&format!("{w} public domain")))
        })
        .map(|p| p.trim().to_string())
        .collect()
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
