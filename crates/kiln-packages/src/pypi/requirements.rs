//! requirements.txt as pip reads it — pins, ranges, extras, environment markers and
//! `--hash` options — turned into PEP 508 requirements; every problem names its line.

use std::str::FromStr;

use kiln_oci::{Algorithm, Digest};

#[derive(Debug, Clone)]
pub struct Requirement {
    pub requirement: pep508_rs::Requirement,
    /// Allowed SHA-256 digests of the file installed for it; empty allows any.
    pub hashes: Vec<Digest>,
    /// 1-based line the requirement starts on (0 for a structured list).
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    #[error("requirements line {line}: {why}")]
    Line { line: usize, why: String },
}

fn line_error(line: usize, why: impl Into<String>) -> RequirementsError {
    RequirementsError::Line { line, why: why.into() }
}

/// Options pip accepts that change nothing for a wheel-only install from the configured
/// sources.
const IGNORED_OPTIONS: [&str; 4] = ["--only-binary", "--prefer-binary", "--no-binary", "--pre"];

/// Parses requirements.txt text. Index options and editable or URL requirements are refused:
/// indexes come from package sources, and only released distributions are installed.
pub fn parse_requirements(text: &str) -> Result<Vec<Requirement>, RequirementsError> {
    let mut out = Vec::new();
    for (start, line) in kiln_model::requirements_includes::logical_lines(text) {
        if let Some(requirement) = parse_line(&line, start)? {
            out.push(requirement);
        }
    }
    Ok(out)
}

fn parse_line(line: &str, number: usize) -> Result<Option<Requirement>, RequirementsError> {
    if line.is_empty() {
        return Ok(None);
    }
    if line.starts_with('-') {
        let option = line.split([' ', '=']).next().unwrap_or(line);
        if IGNORED_OPTIONS.contains(&option) {
            return Ok(None);
        }
        let why = match option {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                format!(
                    "{option} includes another file, which the server cannot read: create the image with kiln create (it inlines -r and -c files) or put the lines here"
                )
            }
            "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links" | "--no-index" => {
                format!("{option} is not used: indexes come from package sources (kiln create package-source)")
            }
            "-e" | "--editable" => "editable installs are not supported: name a released distribution".to_string(),
            _ => format!("unknown option {option}"),
        };
        return Err(line_error(number, why));
    }
    // `--hash` options follow the requirement, separated by whitespace.
    let mut hashes = Vec::new();
    let mut requirement_text = String::new();
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if let Some(value) = word.strip_prefix("--hash=").or_else(|| (word == "--hash").then(|| words.next()).flatten())
        {
            let Some(hex) = value.strip_prefix("sha256:") else {
                return Err(line_error(number, format!("--hash {value}: only sha256 hashes are supported")));
            };
            let digest = Digest::from_hex(Algorithm::Sha256, hex)
                .map_err(|e| line_error(number, format!("--hash {value}: not a SHA-256 digest: {e}")))?;
            hashes.push(digest);
        } else if word.starts_with("--") {
            return Err(line_error(number, format!("option {word} is not allowed after a requirement")));
        } else {
            if !requirement_text.is_empty() {
                requirement_text.push(' ');
            }
            requirement_text.push_str(word);
        }
    }
    let requirement = pep508_rs::Requirement::from_str(&requirement_text)
        .map_err(|e| line_error(number, format!("{requirement_text:?}: {}", first_line(&e.to_string()))))?;
    if matches!(requirement.version_or_url, Some(pep508_rs::VersionOrUrl::Url(_))) {
        return Err(line_error(
            number,
            format!("{}: URL requirements are not supported: name a version from the index", requirement.name),
        ));
    }
    Ok(Some(Requirement { requirement, hashes, line: number }))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// A structured entry (`{name, version}`) as a requirement: `version` may be a bare version
/// (`2.2.3`, meaning `==`) or specifiers (`>=2,<3`).
pub fn from_name_and_version(name: &str, version: Option<&str>) -> Result<Requirement, RequirementsError> {
    let text = match version.map(str::trim).filter(|v| !v.is_empty()) {
        None => name.to_string(),
        Some(v) if v.starts_with(|c: char| c.is_ascii_digit()) => format!("{name}=={v}"),
        Some(v) => format!("{name}{v}"),
    };
    let requirement = pep508_rs::Requirement::from_str(&text)
        .map_err(|e| line_error(0, format!("{text:?}: {}", first_line(&e.to_string()))))?;
    Ok(Requirement { requirement, hashes: Vec::new(), line: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_options_are_digests_and_anything_else_names_its_line() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let parsed =
            parse_requirements(&format!("six\ndemo==1.0 --hash=sha256:{hex} --hash sha256:{}\n", "a".repeat(64)))
                .expect("parsed");
        assert_eq!(
            parsed[1].hashes,
            [Digest::sha256(b""), Digest::from_hex(Algorithm::Sha256, &"a".repeat(64)).expect("hex")]
        );
        for bad in ["sha256:../../x", "sha256:/../../tmp/planted.whl", "sha256:abc", &format!("sha256:{}", &hex[1..])] {
            let err = parse_requirements(&format!("six\ndemo --hash={bad}\n")).expect_err("refused").to_string();
            assert!(err.starts_with(&format!("requirements line 2: --hash {bad}: not a SHA-256 digest")), "{err}");
        }
        let err = parse_requirements("demo --hash=md5:d41d8cd98f00b204e9800998ecf8427e\n").expect_err("refused");
        assert!(err.to_string().contains("only sha256 hashes are supported"), "{err}");
    }
}
