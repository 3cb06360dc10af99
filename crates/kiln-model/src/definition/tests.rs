//! Loading the seed's and Dispatch's own example files, and the errors bad files get.

use super::*;

fn no_files(path: &str) -> Result<String, String> {
    Err(format!("no file {path} in this test"))
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
    let loaded = load(SEED, &no_files).unwrap();
    let Definition::Image(image) = &loaded[0].definition else { panic!("not an image") };
    assert_eq!(image.name, "python3-postgres");
    assert_eq!(image.version.as_deref(), Some("1.1"));
    let trailing_zero = load(&SEED.replace("version: 1.1", "version: 1.10"), &no_files).unwrap();
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
    let resolver = |path: &str| {
        if path == "requirements.txt" { Ok("pandas==0.23.0\n".to_string()) } else { Err("missing".into()) }
    };
    let loaded = load(text, &resolver).unwrap();
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
    let err = load(text, &no_files).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let e = &err.0[0];
    assert_eq!((e.document, e.line, e.column), (Some(1), Some(9), Some(1)), "{e}");
    assert!(e.message.contains("colour"), "{e}");
}

#[test]
fn validation_errors_point_at_the_value() {
    let text = SEED.replace("name: python2-dev", "name: 'Bad Name'");
    let err = load(&text, &no_files).unwrap_err();
    let e = &err.0[0];
    assert_eq!(e.field, "photon-packages[1].name");
    assert_eq!((e.line, e.column), (Some(12), Some(13)), "{e}");
}

#[test]
fn wrong_types_and_kinds_are_named() {
    let err = load("kind: Imaeg\nname: x\n", &no_files).unwrap_err();
    assert!(err.0[0].message.contains("is not a kind"), "{err}");
    let err = load("kind: Package\necosystem: cargo\nname: serde\n", &no_files).unwrap_err();
    assert_eq!(err.0[0].field, "ecosystem", "{err}");
    assert_eq!(err.0[0].line, Some(2));
    let err = load("- a\n- b\n", &no_files).unwrap_err();
    assert!(err.0[0].message.contains("mapping"), "{err}");
}

#[test]
fn missing_manifest_file_is_reported() {
    let text = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: '@nope.txt'\n";
    let err = load(text, &no_files).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.manifest");
    assert_eq!(err.0[0].line, Some(5));
}

#[test]
fn requirements_includes_are_inlined_and_constraints_gathered() {
    let text = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: '@app/requirements.txt'\n";
    let resolver = |path: &str| match path {
        "app/requirements.txt" => Ok("-r common.txt\npandas==2.2.3\n-c pins.txt\n".to_string()),
        "app/common.txt" => Ok("requests\n".to_string()),
        "app/pins.txt" => Ok("numpy<2.1\n".to_string()),
        other => Err(format!("no {other}")),
    };
    let loaded = load(text, &resolver).unwrap();
    let Definition::Image(image) = &loaded[0].definition else { panic!("not an image") };
    let runtime = &image.runtime_dependencies;
    assert_eq!(runtime.manifest.as_deref(), Some("# from app/common.txt\nrequests\npandas==2.2.3\n"));
    assert_eq!(runtime.constraints.as_deref(), Some("# from app/pins.txt\nnumpy<2.1\n"));

    let missing = "kind: Image\nname: b\nbaseImageName: a\nruntimeDependencies:\n  manifest: \"x\\n-c gone.txt\\n\"\n";
    let err = load(missing, &resolver).unwrap_err();
    assert_eq!(err.0[0].field, "runtimeDependencies.manifest");
    assert!(err.0[0].message.contains("requirements.txt line 2: cannot read gone.txt"), "{err}");
}
