//! Accepted writes survive `kill -9`; SIGTERM stops cleanly; one data directory serves one
//! server at a time.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, base_image};
use serde_json::json;

#[test]
fn accepted_writes_survive_kill_9() {
    let mut server = Server::start();
    let http = server.http();
    assert_eq!(http.post("/v1/base-images", base_image("base")).status, 201);
    // Writers keep going while the server is killed; every acknowledged write must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let base = http.base.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = common::admin_client();
                let mut acknowledged = Vec::new();
                for i in 0..2000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("w{w}-{i}");
                    match client
                        .post(format!("{base}/v1/images"))
                        .json(&json!({"name": name, "baseImageName": "base"}))
                        .send()
                    {
                        Ok(r) if r.status().as_u16() == 201 => acknowledged.push(name),
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(400));
    server.kill_hard();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<String> = writers.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
    assert!(acknowledged.len() > 10, "too few writes before the kill: {}", acknowledged.len());

    let restarted = Server::start_in(&server.data_dir);
    let http = restarted.http();
    for name in &acknowledged {
        let answer = http.get(&format!("/v1/images/{name}"));
        assert_eq!(answer.status, 200, "acknowledged image {name} was lost");
    }
    assert_eq!(http.get("/v1/base-images/base").status, 200);
    // The restarted server accepts writes again.
    assert_eq!(http.post("/v1/base-images", base_image("after")).status, 201);
}

#[test]
fn sigterm_stops_cleanly_and_data_remains() {
    let mut server = Server::start();
    assert_eq!(server.http().post("/v1/base-images", base_image("kept")).status, 201);
    let status = server.terminate().expect("kiln stops within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    let restarted = Server::start_in(&server.data_dir);
    assert_eq!(restarted.http().get("/v1/base-images/kept").status, 200);
}

#[test]
fn a_data_directory_serves_one_server() {
    let server = Server::start();
    let second = std::process::Command::new(common::KILN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .expect("run kiln serve");
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another kiln"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
}
