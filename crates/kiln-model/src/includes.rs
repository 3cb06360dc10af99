//! Files that a definition or requirements file names (`@file`, `-r`, `-c`) are read on the
//! machine of whoever runs the CLI, and their text is stored where anyone with read access
//! sees it. A file from an untrusted source could thus lift secrets off that machine, so this
//! module decides which references may be read (relative, inside the tree the top file lives
//! in, unless the user allows more) and whether what was read is what it claims to be. It
//! never touches the file system: opening files, and resolving symbolic links, is the
//! caller's [`Reader`].

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Bytes one included file may hold: the server takes no manifest larger than this either.
pub const MAX_INCLUDE_BYTES: u64 = crate::image::MAX_MANIFEST_BYTES as u64;

/// The command-line flag that lifts the tree restriction (never the format checks).
pub const ALLOW_OUTSIDE_FLAG: &str = "--allow-outside-includes";

/// What an included file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pip's requirements or constraints lines.
    Requirements,
    /// A runtime manifest: a package.json when it looks like JSON, requirements otherwise.
    Manifest,
    /// A package.json: a JSON object.
    PackageJson,
    /// A package-lock.json: a JSON object.
    Lockfile,
    /// ASCII-armoured OpenPGP public keys.
    Keyring,
}

impl Format {
    fn noun(self) -> &'static str {
        match self {
            Format::Requirements => "a requirements file",
            Format::Manifest => "a requirements.txt or package.json",
            Format::PackageJson => "a package.json",
            Format::Lockfile => "a package-lock.json",
            Format::Keyring => "an ASCII-armoured OpenPGP public key block",
        }
    }
}

/// Why a [`Reader`] gave no bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The file's real path (symbolic links resolved) leaves the tree it must stay in.
    #[error("it resolves to {}, outside {}", .real.display(), shown(.root))]
    Escapes { real: PathBuf, root: PathBuf },
    #[error("it is not a regular file")]
    NotAFile,
    #[error("{0}")]
    Io(String),
}

/// Opens files for the includes; the CLI's reads the local file system.
pub trait Reader {
    /// Up to `limit + 1` bytes of the file at `path` (so a larger file shows as larger).
    /// With `confine_to`, the file's real path, symbolic links resolved, must lie under that
    /// directory's real path: a link inside the tree may not lead out of it.
    fn read(&self, path: &Path, confine_to: Option<&Path>, limit: u64) -> Result<Vec<u8>, ReadError>;
}

/// Where includes may come from and how they are read.
pub struct Includes<'a> {
    /// The tree every include must stay in: the top file's directory, or the work directory.
    pub root: PathBuf,
    /// Lifts the tree restriction: absolute paths and paths leaving the tree are read too.
    pub allow_outside: bool,
    pub reader: &'a dyn Reader,
}

/// One reference that may not be used, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IncludeError {
    /// The file holding the reference, when it is a file.
    pub from: Option<String>,
    /// 1-based line of the reference in `from`, when known.
    pub line: Option<usize>,
    /// The reference as written, such as `-r ../reqs.txt` or `@requirements.txt`.
    pub reference: String,
    pub problem: Problem,
}

impl fmt::Display for IncludeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.from, self.line) {
            (Some(from), Some(line)) => write!(f, "{from} line {line}: ")?,
            (Some(from), None) => write!(f, "{from}: ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.reference, self.problem)
    }
}

/// What is wrong with a reference or the file it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("is a URL: download it and name the file")]
    Url,
    #[error(
        "is an absolute path, outside {root}: move the file under {root} and name it relative to the file that includes it, or pass {ALLOW_OUTSIDE_FLAG}",
        root = shown(.0)
    )]
    Absolute(PathBuf),
    #[error("climbs out of {root}: move the file under {root} or pass {ALLOW_OUTSIDE_FLAG}", root = shown(.0))]
    Climbs(PathBuf),
    #[error(
        "resolves to {}, outside {root}: move the file under {root} or pass {ALLOW_OUTSIDE_FLAG}",
        .real.display(),
        root = shown(.root)
    )]
    Escapes { real: PathBuf, root: PathBuf },
    #[error("cannot read {}: {why}", .path.display())]
    Unreadable { path: PathBuf, why: String },
    #[error("{} is not a regular file: name a file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} {error}", .path.display())]
    Content { path: PathBuf, error: ContentError },
    #[error("includes itself ({0}): remove the include that closes the loop")]
    Loop(String),
    #[error("includes go more than {0} files deep: inline some of them")]
    TooDeep(usize),
}

/// Why bytes are not the text they should be. Never quotes the bytes: a refused file may be
/// a secret, and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("is larger than the limit of {limit} bytes: split it, or name {} that is smaller", .format.noun())]
    TooLarge { limit: u64, format: Format },
    #[error("line {line} is not UTF-8 text: name {} instead", .format.noun())]
    NotUtf8 { line: usize, format: Format },
    #[error("line {line} holds a NUL byte, so this is not text: name {} instead", .format.noun())]
    Nul { line: usize, format: Format },
    #[error("line {line} is not a requirement or pip option: name a requirements file instead")]
    NotRequirement { line: usize },
    #[error("is not valid JSON (line {line} column {column}): name {} instead", .format.noun())]
    NotJson { line: usize, column: usize, format: Format },
    #[error("is not a JSON object: name {} instead", .format.noun())]
    NotObject { format: Format },
    #[error("has no BEGIN PGP PUBLIC KEY BLOCK line: name {} instead", Format::Keyring.noun())]
    NotKeyring,
}

/// A root as users read it: the current directory is `.`, not nothing.
fn shown(root: &Path) -> String {
    if root.as_os_str().is_empty() { ".".to_string() } else { root.display().to_string() }
}

impl Includes<'_> {
    /// The path `reference`, written in a file in `dir`, names, if it may be read: relative
    /// and inside the root, unless outside includes are allowed. Only the words are checked
    /// here; the reader checks where symbolic links lead.
    pub fn resolve(&self, dir: &Path, reference: &str) -> Result<PathBuf, Problem> {
        if reference.contains("://") {
            return Err(Problem::Url);
        }
        let named = Path::new(reference);
        if self.allow_outside {
            return Ok(normalise(&dir.join(named)));
        }
        if named.has_root() || named.components().any(|c| matches!(c, Component::Prefix(_))) {
            return Err(Problem::Absolute(self.root.clone()));
        }
        let path = normalise(&dir.join(named));
        if !within(&path, &normalise(&self.root)) {
            return Err(Problem::Climbs(self.root.clone()));
        }
        Ok(path)
    }

    /// The text of the file at `path` (from [`Includes::resolve`]), checked to be `format`.
    pub fn read(&self, path: &Path, format: Format) -> Result<String, Problem> {
        let confine_to = (!self.allow_outside).then_some(self.root.as_path());
        let bytes = self.reader.read(path, confine_to, MAX_INCLUDE_BYTES).map_err(|e| match e {
            ReadError::Escapes { real, root } => Problem::Escapes { real, root },
            ReadError::NotAFile => Problem::NotAFile(path.to_path_buf()),
            ReadError::Io(why) => Problem::Unreadable { path: path.to_path_buf(), why },
        })?;
        check_content(&bytes, format).map_err(|error| Problem::Content { path: path.to_path_buf(), error })
    }
}

/// `path` with `.` dropped and `..` taken back where it can be; leading `..` stay.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// Whether normalised `path` lies in normalised `root` without climbing out again.
fn within(path: &Path, root: &Path) -> bool {
    path.has_root() == root.has_root()
        && path.strip_prefix(root).is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
}

/// `bytes` as text of `format`: at most [`MAX_INCLUDE_BYTES`], UTF-8 without NUL bytes, and
/// shaped like the format, naming the first line that is not.
pub fn check_content(bytes: &[u8], format: Format) -> Result<String, ContentError> {
    if bytes.len() as u64 > MAX_INCLUDE_BYTES {
        return Err(ContentError::TooLarge { limit: MAX_INCLUDE_BYTES, format });
    }
    let line_of = |at: usize| bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(ContentError::Nul { line: line_of(at), format });
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ContentError::NotUtf8 { line: line_of(e.valid_up_to()), format })?
        .to_string();
    let format = match format {
        Format::Manifest if text.trim_start().starts_with('{') => Format::PackageJson,
        Format::Manifest => Format::Requirements,
        other => other,
    };
    match format {
        Format::Requirements | Format::Manifest => check_requirements(&text)?,
        Format::PackageJson | Format::Lockfile => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Err(ContentError::NotObject { format }),
            Err(e) => return Err(ContentError::NotJson { line: e.line(), column: e.column(), format }),
        },
        Format::Keyring => {
            if !text.lines().any(|line| line.trim() == "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                return Err(ContentError::NotKeyring);
            }
        }
    }
    Ok(text)
}

/// Whether every line reads as pip would take it: empty, a comment, an option, or a
/// requirement that starts with a distribution name. Looser than the server's parser, which
/// has the last word; tight enough that configuration, credentials and key files fail.
fn check_requirements(text: &str) -> Result<(), ContentError> {
    for (start, line) in crate::requirements_includes::logical_lines(text) {
        if !is_requirement_line(&line) {
            return Err(ContentError::NotRequirement { line: start });
        }
    }
    Ok(())
}

fn is_requirement_line(line: &str) -> bool {
    if line.is_empty() {
        return true;
    }
    if let Some(option) = line.strip_prefix('-') {
        // `-r file`, `-rfile`, `--hash=…`, `--pre`; not `-----BEGIN …`.
        let option = option.strip_prefix('-').unwrap_or(option);
        return option.starts_with(|c: char| c.is_ascii_alphabetic());
    }
    if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return false;
    }
    let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))).unwrap_or(line.len());
    let mut rest = line[name_end..].trim_start();
    if let Some(extras) = rest.strip_prefix('[') {
        let Some(close) = extras.find(']') else { return false };
        rest = extras[close + 1..].trim_start();
    }
    rest.is_empty()
        || ["===", "==", "!=", "<=", ">=", "~=", "<", ">", "(", ";", "@", "--"]
            .iter()
            .any(|start| rest.starts_with(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Files by path; a path mapped to `Err` stands for a link leading out of the tree.
    struct Files(HashMap<PathBuf, Result<Vec<u8>, ReadError>>);

    impl Reader for Files {
        fn read(&self, path: &Path, confine_to: Option<&Path>, limit: u64) -> Result<Vec<u8>, ReadError> {
            match self.0.get(path) {
                Some(Err(ReadError::Escapes { real, .. })) if confine_to.is_some() => {
                    Err(ReadError::Escapes { real: real.clone(), root: confine_to.unwrap_or(path).to_path_buf() })
                }
                Some(Err(ReadError::Escapes { .. })) => Ok(b"requests\n".to_vec()),
                Some(Err(e)) => Err(e.clone()),
                Some(Ok(bytes)) => Ok(bytes.iter().copied().take(limit as usize + 1).collect()),
                None => Err(ReadError::Io("no such file".into())),
            }
        }
    }

    fn includes(reader: &dyn Reader, allow_outside: bool) -> Includes<'_> {
        Includes { root: PathBuf::from("proj"), allow_outside, reader }
    }

    #[test]
    fn references_stay_in_the_tree() {
        let files = Files(HashMap::new());
        let confined = includes(&files, false);
        let dir = Path::new("proj/sub");
        assert_eq!(confined.resolve(dir, "a.txt"), Ok(PathBuf::from("proj/sub/a.txt")));
        assert_eq!(confined.resolve(dir, "./../b.txt"), Ok(PathBuf::from("proj/b.txt")));
        assert_eq!(confined.resolve(dir, "x/../../sub/c.txt"), Ok(PathBuf::from("proj/sub/c.txt")));
        assert_eq!(confined.resolve(dir, "/etc/passwd"), Err(Problem::Absolute(PathBuf::from("proj"))));
        assert_eq!(confined.resolve(dir, "../../outside.txt"), Err(Problem::Climbs(PathBuf::from("proj"))));
        assert_eq!(confined.resolve(dir, "../../proj-other/x.txt"), Err(Problem::Climbs(PathBuf::from("proj"))));
        assert_eq!(confined.resolve(dir, "https://example.invalid/r.txt"), Err(Problem::Url));
        let message = confined.resolve(dir, "/etc/passwd").unwrap_err().to_string();
        assert!(message.contains("under proj") && message.contains(ALLOW_OUTSIDE_FLAG), "{message}");

        // The current directory as the root: nothing may climb above it.
        let here = Includes { root: PathBuf::from("."), allow_outside: false, reader: &files };
        assert_eq!(here.resolve(Path::new("."), "r.txt"), Ok(PathBuf::from("r.txt")));
        assert_eq!(here.resolve(Path::new(""), "../r.txt"), Err(Problem::Climbs(PathBuf::from("."))));
        let absolute = Includes { root: PathBuf::from("/srv/app"), allow_outside: false, reader: &files };
        assert_eq!(absolute.resolve(Path::new("/srv/app/x"), "../y.txt"), Ok(PathBuf::from("/srv/app/y.txt")));
        assert!(absolute.resolve(Path::new("/srv/app"), "../../etc/passwd").is_err());
    }

    #[test]
    fn the_flag_allows_outside_paths_but_not_urls() {
        let files = Files(HashMap::new());
        let open = includes(&files, true);
        let dir = Path::new("proj/sub");
        assert_eq!(open.resolve(dir, "/etc/hosts"), Ok(PathBuf::from("/etc/hosts")));
        assert_eq!(open.resolve(dir, "../../outside.txt"), Ok(PathBuf::from("outside.txt")));
        assert_eq!(open.resolve(dir, "../../../up.txt"), Ok(PathBuf::from("../up.txt")));
        assert_eq!(open.resolve(dir, "file:///etc/hosts"), Err(Problem::Url));
    }

    #[test]
    fn links_out_of_the_tree_are_refused_unless_allowed() {
        let link = PathBuf::from("proj/reqs.txt");
        let escapes = ReadError::Escapes { real: "/etc/passwd".into(), root: PathBuf::new() };
        let files = Files(HashMap::from([(link.clone(), Err(escapes))]));
        let err = includes(&files, false).read(&link, Format::Requirements).unwrap_err();
        assert_eq!(err, Problem::Escapes { real: "/etc/passwd".into(), root: "proj".into() });
        let message = err.to_string();
        assert!(message.contains("resolves to /etc/passwd, outside proj") && message.contains(ALLOW_OUTSIDE_FLAG));
        assert_eq!(includes(&files, true).read(&link, Format::Requirements), Ok("requests\n".to_string()));
    }

    #[test]
    fn contents_must_be_the_expected_text() {
        let ok = "# pins\nrequests>=2 ; python_version > '3'\npandas[excel]==2.2.3 \\\n  --hash=sha256:00\n-c pins.txt\n--pre\nzope.interface\nfoo (>=1)\nbar@ https://x\n\n";
        assert_eq!(check_content(ok.as_bytes(), Format::Requirements), Ok(ok.to_string()));
        let requirements = |text: &str| check_content(text.as_bytes(), Format::Requirements);
        for (text, line) in [
            ("requests\nroot:x:0:0:root:/root:/bin/bash\n", 2),
            ("[default]\naws_access_key_id = AKIA\n", 1),
            ("token = \"kiln_abc\"\n", 1),
            ("KEY=value\n", 1),
            ("a\nb\n-----BEGIN OPENSSH PRIVATE KEY-----\n", 3),
            ("machine example.org login u password p\n", 1),
            ("{\"a\": 1}\n", 1),
        ] {
            assert_eq!(requirements(text), Err(ContentError::NotRequirement { line }), "{text}");
        }
        let message = requirements("x\nroot:x:0:0:root:/root:/bin/bash\n").unwrap_err().to_string();
        assert!(message.starts_with("line 2 is not a requirement") && !message.contains("root"), "{message}");
        assert_eq!(requirements("a\nb\0c\n"), Err(ContentError::Nul { line: 2, format: Format::Requirements }));
        assert_eq!(
            check_content(b"a\nb\n\xff\xfe", Format::Requirements),
            Err(ContentError::NotUtf8 { line: 3, format: Format::Requirements })
        );
        let big = "requests\n".repeat(MAX_INCLUDE_BYTES as usize / 9 + 1);
        let message = requirements(&big).unwrap_err().to_string();
        assert!(message.contains(&MAX_INCLUDE_BYTES.to_string()), "{message}");

        assert!(check_content(b"{\"name\": \"app\"}", Format::PackageJson).is_ok());
        assert!(check_content(b" {\"name\": \"app\"}", Format::Manifest).is_ok());
        assert!(check_content(b"requests\n", Format::Manifest).is_ok());
        assert_eq!(check_content(b"[1]", Format::Lockfile), Err(ContentError::NotObject { format: Format::Lockfile }));
        assert!(matches!(check_content(b"root:x:0:0", Format::Lockfile), Err(ContentError::NotJson { line: 1, .. })));
        assert!(matches!(check_content(b"{ nope", Format::Manifest), Err(ContentError::NotJson { .. })));
        let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n";
        assert!(check_content(key.as_bytes(), Format::Keyring).is_ok());
        assert_eq!(check_content(b"ssh-ed25519 AAAA", Format::Keyring), Err(ContentError::NotKeyring));
    }

    #[test]
    fn read_names_the_file_and_checks_its_format() {
        let files = Files(HashMap::from([
            (PathBuf::from("proj/passwd"), Ok(b"root:x:0:0:root:/root:/bin/bash\n".to_vec())),
            (PathBuf::from("proj/dev"), Err(ReadError::NotAFile)),
        ]));
        let confined = includes(&files, true);
        let err = confined.read(Path::new("proj/passwd"), Format::Requirements).unwrap_err();
        assert_eq!(
            err.to_string(),
            "proj/passwd line 1 is not a requirement or pip option: name a requirements file instead"
        );
        let err = confined.read(Path::new("proj/dev"), Format::Requirements).unwrap_err();
        assert_eq!(err, Problem::NotAFile(PathBuf::from("proj/dev")));
        let err = confined.read(Path::new("proj/gone"), Format::Requirements).unwrap_err();
        assert!(err.to_string().starts_with("cannot read proj/gone: no such file"), "{err}");
    }
}
