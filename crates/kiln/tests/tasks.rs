//! Tasks through the real binary, on loopback only: a bootstrap without any package source
//! ends `failed` with a reason that says what to configure, visible in the task, its log,
//! its event stream and the CLI; ended tasks cannot be cancelled again.

mod common;

use std::time::{Duration, Instant};

use common::{Server, stderr, stdout};
use serde_json::json;

fn server_without_sources() -> Server {
    Server::start_configured(|command| {
        // Builds on, but no apt sources and no network: nothing to build from.
        command
            .env("KILN_CONTROLLER", "true")
            .env("KILN_APT_CONFIG_DIR", "none")
            .env("KILN_CONTROLLER_RETRY_SECONDS", "1");
    })
}

fn wait_for_end(server: &Server, id: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let task = server.http().get(&format!("/v1/tasks/{id}")).body;
        if ["succeeded", "failed", "cancelled"].contains(&task["state"].as_str().unwrap_or_default()) {
            return task;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "task did not end: {task}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bootstrap_without_sources_fails_clearly_everywhere() {
    let server = server_without_sources();
    let http = server.http();
    let answer = http.post("/v1/bootstrap", json!({"languages": ["python3"]}));
    assert_eq!(answer.status, 202, "{}", answer.text);
    let id = answer.body["items"][0]["id"].as_str().expect("task id").to_string();
    assert_eq!(answer.body["items"][0]["state"], "queued");

    let task = wait_for_end(&server, &id);
    assert_eq!(task["state"], "failed", "{task}");
    assert_eq!(task["attempts"], 1, "a configuration problem is not retried");
    let error = task["error"].as_str().unwrap_or_default();
    assert!(error.contains("no Debian package source is configured") && error.contains("--apt-config-dir"), "{error}");

    let logs = http.get(&format!("/v1/tasks/{id}/logs"));
    let lines: Vec<&str> =
        logs.body["items"].as_array().expect("items").iter().filter_map(|l| l["line"].as_str()).collect();
    assert!(lines.iter().any(|l| l.starts_with("attempt 1 of")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("failed: no Debian package source")), "{lines:?}");
    assert_eq!(logs.body["next"].as_u64(), Some(lines.len() as u64));

    // The event stream of an ended task replays its log and closes with `end`.
    let events = http
        .client
        .get(format!("{}/v1/tasks/{id}/events", http.base))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .expect("events");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let text = events.text().expect("event stream");
    assert!(text.contains("event: log") && text.contains("event: end"), "{text}");
    // A reconnection after the last line there could ever be is refused, not a panic or a
    // replay from the start.
    for last in [u64::MAX.to_string(), "line-7".to_string()] {
        let resumed = http.call("GET", &format!("/v1/tasks/{id}/events"), None, &[("last-event-id", &last)]);
        assert_eq!(resumed.status, 400, "Last-Event-ID {last}: {}", resumed.text);
        assert!(resumed.text.contains("Last-Event-ID"), "{}", resumed.text);
    }
    let resumed = http.call("GET", &format!("/v1/tasks/{id}/events"), None, &[("last-event-id", "0")]);
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert!(!resumed.text.contains("id: 0\n"), "line 0 is not sent again: {}", resumed.text);

    let cancel = http.delete(&format!("/v1/tasks/{id}"));
    assert_eq!(cancel.status, 409, "{}", cancel.text);
    assert!(cancel.body["message"].as_str().unwrap_or_default().contains("already ended"));

    let listed = server.kiln(&["get", "tasks", "--status", "failed"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains(&id) && stdout(&listed).contains("bootstrap"), "{}", stdout(&listed));
    let followed = server.kiln(&["logs", "-f", &id]);
    assert!(!followed.status.success(), "following a failed task fails");
    assert!(stdout(&followed).contains("failed: no Debian package source"), "{}", stdout(&followed));
    assert!(stderr(&followed).contains(&format!("task {id} failed")), "{}", stderr(&followed));

    let unknown = http.get("/v1/tasks/does-not-exist");
    assert_eq!(unknown.status, 404);
    let bad = http.post("/v1/bootstrap", json!({"languages": ["cobol"]}));
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("languages[0]") && bad.text.contains("python3 or nodejs"), "{}", bad.text);
    let bad_query = http.get("/v1/tasks?state=sleeping");
    assert_eq!(bad_query.status, 400);
}

#[test]
fn images_wait_for_their_parent_and_fail_with_its_reason() {
    let server = server_without_sources();
    let http = server.http();
    // A base image in another registry host that cannot resolve on loopback-only machines
    // still errors; the image on it reports the parent's reason instead of building.
    let base =
        http.post("/v1/base-images", json!({"name": "b", "reference": "127.0.0.1:1/x/y:1", "language": "python3"}));
    assert_eq!(base.status, 201, "{}", base.text);
    let image = http.post("/v1/images", json!({"name": "app", "baseImageName": "b"}));
    assert_eq!(image.status, 201, "{}", image.text);
    let started = Instant::now();
    let image = loop {
        let image = http.get("/v1/images/app").body;
        if image["status"] == "ERROR" {
            break image;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "image did not move to ERROR: {image}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let reason = image["reason"][0].as_str().unwrap_or_default();
    assert!(reason.starts_with("base image \"b\" is in ERROR: network"), "{reason}");
    assert!(image.get("buildTask").is_none(), "no build starts on a broken parent: {image}");
}
