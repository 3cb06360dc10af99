//! Starts Debian's `docker-registry` (CNCF distribution 2.8) on a loopback port as the reference
//! registry the conformance suite is measured against, so the suite's expectations are checked
//! against a real registry before Kiln's own is held to them.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary the `docker-registry` Debian package installs.
const BINARY: &str = "docker-registry";

/// Runs the registry under a small shell that also watches its standard input: when the test
/// process drops the pipe or exits (a shared registry lives in a static that is never dropped),
/// the shell stops the registry and removes its directory, so no registry outlives the tests.
/// The registry gets its own /dev/null stdin; fd 3 keeps the pipe for the watcher.
const SUPERVISOR: &str = r#"
exec 3<&0 </dev/null
docker-registry serve "$1" &
registry=$!
# The registry keeps the test's stderr; the shell's own "Terminated" notices do not.
exec 2>/dev/null
( read -r _ <&3; kill "$registry" 2>/dev/null ) &
watcher=$!
wait "$registry"
code=$?
kill "$watcher" 2>/dev/null
rm -rf "$2"
exit "$code"
"#;

pub struct Reference {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    supervisor: Child,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

/// Basic-auth settings: the user and password the registry accepts.
pub struct Htpasswd {
    pub realm: String,
    pub user: String,
    pub password: String,
}

impl Reference {
    /// A registry with deletes enabled and no authentication.
    pub fn start() -> Reference {
        Reference::start_with(None)
    }

    /// A registry that, given `auth`, demands HTTP basic credentials from an htpasswd file.
    /// A registry serving HTTPS with a certificate for 127.0.0.1 from a fresh private CA;
    /// returns it with the CA's certificate (PEM) a client must trust.
    pub fn start_tls() -> (Reference, String) {
        require_binary();
        let mut failures = Vec::new();
        for _ in 0..5 {
            match Reference::try_start_with(None, true) {
                Ok(reference) => {
                    let pem = std::fs::read_to_string(reference._dir.path().join("ca.crt")).expect("certificate");
                    return (reference, pem);
                }
                Err(why) => failures.push(why),
            }
        }
        panic!("docker-registry did not start with TLS: {failures:#?}");
    }

    pub fn start_with(auth: Option<&Htpasswd>) -> Reference {
        require_binary();
        let mut failures = Vec::new();
        // A port picked by binding :0 can be taken by someone else before the registry binds it.
        for _ in 0..5 {
            match Reference::try_start(auth) {
                Ok(reference) => return reference,
                Err(why) => failures.push(why),
            }
        }
        panic!("docker-registry did not start: {failures:#?}");
    }

    fn try_start(auth: Option<&Htpasswd>) -> Result<Reference, String> {
        Reference::try_start_with(auth, false)
    }

    fn try_start_with(auth: Option<&Htpasswd>, tls: bool) -> Result<Reference, String> {
        let dir = tempfile::Builder::new().prefix("kiln-reference-registry-").tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        let mut text = config_text(dir.path(), port, auth)?;
        if tls {
            text.push_str(&tls_config(dir.path())?);
        }
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let mut supervisor = Command::new("sh")
            .args(["-c", SUPERVISOR, "sh"])
            .arg(&config)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Distribution logs every 4xx at error level; the suite provokes many on purpose.
            .stderr(std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("spawn sh for {BINARY}: {e}"))?;
        let stdin = supervisor.stdin.take();
        let scheme = if tls { "https" } else { "http" };
        let mut reference = Reference { base: format!("{scheme}://127.0.0.1:{port}"), supervisor, stdin, _dir: dir };
        reference.wait_until_ready()?;
        Ok(reference)
    }

    /// Polls `GET /v2/` until it answers at all (401 counts: auth may be on).
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            // Readiness only; the tests check certificates with their own clients.
            .tls_danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = format!("{}/v2/", self.base);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.supervisor.try_wait() {
                return Err(format!("{BINARY} exited early with {status}"));
            }
            if client.get(&url).send().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("{BINARY} did not answer {url} within 10 s"))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // A line on the pipe (or its closing) is the supervisor's signal to stop the registry.
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.supervisor.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

/// Fails the test, instead of skipping it, so a machine without the reference cannot pass
/// the suite by accident.
pub fn require_binary() {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(BINARY).is_file()));
    assert!(
        found,
        "`{BINARY}` is not installed, so the registry conformance suite cannot run against the reference \
         registry: run scripts/test.sh (it installs the `docker-registry` Debian package) or \
         `apt-get install docker-registry`"
    );
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn config_text(dir: &Path, port: u16, auth: Option<&Htpasswd>) -> Result<String, String> {
    let storage = dir.join("storage");
    // A fixed secret silences the "generated random secret" warning on every start.
    let mut text = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: kiln-conformance-upload-state-secret\n",
        storage = yaml_string(&storage.display().to_string()),
    );
    if let Some(auth) = auth {
        let file = dir.join("htpasswd");
        // Cost 4 is bcrypt's minimum: the registry checks the hash on every request.
        let hash = bcrypt::hash(&auth.password, 4).map_err(|e| e.to_string())?;
        std::fs::write(&file, format!("{}:{hash}\n", auth.user)).map_err(|e| e.to_string())?;
        text.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
            yaml_string(&auth.realm),
            yaml_string(&file.display().to_string())
        ));
    }
    Ok(text)
}

/// Makes a private CA and a server certificate for 127.0.0.1 it signed (openssl), and the
/// config lines that serve with it. The CA's certificate is left in `ca.crt`.
fn tls_config(dir: &Path) -> Result<String, String> {
    let path = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let steps: [Vec<String>; 3] = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kiln-test-ca", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([path("ca.key"), "-out".into(), path("ca.crt")])
            .collect(),
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([path("tls.key"), "-out".into(), path("tls.csr")])
            .collect(),
        ["x509", "-req", "-days", "1", "-CAcreateserial", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([path("tls.csr"), "-CA".into(), path("ca.crt"), "-CAkey".into(), path("ca.key")])
            .chain(["-extfile".into(), path("server.ext"), "-out".into(), path("tls.crt")])
            .collect(),
    ];
    for args in steps {
        let made = Command::new("openssl")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("run openssl: {e}"))?;
        if !made.success() {
            return Err(format!("openssl {} failed", args.join(" ")));
        }
    }
    Ok(format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        yaml_string(&path("tls.crt")),
        yaml_string(&path("tls.key"))
    ))
}

/// A double-quoted YAML scalar; JSON string escapes are valid YAML.
fn yaml_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}
