//! A private home for the real container clients tests drive (skopeo, podman, umoci), so the
//! machine's own configuration, credentials, caches and storage are neither used nor changed;
//! and the one way those tests run a client: bounded in time, its output kept.

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Longest any single client command may take; a hung client must fail the test, not stall CI.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(180);

/// Fails, never skips, when a client is not installed: a skipped client test would let a
/// registry regression through unnoticed.
pub fn require(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
        assert!(found, "`{tool}` is not installed: run scripts/test.sh, which installs every client these tests drive");
    }
}

/// What a finished client command said.
pub struct Ran {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(self) -> Ran {
        assert!(
            self.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn failed(self) -> Ran {
        assert!(!self.status.success(), "{} was expected to fail but succeeded:\n{}", self.what, self.stdout);
        self
    }
}

/// Runs a client to completion within `COMMAND_LIMIT`, killing it past that.
pub fn run(command: &mut Command) -> Ran {
    run_within(command, COMMAND_LIMIT)
}

/// Runs a command to completion within `limit`, killing it past that.
pub fn run_within(command: &mut Command, limit: Duration) -> Ran {
    // The mount-namespace wrapper is noise in a failure message: name the client from its program on.
    let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let shown = match args.iter().position(|a| a == HIDE_GLOBAL_STATE) {
        Some(script) => &args[script + 2..],
        None => &args[..],
    };
    let what = if shown.len() < args.len() {
        shown.join(" ")
    } else {
        format!("{} {}", command.get_program().to_string_lossy(), shown.join(" "))
    };
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child =
        command.spawn().unwrap_or_else(|e| panic!("{what}: cannot start ({e}): run scripts/test.sh to install it"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    Ran { what, status, stdout, stderr }
}

/// Puts the sandbox's own directories over the machine-wide state directories of
/// containers/image tools, inside the mount namespace `unshare` made for one command, then
/// runs that command. The state lives on across the test's commands, as it would for a user.
pub const HIDE_GLOBAL_STATE: &str = r#"
for dir in /var/lib/containers /run/containers; do
    private="$KILN_CLIENTS_STATE$dir"
    mkdir -p "$dir" "$private" && mount --bind "$private" "$dir" || exit 125
done
exec "$@"
"#;

/// Whether this process may make mount namespaces (root with `unshare`), probed once.
pub static PRIVATE_MOUNTS: LazyLock<bool> = LazyLock::new(|| {
    let Ok(dir) = tempfile::tempdir() else { return false };
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "mount", "-t", "tmpfs", "kiln-clients-probe"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
});

/// A private home for one test's clients: their configuration, credentials, policy, caches
/// and storage all live here, so the machine's own (and other tests') are never used.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(test: &str) -> Sandbox {
        let dir = tempfile::Builder::new().prefix(&format!("kiln-clients-{test}-")).tempdir().expect("temp dir");
        let sandbox = Sandbox { dir };
        for sub in ["home", "tmp", "config", "data"] {
            std::fs::create_dir_all(sandbox.path(sub)).expect("sandbox directory");
        }
        // Anything goes: signatures are not what these tests are about.
        sandbox.write("policy.json", br#"{"default":[{"type":"insecureAcceptAnything"}]}"#);
        // No search registries, no mirrors: every reference here is fully qualified.
        sandbox.write("registries.conf", b"unqualified-search-registries = []\n");
        // No stored credentials: each command passes its own, or none to be anonymous.
        sandbox.write("auth.json", br#"{"auths":{}}"#);
        // REFERENCE.md §5: podman on these machines needs explicit ulimits.
        sandbox.write(
            "containers.conf",
            b"[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\n[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n",
        );
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            sandbox.path("podman/root").display(),
            sandbox.path("podman/run").display()
        );
        sandbox.write("storage.conf", storage.as_bytes());
        sandbox
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, bytes: &[u8]) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent directory");
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A client command whose home, configuration, credentials and temp files are the sandbox's.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_RUNTIME_DIR", self.path("tmp"))
            .env("TMPDIR", self.path("tmp"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .env("DOCKER_CONFIG", self.path("home"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        command
    }

    /// A containers/image tool (skopeo, podman). As root these keep a blob-info cache in
    /// /var/lib/containers/cache and podman a network directory in /run/containers, with no
    /// flag to move them; where a mount namespace can be had, the sandbox's directories are
    /// bound over both so nothing outside it is written (but for those two mount points, made
    /// empty if missing). Rootless the tools keep that state under the sandbox's XDG dirs.
    pub fn containers_tool(&self, program: &str) -> Command {
        if !*PRIVATE_MOUNTS {
            return self.command(program);
        }
        let mut command = self.command("unshare");
        command.env("KILN_CLIENTS_STATE", self.path("state"));
        command.args(["--mount", "--propagation", "private", "sh", "-c", HIDE_GLOBAL_STATE, "sh", program]);
        command
    }

    pub fn skopeo(&self, args: &[&str]) -> Command {
        let mut command = self.containers_tool("skopeo");
        command.arg("--policy").arg(self.path("policy.json")).args(args);
        command
    }

    pub fn umoci(&self, args: &[&str]) -> Command {
        let mut command = self.command("umoci");
        command.args(args);
        command
    }

    /// podman with private storage (vfs, no kernel features needed) and state in the sandbox.
    pub fn podman(&self, args: &[&str]) -> Command {
        let mut command = self.containers_tool("podman");
        command
            .arg("--root")
            .arg(self.path("podman/root"))
            .arg("--runroot")
            .arg(self.path("podman/run"))
            .arg("--tmpdir")
            .arg(self.path("podman/tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        command
    }
}
