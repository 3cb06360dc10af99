//! pip's `-r` (more requirements) and `-c` (constraints) lines, followed on the side that has
//! the files: an image stores one requirements text and one constraints text, so includes
//! are inlined before a definition is sent. Which files may be read, and what they must hold,
//! is [`crate::includes`]'s to decide and its reader's to open; this module only decides
//! which files a text names and where their lines go.

use std::path::{Path, PathBuf};

use crate::includes::{Format, IncludeError, Includes, Problem, normalise};

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
/// requirements.txt as pip reads it: comments (`#` at a line's start or after whitespace)
/// dropped and lines ending in `\\` joined, each logical line trimmed, with the number of the
/// physical line it starts on. Empty logical lines are left out.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start = 1;
    for (index, raw) in text.lines().enumerate() {
        if logical.is_empty() {
            start = index + 1;
        }
        let without_comment = match raw.find(" #").or_else(|| raw.find("\t#")) {
            Some(at) => &raw[..at],
            None if raw.trim_start().starts_with('#') => "",
            None => raw,
        };
        if let Some(continued) = without_comment.strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(without_comment);
        let line = std::mem::take(&mut logical);
        if !line.trim().is_empty() {
            out.push((start, line.trim().to_string()));
        }
    }
    if !logical.trim().is_empty() {
        out.push((start, logical.trim().to_string()));
    }
    out
}

pub fn has_includes(text: &str) -> bool {
    text.lines().any(|line| include_of(line).is_some())
}

/// Where a requirements text came from: its name in errors, the directory its references are
/// relative to (as pip reads them), and its path when it is a file (to catch loops).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
    pub path: Option<&'a Path>,
}

/// Inlines the includes of `text`: `-r` files into the requirements, `-c` files into the
/// constraints. Every reference is resolved and read through `includes`, so none leaves its
/// tree unless the user allowed it, and each must be requirements text.
pub fn expand_includes(source: Source<'_>, text: &str, includes: &Includes<'_>) -> Result<Expanded, IncludeError> {
    let mut requirements = String::new();
    let mut constraints = String::new();
    let mut stack: Vec<PathBuf> = source.path.map(normalise).into_iter().collect();
    let mut out = Out { requirements: &mut requirements, constraints: &mut constraints };
    walk(source.name, source.dir, text, false, includes, &mut stack, &mut out)?;
    Ok(Expanded { requirements, constraints: (!constraints.is_empty()).then_some(constraints) })
}

struct Out<'a> {
    requirements: &'a mut String,
    constraints: &'a mut String,
}

impl Out<'_> {
    fn push(&mut self, into_constraints: bool, line: &str) {
        let out = if into_constraints { &mut *self.constraints } else { &mut *self.requirements };
        out.push_str(line);
        out.push('\n');
    }
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
    name: &str,
    dir: &Path,
    text: &str,
    as_constraints: bool,
    includes: &Includes<'_>,
    stack: &mut Vec<PathBuf>,
    out: &mut Out<'_>,
) -> Result<(), IncludeError> {
    for (index, line) in text.lines().enumerate() {
        let Some(include) = include_of(line) else {
            out.push(as_constraints, line);
            continue;
        };
        let (file, into_constraints, option) = match include {
            Include::Requirements(file) => (file, as_constraints, "-r"),
            Include::Constraints(file) => (file, true, "-c"),
        };
        let refuse = |problem| IncludeError {
            from: Some(name.to_string()),
            line: Some(index + 1),
            reference: format!("{option} {file}"),
            problem,
        };
        let nested = includes.resolve(dir, file).map_err(refuse)?;
        if stack.contains(&nested) {
            let chain: Vec<String> = stack.iter().chain([&nested]).map(|p| p.display().to_string()).collect();
            return Err(refuse(Problem::Loop(chain.join(" → "))));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(refuse(Problem::TooDeep(MAX_DEPTH)));
        }
        let contents = includes.read(&nested, Format::Requirements).map_err(refuse)?;
        let nested_name = nested.display().to_string();
        out.push(into_constraints, &format!("# from {nested_name}"));
        let nested_dir = nested.parent().unwrap_or(Path::new(""));
        stack.push(nested.clone());
        walk(&nested_name, nested_dir, &contents, into_constraints, includes, stack, out)?;
        stack.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::includes::{ReadError, Reader};

    /// Files by path; `proj/link.txt` stands for a link leading out of the tree.
    struct Files(HashMap<&'static str, &'static str>);

    impl Reader for Files {
        fn read(&self, path: &Path, confine_to: Option<&Path>, _limit: u64) -> Result<Vec<u8>, ReadError> {
            if let (Some(root), true) = (confine_to, path == Path::new("proj/link.txt")) {
                return Err(ReadError::Escapes { real: "/etc/passwd".into(), root: root.to_path_buf() });
            }
            let key = path.to_str().unwrap_or_default();
            self.0.get(key).map(|text| text.as_bytes().to_vec()).ok_or_else(|| ReadError::Io("no such file".into()))
        }
    }

    fn files() -> Files {
        Files(HashMap::from([
            ("proj/reqs/base.txt", "requests>=2\n-c pins.txt\n"),
            ("proj/reqs/pins.txt", "urllib3<3\n"),
            ("proj/reqs/loop.txt", "-r ./loop.txt\n"),
            ("proj/constraints.txt", "numpy<2\n-r more-pins.txt\n"),
            ("proj/more-pins.txt", "pytz==2024.1\n"),
            ("proj/reqs/up.txt", "-r ../more-pins.txt\n"),
            ("proj/reqs/out.txt", "-r ../../outside.txt\n"),
            ("proj/link.txt", "requests\n"),
            ("outside.txt", "six\n"),
            ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        ]))
    }

    fn expand(text: &str, allow_outside: bool) -> Result<Expanded, IncludeError> {
        let files = files();
        let includes = Includes { root: PathBuf::from("proj"), allow_outside, reader: &files };
        let path = Path::new("proj/requirements.txt");
        let source = Source { name: "proj/requirements.txt", dir: Path::new("proj"), path: Some(path) };
        expand_includes(source, text, &includes)
    }

    #[test]
    fn inlines_requirements_and_gathers_constraints() {
        let text = "pandas==2.2.3\n-r reqs/base.txt\n--constraint=constraints.txt  # pins\n";
        let expanded = expand(text, false).expect("expands");
        assert_eq!(expanded.requirements, "pandas==2.2.3\n# from proj/reqs/base.txt\nrequests>=2\n");
        assert_eq!(
            expanded.constraints.as_deref(),
            Some(
                "# from proj/reqs/pins.txt\nurllib3<3\n# from proj/constraints.txt\nnumpy<2\n# from proj/more-pins.txt\npytz==2024.1\n"
            )
        );
    }

    #[test]
    fn refuses_loops_urls_and_missing_files() {
        let err = expand("-r reqs/loop.txt\n", false).unwrap_err();
        assert!(matches!(err.problem, Problem::Loop(_)), "{err}");
        assert!(err.to_string().starts_with("proj/reqs/loop.txt line 1: -r ./loop.txt: includes itself"), "{err}");
        let err = expand("x\n-r https://example.invalid/r.txt\n", true).unwrap_err();
        assert!(
            err.to_string().starts_with("proj/requirements.txt line 2: -r https://") && err.problem == Problem::Url
        );
        let err = expand("-c nope.txt\n", false).unwrap_err();
        assert!(err.to_string().contains("-c nope.txt: cannot read proj/nope.txt"), "{err}");
        assert!(!has_includes("pandas\n# -r not.txt\n--hash=sha256:00\n"));
        assert!(has_includes("pandas\n-rother.txt\n"));
    }

    #[test]
    fn includes_stay_in_the_top_tree() {
        let err = expand("requests\n-r /etc/passwd\n", false).unwrap_err();
        assert_eq!((err.from.as_deref(), err.line), (Some("proj/requirements.txt"), Some(2)));
        assert_eq!(err.reference, "-r /etc/passwd");
        assert_eq!(err.problem, Problem::Absolute(PathBuf::from("proj")));
        let err = expand("-c ../outside.txt\n", false).unwrap_err();
        assert_eq!((err.reference.as_str(), &err.problem), ("-c ../outside.txt", &Problem::Climbs("proj".into())));
        let err = expand("-r link.txt\n", false).unwrap_err();
        assert!(matches!(err.problem, Problem::Escapes { .. }), "{err}");
        assert!(err.to_string().contains("resolves to /etc/passwd, outside proj"), "{err}");

        // Nested references are relative to the file naming them, confined to the top tree.
        let expanded = expand("-r reqs/up.txt\n", false).expect("up stays inside");
        assert!(expanded.requirements.ends_with("# from proj/more-pins.txt\npytz==2024.1\n"), "{expanded:?}");
        let err = expand("-r reqs/out.txt\n", false).unwrap_err();
        assert_eq!((err.from.as_deref(), err.line), (Some("proj/reqs/out.txt"), Some(1)));
        assert_eq!(err.problem, Problem::Climbs("proj".into()));
    }

    #[test]
    fn the_flag_reads_outside_files_but_still_checks_them() {
        let expanded = expand("-r reqs/out.txt\n-r link.txt\n", true).expect("allowed");
        assert_eq!(
            expanded.requirements,
            "# from proj/reqs/out.txt\n# from outside.txt\nsix\n# from proj/link.txt\nrequests\n"
        );
        let err = expand("-r /etc/passwd\n", true).unwrap_err();
        let message = err.to_string();
        assert!(
            message
                .starts_with("proj/requirements.txt line 1: -r /etc/passwd: /etc/passwd line 1 is not a requirement"),
            "{message}"
        );
        assert!(!message.contains("root:x"), "{message}");
    }
}
