//! Packs a function's directory for `kiln function push`: only what the function needs goes
//! into its layer. `.kilnignore` (gitignore syntax) adds to defaults that leave out Kiln
//! definition files, dependency lists the image already installed, version control, caches
//! and local environments; a `!pattern` line in it takes a default back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The ignore file read from the top of the code directory.
pub const IGNORE_FILE: &str = ".kilnignore";

/// Left out unless `.kilnignore` takes them back. `package.json` stays: Node reads its
/// `type` (CommonJS or ES module) and `main` when it loads the handler, while
/// `package-lock.json` is read only by npm, which already ran when the image was built.
pub const DEFAULTS: &[&str] = &[
    "images.yaml",
    "images.yml",
    "*.kiln.yaml",
    "*.kiln.yml",
    "requirements.txt",
    "constraints.txt",
    "package-lock.json",
    "npm-shrinkwrap.json",
    ".kilnignore",
    ".git/",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".venv/",
    "node_modules/",
    ".DS_Store",
];

/// What was packed.
pub struct Packed {
    pub tar: Vec<u8>,
    /// Regular files packed, relative to the directory.
    pub files: Vec<PathBuf>,
    /// Paths left out (directories once, not their contents).
    pub left_out: Vec<PathBuf>,
}

fn matcher(dir: &Path) -> Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(dir);
    for line in DEFAULTS {
        builder.add_line(None, line).map_err(|e| anyhow!("default ignore pattern {line:?}: {e}"))?;
    }
    let file = dir.join(IGNORE_FILE);
    if file.exists() {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        for (number, line) in text.lines().enumerate() {
            builder
                .add_line(Some(file.clone()), line)
                .map_err(|e| anyhow!("{} line {}: {e}: write a gitignore-style pattern", file.display(), number + 1))?;
        }
    }
    builder.build().map_err(|e| anyhow!("{}: {e}", file.display()))
}

/// A top-level YAML file that holds Kiln definitions (`kind:` documents or the seed's image
/// format): it describes the image, so the function does not need it.
fn is_definition(path: &Path) -> bool {
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= 4 << 20);
    if !yaml || !small {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    let Ok(documents) = kiln_model::definition::yaml::parse_documents(&text) else { return false };
    let kinds: Vec<&str> = kiln_model::definition::Kind::ALL.iter().map(|k| k.as_str()).collect();
    !documents.is_empty()
        && documents.iter().all(|doc| match doc.value.get("kind").and_then(|k| k.as_str()) {
            Some(kind) => kinds.contains(&kind),
            None => {
                doc.value.get("name").is_some()
                    && ["parent", "system-packages", "runtime-manifest"].iter().any(|k| doc.value.get(k).is_some())
            }
        })
}

/// Tars `dir` (relative names, symlinks kept as links) without what is ignored.
pub fn pack(dir: &Path) -> Result<Packed> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist: give --code the directory holding the function's code (handler.py or handler.js)",
            dir.display()
        ),
        Err(e) => bail!("cannot read {}: {e}: give --code a directory you can read", dir.display()),
        Ok(meta) if !meta.is_dir() => bail!(
            "{} is not a directory: give --code the directory holding the function's code, not a file in it",
            dir.display()
        ),
        Ok(_) => {}
    }
    let ignore = matcher(dir)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut packed = Packed { tar: Vec::new(), files: Vec::new(), left_out: Vec::new() };
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let full = dir.join(&relative);
        let mut children: Vec<_> = std::fs::read_dir(&full)
            .with_context(|| format!("cannot read {}", full.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", full.display()))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = relative.join(child.file_name());
            let path = child.path();
            let kind = child.file_type().with_context(|| format!("cannot read {}", path.display()))?;
            let ignored = ignore.matched_path_or_any_parents(&path, kind.is_dir()).is_ignore()
                || (relative.as_os_str().is_empty() && kind.is_file() && is_definition(&path));
            if ignored {
                packed.left_out.push(name);
                continue;
            }
            if kind.is_dir() {
                builder.append_dir(&name, &path).with_context(|| format!("cannot pack {}", path.display()))?;
                pending.push(name);
            } else {
                builder
                    .append_path_with_name(&path, &name)
                    .with_context(|| format!("cannot pack {}", path.display()))?;
                if kind.is_file() {
                    packed.files.push(name);
                }
            }
        }
    }
    packed.tar = builder.into_inner().with_context(|| format!("packing {}", dir.display()))?;
    if packed.files.is_empty() {
        let note = if packed.left_out.is_empty() {
            String::new()
        } else {
            format!(" ({IGNORE_FILE} and its defaults left out {})", list(&packed.left_out))
        };
        bail!(
            "{} holds no files to push{note}: put the function's code in it (handler.py for python3 images, handler.js for nodejs)",
            dir.display()
        );
    }
    Ok(packed)
}

pub fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Compiles the Python files about to be pushed with the local `python3`, so a syntax error
/// is reported before upload instead of on the function's first call. Nothing is written
/// (no `__pycache__`). `Ok(false)` when there is no `python3` to ask.
pub fn check_python(dir: &Path, files: &[PathBuf]) -> Result<bool> {
    const SCRIPT: &str = "import sys\nfailed = False\nfor path in sys.argv[1:]:\n    try:\n        with open(path, 'rb') as f:\n            compile(f.read(), path, 'exec', dont_inherit=True)\n    except SyntaxError as e:\n        failed = True\n        print('%s line %s: %s' % (path, e.lineno, e.msg))\n    except ValueError as e:\n        failed = True\n        print('%s: %s' % (path, e))\nsys.exit(1 if failed else 0)\n";
    let python: Vec<&PathBuf> = files.iter().filter(|f| f.extension().is_some_and(|e| e == "py")).collect();
    if python.is_empty() {
        return Ok(true);
    }
    let output =
        match std::process::Command::new("python3").arg("-c").arg(SCRIPT).args(&python).current_dir(dir).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(anyhow!("cannot run python3 to check the function's syntax: {e}")),
        };
    if !output.status.success() {
        let problems = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let problems =
            if problems.is_empty() { String::from_utf8_lossy(&output.stderr).trim().to_string() } else { problems };
        bail!("the function's Python code does not compile ({problems}): fix it and push again");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        let mut names: Vec<String> = archive
            .entries()
            .expect("tar entries")
            .map(|e| {
                e.expect("tar entry")
                    .path()
                    .expect("entry path")
                    .display()
                    .to_string()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn defaults_and_kilnignore_decide_what_goes_in() {
        let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = temp.path();
        write(dir, "handler.py", "def handle(c, p):\n    return 1\n");
        write(dir, "lib/util.py", "X = 1\n");
        write(dir, "lib/__pycache__/util.cpython-311.pyc", "");
        write(dir, "requirements.txt", "pandas\n");
        write(dir, "images.yaml", "kind: Image\nname: x\nbaseImageName: python3\n");
        write(dir, "pg.yaml", "name: pg\nparent: python3\n");
        write(dir, "settings.yaml", "threshold: 3\n");
        write(dir, "package.json", "{\"type\": \"module\"}\n");
        write(dir, "package-lock.json", "{}\n");
        write(dir, ".git/HEAD", "ref: main\n");
        write(dir, "secrets/key.pem", "x\n");
        write(dir, "notes.md", "x\n");
        write(dir, ".kilnignore", "secrets/\n*.md\n!requirements.txt\n");
        let packed = pack(dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entries(&packed.tar),
            ["handler.py", "lib", "lib/util.py", "package.json", "requirements.txt", "settings.yaml"],
            "left out: {}",
            list(&packed.left_out)
        );
        assert!(packed.left_out.iter().any(|p| p == Path::new("pg.yaml")), "seed definitions are found by content");
    }

    #[test]
    fn missing_empty_and_file_directories_are_refused_by_name() {
        let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = temp.path().join("nonexistent");
        let error = pack(&missing).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(&missing.display().to_string()) && error.contains("does not exist"), "{error}");
        let empty = temp.path().join("empty");
        std::fs::create_dir(&empty).unwrap_or_else(|e| panic!("{e}"));
        write(&empty, "requirements.txt", "x\n");
        let error = pack(&empty).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("holds no files") && error.contains("requirements.txt"), "{error}");
        let error = pack(&empty.join("requirements.txt")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("is not a directory"), "{error}");
    }

    #[test]
    fn python_syntax_errors_are_found_before_upload() {
        let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(temp.path(), "handler.py", "def handle(c, p)\n    return 1\n");
        let files = vec![PathBuf::from("handler.py")];
        match check_python(temp.path(), &files) {
            Ok(false) => {} // no python3 on this machine: nothing to assert
            Ok(true) => panic!("a syntax error passed"),
            Err(e) => assert!(e.to_string().contains("handler.py line 1"), "{e}"),
        }
        assert!(!temp.path().join("__pycache__").exists(), "checking writes nothing");
        write(temp.path(), "handler.py", "def handle(c, p):\n    return 1\n");
        assert!(check_python(temp.path(), &files).is_ok());
    }
}
