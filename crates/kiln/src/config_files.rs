//! Reading a setting the way pip and npm do: several configuration files, the later ones
//! winning, so Kiln picks up the same mirrors as the machine's own tools.

use std::path::PathBuf;

/// The value `parse` finds in the last of `files` that has one (missing files are skipped).
pub fn last_setting(files: &[PathBuf], parse: impl Fn(&str) -> Option<String>) -> Option<String> {
    files.iter().filter_map(|file| std::fs::read_to_string(file).ok()).filter_map(|text| parse(&text)).last()
}
