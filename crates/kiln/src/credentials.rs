//! The CLI's stored login: which server to talk to and its token, in a file only the user
//! can read (`$XDG_CONFIG_HOME/kiln/credentials.toml`, else `~/.config/kiln/…`).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8470";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The server `kiln login` last stored.
    pub current: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, Server>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub token: String,
}

pub fn path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set: set XDG_CONFIG_HOME"))?)
            .join(".config"),
    };
    Ok(base.join("kiln").join("credentials.toml"))
}

pub fn load() -> Result<Credentials> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not valid: fix or delete it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the file with mode 0600 from the start, so the token is never readable by others.
pub fn save(credentials: &Credentials) -> Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().ok_or_else(|| anyhow!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = toml::to_string(credentials).context("rendering the credentials")?;
    let temp = path.with_extension("toml.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(path)
}

/// The server and token a command uses: flags and KILN_* first, then the stored login.
pub fn resolve(server: Option<&str>, token: Option<&str>) -> Result<(String, Option<String>)> {
    let stored = load()?;
    let server =
        server.map(str::to_string).or_else(|| stored.current.clone()).unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let token =
        token.map(str::to_string).or_else(|| stored.servers.get(server.trim_end_matches('/')).map(|s| s.token.clone()));
    Ok((server, token))
}
