//! Debian repositories on loopback for the build tests: the fixture mirror that
//! `scripts/debian-fixture.sh` copies from the machine's own apt lists (real signatures, real
//! packages), and a small repository signed here with a throwaway key that serves hostile
//! packages.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

/// A static file server on 127.0.0.1; `delay_seconds` slows every pool download so a test
/// can act while a build is mid-way. It exits when the test process goes away (stdin closes).
pub struct Mirror {
    pub url: String,
    child: Child,
}

const SERVE: &str = r#"
import base64, functools, http.server, os, sys, threading, time
root, delay = sys.argv[1], float(sys.argv[2])
auth = sys.argv[3] if len(sys.argv) > 3 else ""
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if auth and self.headers.get("Authorization") != "Basic " + base64.b64encode(auth.encode()).decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="kiln-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "/pool/" in self.path:
            time.sleep(delay)
        super().do_GET()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl Mirror {
    pub fn serve(root: &Path, delay_seconds: f64) -> Mirror {
        Mirror::serve_with_login(root, delay_seconds, None)
    }

    /// `serve`, answering 401 to requests without Basic credentials `user:password`.
    pub fn serve_with_login(root: &Path, delay_seconds: f64, login: Option<&str>) -> Mirror {
        let mut child = Command::new("python3")
            .args(["-c", SERVE])
            .arg(root)
            .arg(delay_seconds.to_string())
            .args(login)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the loopback mirror (python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("mirror stdout")).read_line(&mut line).expect("mirror port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("mirror printed {line:?}, not a port"));
        Mirror { url: format!("http://127.0.0.1:{port}"), child }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fixture made by `scripts/debian-fixture.sh` (the test command makes it first).
pub fn fixture_dir() -> PathBuf {
    let dir = std::env::var_os("KILN_DEBIAN_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debian-fixture"));
    assert!(
        dir.join(".stamp").exists(),
        "no Debian fixture at {}: run scripts/test.sh, or scripts/debian-fixture.sh with the packages it names",
        dir.display()
    );
    dir
}

/// The loopback Python index `scripts/pypi-fixture.sh` made.
pub fn pypi_fixture() -> PathBuf {
    let dir = std::env::var_os("KILN_PYPI_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pypi-fixture"));
    assert!(dir.join(".stamp").exists(), "no Python fixture at {}: run scripts/test.sh", dir.display());
    dir
}

/// The loopback npm registry `scripts/npm-fixture.sh` made.
pub fn npm_fixture() -> PathBuf {
    let dir = std::env::var_os("KILN_NPM_FIXTURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/npm-fixture"));
    assert!(dir.join(".stamp").exists(), "no npm fixture at {}: run scripts/test.sh", dir.display());
    dir
}

/// An apt configuration directory whose sources are the fixture's suites on `mirror`.
pub fn apt_config(dir: &Path, mirror: &Mirror) -> PathBuf {
    let suites = std::fs::read_to_string(fixture_dir().join("suites")).expect("fixture suites");
    let mut list = String::new();
    for line in suites.lines() {
        let Some((root, suite)) = line.split_once(' ') else { continue };
        list.push_str(&format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {}/{root} {suite} main\n",
            mirror.url
        ));
    }
    let config = dir.join("apt");
    std::fs::create_dir_all(&config).expect("apt config dir");
    std::fs::write(config.join("sources.list"), list).expect("sources.list");
    config
}

/// One package of the hostile repository: what its index says and the bytes served.
pub struct TestPackage {
    pub name: &'static str,
    pub depends: &'static str,
    pub file: Vec<u8>,
    /// What the index claims the file is, when it should differ from `file`.
    pub claimed: Option<Vec<u8>>,
}

/// Writes a repository (suite `kiln-test`, component `main`) under `root/repo`, signed with
/// a key made for it; returns the armoured public key.
pub fn signed_repository(root: &Path, packages: &[TestPackage]) -> String {
    let repo = root.join("repo");
    let binary = repo.join("dists/kiln-test/main/binary-amd64");
    std::fs::create_dir_all(&binary).expect("dists dir");
    std::fs::create_dir_all(repo.join("pool")).expect("pool dir");
    let mut index = String::new();
    for package in packages {
        let filename = format!("pool/{}_1.0_amd64.deb", package.name);
        std::fs::write(repo.join(&filename), &package.file).expect("write deb");
        let claimed = package.claimed.as_ref().unwrap_or(&package.file);
        index.push_str(&format!(
            "Package: {}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Kiln tests\n",
            package.name
        ));
        if !package.depends.is_empty() {
            index.push_str(&format!("Depends: {}\n", package.depends));
        }
        index.push_str(&format!(
            "Filename: {filename}\nSize: {}\nSHA256: {}\nDescription: test package\n\n",
            claimed.len(),
            hex::encode(Sha256::digest(claimed))
        ));
    }
    std::fs::write(binary.join("Packages"), &index).expect("Packages");
    let release = format!(
        "Origin: Kiln tests\nSuite: kiln-test\nCodename: kiln-test\nDate: {}\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S UTC"),
        hex::encode(Sha256::digest(index.as_bytes())),
        index.len()
    );
    let dists = repo.join("dists/kiln-test");
    std::fs::write(dists.join("Release"), release).expect("Release");

    let home = root.join("gnupg");
    std::fs::create_dir_all(&home).expect("gnupg home");
    let gpg = |args: &[&str]| {
        let output = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(output.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    gpg(&["--quick-gen-key", "Kiln Test Repository <repo@kiln.invalid>", "ed25519", "sign", "never"]);
    let release_path = dists.join("Release");
    let inrelease = dists.join("InRelease");
    gpg(&[
        "--clearsign",
        "--output",
        inrelease.to_str().expect("utf-8 path"),
        release_path.to_str().expect("utf-8 path"),
    ]);
    let key = gpg(&["--armor", "--export"]);
    let _ = Command::new("gpgconf").arg("--homedir").arg(&home).args(["--kill", "gpg-agent"]).status();
    String::from_utf8(key).expect("armoured key")
}

/// A tar entry written byte for byte, so hostile names survive the builder's own checks.
pub fn tar_with(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

/// A `.deb` (`ar` of debian-binary, control.tar, data.tar) around `data`.
pub fn deb(name: &str, data: Vec<u8>) -> Vec<u8> {
    deb_with(name, "data.tar", data)
}

/// A `.deb` whose data member is named `member` (its compression is told by the name).
pub fn deb_with(name: &str, member: &str, data: Vec<u8>) -> Vec<u8> {
    let control_text = format!("Package: {name}\nVersion: 1.0\nArchitecture: amd64\n");
    let control = tar_with(&[("./control", tar::EntryType::Regular, "", control_text.as_bytes())]);
    let mut out = ar::Builder::new(Vec::new());
    for (member, bytes) in [("debian-binary", b"2.0\n".to_vec()), ("control.tar", control), (member, data)] {
        out.append(&ar::Header::new(member.as_bytes().to_vec(), bytes.len() as u64), bytes.as_slice())
            .expect("ar member");
    }
    out.into_inner().expect("ar")
}
