//! The Python package index this machine's pip uses, so `kiln serve` builds from the same
//! mirror as the administrator's own tools without being told.

use std::path::PathBuf;

/// `PIP_INDEX_URL`, then `index-url` in pip's configuration files (later files win, as in
/// pip), then what the installed pip itself defaults to.
pub fn machine_index_url() -> Option<String> {
    if let Ok(url) = std::env::var("PIP_INDEX_URL")
        && !url.trim().is_empty()
    {
        return Some(url.trim().to_string());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut files = vec![PathBuf::from("/etc/xdg/pip/pip.conf"), PathBuf::from("/etc/pip.conf")];
    if let Some(home) = &home {
        files.push(home.join(".pip/pip.conf"));
        files.push(home.join(".config/pip/pip.conf"));
    }
    if let Some(file) = std::env::var_os("PIP_CONFIG_FILE") {
        files.push(PathBuf::from(file));
    }
    crate::config_files::last_setting(&files, index_url_in).or_else(pip_default)
}

/// `index-url` (or `index_url`) in the `[global]` or `[install]` section of an INI file.
fn index_url_in(text: &str) -> Option<String> {
    let mut section = String::new();
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).trim().to_ascii_lowercase();
            continue;
        }
        if section != "global" && section != "install" {
            continue;
        }
        if let Some((key, value)) = line.split_once(['=', ':'])
            && matches!(key.trim(), "index-url" | "index_url")
        {
            found = Some(value.trim().to_string());
        }
    }
    found
}

/// The index pip uses when nothing is configured, asked of pip itself.
fn pip_default() -> Option<String> {
    let output = std::process::Command::new("python3")
        .args(["-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"])
        .output()
        .ok()?;
    let url = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && url.starts_with("http")).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_url_comes_from_global_or_install() {
        assert_eq!(
            index_url_in("[global]\ncert = x\nindex-url = http://mirror/simple\n").as_deref(),
            Some("http://mirror/simple")
        );
        assert_eq!(index_url_in("[install]\nindex_url=http://a/simple\n").as_deref(), Some("http://a/simple"));
        assert_eq!(index_url_in("[freeze]\nindex-url = http://b\n"), None);
    }
}
