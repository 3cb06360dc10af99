//! The npm registry this machine's npm uses, so `kiln serve` builds Node images from the same
//! mirror as the administrator's own tools without being told.

use std::path::PathBuf;

/// `npm_config_registry` (either case), then `registry=` in npm's configuration files
/// (global, then the user's, which wins, as in npm), then what the installed npm itself
/// defaults to.
pub fn machine_registry_url() -> Option<String> {
    for name in ["npm_config_registry", "NPM_CONFIG_REGISTRY"] {
        if let Ok(url) = std::env::var(name)
            && !url.trim().is_empty()
        {
            return Some(url.trim().to_string());
        }
    }
    let mut files = vec![PathBuf::from("/usr/etc/npmrc"), PathBuf::from("/etc/npmrc")];
    if let Some(file) = std::env::var_os("NPM_CONFIG_GLOBALCONFIG") {
        files.push(PathBuf::from(file));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".npmrc"));
    }
    if let Some(file) = std::env::var_os("NPM_CONFIG_USERCONFIG") {
        files.push(PathBuf::from(file));
    }
    crate::config_files::last_setting(&files, registry_in).or_else(npm_default)
}

/// The unscoped `registry` key of an npmrc (ini without sections; `;` and `#` comments).
fn registry_in(text: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with([';', '#']) {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "registry"
        {
            let value = value.trim().trim_matches('"');
            if !value.is_empty() {
                found = Some(value.to_string());
            }
        }
    }
    found
}

/// The registry npm uses when nothing is configured, asked of npm itself.
fn npm_default() -> Option<String> {
    let output = std::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && url.starts_with("http")).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_comes_from_the_unscoped_key() {
        assert_eq!(
            registry_in("fund=false\n@corp:registry=http://corp/\nregistry = http://mirror/npm/\n").as_deref(),
            Some("http://mirror/npm/")
        );
        assert_eq!(registry_in("; registry=http://old/\n"), None);
        assert_eq!(registry_in("cafile=/etc/ssl/x.crt\n"), None);
    }
}
