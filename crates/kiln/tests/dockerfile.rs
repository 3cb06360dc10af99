//! The exported Dockerfile builds: a chain (python3 root image, a child with a Python package,
//! a grandchild with a Debian package) is built by Kiln, its Dockerfile and build context are
//! built by buildah on a Debian base made here from the fixture's required packages, with apt
//! and pip pointed at the loopback fixtures, and the two images' packages are compared.

mod common;
#[path = "builds/mirror.rs"]
mod mirror;
#[path = "builds/runc.rs"]
mod runc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, image_settled, stderr, stdout};
use mirror::{Mirror, apt_config, fixture_dir, pypi_fixture};
use serde_json::json;

/// Unpacks every package of the fixture's `base-uris` (Debian's required set, apt included)
/// into `rootfs` with dpkg-deb and records them in dpkg's status without running their
/// scripts, as the first stage of debootstrap does: enough for apt and dpkg to work.
const MAKE_BASE: &str = r#"
set -euo pipefail
fixture=$1 rootfs=$2
mkdir -p "$rootfs/var/lib/dpkg/info" "$rootfs/var/lib/dpkg/updates" "$rootfs/var/lib/dpkg/triggers"
: >"$rootfs/var/lib/dpkg/status"
while read -r uri file size hash; do
    uri=${uri//\'/}
    path=${uri#*://*/}
    deb=$fixture/$(printf '%b' "${path//%/\\x}")
    dpkg-deb -x "$deb" "$rootfs"
    package=$(dpkg-deb -f "$deb" Package)
    { dpkg-deb -f "$deb" Package; echo "Status: install ok installed"; dpkg-deb -f "$deb" | sed 1d; echo; } \
        | sed '1s/^/Package: /' >>"$rootfs/var/lib/dpkg/status"
    dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's#^\.##; s#/$##; s#^$#/.#' >"$rootfs/var/lib/dpkg/info/$package.list"
done <"$fixture/base-uris"
cp "$rootfs/usr/share/base-passwd/passwd.master" "$rootfs/etc/passwd"
cp "$rootfs/usr/share/base-passwd/group.master" "$rootfs/etc/group"
ln -sf mawk "$rootfs/usr/bin/awk"
tar -C "$rootfs" -cf "$rootfs.tar" .
rm -rf "$rootfs"
"#;

/// buildah with its storage under `dir`, so nothing is shared with the machine's images.
struct Buildah {
    root: PathBuf,
}

impl Buildah {
    fn command(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.root.join("storage"))
            .arg("--runroot")
            .arg(self.root.join("run"))
            .args(["--storage-driver", "overlay"]);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().expect("run buildah");
        assert!(output.status.success(), "buildah {args:?}:\n{}\n{}", stdout(&output), stderr(&output));
        stdout(&output)
    }

    /// `name=version` of every package dpkg has installed in `image`, and its Python
    /// distributions under /usr/local.
    fn contents(&self, image: &str) -> (BTreeMap<String, String>, Vec<String>) {
        let container = self.run(&["from", "--pull-never", image]).trim().to_string();
        let root = PathBuf::from(self.run(&["mount", &container]).trim());
        let found = contents(&root);
        self.run(&["umount", &container]);
        self.run(&["rm", &container]);
        found
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // Overlay mounts would keep the temporary directory from going away.
        let _ = self.command().args(["rm", "--all"]).output();
        let _ = self.command().args(["rmi", "--all", "--force"]).output();
    }
}

fn contents(root: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).expect("dpkg status");
    let mut packages = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string)).unwrap_or_default()
        };
        if field("Status").ends_with(" installed") {
            packages.insert(field("Package"), field("Version"));
        }
    }
    let mut python = Vec::new();
    if let Ok(dir) = std::fs::read_dir(root.join("usr/local/lib/python3.11/dist-packages")) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(distribution) = name.strip_suffix(".dist-info") {
                python.push(distribution.to_ascii_lowercase());
            }
        }
    }
    python.sort();
    (packages, python)
}

#[test]
fn the_exported_dockerfile_builds_the_same_packages_with_buildah() {
    let version = Command::new("buildah").arg("--version").output();
    assert!(version.is_ok_and(|o| o.status.success()), "buildah is needed: scripts/test.sh installs it");
    let temp = tempfile::tempdir().expect("temp dir");
    let debian = Mirror::serve(&fixture_dir(), 0.0);
    let pypi = Mirror::serve(&pypi_fixture(), 0.0);
    let apt = apt_config(temp.path(), &debian);
    let server = Server::start_with(&temp.path().join("data"), |command| {
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", &apt)
            .env("KILN_PYPI_INDEX_URL", format!("{}/simple", pypi.url))
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
    .0;
    let http = server.http();
    let bootstrap = server.kiln(&["bootstrap", "python3", "--wait"]);
    assert!(bootstrap.status.success(), "{}\n{}", stdout(&bootstrap), stderr(&bootstrap));
    let parent = json!({"name": "py-requests", "baseImageName": "python3", "extendable": true,
                        "runtimeDependencies": {"packages": [{"name": "requests"}]}});
    assert_eq!(http.post("/v1/images", parent).status, 201);
    assert_eq!(image_settled(&server, "py-requests")["status"], "READY");
    let child = json!({"name": "py-pg", "parentImageName": "py-requests",
                       "systemDependencies": {"packages": [{"name": "libpq5"}]}});
    assert_eq!(http.post("/v1/images", child).status, 201);
    let built = image_settled(&server, "py-pg");
    assert_eq!(built["status"], "READY", "{built}");

    let dockerfile = http.get("/v1/images/py-pg/dockerfile").text;
    assert!(dockerfile.contains("ARG BASE=debian:bookworm-slim\nFROM ${BASE} AS system\n"), "{dockerfile}");
    assert!(!dockerfile.contains("FROM 127.0.0.1"), "not FROM the Kiln root image, which has no apt: {dockerfile}");
    assert_eq!(http.get("/v1/images/py-pg/dockerfile?context=zip").status, 400);
    let context = temp.path().join("context");
    let tar = common::admin_client()
        .get(format!("{}/v1/images/py-pg/dockerfile?context=tar", server.url))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.bytes())
        .expect("context tar");
    tar::Archive::new(tar.as_ref()).unpack(&context).expect("unpack the context");
    assert_eq!(std::fs::read_to_string(context.join("Dockerfile")).ok().as_deref(), Some(dockerfile.as_str()));
    assert!(context.join("usr/lib/kiln/server.py").is_file(), "the function server is in the context");

    // The base: Debian's required packages from the fixture, apt reading the loopback mirror.
    let buildah = Buildah { root: temp.path().join("buildah") };
    let base_dir = temp.path().join("base");
    std::fs::create_dir_all(&base_dir).expect("base dir");
    let made = Command::new("bash")
        .args(["-c", MAKE_BASE, "make-base"])
        .arg(fixture_dir())
        .arg(base_dir.join("rootfs"))
        .output()
        .expect("run bash");
    assert!(made.status.success(), "making the base: {}", stderr(&made));
    std::fs::write(base_dir.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").expect("base Dockerfile");
    buildah.run(&["bud", "--runtime", "runc", "-t", "localhost/kiln-test-base:1", base_dir.to_str().expect("utf-8")]);
    let sources = std::fs::read_to_string(apt.join("sources.list")).expect("sources.list");
    // The fixture's InRelease files are the machine's, which may be past Valid-Until.
    let sources = sources.replace("deb [", "deb [check-valid-until=no ");
    std::fs::write(temp.path().join("sources.list"), sources).expect("sources.list");
    std::fs::write(temp.path().join("apt.conf"), "Acquire::Languages \"none\";\n").expect("apt.conf");
    let mount = |file: &str, at: &str| format!("{}:{at}:ro", temp.path().join(file).display());
    let index = format!("PIP_INDEX_URL={}/simple", pypi.url);
    buildah.run(&[
        "bud",
        "--runtime",
        "runc",
        "--network",
        "host",
        "--build-arg",
        "BASE=localhost/kiln-test-base:1",
        "--build-arg",
        &index,
        "-v",
        &mount("sources.list", "/etc/apt/sources.list"),
        "-v",
        &mount("apt.conf", "/etc/apt/apt.conf.d/99kiln-test"),
        "-t",
        "localhost/kiln-test-rebuilt:1",
        context.to_str().expect("utf-8"),
    ]);

    // The Kiln image's packages must all be in the rebuilt one at the same versions; the
    // rebuilt one has the base's extra packages (apt, dpkg, coreutils…) on top.
    let reference = built["reference"].as_str().expect("reference");
    let path = reference.split_once('/').map(|(_, p)| p).unwrap_or(reference);
    let (repository, tag) = path.rsplit_once(':').expect("tagged reference");
    let bundle = runc::bundle(&server.url, repository, tag, &temp.path().join("kiln-image"));
    let (kiln_packages, kiln_python) = contents(&bundle.join("rootfs"));
    let (rebuilt_packages, rebuilt_python) = buildah.contents("localhost/kiln-test-rebuilt:1");
    assert!(kiln_packages.contains_key("libpq5") && kiln_packages.contains_key("python3"), "{kiln_packages:?}");
    let missing: Vec<String> = kiln_packages
        .iter()
        .filter(|(name, version)| rebuilt_packages.get(*name) != Some(*version))
        .map(|(name, version)| format!("{name}={version} (rebuilt: {:?})", rebuilt_packages.get(name)))
        .collect();
    assert!(missing.is_empty(), "packages of the Kiln image the Dockerfile did not rebuild: {missing:?}");
    let extra: Vec<&String> = rebuilt_packages.keys().filter(|name| !kiln_packages.contains_key(*name)).collect();
    println!(
        "kiln image: {} Debian packages, all in the rebuilt image ({} more from the base: {extra:?}); Python: {kiln_python:?}",
        kiln_packages.len(),
        extra.len()
    );
    assert!(kiln_python.iter().any(|d| d.starts_with("requests-")), "{kiln_python:?}");
    assert_eq!(rebuilt_python, kiln_python, "the same Python distributions at the same versions");
    assert!(!rebuilt_packages.contains_key("python3-pip"), "pip stays in its builder stage");
}
