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
    let mut current: Option<Stanza> = None;
    let mut offset = 0usize;
    let mut start = 0usize;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end_matches(['\n', '\r']);
        let line_start = offset;
        offset += raw.len();
        if line.trim().is_empty() {
            if let Some(mut stanza) = current.take() {
                stanza.text = text[start..line_start].to_string();
                stanzas.push(stanza);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.as_mut().and_then(|s| s.fields.last_mut()) else {
                return Err(Deb822Error {
                    line: line_no,
                    message: "continuation line without a field above it".into(),
                });
            };
            let rest = line.trim();
            value.push('\n');
            if rest != "." {
                value.push_str(rest);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Deb822Error { line: line_no, message: format!("{line:?} is not a `Field: value` line") });
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(Deb822Error { line: line_no, message: format!("{name:?} is not a field name") });
        }
        let stanza = current.get_or_insert_with(|| {
            start = line_start;
            Stanza { line: line_no, ..Default::default() }
        });
        stanza.fields.push((name.to_string(), value.trim().to_string()));
    }
    if let Some(mut stanza) = current.take() {
        stanza.text = text[start..].to_string();
        stanzas.push(stanza);
    }
    Ok(stanzas)
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
    fn bad_lines_name_their_line() {
        let err = parse("Package: a\nno colon here\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(parse(" leading\n").unwrap_err().line, 1);
    }
}
