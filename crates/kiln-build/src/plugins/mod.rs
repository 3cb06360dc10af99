//! The language plugins of function images: which Debian packages make the root image, the
//! function server that goes on top, and the runtime settings that start it. The servers use
//! only their language's standard library, so the packages are the whole runtime.

use kiln_archive::tree::{Entry, EntryKind};

use crate::fixups::{KILN_UID, KILN_USER};
use crate::settings::ImageSettings;

/// The Python server, as installed at `/usr/lib/kiln/server.py`.
pub const PYTHON_SERVER: &str = include_str!("server.py");
/// The Node.js server, as installed at `/usr/lib/kiln/server.js`.
pub const NODE_SERVER: &str = include_str!("server.js");
/// Where users' function code is mounted or copied; owned by the `kiln` user.
pub const FUNCTION_DIR: &str = "/function";

/// Where npm packages are laid out (`<prefix>/node_modules`), image-root relative; images
/// that have any point `NODE_PATH` at it so `require` finds them from `/function`.
pub const NODE_PREFIX: &str = "opt/kiln/node";

/// A function language Kiln has a server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Python3,
    Nodejs,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Python3, Language::Nodejs];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python3 => "python3",
            Language::Nodejs => "nodejs",
        }
    }

    pub fn parse(text: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

/// Everything a language contributes to a root image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    pub language: Language,
    /// Debian packages to resolve (with their dependencies) for the root image.
    pub packages: Vec<&'static str>,
    /// The server file (root-owned, 0644) and the function directory (owned by `kiln`), for
    /// [`crate::AssembleInput::extra_files`].
    pub files: Vec<Entry>,
    /// Defaults to put under the user's settings with [`ImageSettings::overlay`].
    pub settings: ImageSettings,
}

/// The plugin of `language`.
/// The port root images' function servers listen on (`$PORT`), as Dispatch, OpenWhisk and
/// Knative use.
pub const FUNCTION_PORT: u16 = 8080;

/// The `PATH` of a root image, as Debian's login shells set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn plugin(language: Language) -> Plugin {
    let (runtime, interpreter, server_path, server) = match language {
        Language::Python3 => ("python3", "/usr/bin/python3", "usr/lib/kiln/server.py", PYTHON_SERVER),
        Language::Nodejs => ("nodejs", "/usr/bin/node", "usr/lib/kiln/server.js", NODE_SERVER),
    };
    let mut env = vec![
        // Debian's default search path: an image with no PATH leaves each runtime to guess.
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("PORT".to_string(), FUNCTION_PORT.to_string()),
        ("KILN_FUNCTION_DIR".to_string(), FUNCTION_DIR.to_string()),
        ("KILN_FUNCTION_MODULE".to_string(), "handler".to_string()),
        ("KILN_FUNCTION_HANDLER".to_string(), "handle".to_string()),
    ];
    if language == Language::Python3 {
        // Logs reach the platform as they are written, not when a buffer fills.
        env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
    }
    let files = vec![
        Entry {
            path: server_path.to_string(),
            kind: EntryKind::File { data: server.as_bytes().to_vec().into() },
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
        Entry {
            path: FUNCTION_DIR.trim_start_matches('/').to_string(),
            kind: EntryKind::Directory,
            mode: 0o755,
            uid: KILN_UID,
            gid: KILN_UID,
        },
    ];
    Plugin {
        language,
        packages: vec![runtime, "base-files", "netbase", "tzdata"],
        files,
        settings: ImageSettings {
            env,
            user: Some(KILN_USER.to_string()),
            entrypoint: Some(vec![interpreter.to_string(), format!("/{server_path}")]),
            working_dir: Some(FUNCTION_DIR.to_string()),
            exposed_ports: vec![format!("{FUNCTION_PORT}/tcp")],
            ..ImageSettings::default()
        },
    }
}

#[cfg(test)]
mod tests;
