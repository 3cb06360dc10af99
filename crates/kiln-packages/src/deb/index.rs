//! Binary package indexes (`Packages` files): each package's identity, relations and where
//! its file is, with the version relations evaluated by Debian's own ordering.

use std::cmp::Ordering;
use std::str::FromStr;

use debversion::Version;
use kiln_oci::{Algorithm, Digest};

use crate::deb822;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<<" | "<" => Op::Lt,
            "<=" => Op::Le,
            "=" => Op::Eq,
            ">=" => Op::Ge,
            ">>" | ">" => Op::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `candidate` stands in this relation to `wanted`.
    pub fn matches(self, candidate: &str, wanted: &str) -> bool {
        let order = match (Version::from_str(candidate), Version::from_str(wanted)) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => candidate.cmp(wanted),
        };
        match self {
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Eq => order == Ordering::Equal,
            Op::Ge => order != Ordering::Less,
            Op::Gt => order == Ordering::Greater,
        }
    }
}

/// Debian version order, falling back to text order for versions that do not parse.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (Version::from_str(a), Version::from_str(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// One name in a relation: `libc6 (>= 2.36)`, `python3:any`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub arch: Option<String>,
    pub constraint: Option<(Op, String)>,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some((op, version)) = &self.constraint {
            write!(f, " ({} {version})", op.as_str())?;
        }
        Ok(())
    }
}

/// `a | b | c`: any one of them satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub alternatives: Vec<Dependency>,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.alternatives.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join(" | "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    pub depends: Vec<Relation>,
    pub pre_depends: Vec<Relation>,
    pub provides: Vec<Dependency>,
    pub filename: String,
    pub size: u64,
    /// Parsed as the index is read: the only form of the hash that may name a cached file.
    pub sha256: Digest,
    pub multi_arch: Option<String>,
    pub installed_size: Option<u64>,
    /// `required`, `important`, `standard`, `optional` or `extra`: how apt ranks providers.
    pub priority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("{0}")]
    Syntax(#[from] deb822::Deb822Error),
    #[error("line {line}: package stanza lacks the {field} field")]
    Missing { line: usize, field: &'static str },
    #[error("line {line}: field {field} value {value:?} is invalid: {why}")]
    Invalid { line: usize, field: &'static str, value: String, why: String },
}

fn parse_dependency(text: &str) -> Result<Dependency, String> {
    let text = text.trim();
    let (head, constraint) = match text.split_once('(') {
        Some((head, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| format!("{text:?} has an unclosed version"))?.trim();
            let split = inner.find(|c: char| !"<>=".contains(c)).unwrap_or(inner.len());
            let op = Op::parse(&inner[..split]).ok_or_else(|| format!("{inner:?} has no valid operator"))?;
            let version = inner[split..].trim();
            if version.is_empty() {
                return Err(format!("{text:?} has no version after the operator"));
            }
            (head.trim(), Some((op, version.to_string())))
        }
        None => (text, None),
    };
    // Architecture restrictions (`[amd64]`) and build profiles (`<!nocheck>`) only occur in
    // source relations; drop them if they show up.
    let head = head.split(['[', '<']).next().unwrap_or(head).trim();
    let (name, arch) = match head.split_once(':') {
        Some((name, arch)) => (name, Some(arch.to_string())),
        None => (head, None),
    };
    if name.is_empty() {
        return Err(format!("{text:?} names no package"));
    }
    Ok(Dependency { name: name.to_string(), arch, constraint })
}

pub fn parse_relations(text: &str) -> Result<Vec<Relation>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| Ok(Relation { alternatives: part.split('|').map(parse_dependency).collect::<Result<_, _>>()? }))
        .collect()
}

pub fn parse_provides(text: &str) -> Result<Vec<Dependency>, String> {
    text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(parse_dependency).collect()
}

/// `Source: name (version)`, or just the name.
pub fn parse_source(text: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(text) = text else { return (None, None) };
    match text.split_once('(') {
        Some((name, version)) => {
            (Some(name.trim().to_string()), Some(version.trim_end_matches(')').trim().to_string()))
        }
        None => (Some(text.trim().to_string()), None),
    }
}

fn relations(stanza: &deb822::StanzaRef<'_>, field: &'static str) -> Result<Vec<Relation>, IndexError> {
    let value = stanza.get(field).unwrap_or_default();
    parse_relations(value).map_err(|why| IndexError::Invalid { line: stanza.line, field, value: value.into(), why })
}

pub(crate) fn record_from(stanza: &deb822::StanzaRef<'_>) -> Result<PackageRecord, IndexError> {
    let line = stanza.line;
    let required = |field: &'static str| stanza.get(field).ok_or(IndexError::Missing { line, field });
    let number = |field: &'static str, value: &str| {
        value.parse::<u64>().map_err(|e| IndexError::Invalid { line, field, value: value.into(), why: e.to_string() })
    };
    let (source_name, source_version) = parse_source(stanza.get("Source"));
    let provides_text = stanza.get("Provides").unwrap_or_default();
    let filename = required("Filename")?.to_string();
    let size = number("Size", required("Size")?)?;
    let sha256 = required("SHA256")?;
    let sha256 = Digest::from_hex(Algorithm::Sha256, sha256).map_err(|_| IndexError::Invalid {
        line,
        field: "SHA256",
        value: sha256.into(),
        why: "not a SHA-256 (64 hex digits)".into(),
    })?;
    Ok(PackageRecord {
        name: required("Package")?.to_string(),
        version: required("Version")?.to_string(),
        architecture: required("Architecture")?.to_string(),
        source_name,
        source_version,
        depends: relations(stanza, "Depends")?,
        pre_depends: relations(stanza, "Pre-Depends")?,
        provides: parse_provides(provides_text).map_err(|why| IndexError::Invalid {
            line,
            field: "Provides",
            value: provides_text.into(),
            why,
        })?,
        filename,
        size,
        sha256,
        multi_arch: stanza.get("Multi-Arch").map(str::to_string),
        installed_size: stanza.get("Installed-Size").and_then(|v| v.parse().ok()),
        priority: stanza.get("Priority").map(str::to_string),
    })
}

/// Every record of a `Packages` index, read on every core (an index is tens of MB).
pub fn parse_packages(text: &str) -> Result<Vec<PackageRecord>, IndexError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = if text.len() < 1 << 20 { 1 } else { cores };
    let parse_piece = |(piece, first_line): (&str, usize)| -> Result<Vec<PackageRecord>, IndexError> {
        let mut records = Vec::new();
        deb822::for_each_stanza(piece, first_line, |stanza| {
            records.push(record_from(stanza)?);
            Ok::<(), IndexError>(())
        })?;
        Ok(records)
    };
    let parts = deb822::split_at_stanzas(text, pieces);
    let results: Vec<Result<Vec<PackageRecord>, IndexError>> = if parts.len() == 1 {
        parts.into_iter().map(parse_piece).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts.into_iter().map(|part| scope.spawn(move || parse_piece(part))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(IndexError::Syntax(deb822::Deb822Error {
                            line: 0,
                            message: "the index reader stopped".into(),
                        }))
                    })
                })
                .collect()
        })
    };
    let mut records = Vec::new();
    for part in results {
        records.extend(part?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_with_alternatives_versions_and_qualifiers() {
        let parsed = parse_relations("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.12)").unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].alternatives.len(), 2);
        assert_eq!(parsed[1].alternatives[1].name, "debconf-2.0");
        assert_eq!(parsed[2].alternatives[0].arch.as_deref(), Some("any"));
        assert_eq!(parsed[0].alternatives[0].constraint, Some((Op::Ge, "2.34".to_string())));
        assert!(parse_relations("libc6 (>= )").is_err());
        assert!(parse_relations("libc6 (~ 1)").is_err());
    }

    #[test]
    fn versions_compare_the_debian_way() {
        assert!(Op::Lt.matches("1.0~rc1", "1.0"));
        assert!(Op::Gt.matches("1:0.9", "2.0"));
        assert!(Op::Ge.matches("3.11.2-1+b1", "3.11.2-1"));
        assert!(Op::Eq.matches("15.8-0+deb12u1", "15.8-0+deb12u1"));
    }

    #[test]
    fn records_need_their_file_fields() {
        let text = "Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 3\n";
        let err = parse_packages(text).unwrap_err();
        assert_eq!(err.to_string(), "line 1: package stanza lacks the SHA256 field");
    }

    #[test]
    fn a_sha256_that_is_not_one_is_refused_with_its_line() {
        let stanza = |sha256: &str| {
            format!("Package: a\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 3\nSHA256: {sha256}\n")
        };
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let records = parse_packages(&stanza(hex)).expect("parsed");
        assert_eq!(records[0].sha256, Digest::sha256(b""));
        let text = format!("{}\n{}", stanza(&hex.to_lowercase()), stanza("/../../tmp/planted.deb"));
        let err = parse_packages(&text).expect_err("refused").to_string();
        assert!(err.starts_with("line 8: field SHA256 value \"/../../tmp/planted.deb\" is invalid"), "{err}");
    }
}
