//! Loading the seed's and Dispatch's own example files, and the errors bad files get.

use std::collections::HashMap;

use super::*;
use crate::includes::{ReadError, Reader};

/// Files by path, relative to the definition's directory `defs`.
struct Files(HashMap<&'static str, &'static str>);

impl Reader for Files {
    fn read(&self, path: &Path, _confine_to: Option<&Path>, _limit: u64) -> Result<Vec<u8>, ReadError> {
        let key = path.to_str().unwrap_or_default();
        self.0.get(key).map(|text| text.as_bytes().to_vec()).ok_or_else(|| ReadError::Io(format!("no file {key}")))
    }
}

const NO_FILES: &[(&str, &str)] = &[];

fn load_with(
    text: &str,
    files: &[(&'static str, &'static str)],
    allow_outside: bool,
) -> Result<Vec<Loaded>, ValidationErrors> {
    let files = Files(files.iter().copied().collect());
    load(text, &Includes { root: PathBuf::from("defs"), allow_outside, reader: &files })
}

fn load_plain(text: &str) -> Result<Vec<Loaded>, ValidationErrors> {
    load_with(text, NO_FILES, false)
}

const SEED: &str = "name: python3-postgres
version: 1.1
parent: photon-python3
language: python3
metadata:
    role: x-labs-admins
    extendable: true
    author: bjung@vmware.com
photon-packages:
    - name: libpq-dev
      version: 9.6.4-1
    - name: python2-dev
      version: 3.5.3-3
runtime-packages:
    - name: psycopg2
      version: 2.7.3.1
";

#[test]
fn loads_the_seed_definition() {
    let loaded = load_plain(SEED).unwrap();
    let Definition::Image(image) = &loaded[0].definition else { panic!("not an image") };
    assert_eq!(image.name, "python3-postgres");
    assert_eq!(image.version.as_deref(), Some("1.1"));
    let trailing_zero = load_plain(&SEED.replace("version: 1.1", "version: 1.10")).unwrap();
    let Definition::Image(image) = &trailing_zero[0].definition else { panic!("not an image") };
    assert_eq!(image.version.as_deref(), Some("1.10"), "a version keeps its spelling");
    assert_eq!(image.base_image_name.as_deref(), Some("photon-python3"));
    assert!(image.extendable);
    assert_eq!(image.system_dependencies.packages[1].version.as_deref(), Some("3.5.3-3"));
    assert_eq!(image.runtime_dependencies.packages[0].name, "psycopg2");
}

#[test]
fn loads_dispatch_documents_with_manifest_files() {
    let text = "kind: BaseImage
name: my-python-base
dockerUrl: berndtj/my-python-base:0.0.1
language: python3
tags:
  - key: role
    value: docs
---
kind: Image
name: my-pandas
baseImageName: my-python-base
runtimeDependencies:
  manifest: '@requirements.txt'
tags:
  - key: role
    value: docs
";
    let loaded = load_with(text, &[("defs/requirements.txt", "pandas==0.23.0\n")], false).unwrap();
    assert_eq!(loaded.len(), 2);
    let Definition::BaseImage(base) = &loaded[0].definition else { panic!("not a base image") };
    assert_eq!(base.reference, "berndtj/my-python-base:0.0.1");
    let Definition::Image(image) = &loaded[1].definition else { panic!("not an image") };
    assert_eq!(image.runtime_dependencies.manifest.as_deref(), Some("pandas==0.23.0\n"));
    assert_eq!(loaded[1].document, 1);
}

#[test]
fn unknown_fields_point_at_their_key() {
    let text = "kind: BaseImage\nname: a\nreference: r/x:1\nlanguage: python3\n---\nkind: Image\nname: b\nbaseImageName: a\ncolour: red\n";
    let err = load_plain(text).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let e = &err.0[0];
    assert_eq!((e.document, e.line, e.column), (Some(1), Some(9), Some(1)), "{e}");
    assert!(e.message.contains("colour"), "{e}");
}

#[test]
fn validation_errors_point_at_the_value() {
    let text = SEED.replace("name: python2-dev", "name: 'Bad Name'");
    let err = load_plain(&text).unwrap_err();
    let e = &err.0[0];
    assert_eq!(e.field, "photon-packages[1].name");
    assert_eq!((e.line, e.column), (Some(12), Some(13)), "{e}");
}

#[test]
fn wrong_types_and_kinds_are_named() {
    let err = load_plain("kind: Imaeg\nname: x\n").unwrap_err();
    assert!(err.0[0].message.contains("is not a kind"), "{err}");
    let err = load_plain("kind: Package\necosystem: cargo\nname: serde\n").unwrap_err();
    assert_eq!(err.0[0].field, "ecosystem", "{err}");
    assert_eq!(err.0[0].line, Some(2));
    let err = load_plain("- a\n- b\n").unwrap_err();
    assert!(err.0[0].message.contains("mapping"), "{err}");
}

#[test]
fn missing_manifest_file_is_reported() {
    let text = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: '@nope.txt'\n";
    let err = load_plain(text).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.manifest");
    assert_eq!(err.0[0].line, Some(5));
}

#[test]
fn requirements_includes_are_inlined_and_constraints_gathered() {
    let text = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: '@app/requirements.txt'\n";
    let files = [
        ("defs/app/requirements.txt", "-r common.txt\npandas==2.2.3\n-c pins.txt\n"),
        ("defs/app/common.txt", "requests\n"),
        ("defs/app/pins.txt", "numpy<2.1\n"),
    ];
    let loaded = load_with(text, &files, false).unwrap();
    let Definition::Image(image) = &loaded[0].definition else { panic!("not an image") };
    let runtime = &image.runtime_dependencies;
    assert_eq!(runtime.manifest.as_deref(), Some("# from defs/app/common.txt\nrequests\npandas==2.2.3\n"));
    assert_eq!(runtime.constraints.as_deref(), Some("# from defs/app/pins.txt\nnumpy<2.1\n"));

    let missing = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: \"x\\n-c gone.txt\\n\"\n";
    let err = load_with(missing, &files, false).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.manifest");
    assert!(err.0[0].message.contains("the manifest line 2: -c gone.txt: cannot read defs/gone.txt"), "{err}");
}

#[test]
fn references_stay_in_the_definitions_tree() {
    let image = |runtime: &str| format!("kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n{runtime}");
    let files = [
        ("secret.txt", "kiln-secret\n"),
        ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        ("defs/app/requirements.txt", "requests\n-r ../../secret.txt\n"),
        ("defs/lock.json", "not json"),
    ];
    let err = load_with(&image("  manifest: '@../secret.txt'\n"), &files, false).unwrap_err();
    let e = &err.0[0];
    assert_eq!((e.field.as_str(), e.line), ("runtimeDependencies.manifest", Some(5)), "{err}");
    assert!(
        e.message.starts_with(
            "@../secret.txt: climbs out of defs: move the file under defs or pass --allow-outside-includes"
        ),
        "{err}"
    );
    let err = load_with(&image("  manifest: '@/etc/passwd'\n"), &files, false).unwrap_err();
    assert!(err.0[0].message.starts_with("@/etc/passwd: is an absolute path"), "{err}");
    let err = load_with(&image("  constraints: '@../secret.txt'\n"), &files, false).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.constraints", "{err}");
    // A -r in a manifest read through @file is held to the definition's tree too.
    let err = load_with(&image("  manifest: '@app/requirements.txt'\n"), &files, false).unwrap_err();
    assert!(
        err.0[0].message.starts_with("defs/app/requirements.txt line 2: -r ../../secret.txt: climbs out of defs"),
        "{err}"
    );
    // Inline text is read as a file in the root would be.
    let err = load_with(&image("  manifest: \"-r ../secret.txt\"\n"), &files, false).unwrap_err();
    assert!(err.0[0].message.starts_with("the manifest line 1: -r ../secret.txt: climbs out"), "{err}");

    // The flag lifts the tree, not the format.
    let loaded = load_with(&image("  manifest: '@app/requirements.txt'\n"), &files, true).expect("allowed");
    let Definition::Image(i) = &loaded[0].definition else { panic!("not an image") };
    assert_eq!(i.runtime_dependencies.manifest.as_deref(), Some("requests\n# from secret.txt\nkiln-secret\n"));
    let err = load_with(&image("  manifest: '@/etc/passwd'\n"), &files, true).unwrap_err();
    assert!(err.0[0].message.starts_with("@/etc/passwd: /etc/passwd line 1 is not a requirement"), "{err}");
    let lock = "  format: package.json\n  manifest: '{}'\n  lockfile: '@lock.json'\n";
    let err = load_with(&image(lock), &files, true).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.lockfile", "{err}");
    assert!(err.0[0].message.contains("defs/lock.json is not valid JSON"), "{err}");
    let seed = "name: s\nparent: a\nruntime-manifest: '@../secret.txt'\n";
    let err = load_with(seed, &files, false).unwrap_err();
    assert_eq!((err.0[0].field.as_str(), err.0[0].line), ("runtime-manifest", Some(3)), "{err}");
}
