//! Tokens and permissions on every route: what an anonymous caller, a bad token and the
//! first administrator get.

mod common;

use common::{Server, base_image};

#[test]
fn every_api_route_needs_a_valid_token() {
    let server = Server::start();
    let anonymous = server.http_as(None);
    let answer = anonymous.get("/v1/images");
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert!(answer.headers.get("www-authenticate").is_some_and(|v| v.to_str().unwrap_or("").starts_with("Bearer")));
    assert_eq!(anonymous.post("/v1/base-images", base_image("x")).status, 401);
    let wrong = server.http_as(Some("kiln_not-a-real-token-at-all"));
    let answer = wrong.get("/v1/images");
    assert_eq!(answer.status, 401);
    assert!(!answer.text.contains("kiln_not-a-real-token"), "errors never echo the token");
    // Health, the API document and the schemas stay public.
    assert_eq!(anonymous.get("/healthz").status, 200);
    assert_eq!(anonymous.get("/v1/openapi.json").status, 200);
    assert_eq!(anonymous.get("/v1/schemas/image").status, 200);
    let me = server.http().get("/v1/whoami");
    assert_eq!(me.body["subject"], "admin");
    assert!(me.body["permissions"].as_array().is_some_and(|p| p.iter().any(|x| x == "*:*")), "{}", me.text);
}

#[test]
fn the_first_start_prints_a_generated_token_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let run = |data: &std::path::Path| {
        let mut child = std::process::Command::new(common::KILN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("KILN_ADMIN_TOKEN")
            .env("KILN_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start kiln");
        let mut lines = Vec::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        for _ in 0..5 {
            let mut line = String::new();
            if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                break;
            }
            let done = line.starts_with("listening on");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        lines
    };
    let first = run(&data);
    let token_line = first.iter().find(|l| l.contains("token is shown this once")).expect("token printed");
    let token = token_line.trim().rsplit(' ').next().expect("token").to_string();
    assert!(token.starts_with("kiln_") && token.len() > 40, "{token}");
    let store = std::fs::read(data.join("kiln.redb")).expect("store file");
    assert!(!store.windows(token.len()).any(|w| w == token.as_bytes()), "the store holds only the token's hash");
    let second = run(&data);
    assert!(!second.iter().any(|l| l.contains("token")), "printed again: {second:?}");
}
