//! Starts the real `kiln` binary on a free loopback port with its own data directory, and
//! runs the CLI against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
/// The administrator token every test server is started with (`KILN_ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "kiln-test-admin-token-0123456789";

pub struct Server {
    pub url: String,
    pub child: Child,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with a fresh data directory.
    pub fn start() -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::start_in(&data_dir);
        server._temp = Some(temp);
        server
    }

    /// A server with a fresh data directory whose command `configure` may change first.
    #[allow(dead_code)]
    pub fn start_configured(configure: impl FnOnce(&mut Command)) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let (mut server, _) = Server::start_with(&data_dir, configure);
        server._temp = Some(temp);
        server
    }

    /// A server on an existing data directory (for restarts).
    pub fn start_in(data_dir: &Path) -> Server {
        Server::start_with(data_dir, |_| {}).0
    }

    /// A server whose command `configure` may change first (arguments, environment,
    /// standard error). Returns it with the lines it printed up to the listening line.
    pub fn start_with(data_dir: &Path, configure: impl FnOnce(&mut Command)) -> (Server, Vec<String>) {
        let mut command = Command::new(KILN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("KILN_LOG", "warn")
            .env("KILN_ADMIN_TOKEN", ADMIN_TOKEN)
            // Tests send many bad tokens on purpose; the limiter has its own test.
            .env("KILN_AUTH_FAILURES_PER_MINUTE", "1000000")
            // Test base images name hosts that do not exist; only tests of the controller,
            // against a registry on loopback, turn it on.
            .env("KILN_CONTROLLER", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut command);
        let mut child = command.spawn().expect("start kiln serve");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut lines = Vec::new();
        let mut url = None;
        while lines.len() < 10 {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read kiln's output") == 0 {
                break;
            }
            url = line.trim().strip_prefix("listening on ").map(str::to_string);
            lines.push(line);
            if url.is_some() {
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("kiln serve printed no listening line: {lines:?}"));
        (Server { url, child, data_dir: data_dir.to_path_buf(), _temp: None }, lines)
    }

    /// A client acting as the administrator.
    pub fn http(&self) -> Http {
        self.http_as(Some(ADMIN_TOKEN))
    }

    /// A client with `token` (or none).
    pub fn http_as(&self, token: Option<&str>) -> Http {
        Http { base: self.url.clone(), client: reqwest::blocking::Client::new(), token: token.map(str::to_string) }
    }

    /// Runs the CLI against this server.
    pub fn kiln(&self, args: &[&str]) -> Output {
        self.kiln_in(args, None)
    }

    pub fn kiln_in(&self, args: &[&str], dir: Option<&Path>) -> Output {
        let mut command = Command::new(KILN);
        command
            .args(args)
            .env("KILN_URL", &self.url)
            .env("KILN_TOKEN", ADMIN_TOKEN)
            .env("XDG_CONFIG_HOME", &self.data_dir);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command.output().expect("run kiln")
    }

    /// `kill -9`: no chance to flush or shut down.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Http {
    pub base: String,
    pub client: reqwest::blocking::Client,
    pub token: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
    pub text: String,
}

impl Http {
    pub fn call(&self, method: &str, path: &str, body: Option<&serde_json::Value>, headers: &[(&str, &str)]) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        answer(request.send().expect("request"))
    }

    pub fn raw(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request =
            self.client.request(method, format!("{}{path}", self.base)).header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        answer(request.body(body).send().expect("request"))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, &[])
    }
    pub fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.call("POST", path, Some(&body), &[])
    }
    pub fn put(&self, path: &str, body: serde_json::Value) -> Answer {
        self.call("PUT", path, Some(&body), &[])
    }
    pub fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None, &[])
    }
}

fn answer(response: reqwest::blocking::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { status, headers, body, text }
}

/// A plain client that sends the administrator's token on every request.
pub fn admin_client() -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}")).expect("header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::blocking::Client::builder().default_headers(headers).build().expect("client")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn base_image(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "reference": format!("registry.example/kiln/{name}:1.0"), "language": "python3"})
}

/// Polls image `name` until it is READY or ERROR (at most 300 s) and returns it.
pub fn image_settled(server: &Server, name: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let image = server.http().get(&format!("/v1/images/{name}")).body;
        if ["READY", "ERROR"].contains(&image["status"].as_str().unwrap_or_default()) {
            return image;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "image {name} did not settle: {image}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks `document` with the SPDX project's own validator (`pyspdxtools` from spdx-tools,
/// which scripts/test.sh installs into target/tools-venv) and fails with what it says.
pub fn assert_valid_spdx(document: &str, what: &str) {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools-venv/bin/pyspdxtools");
    assert!(tool.exists(), "no SPDX validator at {}: run scripts/test.sh, which installs spdx-tools", tool.display());
    let temp = tempfile::tempdir().expect("temp dir");
    let file = temp.path().join("sbom.spdx.json");
    std::fs::write(&file, document).expect("write the SBOM");
    let checked = Command::new(&tool).arg("-i").arg(&file).output().expect("run pyspdxtools");
    assert!(
        checked.status.success(),
        "{what}: the SPDX validator refused the SBOM:\n{}{}",
        stdout(&checked),
        stderr(&checked)
    );
}

/// The SPDX document a build pushed as the referrer of `digest` in `repository` of Kiln's
/// registry (root images have no `/v1/images/…/sbom`).
pub fn referred_sbom(http: &Http, repository: &str, digest: &str) -> String {
    let referrers = http.get(&format!("/v2/{repository}/referrers/{digest}?artifactType=application/spdx%2Bjson"));
    assert_eq!(referrers.status, 200, "{}", referrers.text);
    let manifest = referrers.body["manifests"][0]["digest"].as_str().expect("an SBOM referrer").to_string();
    let manifest = http.call(
        "GET",
        &format!("/v2/{repository}/manifests/{manifest}"),
        None,
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
    );
    let layer = manifest.body["layers"][0]["digest"].as_str().expect("the SBOM layer").to_string();
    let blob = http.get(&format!("/v2/{repository}/blobs/{layer}"));
    assert_eq!(blob.status, 200, "{}", blob.text);
    blob.text
}

/// How many of an inventory's Debian packages have a licence, and how many there are.
pub fn deb_licences(items: &serde_json::Value) -> (usize, usize) {
    let debs: Vec<&serde_json::Value> =
        items.as_array().into_iter().flatten().filter(|i| i["ecosystem"] == "deb").collect();
    let licensed = debs.iter().filter(|i| i["license"].as_str().is_some_and(|l| !l.is_empty())).count();
    (licensed, debs.len())
}
