//! Plugin tests, including the servers run for real by the host's interpreters on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

#[test]
fn plugins_describe_root_images() {
    let python = plugin(Language::Python3);
    assert_eq!(python.packages, ["python3", "base-files", "netbase", "tzdata"]);
    assert_eq!(python.files[0].path, "usr/lib/kiln/server.py");
    assert_eq!((python.files[0].mode, python.files[0].uid), (0o644, 0));
    assert_eq!((python.files[1].path.as_str(), python.files[1].uid), ("function", 1000));
    assert!(python.settings.env.contains(&("PYTHONUNBUFFERED".into(), "1".into())));
    assert_eq!(python.settings.env[0], ("PATH".into(), DEFAULT_PATH.into()), "runtimes find their tools");
    assert_eq!(python.settings.user.as_deref(), Some("kiln"));
    let node = plugin(Language::Nodejs);
    assert_eq!(node.settings.entrypoint, Some(vec!["/usr/bin/node".into(), "/usr/lib/kiln/server.js".into()]));
    assert!(!node.settings.env.iter().any(|(n, _)| n == "PYTHONUNBUFFERED"));
    assert_eq!(Language::parse("nodejs"), Some(Language::Nodejs));
}

/// A running server, killed if a test fails before it stops it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

fn start(program: &str, server: &Path, function_dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(program)
        .arg(server)
        .env("PORT", port.to_string())
        .env("KILN_LISTEN_HOST", "127.0.0.1")
        .env("KILN_FUNCTION_DIR", function_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if request(port, "GET /healthz HTTP/1.1\r\n", b"").is_some() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{program} server did not answer on port {port}");
}

/// Sends one request (`head` is the request line and any headers) and returns status and body.
fn request(port: u16, head: &str, body: &[u8]) -> Option<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!("{head}Host: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n");
    let head = if head.contains("Content-Length") { head } else { format!("{head}Content-Length: {}\r\n", body.len()) };
    stream.write_all(format!("{head}\r\n").as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Some((status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
}

/// The whole response to a request without a body, headers included.
fn raw(port: u16, head: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
    let request = format!("{head}Host: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn post(port: u16, body: &str) -> (u16, serde_json::Value) {
    request(port, "POST / HTTP/1.1\r\n", body.as_bytes()).unwrap_or_else(|| panic!("no answer to {body}"))
}

fn exercise(program: &str, server_source: &str, file_name: &str, handler: &str, handler_name: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server_path = dir.path().join(file_name);
    let function_dir = dir.path().join("function");
    std::fs::create_dir(&function_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&server_path, server_source).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(function_dir.join(handler_name), handler).unwrap_or_else(|e| panic!("{e}"));
    let mut server = start(program, &server_path, &function_dir);
    let port = server.port;

    assert_eq!(request(port, "GET /healthz HTTP/1.1\r\n", b""), Some((200, serde_json::json!({"status": "ok"}))));
    // The function's path with another method is 405 naming the one it takes; elsewhere 404.
    for method in ["GET", "PUT", "DELETE"] {
        let answer = raw(port, &format!("{method} / HTTP/1.1\r\n"));
        assert!(answer.starts_with("HTTP/1.1 405"), "{method} /: {answer}");
        assert!(answer.to_ascii_lowercase().contains("\r\nallow: post\r\n"), "{method} /: {answer}");
    }
    assert_eq!(request(port, "GET /elsewhere HTTP/1.1\r\n", b"").map(|(s, _)| s), Some(404));
    let (status, body) = post(port, r#"{"context": {"id": 7}, "payload": {"name": "kiln"}}"#);
    assert_eq!((status, body), (200, serde_json::json!({"hello": "kiln", "id": 7})));
    let (status, body) = post(port, "{not json");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("JSON")), "{body}");
    let (status, body) = post(port, r#"{"context": null, "payload": {"fail": true}}"#);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "asked to fail");
    assert!(body["type"].as_str().is_some_and(|t| t.ends_with("Error")), "{body}");
    let big = request(port, "POST / HTTP/1.1\r\nContent-Length: 7340032\r\n", b"{}");
    assert_eq!(big.map(|(s, _)| s), Some(413));

    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().map(|s| s.success()).unwrap_or(false);
    assert!(killed);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "{program} server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{program} exited with {status}");
    let mut stderr = String::new();
    if let Some(mut pipe) = server.child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("asked to fail"), "the handler's failure is logged: {stderr}");
}

fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const PY_HANDLER: &str = r#"
def handle(context, payload):
    if payload.get("fail"):
        raise ValueError("asked to fail")
    return {"hello": payload["name"], "id": context["id"]}
"#;

const JS_HANDLER: &str = r#"
exports.handle = async (context, payload) => {
  if (payload.fail) throw new RangeError("asked to fail");
  return { hello: payload.name, id: context.id };
};
"#;

#[test]
fn python_server_serves_a_handler() {
    if !available("python3") {
        eprintln!("python3 not installed: the Python server test did not run");
        return;
    }
    exercise("python3", PYTHON_SERVER, "server.py", PY_HANDLER, "handler.py");
}

#[test]
fn node_server_serves_a_handler() {
    if !available("node") {
        eprintln!("node not installed: the Node.js server test did not run");
        return;
    }
    exercise("node", NODE_SERVER, "server.js", JS_HANDLER, "handler.js");
}
