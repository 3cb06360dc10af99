//! Opens the files that definitions and requirements files include, for
//! `kiln_model::includes`: the words of a reference are checked there, but only the file
//! system knows where symbolic links lead, so a link inside the tree that points out of it
//! is caught here.

use std::io::Read;
use std::path::Path;

use kiln_model::includes::{ReadError, Reader};

/// The local file system.
pub struct LocalFiles;

impl Reader for LocalFiles {
    fn read(&self, path: &Path, confine_to: Option<&Path>, limit: u64) -> Result<Vec<u8>, ReadError> {
        let io = |e: std::io::Error| ReadError::Io(e.to_string());
        let real = std::fs::canonicalize(path).map_err(io)?;
        if let Some(root) = confine_to {
            // The current directory is given as an empty path, which canonicalize refuses.
            let root_or_here = if root.as_os_str().is_empty() { Path::new(".") } else { root };
            let real_root = std::fs::canonicalize(root_or_here).map_err(io)?;
            if !real.starts_with(&real_root) {
                return Err(ReadError::Escapes { real, root: root.to_path_buf() });
            }
        }
        // Opening the resolved path reads what was checked; a FIFO or device would block or
        // never end, so only regular files are read.
        let file = std::fs::File::open(&real).map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(ReadError::NotAFile);
        }
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use kiln_model::includes::{Format, Includes, Problem};

    use super::*;

    #[test]
    fn links_may_not_lead_out_of_the_tree() {
        let top = tempfile::tempdir().expect("temp dir");
        let root = top.path().join("proj");
        std::fs::create_dir_all(root.join("inner")).expect("mkdir");
        std::fs::write(top.path().join("outside.txt"), "six\n").expect("write");
        std::fs::write(root.join("inner/pins.txt"), "requests\n").expect("write");
        symlink(top.path().join("outside.txt"), root.join("out.txt")).expect("symlink");
        symlink(top.path(), root.join("up")).expect("symlink");
        symlink("inner/pins.txt", root.join("in.txt")).expect("symlink");

        let confined = Includes { root: root.clone(), allow_outside: false, reader: &LocalFiles };
        let read = |includes: &Includes<'_>, reference: &str| {
            let path = includes.resolve(&includes.root, reference)?;
            includes.read(&path, Format::Requirements)
        };
        let real_outside = std::fs::canonicalize(top.path().join("outside.txt")).expect("real path");
        for reference in ["out.txt", "up/outside.txt", "inner/../up/outside.txt"] {
            assert_eq!(
                read(&confined, reference),
                Err(Problem::Escapes { real: real_outside.clone(), root: root.clone() }),
                "{reference}"
            );
        }
        assert_eq!(read(&confined, "in.txt"), Ok("requests\n".to_string()), "a link inside the tree is followed");
        let open = Includes { root: root.clone(), allow_outside: true, reader: &LocalFiles };
        assert_eq!(read(&open, "out.txt"), Ok("six\n".to_string()));
        assert_eq!(read(&open, "up/outside.txt"), Ok("six\n".to_string()));
        assert_eq!(read(&open, "inner"), Err(Problem::NotAFile(root.join("inner"))));
        assert!(matches!(read(&open, "/dev/zero"), Err(Problem::NotAFile(_))), "devices are not read");
    }

    #[test]
    fn reads_stop_after_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'a'; 100]).expect("write");
        let bytes = LocalFiles.read(&big, Some(dir.path()), 10).expect("read");
        assert_eq!(bytes.len(), 11, "one byte past the limit shows the file is too large");
        let missing = LocalFiles.read(&PathBuf::from("/nonexistent/x"), None, 10);
        assert!(matches!(missing, Err(ReadError::Io(_))), "{missing:?}");
    }
}
