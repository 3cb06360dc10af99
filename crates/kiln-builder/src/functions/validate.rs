//! Refuses function code the image's function server could not load, before anything is
//! written: the runtime reads `KILN_FUNCTION_MODULE` and `KILN_FUNCTION_HANDLER` from the
//! image's environment, so what it will look for is known from the image's config.

use kiln_archive::tree::{Entry, EntryKind};
use serde_json::Value;

/// What an image's function server loads, read from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// `python3` or `nodejs` when the entrypoint is one of Kiln's function servers.
    pub language: Option<&'static str>,
    /// `KILN_FUNCTION_MODULE`, without its extension.
    pub module: String,
    /// `KILN_FUNCTION_HANDLER`.
    pub handler: String,
    /// `KILN_FUNCTION_DIR`.
    pub dir: String,
}

impl Runtime {
    /// The file the server loads, relative to the function directory.
    pub fn module_file(&self) -> Option<String> {
        match self.language {
            Some("python3") => Some(format!("{}.py", self.module)),
            Some("nodejs") => Some(format!("{}.js", self.module)),
            _ => None,
        }
    }

    /// Reads an image config (OCI or Docker); unknown fields and shapes fall back to the
    /// defaults Kiln's function servers use.
    pub fn from_config(config: &[u8]) -> Runtime {
        let value: Value = serde_json::from_slice(config).unwrap_or(Value::Null);
        let inner = value.get("config");
        let env: Vec<&str> = inner
            .and_then(|c| c.get("Env"))
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let var = |name: &str, default: &str| {
            env.iter()
                .rev()
                .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
                .to_string()
        };
        let entrypoint: Vec<&str> = inner
            .and_then(|c| c.get("Entrypoint"))
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let language = if entrypoint.iter().any(|a| a.ends_with("/usr/lib/kiln/server.py")) {
            Some("python3")
        } else if entrypoint.iter().any(|a| a.ends_with("/usr/lib/kiln/server.js")) {
            Some("nodejs")
        } else {
            None
        };
        Runtime {
            language,
            module: var("KILN_FUNCTION_MODULE", "handler"),
            handler: var("KILN_FUNCTION_HANDLER", "handle"),
            dir: var("KILN_FUNCTION_DIR", kiln_build::plugins::FUNCTION_DIR),
        }
    }
}

/// Why code cannot run on the image, said so the user knows what to change.
pub fn check_code(image: &str, runtime: &Runtime, entries: &[Entry]) -> Result<(), String> {
    let files: Vec<&Entry> = entries.iter().filter(|e| !matches!(e.kind, EntryKind::Directory)).collect();
    let expects = match runtime.module_file() {
        Some(file) => format!("image {image:?} runs {} functions from {file}", runtime.language.unwrap_or_default()),
        None => format!("image {image:?} has no Kiln function server"),
    };
    if files.is_empty() {
        return Err(format!("the function code is empty: {expects}; push the directory holding it"));
    }
    if runtime.dir != kiln_build::plugins::FUNCTION_DIR {
        return Err(format!(
            "image {image:?} loads functions from {} (KILN_FUNCTION_DIR), but pushed code goes to {}: remove KILN_FUNCTION_DIR from the image's environment",
            runtime.dir,
            kiln_build::plugins::FUNCTION_DIR
        ));
    }
    let (Some(language), Some(file)) = (runtime.language, runtime.module_file()) else { return Ok(()) };
    let found = files.iter().find(|e| e.path == file);
    let Some(found) = found else {
        let other = match language {
            "python3" => format!("{}.js", runtime.module),
            _ => format!("{}.py", runtime.module),
        };
        let hint = if files.iter().any(|e| e.path == other) {
            format!(
                "; the code has {other}, which is for a {} image: push it onto one",
                if language == "python3" { "nodejs" } else { "python3" }
            )
        } else {
            String::new()
        };
        return Err(format!(
            "the function code has no {file}: {expects} (KILN_FUNCTION_MODULE={}){hint}; add {file} with {} in it, or set KILN_FUNCTION_MODULE in the image's environment",
            runtime.module,
            handler_example(language, &runtime.handler),
        ));
    };
    let text = match &found.kind {
        EntryKind::File { data } => String::from_utf8_lossy(data).into_owned(),
        // A link's target is checked by the runtime; its name is what the server opens.
        _ => return Ok(()),
    };
    let defined = match language {
        "python3" => python_defines(&text, &runtime.handler),
        _ => mentions(&text, &runtime.handler),
    };
    if !defined {
        return Err(format!(
            "{file} does not define {}: the {language} function server calls {}(context, payload) in it (KILN_FUNCTION_HANDLER={}); add {}, or set KILN_FUNCTION_HANDLER in the image's environment",
            runtime.handler,
            runtime.handler,
            runtime.handler,
            handler_example(language, &runtime.handler),
        ));
    }
    Ok(())
}

fn handler_example(language: &str, handler: &str) -> String {
    match language {
        "python3" => format!("`def {handler}(context, payload):`"),
        _ => format!("`exports.{handler} = (context, payload) => …`"),
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether a Python module binds `name`: a `def`/`async def`/`class`, an assignment or an
/// import. Not a parser (the server may have no Python); a syntax check happens in the CLI.
fn python_defines(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        for keyword in ["def ", "async def ", "class "] {
            if let Some(rest) = line.strip_prefix(keyword) {
                let ident: String = rest.trim_start().chars().take_while(|c| is_ident(*c)).collect();
                if ident == name {
                    return true;
                }
            }
        }
        if line.starts_with("from ") || line.starts_with("import ") {
            return line.split(|c: char| !is_ident(c)).any(|token| token == name);
        }
        line.strip_prefix(name).is_some_and(|rest| {
            let rest = rest.trim_start();
            (rest.starts_with('=') && !rest.starts_with("==")) || rest.starts_with(':')
        })
    })
}

/// Whether `name` occurs as a whole identifier (a Node module must export it somehow).
fn mentions(text: &str, name: &str) -> bool {
    text.split(|c: char| !is_ident(c)).any(|token| token == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File { data: text.as_bytes().to_vec().into() },
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn config(entrypoint: &str, env: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"config": {"Entrypoint": ["/usr/bin/x", entrypoint], "Env": env}}))
            .unwrap_or_default()
    }

    fn python() -> Runtime {
        Runtime::from_config(&config("/usr/lib/kiln/server.py", &["PATH=/usr/bin"]))
    }

    #[test]
    fn reads_what_the_server_loads_from_the_config() {
        let runtime = python();
        assert_eq!(runtime.language, Some("python3"));
        assert_eq!(runtime.module_file().as_deref(), Some("handler.py"));
        assert_eq!(runtime.handler, "handle");
        let node = Runtime::from_config(&config(
            "/usr/lib/kiln/server.js",
            &["KILN_FUNCTION_MODULE=main", "KILN_FUNCTION_HANDLER=run"],
        ));
        assert_eq!(
            (node.language, node.module_file().as_deref(), node.handler.as_str()),
            (Some("nodejs"), Some("main.js"), "run")
        );
        assert_eq!(Runtime::from_config(b"not json").language, None);
    }

    #[test]
    fn empty_code_is_refused() {
        let dir = Entry { path: "lib".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 };
        let error = check_code("img", &python(), &[dir]).expect_err("empty");
        assert!(error.contains("empty") && error.contains("handler.py"), "{error}");
        let unknown = Runtime::from_config(b"{}");
        assert!(check_code("img", &unknown, &[]).is_err());
        assert!(check_code("img", &unknown, &[file("anything", "")]).is_ok(), "no server: only emptiness is known");
    }

    #[test]
    fn node_code_on_a_python_image_is_refused_by_name() {
        let error = check_code("img", &python(), &[file("handler.js", "exports.handle = () => 1;")]).expect_err("js");
        assert!(error.contains("no handler.py") && error.contains("nodejs image"), "{error}");
    }

    #[test]
    fn the_handler_must_be_defined() {
        let error = check_code("img", &python(), &[file("handler.py", "def other(c, p):\n    return 1\n")])
            .expect_err("no handle");
        assert!(error.contains("does not define handle"), "{error}");
        for good in [
            "def handle(context, payload):\n    return 1\n",
            "async def handle (c, p): pass\n",
            "from impl import run as handle\n",
            "handle = make()\n",
            "class handle:\n    pass\n",
        ] {
            assert!(check_code("img", &python(), &[file("handler.py", good)]).is_ok(), "{good}");
        }
        assert!(check_code("img", &python(), &[file("handler.py", "if handle == 1: pass\n")]).is_err());
        let node = Runtime::from_config(&config("/usr/lib/kiln/server.js", &[]));
        assert!(check_code("img", &node, &[file("handler.js", "module.exports = { handle };")]).is_ok());
        let error = check_code("img", &node, &[file("handler.js", "module.exports = { handler };")]).expect_err("js");
        assert!(error.contains("exports.handle"), "{error}");
        let error = check_code("img", &node, &[file("handler.py", "def handle(c, p): pass")]).expect_err("py");
        assert!(error.contains("no handler.js") && error.contains("python3 image"), "{error}");
    }
}
