//! pip's `-r` (more requirements) and `-c` (constraints) lines, followed on the side that has
//! the files: an image stores one requirements text and one constraints text, so includes
//! are inlined before a definition is sent. Reading files is the caller's (`read`); this
//! module only decides which files and where their lines go.

use std::path::Path;

/// Includes nested deeper than this are refused as a likely loop.
const MAX_DEPTH: usize = 16;

/// A requirements text with every include inlined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub requirements: String,
    /// Lines of every `-c` file (and what they include), when there were any.
    pub constraints: Option<String>,
}

/// Whether `text` has a `-r`/`-c` line worth expanding.
pub fn has_includes(text: &str) -> bool {
    text.lines().any(|line| include_of(line).is_some())
}

/// Inlines the includes of `text`, read from `path` (relative to whatever `read` resolves
/// against): `-r` files into the requirements, `-c` files into the constraints. Paths in a
/// file are relative to that file's directory, as pip reads them.
pub fn expand_includes(
    path: &str,
    text: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Expanded, String> {
    let mut requirements = String::new();
    let mut constraints = String::new();
    let mut stack = vec![path.to_string()];
    walk(path, text, false, read, &mut stack, &mut requirements, &mut constraints)?;
    Ok(Expanded { requirements, constraints: (!constraints.is_empty()).then_some(constraints) })
}

#[derive(Debug, PartialEq, Eq)]
enum Include<'a> {
    Requirements(&'a str),
    Constraints(&'a str),
}

fn include_of(line: &str) -> Option<Include<'_>> {
    let line = line.trim();
    let line = match line.find(" #") {
        Some(at) => line[..at].trim_end(),
        None => line,
    };
    for (long, short, constraints) in [("--requirement", "-r", false), ("--constraint", "-c", true)] {
        let rest = if let Some(rest) = line.strip_prefix(long) {
            rest.strip_prefix('=').unwrap_or(rest)
        } else if let Some(rest) = line.strip_prefix(short) {
            rest
        } else {
            continue;
        };
        let file = rest.trim();
        if file.is_empty() {
            return None;
        }
        return Some(if constraints { Include::Constraints(file) } else { Include::Requirements(file) });
    }
    None
}

fn walk(
    path: &str,
    text: &str,
    as_constraints: bool,
    read: &dyn Fn(&str) -> Result<String, String>,
    stack: &mut Vec<String>,
    requirements: &mut String,
    constraints: &mut String,
) -> Result<(), String> {
    let dir = Path::new(path).parent().unwrap_or(Path::new(""));
    for (index, line) in text.lines().enumerate() {
        let Some(include) = include_of(line) else {
            let out = if as_constraints { &mut *constraints } else { &mut *requirements };
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let (file, into_constraints) = match include {
            Include::Requirements(file) => (file, as_constraints),
            Include::Constraints(file) => (file, true),
        };
        let at = format!("{path} line {}", index + 1);
        if file.contains("://") {
            return Err(format!("{at}: {file} is a URL: download it and name the file"));
        }
        let nested = dir.join(file).to_string_lossy().into_owned();
        if stack.contains(&nested) {
            return Err(format!("{at}: {file} includes itself ({} → {nested})", stack.join(" → ")));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(format!("{at}: includes go more than {MAX_DEPTH} files deep"));
        }
        let contents = read(&nested).map_err(|e| format!("{at}: cannot read {file}: {e}"))?;
        let out = if into_constraints { &mut *constraints } else { &mut *requirements };
        out.push_str(&format!("# from {nested}\n"));
        stack.push(nested.clone());
        walk(&nested, &contents, into_constraints, read, stack, requirements, constraints)?;
        stack.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> Result<String, String> {
        match path {
            "reqs/base.txt" => Ok("requests>=2\n-c pins.txt\n".into()),
            "reqs/pins.txt" => Ok("urllib3<3\n".into()),
            "reqs/loop.txt" => Ok("-r loop.txt\n".into()),
            "constraints.txt" => Ok("numpy<2\n-r more-pins.txt\n".into()),
            "more-pins.txt" => Ok("pytz==2024.1\n".into()),
            other => Err(format!("no file {other}")),
        }
    }

    #[test]
    fn inlines_requirements_and_gathers_constraints() {
        let text = "pandas==2.2.3\n-r reqs/base.txt\n--constraint=constraints.txt  # pins\n";
        let expanded = expand_includes("requirements.txt", text, &files).expect("expands");
        assert_eq!(expanded.requirements, "pandas==2.2.3\n# from reqs/base.txt\nrequests>=2\n");
        assert_eq!(
            expanded.constraints.as_deref(),
            Some(
                "# from reqs/pins.txt\nurllib3<3\n# from constraints.txt\nnumpy<2\n# from more-pins.txt\npytz==2024.1\n"
            )
        );
    }

    #[test]
    fn refuses_loops_urls_and_missing_files() {
        let err = expand_includes("requirements.txt", "-r reqs/loop.txt\n", &files).unwrap_err();
        assert!(err.contains("includes itself"), "{err}");
        let err = expand_includes("r.txt", "x\n-r https://example.invalid/r.txt\n", &files).unwrap_err();
        assert!(err.starts_with("r.txt line 2:") && err.contains("URL"), "{err}");
        let err = expand_includes("r.txt", "-c nope.txt\n", &files).unwrap_err();
        assert!(err.contains("cannot read nope.txt"), "{err}");
        assert!(!has_includes("pandas\n# -r not.txt\n--hash=sha256:00\n"));
        assert!(has_includes("pandas\n-rother.txt\n"));
    }
}
