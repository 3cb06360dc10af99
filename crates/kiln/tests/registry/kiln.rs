//! Starts the real `kiln serve` once per test binary as a registry target, under a small
//! shell supervisor that stops it and removes its data when the test process exits (a
//! static is never dropped, so nothing else would).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

pub const KILN: &str = env!("CARGO_BIN_EXE_kiln");
pub const ADMIN_TOKEN: &str = "kiln-test-admin-token-0123456789";

const SUPERVISOR: &str = r#"
exec 3<&0 </dev/null
"$1" serve --listen 127.0.0.1:0 --data-dir "$2/data" &
kiln=$!
exec 2>/dev/null
( read -r _ <&3; kill "$kiln" 2>/dev/null ) &
watcher=$!
wait "$kiln"
code=$?
kill "$watcher" 2>/dev/null
rm -rf "$2"
exit "$code"
"#;

pub struct Kiln {
    pub base: String,
    _supervisor: Child,
    _stdin: Option<ChildStdin>,
}

impl Kiln {
    pub fn start(extra_env: &[(&str, &str)]) -> Kiln {
        let dir = tempfile::Builder::new().prefix("kiln-registry-target-").tempdir().expect("temp dir").keep();
        let mut command = Command::new("sh");
        command
            .args(["-c", SUPERVISOR, "sh", KILN])
            .arg(&dir)
            .env("KILN_LOG", "warn")
            .env("KILN_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("KILN_AUTH_FAILURES_PER_MINUTE", "1000000")
            .env("KILN_CONTROLLER", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut supervisor = command.spawn().expect("start kiln serve");
        let stdin = supervisor.stdin.take();
        let mut reader = BufReader::new(supervisor.stdout.take().expect("stdout"));
        let mut base = None;
        for _ in 0..10 {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read kiln's output") == 0 {
                break;
            }
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                base = Some(url.to_string());
                break;
            }
        }
        let base = base.expect("kiln serve printed no listening line");
        Kiln { base, _supervisor: supervisor, _stdin: stdin }
    }
}
