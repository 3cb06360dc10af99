//! `update-alternatives --install` without running postinst: the lines are read from the
//! scripts and the winning symlinks written into the metadata layer, as Debian's auto mode
//! would choose them.

use std::collections::BTreeMap;

/// One `--install` (or `--slave`) request found in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub package: String,
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    /// `--slave LINK NAME PATH` that follow the `--install`.
    pub slaves: Vec<(String, String, String)>,
}

/// What parsing a script found: requests, plus lines it could not use (with the reason).
#[derive(Debug, Default)]
pub struct Parsed {
    pub found: Vec<Alternative>,
    pub unusable: Vec<String>,
}

/// Reads `update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]…`
/// commands from a shell script. Lines that use variables or command substitution cannot be
/// evaluated without a shell and are reported instead.
pub fn parse_script(package: &str, script: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let joined = script.replace("\\\n", " ");
    for line in joined.lines() {
        let Some(at) = line.find("update-alternatives") else { continue };
        let words: Vec<&str> = line[at..]
            .split_whitespace()
            .take_while(|w| !matches!(*w, ";" | "&&" | "||" | "|"))
            .map(|w| w.trim_end_matches(';').trim_matches(['"', '\'']))
            .collect();
        let Some(install) = words.iter().position(|w| *w == "--install") else { continue };
        let args = &words[install + 1..];
        if args.iter().any(|w| w.contains('$') || w.contains('`')) {
            parsed.unusable.push(format!("{package}: cannot evaluate {:?} without a shell", line.trim()));
            continue;
        }
        let [link, name, path, priority, rest @ ..] = args else {
            parsed.unusable.push(format!("{package}: incomplete {:?}", line.trim()));
            continue;
        };
        let Ok(priority) = priority.parse() else {
            parsed.unusable.push(format!("{package}: priority {priority:?} is not a number"));
            continue;
        };
        let slaves = rest
            .chunks(4)
            .filter_map(|chunk| match chunk {
                ["--slave", l, n, p, ..] => Some((l.to_string(), n.to_string(), p.to_string())),
                _ => None,
            })
            .collect();
        parsed.found.push(Alternative {
            package: package.to_string(),
            link: link.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            priority,
            slaves,
        });
    }
    parsed
}

/// The alternative auto mode picks for each name: highest priority, ties to the smaller path
/// so the choice does not depend on package order.
pub fn choose(found: &[Alternative]) -> BTreeMap<String, &Alternative> {
    let mut best: BTreeMap<String, &Alternative> = BTreeMap::new();
    for candidate in found {
        let replace = match best.get(&candidate.name) {
            None => true,
            Some(current) => {
                (candidate.priority, std::cmp::Reverse(&candidate.path))
                    > (current.priority, std::cmp::Reverse(&current.path))
            }
        };
        if replace {
            best.insert(candidate.name.clone(), candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = configure ]; then
    update-alternatives --install /usr/bin/pager pager /usr/bin/less 77 \
        --slave /usr/share/man/man1/pager.1.gz pager.1.gz /usr/share/man/man1/less.1.gz
    update-alternatives --install /usr/bin/x x "$DIR/x" 10
fi
"#;

    #[test]
    fn reads_install_lines_with_slaves() {
        let parsed = parse_script("less", POSTINST);
        assert_eq!(parsed.found.len(), 1);
        let alt = &parsed.found[0];
        assert_eq!(
            (alt.link.as_str(), alt.name.as_str(), alt.path.as_str(), alt.priority),
            ("/usr/bin/pager", "pager", "/usr/bin/less", 77)
        );
        assert_eq!(
            alt.slaves,
            [("/usr/share/man/man1/pager.1.gz".into(), "pager.1.gz".into(), "/usr/share/man/man1/less.1.gz".into())]
        );
        assert_eq!(parsed.unusable.len(), 1, "{:?}", parsed.unusable);
    }

    #[test]
    fn highest_priority_wins() {
        let mut found = parse_script("less", POSTINST).found;
        found.extend(parse_script("more", "update-alternatives --install /usr/bin/pager pager /bin/more 50\n").found);
        found.extend(
            parse_script("most", "update-alternatives --install /usr/bin/pager pager /usr/bin/most 77\n").found,
        );
        assert_eq!(choose(&found)["pager"].path, "/usr/bin/less");
    }
}
