//! Licences from Debian's copyright files, in SPDX terms, so the inventory and SBOM can say
//! under which licences an image's packages are. A machine-readable file (DEP-5) is what
//! the packager declared; most of Debian's essential packages still write theirs as free
//! text, and from that Kiln concludes a licence (`text`), marked as its guess.

mod names;
pub use names::licence_ref;
mod text;

use kiln_model::inventory::{LicenseKind, LicenseText, PackageLicense};

/// Copyright files are read up to this size; past it they are prose no tool should trust.
const MAX_READ: usize = 1 << 20;
/// A licence text kept for a `LicenseRef-` is cut here, to keep build records small.
const MAX_TEXT: usize = 16 << 10;

/// The licence of the package whose `/usr/share/doc/<package>/copyright` is `text`:
/// declared when the file is DEP-5, concluded from the licences it names otherwise.
pub fn license_of(text: &str) -> Option<PackageLicense> {
    let text = cut(text, MAX_READ);
    let paragraphs = paragraphs(text);
    let dep5 = paragraphs.first().is_some_and(|first| {
        first.iter().any(|(name, value)| {
            (name.eq_ignore_ascii_case("Format") || name.eq_ignore_ascii_case("Format-Specification"))
                && (value.contains("copyright-format") || value.contains("dep5"))
        })
    });
    if dep5 && let Some(found) = declared(&paragraphs) {
        return Some(found);
    }
    let (expression, texts) = text::conclude(text)?;
    Some(PackageLicense { expression, kind: LicenseKind::Concluded, texts })
}

/// The licences of a DEP-5 file's `Files:` paragraphs (or its header's, when none has
/// one), each paragraph's expression kept whole, joined with `AND`.
fn declared(paragraphs: &[Vec<(String, String)>]) -> Option<PackageLicense> {
    let field = |paragraph: &[(String, String)], name: &str| {
        paragraph.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    let mut licences: Vec<String> =
        paragraphs.iter().filter(|p| field(p, "Files").is_some()).filter_map(|p| field(p, "License")).collect();
    if licences.is_empty() {
        licences.extend(paragraphs.first().and_then(|p| field(p, "License")));
    }
    // A `License:` whose first line names the licence and whose other lines give its text.
    let bodies: Vec<(String, String)> = paragraphs
        .iter()
        .filter_map(|p| field(p, "License"))
        .filter_map(|value| {
            let (name, body) = value.split_once('\n')?;
            (!body.trim().is_empty()).then(|| (name.trim().to_ascii_lowercase(), body.to_string()))
        })
        .collect();
    let mut expressions = Vec::new();
    let mut refs: Vec<(String, String)> = Vec::new();
    for licence in &licences {
        let first_line = licence.lines().next().unwrap_or_default();
        if let Some(expression) = dep5_expression(first_line, &mut refs) {
            expressions.push(expression);
        }
    }
    let expression = join_and(expressions)?;
    let texts = refs
        .into_iter()
        .map(|(id, name)| {
            let body = bodies.iter().find(|(n, _)| *n == name.to_ascii_lowercase()).map(|(_, b)| b.as_str());
            let text = match body {
                Some(body) => cut(body, MAX_TEXT).to_string(),
                None => format!("the copyright file names this licence {name:?} without giving its text"),
            };
            LicenseText { id, name, text }
        })
        .collect();
    Some(PackageLicense { expression, kind: LicenseKind::Declared, texts })
}

/// One DEP-5 `License:` line (`GPL-2+ or Artistic-2.0, and BSD-3-clause`) as an SPDX
/// expression: `and` binds tighter than `or`, a comma ends a group that the word after it
/// joins to all before. Names SPDX lacks become `LicenseRef-…`, collected in `refs` as
/// (id, Debian's name).
pub(crate) fn dep5_expression(line: &str, refs: &mut Vec<(String, String)>) -> Option<String> {
    let spaced = line.replace(',', " , ");
    // (how the group joins those before it, its terms and operators)
    let mut groups: Vec<(&str, Vec<String>)> = vec![("AND", Vec::new())];
    let mut name: Vec<&str> = Vec::new();
    for token in spaced.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        if !matches!(lower.as_str(), "," | "and" | "or") {
            name.push(token);
            continue;
        }
        let Some((joiner, group)) = groups.last_mut() else { break };
        if !name.is_empty() {
            group.push(term(&name.join(" "), refs));
            name.clear();
        }
        match lower.as_str() {
            "," => groups.push(("AND", Vec::new())),
            op if group.is_empty() => *joiner = if op == "or" { "OR" } else { "AND" },
            op if !group.last().is_some_and(|t| t == "AND" || t == "OR") => group.push(op.to_ascii_uppercase()),
            _ => {}
        }
    }
    if let Some((_, group)) = groups.last_mut()
        && !name.is_empty()
    {
        group.push(term(&name.join(" "), refs));
    }
    let mut expression: Option<String> = None;
    for (joiner, mut group) in groups {
        strip_dangling(&mut group);
        if group.is_empty() {
            continue;
        }
        let group = group.join(" ");
        expression = Some(match expression {
            None => group,
            Some(before) => format!("({before}) {joiner} ({group})"),
        });
    }
    expression.map(|e| simplify(&e))
}

fn strip_dangling(group: &mut Vec<String>) {
    while group.last().is_some_and(|t| t == "AND" || t == "OR") {
        group.pop();
    }
}

/// Parentheses around a single term are noise: `(MIT)` → `MIT`.
fn simplify(expression: &str) -> String {
    let mut out = expression.to_string();
    loop {
        let mut changed = false;
        let mut search = 0;
        while let Some(open) = out[search..].find('(').map(|i| i + search) {
            let Some(close) = out[open..].find(')').map(|i| i + open) else { break };
            let inner = &out[open + 1..close];
            if !inner.contains('(') && !inner.contains(" AND ") && !inner.contains(" OR ") {
                out = format!("{}{}{}", &out[..open], inner, &out[close + 1..]);
                changed = true;
                break;
            }
            search = open + 1;
        }
        if !changed {
            return out;
        }
    }
}

/// A Debian licence name as an SPDX term, or a `LicenseRef-` recorded in `refs`.
fn term(name: &str, refs: &mut Vec<(String, String)>) -> String {
    match names::spdx_term(name) {
        Some(term) if term.contains(" OR ") => format!("({term})"),
        Some(term) => term,
        None => {
            let id = names::licence_ref(name);
            if !refs.iter().any(|(known, _)| *known == id) {
                refs.push((id.clone(), name.to_string()));
            }
            id
        }
    }
}

/// The distinct parts of `expressions` (each cut at its top-level `AND`s), sorted, joined
/// with `AND`; a part with a top-level `OR` is put in parentheses.
pub(crate) fn join_and(expressions: Vec<String>) -> Option<String> {
    let mut parts: Vec<String> = expressions.iter().flat_map(|e| top_level_and_parts(e)).collect();
    parts.sort();
    parts.dedup();
    let wrapped: Vec<String> = parts
        .iter()
        .map(|e| if parts.len() > 1 && has_top_level_or(e) { format!("({e})") } else { e.clone() })
        .collect();
    if wrapped.is_empty() { None } else { Some(wrapped.join(" AND ")) }
}

/// `A AND (B OR C) AND D` → `A`, `B OR C`, `D` (outer parentheses of a part dropped).
fn top_level_and_parts(expression: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let bytes = expression.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b' ' if depth == 0 && expression[at..].starts_with(" AND ") => {
                parts.push(&expression[start..at]);
                at += 5;
                start = at;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    parts.push(&expression[start..]);
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('(').and_then(|inner| inner.strip_suffix(')')) {
                Some(inner) if balanced(inner) => inner.to_string(),
                _ => p.to_string(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether no `)` in `text` closes a `(` from before it.
fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Whether `OR` joins parts of `expression` outside any parentheses.
fn has_top_level_or(expression: &str) -> bool {
    let mut depth = 0usize;
    let mut outside = String::new();
    for c in expression.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside.contains(" OR ")
}

/// Paragraphs of a copyright file read the forgiving way: fields with their continuation
/// lines, a whitespace-only line inside a field kept as part of it, lines that are not
/// fields (free text between paragraphs) skipped.
fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (index, raw) in lines.iter().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            // A blank line followed by another continuation line belongs to the field.
            let continues = raw.starts_with([' ', '\t'])
                && lines.get(index + 1).is_some_and(|next| next.starts_with([' ', '\t']) && !next.trim().is_empty());
            if continues && let Some((_, value)) = current.last_mut() {
                value.push('\n');
                continue;
            }
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                let rest = line.trim();
                if rest != "." {
                    value.push_str(rest);
                }
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                current.push((name.to_string(), value.trim().to_string()));
            }
            _ => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `text` cut at `limit` bytes, on a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
