//! The README's shell commands, run as written, in order, against one Kiln on the loopback
//! fixtures: a README whose examples stop working fails the suite. Each `sh` block's lines run
//! in one session the way a user types them (exports and the working directory carry over),
//! in a directory that holds a copy of `examples/`, with a private home so `kiln login` and
//! the container clients write nothing of the machine's. The few lines a test cannot run as
//! they stand are listed below with the reason, and every entry must still match a line.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "clients/sandbox.rs"]
mod sandbox;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ADMIN_TOKEN, KILN, Server};
use mirror::{Mirror, apt_config, fixture_dir, npm_fixture, pypi_fixture};
use sandbox::{Sandbox, require, run_within};

/// Lines not run, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo install --locked --path crates/kiln", "the test runs the kiln this build made"),
    ("kiln serve", "the test starts the server itself, on a free port with the loopback fixtures"),
    ("cargo run --release -- serve", "the test starts the server itself"),
    ("./scripts/test.sh", "this test is part of it"),
    (
        "buildah bud -t pg ctx",
        "its base is Debian's image from Docker Hub, which tests cannot reach; tests/dockerfile.rs builds an \
         exported context with buildah on a base made from the fixture",
    ),
];

/// Lines that must be refused, and what the refusal must say.
const REFUSED: &[(&str, &str)] = &[("kiln delete base-image py311", "--force")];

/// A build with `--wait` on two busy cores may take minutes; nothing takes ten.
const LINE_LIMIT: Duration = Duration::from_secs(600);

/// One command line of a `sh` block (continuations joined) and the comment-free text it is
/// matched by.
struct Line {
    text: String,
    command: String,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `sh` blocks of `markdown`, each as its command lines.
fn sh_blocks(markdown: &str) -> Vec<Vec<Line>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<Line>> = None;
    let mut pending = String::new();
    for raw in markdown.lines() {
        let trimmed = raw.trim_end();
        match current.as_mut() {
            None if trimmed == "```sh" => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed == "```" => blocks.extend(current.take()),
            Some(lines) => {
                if let Some(head) = trimmed.strip_suffix('\\') {
                    pending.push_str(head);
                    continue;
                }
                pending.push_str(trimmed);
                let text = std::mem::take(&mut pending).trim().to_string();
                if !text.is_empty() {
                    lines.push(Line { command: without_comment(&text), text });
                }
            }
        }
    }
    assert!(current.is_none(), "an sh block of the README is not closed");
    blocks
}

/// `text` without a trailing shell comment (` # …`), squeezed to single spaces.
fn without_comment(text: &str) -> String {
    let code = text.find(" # ").map_or(text, |at| &text[..at]);
    code.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The id of the first token of `subject`, for the README's `<id>`.
fn token_id(server: &Server, subject: &str) -> String {
    let tokens = server.http().get(&format!("/v1/tokens?subject={subject}")).body;
    let id = tokens["items"].as_array().and_then(|items| items.first()).and_then(|t| t["id"].as_str());
    id.unwrap_or_else(|| panic!("{subject} has no token to revoke: {tokens}")).to_string()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

#[test]
fn the_readme_commands_run_as_written() {
    require(&["skopeo", "podman", "curl", "tar"]);
    let blocks = sh_blocks(&readme());
    assert!(blocks.len() >= 8, "found only {} sh blocks in the README", blocks.len());

    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let pypi = Mirror::serve(&pypi_fixture(), 0.0);
    let npm = Mirror::serve(&npm_fixture(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_PYPI_INDEX_URL", format!("{}/simple", pypi.url))
            .env("KILN_NPM_REGISTRY_URL", &npm.url)
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let authority = server.url.trim_start_matches("http://").to_string();

    // The user's machine: a clone's examples, a home of its own, `kiln` on the PATH, podman
    // keeping its temporary files in the sandbox too.
    let sandbox = Sandbox::new("readme");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples"), &sandbox.path("examples"));
    let containers_conf = std::fs::read_to_string(sandbox.path("containers.conf")).expect("containers.conf");
    let tmp_dir = sandbox.path("podman/tmp");
    sandbox.write(
        "containers.conf",
        containers_conf.replace("[engine]\n", &format!("[engine]\ntmp_dir = \"{}\"\n", tmp_dir.display())).as_bytes(),
    );
    sandbox.write("config/containers/policy.json", br#"{"default":[{"type":"insecureAcceptAnything"}]}"#);
    let kiln_dir = PathBuf::from(KILN).parent().expect("kiln's directory").to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(kiln_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let session = sandbox.path("session.env");

    let mut not_run_used = vec![false; NOT_RUN.len()];
    let mut refused_used = vec![false; REFUSED.len()];
    let mut ran = 0;
    for line in blocks.iter().flatten() {
        if let Some(at) = NOT_RUN.iter().position(|(command, _)| *command == line.command) {
            not_run_used[at] = true;
            continue;
        }
        let mut script = line.text.replace("127.0.0.1:8470", &authority).replace("kiln_…", ADMIN_TOKEN);
        if script.contains("<id>") {
            script = script.replace("<id>", &token_id(&server, "ci-bot"));
        }
        // The session so far, the line, then what the session has become for the next one.
        let wrapped = format!(
            "[ -f {env} ] && source {env}\nset -eo pipefail\n{script}\nexport -p > {env}.next && mv {env}.next {env}",
            env = session.display()
        );
        let mut command = sandbox.containers_tool("bash");
        command.args(["-c", &wrapped]).env("PATH", &path);
        for variable in ["KILN_URL", "KILN_TOKEN", "KILN_ORG", "KILN_DATA_DIR", "KILN_LISTEN", "KILN_CONFIG"] {
            command.env_remove(variable);
        }
        let outcome = run_within(&mut command, LINE_LIMIT);
        match REFUSED.iter().position(|(command, _)| *command == line.command) {
            Some(at) => {
                refused_used[at] = true;
                assert!(
                    !outcome.status.success(),
                    "README line {:?} should be refused:\n{}",
                    line.text,
                    outcome.stdout
                );
                assert!(
                    outcome.stderr.contains(REFUSED[at].1),
                    "the refusal of {:?} should say {:?}: {}",
                    line.text,
                    REFUSED[at].1,
                    outcome.stderr
                );
            }
            None => assert!(
                outcome.status.success(),
                "README line {:?} failed ({}):\nstdout: {}\nstderr: {}",
                line.text,
                outcome.status,
                outcome.stdout,
                outcome.stderr
            ),
        }
        ran += 1;
    }
    for ((command, _), used) in NOT_RUN.iter().zip(&not_run_used) {
        assert!(used, "NOT_RUN names {command:?}, which is no longer a README line");
    }
    for ((command, _), used) in REFUSED.iter().zip(&refused_used) {
        assert!(used, "REFUSED names {command:?}, which is no longer a README line");
    }
    println!("ran {ran} README lines; not run: {}", NOT_RUN.len());

    // What the commands claimed to build is there.
    let http = server.http();
    for image in ["python3-postgres", "pg", "my-python-base", "my-pandas", "nodejs-lodash"] {
        let found = http.get(&format!("/v1/images/{image}")).body;
        assert_eq!(found["status"], "READY", "{image}: {found}");
    }
    // The README cancels a rebuild of pg: the image stays the build it was.
    let pg = http.get("/v1/images/pg").body;
    assert!(pg["reason"][0].as_str().is_some_and(|r| r.contains("is still the build of task")), "{pg}");
    let web = http.get("/v1/images/web").body;
    assert_eq!(web["status"], "ERROR", "web's base image was deleted with --force: {web}");
    let functions = http.get("/v1/functions").body;
    assert_eq!(functions["items"].as_array().map(Vec::len), Some(0), "the README deletes the function: {functions}");
    assert!(sandbox.path("ctx/Dockerfile").is_file(), "the Dockerfile's build context was unpacked");
}

#[test]
fn sh_blocks_join_continuations_and_drop_comments() {
    let blocks = sh_blocks("text\n```sh\nkiln a \\\n    --b c   # why\n\necho '# kept'\n```\n```yaml\nx: 1\n```\n");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0][0].command, "kiln a --b c");
    assert_eq!(blocks[0][1].command, "echo '# kept'");
}
