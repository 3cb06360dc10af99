//! The CLI against a real server: Dispatch's documented commands and files, the seed's
//! image definition, the get → edit → update round trip, and error reporting.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;

use common::{Server, stderr, stdout};
use sha2::{Digest as _, Sha256};

fn ok(output: &std::process::Output) -> String {
    assert!(output.status.success(), "kiln failed:\nstdout: {}\nstderr: {}", stdout(output), stderr(output));
    stdout(output)
}

fn fails(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "kiln should have failed:\nstdout: {}", stdout(output));
    stderr(output)
}

#[test]
fn help_reads_well() {
    let server = Server::start();
    let help = ok(&server.kiln(&["--help"]));
    for word in ["serve", "create", "update", "get", "delete", "KILN_URL"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let create = ok(&server.kiln(&["create", "--help"]));
    assert!(create.contains("base-image") && create.contains("--file"), "{create}");
    let image = ok(&server.kiln(&["create", "image", "--help"]));
    assert!(image.contains("--runtime-deps") && image.contains("--system-deps"), "{image}");
}

#[test]
fn dispatch_commands_and_documented_files() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let created = ok(&server.kiln(&[
        "create",
        "base-image",
        "my-python-base",
        "berndtj/my-python-base:0.0.1",
        "--language",
        "python3",
    ]));
    assert!(created.contains("my-python-base") && created.contains("INITIALIZED"), "{created}");

    std::fs::write(dir.path().join("requirements.txt"), "pandas==0.23.0\n").expect("write");
    std::fs::write(
        dir.path().join("system.json"),
        r#"{"packages": [{"name": "libpq5", "version": "15.14-0+deb12u1"}]}"#,
    )
    .expect("write");
    let req = dir.path().join("requirements.txt");
    let sys = dir.path().join("system.json");
    ok(&server.kiln(&[
        "create",
        "image",
        "my-pandas",
        "my-python-base",
        "--runtime-deps",
        req.to_str().unwrap_or_default(),
        "--system-deps",
        sys.to_str().unwrap_or_default(),
    ]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server.kiln(&["get", "image", "my-pandas", "-o", "json"]))).expect("json");
    assert_eq!(json["kind"], "Image");
    assert_eq!(json["runtimeDependencies"]["manifest"], "pandas==0.23.0\n");
    assert_eq!(json["runtimeDependencies"]["format"], "requirements.txt");
    assert_eq!(json["systemDependencies"]["packages"][0]["name"], "libpq5");
    assert_eq!(json["language"], "python3");

    // The Dispatch documentation's generic-create files, manifest resolved against -w.
    std::fs::write(
        dir.path().join("base-images.yaml"),
        "kind: BaseImage\nname: docs-python-base\ndockerUrl: berndtj/my-python-base:0.0.1\nlanguage: python3\ntags:\n  - key: role\n    value: docs\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("images.yaml"),
        "kind: Image\nname: docs-pandas\nbaseImageName: docs-python-base\nruntimeDependencies:\n  manifest: '@requirements.txt'\ntags:\n  - key: role\n    value: docs\n",
    )
    .expect("write");
    let work = dir.path().to_str().unwrap_or_default();
    ok(&server.kiln_in(&["create", "-f", "base-images.yaml"], Some(dir.path())));
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images.yaml");
    let out =
        ok(&server.kiln_in(&["create", "-f", images.to_str().unwrap_or_default(), "-w", work], Some(elsewhere.path())));
    assert!(out.contains("Image docs-pandas created"), "{out}");
    let listed = ok(&server.kiln(&["get", "images", "--tag", "role=docs"]));
    assert!(listed.contains("docs-pandas") && !listed.contains("my-pandas"), "{listed}");
    let base_images = ok(&server.kiln(&["get", "base-images"]));
    assert!(
        base_images.contains("docs-python-base") && base_images.contains("NAME") && base_images.contains("STATUS"),
        "{base_images}"
    );
}

#[test]
fn the_seed_definition_loads() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&server.kiln(&["create", "base-image", "photon-python3", "vmware/photon-python3:3.6", "--language", "python3"]));
    let seed = "name: python3-postgres\nversion: 1.1\nparent: photon-python3\nlanguage: python3\nmetadata:\n    role: x-labs-admins\n    extendable: true\n    author: bjung@vmware.com\nphoton-packages:\n    - name: libpq-dev\n      version: 9.6.4-1\n    - name: python2-dev\n      version: 3.5.3-3\nruntime-packages:\n    - name: psycopg2\n      version: 2.7.3.1\n";
    let path = dir.path().join("python3-postgres.yaml");
    std::fs::write(&path, seed).expect("write");
    ok(&server.kiln(&["create", "-f", path.to_str().unwrap_or_default()]));
    let yaml = ok(&server.kiln(&["get", "image", "python3-postgres", "-o", "yaml"]));
    assert!(yaml.starts_with("kind: Image"), "{yaml}");
    assert!(yaml.contains("extendable: true") && yaml.contains("libpq-dev") && yaml.contains("psycopg2"), "{yaml}");
    // An image may be built on it, since it is extendable.
    ok(&server.kiln(&["create", "image", "app", "python3-postgres"]));
    let app: serde_json::Value =
        serde_json::from_str(&ok(&server.kiln(&["get", "image", "app", "-o", "json"]))).expect("json");
    assert_eq!(
        (app["parentImageName"].as_str(), app["baseImageName"].as_str()),
        (Some("python3-postgres"), Some("photon-python3"))
    );
}

#[test]
fn get_edit_update_round_trip_and_stale_files() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    ok(&server.kiln(&["create", "base-image", "base", "example.org/base:1", "--language", "nodejs"]));
    ok(&server.kiln(&["create", "image", "web", "base", "--env", "MODE=slow"]));
    let yaml = ok(&server.kiln(&["get", "image", "web", "-o", "yaml"]));
    let path = dir.path().join("web.yaml");
    std::fs::write(&path, yaml.replace("value: slow", "value: fast")).expect("write");
    let file = path.to_str().unwrap_or_default();
    let updated = ok(&server.kiln(&["update", "-f", file]));
    assert!(updated.contains("Image web updated"), "{updated}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server.kiln(&["get", "image", "web", "-o", "json"]))).expect("json");
    assert_eq!(json["environment"][0]["value"], "fast");
    // The file still carries the old revision: a second update is refused, not applied.
    let err = fails(&server.kiln(&["update", "-f", file]));
    assert!(err.contains("409") && err.contains("revision"), "{err}");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: BaseImage\nname: b\nreference: r.example/b:1\nlanguage: python3\n---\nkind: Image\nname: i\nbaseImageName: b\nsystemDependencies:\n  packages:\n    - nmae: libpq5\n").expect("write");
    let err = fails(&server.kiln(&["create", "-f", bad.to_str().unwrap_or_default()]));
    assert!(err.contains("document 1") && err.contains("line 11") && err.contains("nmae"), "{err}");
    assert!(
        fails(&server.kiln(&["get", "base-image", "b"]))
            .contains("base image \"b\" does not exist in organization \"default\""),
        "nothing of a bad file is stored"
    );
    let logs = fails(&server.kiln(&["logs", "no-such-image"]));
    assert!(logs.contains("no task or image is named \"no-such-image\""), "{logs}");

    let missing = dir.path().join("missing.yaml");
    std::fs::write(&missing, "kind: Image\nname: i\nbaseImageName: b\nruntimeDependencies:\n  manifest: '@nope.txt'\n")
        .expect("write");
    let err = fails(&server.kiln(&["create", "-f", missing.to_str().unwrap_or_default()]));
    assert!(err.contains("nope.txt"), "{err}");

    ok(&server.kiln(&["create", "base-image", "b", "r.example/b:1", "--language", "python3"]));
    let sys = dir.path().join("sys.yaml");
    std::fs::write(&sys, "packages:\n  - name: libpq5\n  - name: x\n    bogus: 1\n").expect("write");
    let err = fails(&server.kiln(&["create", "image", "i", "b", "--system-deps", sys.to_str().unwrap_or_default()]));
    assert!(err.contains("packages[1]") && err.contains("bogus"), "{err}");
    let dup = fails(&server.kiln(&["create", "base-image", "b", "r.example/b:1", "--language", "python3"]));
    assert!(dup.contains("already exists"), "{dup}");
    ok(&server.kiln(&["create", "image", "i", "b"]));
    let in_use = fails(&server.kiln(&["delete", "base-image", "b"]));
    assert!(in_use.contains("--force") && !in_use.contains("force=true") && in_use.contains('i'), "{in_use}");
    ok(&server.kiln(&["delete", "base-image", "b", "--force"]));
    assert!(ok(&server.kiln(&["get", "image", "i"])).contains("ERROR"));

    ok(&server.kiln(&["create", "package", "npm", "@types/node", "--version", "^20", "--license", "MIT"]));
    assert!(ok(&server.kiln(&["get", "package", "npm/@types/node"])).contains("MIT"));
    assert!(fails(&server.kiln(&["get", "package", "libpq5"])).contains("ECOSYSTEM/NAME"));
    ok(&server.kiln(&["delete", "package", "npm/@types/node"]));

    let unreachable = std::process::Command::new(common::KILN)
        .args(["get", "images", "--server", "http://127.0.0.1:9"])
        .output()
        .expect("run kiln");
    assert!(fails(&unreachable).contains("cannot reach Kiln"));

    let no_token = std::process::Command::new(common::KILN)
        .args(["get", "images"])
        .env("KILN_URL", &server.url)
        .env_remove("KILN_TOKEN")
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .output()
        .expect("run kiln");
    let err = fails(&no_token);
    assert!(err.contains("--token") && err.contains("KILN_TOKEN") && err.contains("kiln login"), "{err}");
}

#[test]
fn login_tokens_users_roles_and_organisations() {
    let server = Server::start();
    let home = tempfile::tempdir().expect("temp dir");
    // A bare environment: no KILN_URL or KILN_TOKEN, credentials under this home.
    let bare = |args: &[&str], token_env: Option<&str>| {
        let mut command = std::process::Command::new(common::KILN);
        command.args(args).env_remove("KILN_URL").env_remove("KILN_TOKEN").env("XDG_CONFIG_HOME", home.path());
        if let Some(token) = token_env {
            command.env("KILN_TOKEN", token);
        }
        command.output().expect("run kiln")
    };
    let login = ok(&bare(&["login", "--server", &server.url, "--token", common::ADMIN_TOKEN], None));
    assert!(login.contains("as admin"), "{login}");
    let file = home.path().join("kiln").join("credentials.toml");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).expect("credentials file").permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(ok(&bare(&["whoami"], None)).contains("admin"));
    assert!(
        fails(&bare(&["get", "images"], Some("kiln_wrong"))).contains("not valid"),
        "KILN_TOKEN overrides the stored token"
    );

    ok(&bare(&["org", "create", "acme"], None));
    ok(&bare(&["user", "create", "ci-bot", "--service-account"], None));
    ok(&bare(
        &["role", "create", "image-reader", "--permission", "images:read", "--permission", "base-images:read"],
        None,
    ));
    ok(&bare(&["role", "bind", "ci-bot", "image-reader", "--in", "acme"], None));
    let bindings = ok(&bare(&["role", "bindings", "--subject", "ci-bot"], None));
    assert!(bindings.contains("image-reader") && bindings.contains("acme"), "{bindings}");
    let secret =
        ok(&bare(&["token", "create", "--subject", "ci-bot", "--description", "pipeline"], None)).trim().to_string();
    assert!(secret.starts_with("kiln_"), "{secret}");
    let listed = ok(&bare(&["token", "list", "--subject", "ci-bot", "-o", "json"], None));
    assert!(!listed.contains(&secret), "listing never shows secrets");
    let tokens: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let id = tokens[0]["id"].as_str().expect("id").to_string();
    // `-o name` gives scripts ids alone, one a line.
    let ids = ok(&bare(&["token", "list", "--subject", "ci-bot", "-o", "name"], None));
    assert_eq!(ids.lines().collect::<Vec<_>>(), [id.as_str()], "{ids}");
    let as_bot = ok(&bare(&["whoami", "--org", "acme", "-o", "json"], Some(&secret)));
    assert!(as_bot.contains("images:read"), "{as_bot}");
    let denied = fails(&bare(&["org", "create", "x"], Some(&secret)));
    assert!(denied.contains("organizations:write") && denied.contains("403"), "{denied}");
    ok(&bare(&["user", "disable", "ci-bot"], None));
    assert!(fails(&bare(&["whoami"], Some(&secret))).contains("401"));
    ok(&bare(&["user", "enable", "ci-bot"], None));
    ok(&bare(&["token", "revoke", &id], None));
    assert!(fails(&bare(&["whoami"], Some(&secret))).contains("revoked"));
    let audit = ok(&bare(&["audit", "--subject", "admin"], None));
    assert!(audit.contains("/v1/users"), "{audit}");
    ok(&bare(&["role", "unbind", "ci-bot", "image-reader", "--in", "acme"], None));
    ok(&bare(&["user", "delete", "ci-bot"], None));
    ok(&bare(&["org", "delete", "acme"], None));
    ok(&bare(&["logout"], None));
    assert!(
        fails(&bare(&["get", "images", "--server", &server.url], None)).contains("no token was sent: run kiln login")
    );
}

/// The image `name` is absent from the server: a refused command stored nothing.
fn not_stored(server: &Server, name: &str) {
    let answer = server.http().get(&format!("/v1/images/{name}"));
    assert_eq!(answer.status, 404, "{name} should not be stored: {}", answer.text);
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A layout for include tests: `top/outside.txt` (valid requirements, outside the project)
/// and `top/proj/` holding the files under test.
fn include_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().expect("temp dir");
    let proj = top.path().join("proj");
    std::fs::create_dir_all(proj.join("sub")).expect("mkdir");
    std::fs::write(top.path().join("outside.txt"), "leaked-secret==1.0\n").expect("write");
    (top, proj)
}

#[test]
fn requirements_includes_stay_inside_the_files_tree() {
    let server = Server::start();
    let (top, proj) = include_tree();
    ok(&server.kiln(&["create", "base-image", "b", "r.example/b:1", "--language", "python3"]));
    let req = proj.join("req.txt");
    let create = |extra: &[&str]| {
        let mut args = vec!["create", "image", "img", "b", "--runtime-deps", path(&req)];
        args.extend_from_slice(extra);
        server.kiln(&args)
    };

    std::fs::write(&req, "requests\n-r /etc/passwd\n").expect("write");
    let err = fails(&create(&[]));
    assert!(err.contains("req.txt line 2") && err.contains("-r /etc/passwd"), "{err}");
    assert!(err.contains("--allow-outside-includes"), "the error says what to do: {err}");
    assert!(!err.contains("root:x:0:0"), "{err}");
    not_stored(&server, "img");

    std::fs::write(&req, "requests\n\n-r ../../outside.txt\n").expect("write");
    let err = fails(&create(&[]));
    assert!(err.contains("req.txt line 3") && err.contains("-r ../../outside.txt"), "{err}");
    assert!(err.contains("--allow-outside-includes"), "{err}");
    not_stored(&server, "img");

    // A symbolic link inside the tree that points out of it.
    std::os::unix::fs::symlink(top.path().join("outside.txt"), proj.join("reqs.txt")).expect("symlink");
    std::fs::write(&req, "-c reqs.txt\n").expect("write");
    let err = fails(&create(&[]));
    assert!(err.contains("req.txt line 1") && err.contains("-c reqs.txt") && err.contains("outside"), "{err}");
    not_stored(&server, "img");

    // Nested includes are relative to the file naming them but may not leave the top tree.
    std::fs::write(&req, "-r sub/inner.txt\n").expect("write");
    std::fs::write(proj.join("sub/inner.txt"), "-r ../../outside.txt\n").expect("write");
    let err = fails(&create(&[]));
    assert!(err.contains("inner.txt line 1") && err.contains("-r ../../outside.txt"), "{err}");
    not_stored(&server, "img");

    std::fs::write(proj.join("sub/inner.txt"), "-r ../pins.txt\n").expect("write");
    std::fs::write(proj.join("pins.txt"), "requests==2.32.3\n").expect("write");
    ok(&create(&[]));
    let image = server.http().get("/v1/images/img").body;
    assert!(
        image["runtimeDependencies"]["manifest"].as_str().is_some_and(|m| m.contains("requests==2.32.3")),
        "{image}"
    );
}

#[test]
fn outside_includes_need_the_flag_and_must_still_be_requirements() {
    let server = Server::start();
    let (top, proj) = include_tree();
    ok(&server.kiln(&["create", "base-image", "b", "r.example/b:1", "--language", "python3"]));
    let req = proj.join("req.txt");
    let outside = top.path().join("outside.txt");
    std::fs::write(&req, format!("-r ../outside.txt\n-c {}\n", path(&outside))).expect("write");
    let flag = "--allow-outside-includes";
    fails(&server.kiln(&["create", "image", "img", "b", "--runtime-deps", path(&req)]));
    not_stored(&server, "img");
    ok(&server.kiln(&["create", "image", "img", "b", "--runtime-deps", path(&req), flag]));
    let image = server.http().get("/v1/images/img").body;
    assert!(image["runtimeDependencies"]["manifest"].as_str().is_some_and(|m| m.contains("leaked-secret==1.0")));
    assert!(image["runtimeDependencies"]["constraints"].as_str().is_some_and(|m| m.contains("leaked-secret==1.0")));

    // Text that is not requirements, and bytes that are not text, are refused even so.
    std::fs::write(&req, "-r /etc/passwd\n").expect("write");
    let err = fails(&server.kiln(&["create", "image", "img2", "b", "--runtime-deps", path(&req), flag]));
    assert!(err.contains("-r /etc/passwd") && err.contains("/etc/passwd line 1"), "{err}");
    assert!(!err.contains("root:x:0:0"), "the error does not echo what it refused: {err}");
    not_stored(&server, "img2");
    let garbage = top.path().join("garbage.bin");
    std::fs::write(&garbage, [0x7fu8, b'E', b'L', b'F', 0, 0, 0xff, 0xfe, b'\n']).expect("write");
    std::fs::write(&req, "-r ../garbage.bin\n").expect("write");
    let err = fails(&server.kiln(&["create", "image", "img2", "b", "--runtime-deps", path(&req), flag]));
    assert!(err.contains("-r ../garbage.bin") && err.contains("text"), "{err}");
    not_stored(&server, "img2");
    let big = top.path().join("big.txt");
    std::fs::write(&big, "requests\n".repeat(200_000)).expect("write");
    std::fs::write(&req, "-r ../big.txt\n").expect("write");
    let err = fails(&server.kiln(&["create", "image", "img2", "b", "--runtime-deps", path(&req), flag]));
    assert!(err.contains("-r ../big.txt") && err.contains("1048576"), "the limit is named: {err}");
    not_stored(&server, "img2");
}

#[test]
fn definition_file_references_stay_inside_its_tree() {
    let server = Server::start();
    let (top, proj) = include_tree();
    std::fs::write(top.path().join("secret.txt"), "kiln-secret-token\n").expect("write");
    let defs = proj.join("defs.yaml");
    let base = "kind: BaseImage\nname: b\nreference: r.example/b:1\nlanguage: python3\n---\n";
    std::fs::write(
        &defs,
        format!("{base}kind: Image\nname: img\nbaseImageName: b\nruntimeDependencies:\n  manifest: '@../secret.txt'\n"),
    )
    .expect("write");
    let err = fails(&server.kiln(&["create", "-f", path(&defs)]));
    assert!(err.contains("defs.yaml") && err.contains("line 10") && err.contains("@../secret.txt"), "{err}");
    assert!(err.contains("--allow-outside-includes"), "{err}");
    not_stored(&server, "img");
    assert_eq!(server.http().get("/v1/base-images/b").status, 404, "the file is applied whole or not at all");
    // -w moves the tree, and the rule with it.
    let err = fails(&server.kiln(&["create", "-f", path(&defs), "-w", path(&proj.join("sub"))]));
    assert!(err.contains("@../secret.txt"), "{err}");
    not_stored(&server, "img");
    let err = fails(&server.kiln(&["update", "-f", path(&defs)]));
    assert!(err.contains("@../secret.txt"), "{err}");

    // A -r inside a manifest read through @file is held to the same tree.
    std::fs::write(proj.join("sub/requirements.txt"), "requests\n-r ../../outside.txt\n").expect("write");
    std::fs::write(
        &defs,
        format!(
            "{base}kind: Image\nname: img\nbaseImageName: b\nruntimeDependencies:\n  manifest: '@sub/requirements.txt'\n"
        ),
    )
    .expect("write");
    let err = fails(&server.kiln(&["create", "-f", path(&defs)]));
    assert!(err.contains("requirements.txt line 2") && err.contains("-r ../../outside.txt"), "{err}");
    not_stored(&server, "img");

    // A lockfile must be JSON, even from outside with the flag.
    std::fs::write(
        &defs,
        format!(
            "{base}kind: Image\nname: img\nbaseImageName: b\nruntimeDependencies:\n  format: package.json\n  manifest: '{{}}'\n  lockfile: '@/etc/passwd'\n"
        ),
    )
    .expect("write");
    let err = fails(&server.kiln(&["create", "-f", path(&defs), "--allow-outside-includes"]));
    assert!(err.contains("@/etc/passwd") && err.contains("JSON"), "{err}");
    assert!(!err.contains("root:x:0:0"), "{err}");
    not_stored(&server, "img");

    // With the flag an outside requirements file is read.
    std::fs::write(
        &defs,
        format!("{base}kind: Image\nname: img\nbaseImageName: b\nruntimeDependencies:\n  manifest: '@../secret.txt'\n"),
    )
    .expect("write");
    ok(&server.kiln(&["create", "-f", path(&defs), "--allow-outside-includes"]));
    let image = server.http().get("/v1/images/img").body;
    assert_eq!(image["runtimeDependencies"]["manifest"], "kiln-secret-token\n");
}

/// Runs kiln with its standard output a pipe whose reader has gone, as in `kiln … | head -1`
/// once `head` has its line.
fn into_closed_pipe(server: &Server, args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(common::KILN)
        .args(args)
        .env("KILN_URL", &server.url)
        .env("KILN_TOKEN", common::ADMIN_TOKEN)
        .env("XDG_CONFIG_HOME", &server.data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kiln");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for kiln")
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let server = Server::start();
    ok(&server.kiln(&["create", "base-image", "b", "r.example/b:1", "--language", "python3"]));
    for args in [
        &["openapi"][..],
        &["get", "base-images", "-o", "json"],
        &["get", "base-images"],
        &["get", "base-image", "b", "-o", "yaml"],
        &["schema", "image"],
    ] {
        let output = into_closed_pipe(&server, args);
        let err = stderr(&output);
        assert!(!err.contains("panicked") && err.is_empty(), "kiln {args:?} into a closed pipe said: {err}");
        let signalled = std::os::unix::process::ExitStatusExt::signal(&output.status);
        assert!(
            output.status.success() || output.status.code() == Some(141) || signalled == Some(13),
            "kiln {args:?} into a closed pipe ended {:?}",
            output.status
        );
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes an image of one empty layer into the server's own registry as `default/seed:1`
/// and returns its reference: a base image that costs nothing to check or build on.
fn push_seed(server: &Server) -> String {
    let client = common::admin_client();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&[0u8; 1024])]},
    }))
    .expect("json");
    let layer = vec![0u8; 1024];
    for blob in [&config, &layer] {
        let pushed = client
            .post(format!("{}/v2/default/seed/blobs/uploads/?digest={}", server.url, sha256(blob)))
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .expect("push a blob");
        assert_eq!(pushed.status(), 201, "{:?}", pushed.text());
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
    }))
    .expect("json");
    let pushed = client
        .put(format!("{}/v2/default/seed/manifests/1", server.url))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .expect("push the manifest");
    assert_eq!(pushed.status(), 201, "{:?}", pushed.text());
    format!("{}/default/seed:1", server.url.trim_start_matches("http://"))
}

#[test]
fn waiting_on_a_file_waits_for_every_build_and_names_what_failed() {
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = mirror::Mirror::serve(&mirror::fixture_dir(), 0.0);
    let apt = mirror::apt_config(temp.path(), &debian);
    let (server, _) = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    });
    let seed = push_seed(&server);
    let file = temp.path().join("images.yaml");
    std::fs::write(
        &file,
        format!(
            "kind: BaseImage\nname: seed\nreference: {seed}\nlanguage: python3\n---\n\
             kind: Image\nname: plain\nbaseImageName: seed\n---\n\
             kind: Image\nname: broken\nbaseImageName: seed\nsystemDependencies:\n  packages:\n    - name: kiln-no-such-package\n"
        ),
    )
    .expect("write");
    let waited = server.kiln(&["create", "-f", path(&file), "--wait"]);
    let (out, err) = (stdout(&waited), stderr(&waited));
    assert!(!waited.status.success(), "a failed build must fail the wait:\n{out}\n{err}");
    let settled = |name: &str| server.http().get(&format!("/v1/images/{name}")).body;
    let (plain, broken) = (settled("plain"), settled("broken"));
    assert_eq!(plain["status"], "READY", "the wait returned before plain was built: {plain}");
    assert_eq!(broken["status"], "ERROR", "the wait returned before broken failed: {broken}");
    assert!(out.contains("BaseImage seed READY") && out.contains("Image plain READY"), "{out}");
    assert!(out.contains("Image broken ERROR") && out.contains("kiln-no-such-package"), "{out}");
    let error = err.split_once("error: ").map(|(_, e)| e).unwrap_or_default();
    assert!(error.contains("1 of the 3 objects") && error.contains("broken") && !error.contains("plain"), "{err}");

    // An update that changes one image waits for its new build, not its old result.
    std::fs::write(
        &file,
        format!(
            "kind: Image\nname: plain\nbaseImageName: seed\nenvironment:\n  - name: MODE\n    value: fast\nrevision: {}\n",
            plain["revision"]
        ),
    )
    .expect("write");
    let before = plain["buildTask"].clone();
    let updated = server.kiln(&["update", "-f", path(&file), "--wait", "-o", "json"]);
    assert!(updated.status.success(), "{}\n{}", stdout(&updated), stderr(&updated));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&updated)).expect("json");
    assert_eq!((shown["status"].as_str(), shown["environment"][0]["value"].as_str()), (Some("READY"), Some("fast")));
    assert_ne!(shown["buildTask"], before, "the wait ended on the earlier build: {shown}");
}

#[test]
fn the_server_log_tells_when_tasks_start_and_end_in_plain_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("kiln.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (server, _) = Server::start_with(&dir.path().join("data"), |command| {
        // No Debian source is configured, so the bootstrap task fails at once.
        command.env("KILN_CONTROLLER", "true").env("KILN_APT_CONFIG_DIR", "none").env("KILN_LOG", "info").stderr(log);
    });
    let out = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("task failed") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let started = text.lines().find(|l| l.contains("task started")).unwrap_or_else(|| panic!("no start line:\n{text}"));
    assert!(started.contains("INFO") && started.contains("target=\"python3\""), "{started}");
    let failed = text.lines().find(|l| l.contains("task failed")).unwrap_or_else(|| panic!("no end line:\n{text}"));
    assert!(failed.contains("seconds=") && failed.contains("no Debian package source"), "{failed}");
    assert!(!text.contains('\u{1b}'), "no colour codes in a log file:\n{text}");
}
