//! The machine's own apt configuration as package sources, so Kiln builds from the mirror
//! the administrator already chose (one-line `sources.list` and deb822 `.sources` files).

use std::path::{Path, PathBuf};

use crate::deb822;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBy {
    Path(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub signed_by: Option<SignedBy>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Syntax { path: String, line: usize, message: String },
}

fn words(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default().split_whitespace().map(str::to_string).collect()
}

fn signed_by(value: &str) -> SignedBy {
    if value.contains("BEGIN PGP PUBLIC KEY BLOCK") {
        SignedBy::Inline(value.to_string())
    } else {
        SignedBy::Path(PathBuf::from(value.trim()))
    }
}

fn parse_deb822(path: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let stanzas = deb822::parse(text).map_err(|e| SourcesError::Syntax {
        path: path.into(),
        line: e.line,
        message: e.message,
    })?;
    let mut sources = Vec::new();
    for stanza in stanzas {
        if stanza.get("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        if !words(stanza.get("Types")).iter().any(|t| t == "deb") {
            continue;
        }
        let source = AptSource {
            uris: words(stanza.get("URIs")),
            suites: words(stanza.get("Suites")),
            components: words(stanza.get("Components")),
            architectures: words(stanza.get("Architectures")),
            signed_by: stanza.get("Signed-By").map(signed_by),
        };
        if source.uris.is_empty() || source.suites.is_empty() {
            return Err(SourcesError::Syntax {
                path: path.into(),
                line: stanza.line,
                message: "a deb source needs URIs and Suites".into(),
            });
        }
        sources.push(source);
    }
    Ok(sources)
}

fn parse_one_line(path: &str, text: &str) -> Result<Vec<AptSource>, SourcesError> {
    let mut sources = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else { continue };
        let mut rest = rest.trim();
        let mut architectures = Vec::new();
        let mut signed = None;
        if let Some(options) = rest.strip_prefix('[') {
            let (options, after) = options.split_once(']').ok_or_else(|| SourcesError::Syntax {
                path: path.into(),
                line: index + 1,
                message: "unclosed [options]".into(),
            })?;
            for option in options.split_whitespace() {
                match option.split_once('=') {
                    Some(("arch", value)) => architectures = value.split(',').map(str::to_string).collect(),
                    Some(("signed-by", value)) => signed = Some(signed_by(value)),
                    _ => {}
                }
            }
            rest = after.trim();
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = parts.as_slice() else {
            return Err(SourcesError::Syntax {
                path: path.into(),
                line: index + 1,
                message: "expected `deb URI SUITE [COMPONENT…]`".into(),
            });
        };
        sources.push(AptSource {
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: components.iter().map(|c| c.to_string()).collect(),
            architectures,
            signed_by: signed,
        });
    }
    Ok(sources)
}

fn read(path: &Path) -> Result<Option<String>, SourcesError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SourcesError::Read { path: path.display().to_string(), source }),
    }
}

/// Every enabled `deb` source under `dir` (such as `/etc/apt`).
pub fn read_apt_config(dir: &Path) -> Result<Vec<AptSource>, SourcesError> {
    let mut sources = Vec::new();
    let main = dir.join("sources.list");
    if let Some(text) = read(&main)? {
        sources.extend(parse_one_line(&main.display().to_string(), &text)?);
    }
    let parts = dir.join("sources.list.d");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&parts) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(SourcesError::Read { path: parts.display().to_string(), source }),
    };
    files.sort();
    for path in files {
        let name = path.display().to_string();
        let Some(text) = read(&path)? else { continue };
        if name.ends_with(".sources") {
            sources.extend(parse_deb822(&name, &text)?);
        } else if name.ends_with(".list") {
            sources.extend(parse_one_line(&name, &text)?);
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_disabled_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sources.list"), "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\ndeb-src http://m/debian bookworm main\n").unwrap();
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/a.sources"),
            "Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nEnabled: no\nURIs: http://x\nSuites: y\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("sources.list.d/b.list.disabled-by-farm"), "deb http://nope x y\n").unwrap();
        let sources = read_apt_config(dir.path()).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].signed_by, Some(SignedBy::Path("/k.gpg".into())));
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(sources[1].suites, ["bookworm", "bookworm-updates"]);
        std::fs::write(dir.path().join("sources.list.d/c.sources"), "Types: deb\nSuites: x\n").unwrap();
        let err = read_apt_config(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c.sources:1") && err.contains("URIs"), "{err}");
    }

    #[test]
    fn this_machines_configuration_reads() {
        read_apt_config(Path::new("/etc/apt")).expect("the machine's apt configuration");
    }
}
