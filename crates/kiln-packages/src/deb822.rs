//! Debian's control-file format (RFC 822-like stanzas), parsed strictly with line numbers,
//! because every Debian index, release file and status file is written in it.

/// One paragraph: fields in file order, names as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    pub fields: Vec<(String, String)>,
    /// 1-based line where the stanza starts.
    pub line: usize,
    /// The stanza's text exactly as in the file.
    pub text: String,
}

impl Stanza {
    /// A field's value; names compare case-insensitively, as Debian's tools do.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct Deb822Error {
    pub line: usize,
    pub message: String,
}

/// Splits text into stanzas. Continuation lines (leading space or tab) join the previous
/// field with a newline; ` .` stands for an empty line; `#` lines are comments.
pub fn parse(text: &str) -> Result<Vec<Stanza>, Deb822Error> {
    let mut stanzas = Vec::new();
    for_each_stanza(text, 1, |stanza| {
        stanzas.push(Stanza {
            fields: stanza.fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            line: stanza.line,
            text: stanza.text.to_string(),
        });
        Ok::<(), Deb822Error>(())
    })?;
    Ok(stanzas)
}

/// A stanza that borrows from the text it was read from: reading a whole `Packages` index
/// (60,000 stanzas, 50 MB) this way allocates only for values that span several lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StanzaRef<'a> {
    pub fields: Vec<(&'a str, std::borrow::Cow<'a, str>)>,
    /// 1-based line where the stanza starts.
    pub line: usize,
    /// The stanza's text exactly as in the file.
    pub text: &'a str,
}

impl StanzaRef<'_> {
    /// A field's value; names compare case-insensitively, as Debian's tools do.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

/// Calls `each` with every stanza of `text` in order, with [`parse`]'s rules and errors;
/// `first_line` is the line number of the text's first line (for a piece of a larger text).
pub fn for_each_stanza<'a, E: From<Deb822Error>>(
    text: &'a str,
    first_line: usize,
    mut each: impl FnMut(&StanzaRef<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let mut current = StanzaRef::default();
    let (mut offset, mut start) = (0usize, 0usize);
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = first_line + index;
        let line = raw.trim_end_matches(['\n', '\r']);
        let line_start = offset;
        offset += raw.len();
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                current.text = &text[start..line_start];
                each(&current)?;
                current.fields.clear();
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.fields.last_mut() else {
                return Err(Deb822Error {
                    line: line_no,
                    message: "continuation line without a field above it".into(),
                }
                .into());
            };
            let rest = line.trim();
            let value = value.to_mut();
            value.push('\n');
            if rest != "." {
                value.push_str(rest);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Deb822Error { line: line_no, message: format!("{line:?} is not a `Field: value` line") }.into());
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Deb822Error { line: line_no, message: format!("{name:?} is not a field name") }.into());
        }
        if current.fields.is_empty() {
            current.line = line_no;
            start = line_start;
        }
        current.fields.push((name, std::borrow::Cow::Borrowed(value.trim())));
    }
    if !current.fields.is_empty() {
        current.text = &text[start..];
        each(&current)?;
    }
    Ok(())
}

/// Cuts `text` into about `pieces` parts at blank lines (stanza boundaries), each with the
/// number of its first line, so the parts can be read on several cores.
pub fn split_at_stanzas(text: &str, pieces: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1;
    let target = text.len() / pieces.max(1) + 1;
    while out.len() + 1 < pieces && rest.len() > target {
        let Some(cut) = rest[target..].find("\n\n").map(|at| target + at + 2) else { break };
        let (piece, tail) = rest.split_at(cut);
        out.push((piece, line));
        line += piece.bytes().filter(|&b| b == b'\n').count();
        rest = tail;
    }
    out.push((rest, line));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nDescription: short\n long\n .\n more\n\n# comment\nPackage: b\nVersion: 1\n";
        let stanzas = parse(text).unwrap();
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0].get("description"), Some("short\nlong\n\nmore"));
        assert_eq!(stanzas[1].get("Version"), Some("1"));
        assert_eq!(stanzas[1].line, 8);
        assert!(stanzas[0].text.starts_with("Package: a\n") && stanzas[0].text.ends_with("more\n"));
    }

    #[test]
    fn borrowed_stanzas_match_owned_ones_across_pieces() {
        let text =
            "Package: a\nDescription: short\n long\n .\n more\n\n# comment\nPackage: b\nVersion: 1\n\n\nPackage: c\n";
        let owned = parse(text).unwrap();
        for pieces in 1..5 {
            let mut seen = Vec::new();
            for (piece, line) in split_at_stanzas(text, pieces) {
                for_each_stanza::<Deb822Error>(piece, line, |s| {
                    let fields: Vec<(String, String)> =
                        s.fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                    seen.push((s.line, fields));
                    Ok(())
                })
                .unwrap();
            }
            let expected: Vec<(usize, Vec<(String, String)>)> =
                owned.iter().map(|s| (s.line, s.fields.clone())).collect();
            assert_eq!(seen, expected, "{pieces} pieces");
        }
        let err = for_each_stanza::<Deb822Error>("Package: a\nno colon\n", 10, |_| Ok(())).unwrap_err();
        assert_eq!(err.line, 11);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = parse("Package: a\nno colon here\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(parse(" leading\n").unwrap_err().line, 1);
    }
}
