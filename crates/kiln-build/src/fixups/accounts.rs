//! `/etc/passwd` and `/etc/group` with `root` and the function user `kiln`, merged into the
//! parent's files. No `/etc/shadow`: nobody logs in to a function container.

/// The non-root user functions run as.
pub const KILN_USER: &str = "kiln";
pub const KILN_UID: u32 = 1000;
pub const KILN_HOME: &str = "/home/kiln";

const ROOT_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh";
pub(crate) const KILN_PASSWD: &str = "kiln:x:1000:1000:kiln function user:/home/kiln:/usr/sbin/nologin";
const ROOT_GROUP: &str = "root:x:0:";
pub(crate) const KILN_GROUP: &str = "kiln:x:1000:";

/// Merged account files and what the merge noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    pub passwd: String,
    pub group: String,
    pub log: Vec<String>,
}

/// Keeps every line of the parent's files and appends `root` and `kiln` where no line has
/// that name; an existing entry is never changed, since files in the parent may belong to it.
pub fn merge_accounts(parent_passwd: Option<&str>, parent_group: Option<&str>) -> Accounts {
    let mut log = Vec::new();
    let passwd = merge(parent_passwd.unwrap_or_default(), &[ROOT_PASSWD, KILN_PASSWD], "/etc/passwd", &mut log);
    let group = merge(parent_group.unwrap_or_default(), &[ROOT_GROUP, KILN_GROUP], "/etc/group", &mut log);
    Accounts { passwd, group, log }
}

fn merge(parent: &str, wanted: &[&str], file: &str, log: &mut Vec<String>) -> String {
    let mut out: String = parent.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{l}\n")).collect();
    let fields = |line: &str| line.split(':').map(str::to_string).collect::<Vec<_>>();
    let existing: Vec<Vec<String>> = out.lines().map(fields).collect();
    for line in wanted {
        let new = fields(line);
        if let Some(old) = existing.iter().find(|f| f[0] == new[0]) {
            if old.get(2) != new.get(2) {
                log.push(format!(
                    "kept {file} entry {:?} from the parent (id {}, kiln uses {})",
                    new[0],
                    old.get(2).map_or("?", |s| s),
                    new[2]
                ));
            }
            continue;
        }
        if let Some(other) = existing.iter().find(|f| f.get(2) == new.get(2)) {
            log.push(format!("{file}: {:?} shares id {} with the parent's {:?}", new[0], new[2], other[0]));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_files_have_root_and_kiln() {
        let accounts = merge_accounts(None, None);
        assert_eq!(accounts.passwd, format!("{ROOT_PASSWD}\n{KILN_PASSWD}\n"));
        assert_eq!(accounts.group, "root:x:0:\nkiln:x:1000:\n");
        assert!(accounts.log.is_empty());
    }

    #[test]
    fn parent_entries_are_kept() {
        let parent = "root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n";
        let accounts = merge_accounts(Some(parent), Some("root:x:0:\n"));
        assert_eq!(accounts.passwd, format!("{parent}{KILN_PASSWD}\n"));
        assert_eq!(accounts.log.len(), 1, "{:?}", accounts.log);
        assert!(accounts.log[0].contains("node"));
    }
}
