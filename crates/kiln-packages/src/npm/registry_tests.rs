//! `HttpRegistry` against a tiny loopback server: the wire details (scoped names, the
//! abbreviated-metadata Accept header, credentials, relative tarball URLs, 404s) are what a
//! real registry would see, so they are checked on real sockets.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::json;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

type Seen = Arc<Mutex<Vec<String>>>;

/// Serves `routes` (path → body; anything else 404) and records each request's head.
async fn serve(routes: HashMap<String, Vec<u8>>) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/npm", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
            log.lock().unwrap().push(head);
            let (status, body) = match routes.get(&path) {
                Some(body) => ("200 OK", body.clone()),
                None => ("404 Not Found", b"{}".to_vec()),
            };
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
    });
    (base, seen)
}

fn tgz(package_json: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(package_json.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "package/package.json", package_json).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn http_registry_speaks_the_npm_protocol() {
    let tarball = tgz(br#"{"name":"@s/b","version":"1.0.0","license":"ISC"}"#);
    let integrity =
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&tarball)));
    let packument = json!({
        "name": "@s/b",
        "dist-tags": { "latest": "1.0.0" },
        "versions": { "1.0.0": { "dist": { "tarball": "@s/b/-/b-1.0.0.tgz", "integrity": integrity } } },
    });
    let routes = HashMap::from([
        ("/npm/@s%2fb".to_string(), serde_json::to_vec(&packument).unwrap()),
        ("/npm/@s/b/-/b-1.0.0.tgz".to_string(), tarball),
    ]);
    let (base, seen) = serve(routes).await;
    let auth = RegistryAuth::Bearer("tok".into());
    let registry = HttpRegistry::new(reqwest::Client::new(), &base, auth).unwrap();
    let package_json = br#"{"dependencies": {"@s/b": "^1"}}"#;
    let installation = install(&registry, package_json, None, &InstallOptions::default()).await.unwrap();
    let package = &installation.packages[0];
    assert_eq!((package.path.as_str(), package.license.as_deref()), ("node_modules/@s/b", Some("ISC")));
    assert_eq!(package.resolved, format!("{base}/@s/b/-/b-1.0.0.tgz"));
    assert_eq!(package.purl, "pkg:npm/%40s/b@1.0.0");
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "the packument is fetched once: {heads:?}");
    assert!(heads[0].contains("accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"));
    assert!(heads.iter().all(|h| h.contains("authorization: bearer tok")), "{heads:?}");

    let error = install(&registry, br#"{"dependencies": {"missing": "1"}}"#, None, &InstallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "package missing is not in the registry: {base}/missing answered 404; check the name in package.json or the registry address"
        )
    );
}

#[test]
fn registry_addresses_are_checked() {
    let error = HttpRegistry::new(reqwest::Client::new(), "ftp://x", RegistryAuth::None).err().unwrap();
    assert!(error.to_string().contains("use an http or https URL"), "{error}");
}
