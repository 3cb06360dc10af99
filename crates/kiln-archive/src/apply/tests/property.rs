//! Random layers — climbing and absolute names, symlink chains, whiteouts, hard links — are
//! applied to a temporary root; whatever the applier accepts or refuses, nothing beside the
//! root may be created, changed or removed.

use proptest::prelude::*;

use super::*;

const TARGETS: &[&str] = &[
    "a",
    "b",
    "..",
    "../..",
    "/",
    "a/b",
    "/a",
    "@OUT",
    "@OUT/dir",
    "../@OUT",
    "b/../..",
    "a/../../x",
    "dir",
    "@OUT/canary",
    "@OUT/dir/victim",
];

/// Few names, so entries of different layers collide often.
fn part() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just("a"),
        4 => Just("b"),
        2 => Just("dir"),
        1 => Just("canary"),
        1 => Just(".."),
        1 => Just("."),
        1 => Just(""),
        1 => Just(".wh.a"),
        1 => Just(".wh.b"),
        1 => Just(".wh..wh..opq"),
        1 => Just("@OUT"),
    ]
}

fn name() -> impl Strategy<Value = String> {
    (prop::bool::weighted(0.1), prop::collection::vec(part(), 1..3))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

fn raw() -> impl Strategy<Value = Raw> {
    prop_oneof![
        (name(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(n, d)| Raw::File(n, d)),
        name().prop_map(Raw::Dir),
        (name(), prop::sample::select(TARGETS)).prop_map(|(n, t)| Raw::Symlink(n, t.to_string())),
        (name(), prop_oneof![name(), prop::sample::select(TARGETS).prop_map(str::to_string)])
            .prop_map(|(n, t)| Raw::Hardlink(n, t)),
    ]
}

fn layers() -> impl Strategy<Value = Vec<Vec<Raw>>> {
    prop::collection::vec(prop::collection::vec(raw(), 1..10), 1..4)
}

/// `@OUT` stands for the absolute path of the directory beside the root.
fn placed(entry: &Raw, outside: &str) -> Raw {
    let swap = |s: &String| s.replace("@OUT", outside.trim_start_matches('/')).replace("/@", "/");
    let abs = |s: &String| if s.starts_with("@OUT") { s.replace("@OUT", outside) } else { swap(s) };
    match entry {
        Raw::File(n, d) => Raw::File(abs(n), d.clone()),
        Raw::Dir(n) => Raw::Dir(abs(n)),
        Raw::Symlink(n, t) => Raw::Symlink(abs(n), abs(t)),
        Raw::Hardlink(n, t) => Raw::Hardlink(abs(n), abs(t)),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn nothing_outside_the_root_changes(layers in layers()) {
        let s = scene();
        let outside = s.outside.display().to_string();
        let top = s.outside.parent().map(Path::to_path_buf).unwrap_or_default();
        let outside_of_root = |m: BTreeMap<PathBuf, String>| -> Vec<(PathBuf, String)> {
            m.into_iter().filter(|(p, _)| !p.starts_with(&s.root) || *p == s.root).collect()
        };
        let before = outside_of_root(snapshot(&top));
        if let Ok(mut applier) = Applier::new(&s.root, Limits::default()) {
            for layer in &layers {
                let layer: Vec<Raw> = layer.iter().map(|e| placed(e, &outside)).collect();
                let _ = applier.apply(&tar_of(&layer)[..]);
            }
            let _ = applier.finish();
        }
        let after = outside_of_root(snapshot(&top));
        // The root's own mode and time may change; only its contents are the layers'.
        let strip = |v: Vec<(PathBuf, String)>| v.into_iter().filter(|(p, _)| *p != s.root).collect::<Vec<_>>();
        prop_assert_eq!(strip(before), strip(after));
    }
}
