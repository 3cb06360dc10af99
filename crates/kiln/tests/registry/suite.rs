//! The OCI Distribution 1.1 conformance checks, written once against a `Target` so the same
//! expectations hold for the reference registry today and for Kiln's own `/v2/` later.
//!
//! Every check makes its own repositories (`<namespace>/<check>-<random>`), so all of them can
//! run in parallel against one server. Where a target is known to differ from the spec in a way
//! the spec does not permit, a capability flag on `Target` says so and the check skips (and
//! prints) just that part; where the spec permits alternatives, the check accepts exactly those.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::Digest as _;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The digest of `{}`, the OCI empty descriptor's content; the spec's examples rely on it.
pub const EMPTY_JSON_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Registries may only answer manifest types the client accepts (distribution hides OCI
/// manifests from clients that do not list them), so every manifest request lists all four.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Every code the spec allows in an error body, plus the legacy Docker ones it says clients may see.
const SPEC_ERROR_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "TAG_INVALID",
    "MANIFEST_UNVERIFIED",
];

/// A registry under test and what it is known to support.
pub struct Target {
    /// Shown in every failure, so a shared suite says which registry broke.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    pub client: Client,
    /// HTTP basic credentials sent with every request, if the registry needs them.
    pub basic: Option<(String, String)>,
    /// Repositories are created under this first path component.
    pub namespace: String,
    /// The referrers API (`/v2/<name>/referrers/<digest>`, `OCI-Subject`, filtering). Without it
    /// the suite checks the 404 that tells clients to fall back to the referrers tag schema.
    pub supports_referrers: bool,
    /// sha512 stays the canonical digest (`Docker-Content-Digest`) of a blob pushed with one.
    /// Without it the spec still lets the registry accept the push and name the blob by sha256.
    pub supports_sha512: bool,
    /// `POST /blobs/uploads/?digest=` with a body stores the blob (201). Without it the spec's
    /// fallback applies: 202 and an upload session to finish with PUT.
    pub single_post_upload: bool,
    /// PATCH honours `Content-Range`: out-of-order or repeated chunks get 416, and a session's
    /// earlier locations still answer. A spec MUST; distribution 2.8 ignores the header.
    pub enforces_chunk_ranges: bool,
    /// `GET /tags/list` honours `n` and `last`. A spec MUST; distribution 2.8 ignores both.
    pub paginates_tags: bool,
    /// `GET /tags/list` returns tags in lexical order. A spec MUST; distribution 2.8 lists them
    /// in the storage directory's order.
    pub sorts_tags: bool,
    /// `DELETE /manifests/<tag>` removes only the tag. Without it the spec allows 400 or 405.
    pub supports_tag_delete: bool,
    /// A malformed digest as a manifest reference gets a 4xx, not a server error.
    pub rejects_malformed_manifest_references: bool,
    /// A repository whose manifests are all untagged lists no tags (200), as a repository that
    /// exists must; distribution 2.8 answers 404 NAME_UNKNOWN until something is tagged.
    pub lists_tags_of_untagged_repositories: bool,
}

impl Target {
    /// A target expected to conform in full; callers switch off what it lacks.
    pub fn new(name: &'static str, base: impl Into<String>) -> Target {
        let client = Client::builder()
            // Locations are data to check, never something to follow behind the suite's back.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the HTTP client");
        Target {
            name,
            base: base.into().trim_end_matches('/').to_string(),
            client,
            basic: None,
            namespace: "conformance".to_string(),
            supports_referrers: true,
            supports_sha512: true,
            single_post_upload: true,
            enforces_chunk_ranges: true,
            paginates_tags: true,
            sorts_tags: true,
            supports_tag_delete: true,
            rejects_malformed_manifest_references: true,
            lists_tags_of_untagged_repositories: true,
        }
    }

    /// A fresh repository name for one check.
    pub fn repo(&self, check: &str) -> String {
        format!("{}/{}-{:016x}", self.namespace, check.replace('_', "-"), random_u64())
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// A request to a path under the base (or to an absolute URL, such as a Location).
    pub fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path_or_url));
        match &self.basic {
            Some((user, password)) => builder.basic_auth(user, Some(password)),
            None => builder,
        }
    }

    pub fn send(&self, builder: RequestBuilder) -> Answer {
        let request = builder.build().expect("build the request");
        let what = format!("[{}] {} {}", self.name, request.method(), request.url());
        let response = self.client.execute(request).unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let (body, body_error) = match response.bytes() {
            Ok(body) => (body.to_vec(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Answer { what, status, headers, body, body_error }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send(self.request(Method::GET, path))
    }

    pub fn head(&self, path: &str) -> Answer {
        self.send(self.request(Method::HEAD, path))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.send(self.request(Method::DELETE, path))
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the location of a new session.
    pub fn open_upload(&self, repo: &str) -> String {
        let answer =
            self.send(self.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("Content-Length", "0"));
        answer.expect(202);
        self.location(&answer)
    }

    /// The upload's closing PUT, with `bytes` (possibly none) as the final chunk.
    pub fn close_upload(&self, location: &str, digest: &str, bytes: &[u8]) -> Answer {
        self.send(
            self.request(Method::PUT, location)
                .query(&[("digest", digest)])
                .header("Content-Type", "application/octet-stream")
                .body(bytes.to_vec()),
        )
    }

    /// Pushes a blob by POST then PUT, the method every registry must take; returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let location = self.open_upload(repo);
        let answer = self.close_upload(&location, &digest, bytes);
        answer.expect(201);
        digest
    }

    /// `Location` made absolute; the spec lets registries answer with a path.
    pub fn location(&self, answer: &Answer) -> String {
        let location = answer.header("location").unwrap_or_else(|| panic!("{}: no Location header", answer.what));
        assert!(!location.is_empty(), "{}: empty Location", answer.what);
        self.url(location)
    }

    /// The path part of `Location`, for comparing with an expected path.
    pub fn location_path(&self, answer: &Answer) -> String {
        let location = self.location(answer);
        let url =
            reqwest::Url::parse(&location).unwrap_or_else(|e| panic!("{}: Location {location}: {e}", answer.what));
        url.path().to_string()
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Answer {
        self.send(
            self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("Content-Type", media_type)
                .body(body.to_vec()),
        )
    }

    /// Pushes a manifest, checks the 201's headers, and returns its digest.
    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let digest = sha256(body);
        let answer = self.put_manifest(repo, reference, media_type, body);
        answer.expect(201);
        assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{}", answer.what);
        let path = self.location_path(&answer);
        assert!(
            path == format!("/v2/{repo}/manifests/{digest}") || path == format!("/v2/{repo}/manifests/{reference}"),
            "{}: Location {path} is not a pullable manifest URL",
            answer.what
        );
        digest
    }

    pub fn get_manifest(&self, repo: &str, reference: &str) -> Answer {
        self.send(
            self.request(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", ACCEPT_MANIFESTS),
        )
    }

    pub fn head_manifest(&self, repo: &str, reference: &str) -> Answer {
        self.send(
            self.request(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}")).header("Accept", ACCEPT_MANIFESTS),
        )
    }

    /// Pushes a config and a layer and returns an OCI image manifest for them (not pushed).
    pub fn oci_image(&self, repo: &str) -> Image {
        let layer = tar_with_file("conformance.txt", hex::encode(random_bytes(64)).as_bytes());
        let layer_digest = self.push_blob(repo, &layer);
        let config = image_config(&layer_digest);
        let config_digest = self.push_blob(repo, &config);
        let manifest = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": [descriptor(OCI_LAYER_TAR, &layer)],
            "annotations": {"org.opencontainers.image.title": "kiln conformance"},
        }));
        Image { digest: sha256(&manifest), manifest, media_type: OCI_MANIFEST, config_digest, layer_digest }
    }

    /// Pushes a config and a layer and returns a Docker schema 2 manifest for them (not pushed).
    pub fn docker_image(&self, repo: &str) -> Image {
        let layer = random_bytes(300);
        let layer_digest = self.push_blob(repo, &layer);
        let config = image_config(&layer_digest);
        let config_digest = self.push_blob(repo, &config);
        let manifest = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, &config),
            "layers": [descriptor(DOCKER_LAYER, &layer)],
        }));
        Image { digest: sha256(&manifest), manifest, media_type: DOCKER_MANIFEST, config_digest, layer_digest }
    }

    /// Pushes `{}` so artifact manifests can point their config at the empty descriptor.
    pub fn push_empty_config(&self, repo: &str) {
        assert_eq!(self.push_blob(repo, b"{}"), EMPTY_JSON_DIGEST);
    }
}

/// An image whose blobs are pushed and whose manifest is ready to push.
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub media_type: &'static str,
    pub config_digest: String,
    pub layer_digest: String,
}

impl Image {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.manifest.len()})
    }
}

/// One HTTP exchange, kept whole so a failed assertion can show what came back.
pub struct Answer {
    pub what: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Set when the body could not be read (say, shorter than its Content-Length).
    pub body_error: Option<String>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(2000).collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    pub fn expect(&self, status: u16) -> &Answer {
        assert_eq!(self.status, status, "{}: answered {} {:?}: {}", self.what, self.status, self.headers, self.text());
        assert!(self.body_error.is_none(), "{}: unreadable body: {:?}", self.what, self.body_error);
        self
    }

    /// The status, and a spec-shaped JSON error body whose codes include one of `codes`.
    pub fn expect_error(&self, status: u16, codes: &[&str]) -> &Answer {
        self.expect(status);
        let found = self.error_codes();
        assert!(
            found.iter().any(|c| codes.contains(&c.as_str())),
            "{}: error codes {found:?}, wanted one of {codes:?}",
            self.what
        );
        self
    }

    /// The codes of a `{"errors":[{"code":..,"message":..}]}` body, after checking its shape.
    pub fn error_codes(&self) -> Vec<String> {
        let body = self.json();
        let errors =
            body["errors"].as_array().unwrap_or_else(|| panic!("{}: no errors array: {}", self.what, self.text()));
        assert!(!errors.is_empty(), "{}: empty errors array", self.what);
        errors
            .iter()
            .map(|error| {
                let code =
                    error["code"].as_str().unwrap_or_else(|| panic!("{}: error without code: {error}", self.what));
                assert!(SPEC_ERROR_CODES.contains(&code), "{}: {code} is not a code the spec defines", self.what);
                let message = &error["message"];
                assert!(message.is_null() || message.is_string(), "{}: message is not a string: {error}", self.what);
                code.to_string()
            })
            .collect()
    }

    /// Whether the body parses as JSON (a 404 from an unmatched route may be plain text).
    pub fn is_json(&self) -> bool {
        serde_json::from_slice::<Value>(&self.body).is_ok()
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

// ---------------------------------------------------------------------------------------------
// Pull and the base endpoint

/// end-1: `GET /v2/` says the registry implements the spec.
pub fn base_endpoint(t: &Target) {
    t.get("/v2/").expect(200);
}

/// end-1 with authentication: no or wrong credentials get 401 with a challenge, right ones 200.
pub fn authentication(t: &Target) {
    let (user, password) = t.basic.clone().expect("this check needs a target with credentials");
    let anonymous = t.send(t.client.get(t.url("/v2/")));
    anonymous.expect_error(401, &["UNAUTHORIZED"]);
    let challenge =
        anonymous.header("www-authenticate").unwrap_or_else(|| panic!("{}: no WWW-Authenticate", anonymous.what));
    assert!(challenge.contains("realm="), "{}: challenge without a realm: {challenge}", anonymous.what);
    let wrong = t.send(t.client.get(t.url("/v2/")).basic_auth(&user, Some(format!("{password}-wrong"))));
    wrong.expect_error(401, &["UNAUTHORIZED"]);
    assert!(wrong.header("www-authenticate").is_some(), "{}: no WWW-Authenticate", wrong.what);
    let stranger = t.send(t.client.get(t.url("/v2/")).basic_auth(format!("{user}-nobody"), Some(&password)));
    stranger.expect(401);
    t.get("/v2/").expect(200);
    // Every endpoint is behind the same gate, not only the base.
    let repo = t.repo("authentication");
    t.send(t.client.get(t.url(&format!("/v2/{repo}/tags/list")))).expect_error(401, &["UNAUTHORIZED"]);
    t.send(t.client.post(t.url(&format!("/v2/{repo}/blobs/uploads/")))).expect_error(401, &["UNAUTHORIZED"]);
    let digest = t.push_blob(&repo, b"behind the gate");
    t.head(&format!("/v2/{repo}/blobs/{digest}")).expect(200);
}

/// end-2: HEAD on a blob gives its size and digest, and no body.
pub fn blob_head(t: &Target) {
    let repo = t.repo("blob_head");
    let bytes = random_bytes(1234);
    let digest = t.push_blob(&repo, &bytes);
    let answer = t.head(&format!("/v2/{repo}/blobs/{digest}"));
    answer.expect(200);
    assert_eq!(answer.content_length(), Some(1234), "{}", answer.what);
    assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{}", answer.what);
    assert!(answer.body.is_empty(), "{}: HEAD sent a body", answer.what);
}

/// end-2: GET returns the exact bytes, and a digest header that matches them.
pub fn blob_get(t: &Target) {
    let repo = t.repo("blob_get");
    let bytes = random_bytes(4321);
    let digest = t.push_blob(&repo, &bytes);
    let answer = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    answer.expect(200);
    assert!(answer.body == bytes, "{}: body differs from what was pushed", answer.what);
    assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{}", answer.what);
    assert_eq!(answer.content_length(), Some(4321), "{}", answer.what);
}

/// end-2 with `Range` (RFC 9110, a SHOULD): 206 with the slice and its Content-Range, and 416
/// for a range that starts past the end.
pub fn blob_range(t: &Target) {
    let repo = t.repo("blob_range");
    let bytes = random_bytes(1000);
    let digest = t.push_blob(&repo, &bytes);
    let path = format!("/v2/{repo}/blobs/{digest}");
    let answer = t.send(t.request(Method::GET, &path).header("Range", "bytes=100-199"));
    answer.expect(206);
    assert_eq!(answer.header("content-range"), Some("bytes 100-199/1000"), "{}", answer.what);
    assert!(answer.body == bytes[100..200], "{}: wrong slice", answer.what);
    let open = t.send(t.request(Method::GET, &path).header("Range", "bytes=990-"));
    open.expect(206);
    assert_eq!(open.header("content-range"), Some("bytes 990-999/1000"), "{}", open.what);
    assert!(open.body == bytes[990..], "{}: wrong slice", open.what);
    let past = t.send(t.request(Method::GET, &path).header("Range", "bytes=1000-"));
    // Only the status and Content-Range: distribution 2.8 announces the blob's length for this
    // answer and sends no body, which a client must survive anyway.
    assert_eq!(past.status, 416, "{}: {}", past.what, past.text());
    assert_eq!(past.header("content-range"), Some("bytes */1000"), "{}", past.what);
}

/// end-2: unknown blobs are 404 (BLOB_UNKNOWN) for GET and HEAD, in a repository that exists.
pub fn blob_unknown(t: &Target) {
    let repo = t.repo("blob_unknown");
    t.push_blob(&repo, &random_bytes(10));
    let missing = sha256(&random_bytes(10));
    t.head(&format!("/v2/{repo}/blobs/{missing}")).expect(404);
    t.get(&format!("/v2/{repo}/blobs/{missing}")).expect_error(404, &["BLOB_UNKNOWN"]);
}

/// A malformed digest is the client's mistake: 400 DIGEST_INVALID for blobs. A pull of a
/// manifest answers only the manifest or 404 in the spec, so a reference that is neither a
/// tag nor a digest is 404 MANIFEST_UNKNOWN there (never a server error); a push may say why
/// the reference is refused (400).
pub fn malformed_digest(t: &Target) {
    let repo = t.repo("malformed_digest");
    t.push_blob(&repo, &random_bytes(10));
    for bad in ["sha256:totallywrong", "sha256:abc"] {
        t.get(&format!("/v2/{repo}/blobs/{bad}")).expect_error(400, &["DIGEST_INVALID"]);
    }
    if !t.rejects_malformed_manifest_references {
        let answer = t.get_manifest(&repo, "sha256:totallywrong");
        eprintln!("[{}] known deviation: a malformed manifest digest answered {}", t.name, answer.status);
        return;
    }
    let long = "a".repeat(129);
    for bad in ["sha256:totallywrong", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "-dash", long.as_str()] {
        t.get_manifest(&repo, bad).expect_error(404, &["MANIFEST_UNKNOWN"]);
        t.head_manifest(&repo, bad).expect(404);
    }
    let image = t.oci_image(&repo);
    let pushed = t.put_manifest(&repo, "-dash", OCI_MANIFEST, &image.manifest);
    assert_eq!(pushed.status, 400, "{}: answered {}: {}", pushed.what, pushed.status, pushed.text());
}

// ---------------------------------------------------------------------------------------------
// Push: blobs

/// end-4b: a single POST with `?digest=` and the body. 201 where supported; otherwise the spec's
/// fallback, 202 and a session, which must not have stored anything yet.
pub fn blob_push_single_post(t: &Target) {
    let repo = t.repo("blob_push_single_post");
    let bytes = random_bytes(777);
    let digest = sha256(&bytes);
    let answer = t.send(
        t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .query(&[("digest", digest.as_str())])
            .header("Content-Type", "application/octet-stream")
            .body(bytes.clone()),
    );
    if t.single_post_upload {
        answer.expect(201);
        assert_eq!(t.location_path(&answer), format!("/v2/{repo}/blobs/{digest}"), "{}", answer.what);
        assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{}", answer.what);
        let claimed = sha256(&random_bytes(16));
        let wrong = t.send(
            t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
                .query(&[("digest", claimed.as_str())])
                .header("Content-Type", "application/octet-stream")
                .body(random_bytes(16)),
        );
        wrong.expect_error(400, &["DIGEST_INVALID"]);
        t.head(&format!("/v2/{repo}/blobs/{claimed}")).expect(404);
    } else {
        answer.expect(202);
        let location = t.location(&answer);
        t.head(&format!("/v2/{repo}/blobs/{digest}")).expect(404);
        t.close_upload(&location, &digest, &bytes).expect(201);
    }
    let stored = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    stored.expect(200);
    assert!(stored.body == bytes, "{}: body differs", stored.what);
}

/// end-4a + end-6: POST opens a session (202, Location), PUT with the body closes it (201).
pub fn blob_push_post_put(t: &Target) {
    let repo = t.repo("blob_push_post_put");
    let bytes = random_bytes(2048);
    let digest = sha256(&bytes);
    let opened = t.send(t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")));
    opened.expect(202);
    let location = t.location(&opened);
    assert!(t.location_path(&opened).starts_with(&format!("/v2/{repo}/blobs/uploads/")), "{}", opened.what);
    let closed = t.send(
        t.request(Method::PUT, &location)
            .query(&[("digest", digest.as_str())])
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", bytes.len().to_string())
            .body(bytes.clone()),
    );
    closed.expect(201);
    assert_eq!(t.location_path(&closed), format!("/v2/{repo}/blobs/{digest}"), "{}", closed.what);
    assert_eq!(closed.header("docker-content-digest"), Some(digest.as_str()), "{}", closed.what);
    let stored = t.get(&t.location(&closed));
    stored.expect(200);
    assert!(stored.body == bytes, "{}: body differs", stored.what);
}

/// end-5 + end-13 + end-6: chunks in order with Content-Range, the session's status between
/// them, and a closing PUT without a body. A finished session is gone (404).
pub fn blob_push_chunked(t: &Target) {
    let repo = t.repo("blob_push_chunked");
    let bytes = random_bytes(3000);
    let digest = sha256(&bytes);
    let mut location = t.open_upload(&repo);
    for (start, end) in [(0usize, 1000usize), (1000, 2500), (2500, 3000)] {
        let answer = patch_chunk(t, &location, &bytes[start..end], start);
        answer.expect(202);
        assert_eq!(answer.header("range"), Some(format!("0-{}", end - 1).as_str()), "{}", answer.what);
        location = t.location(&answer);
        let status = t.get(&location);
        status.expect(204);
        assert_eq!(status.header("range"), Some(format!("0-{}", end - 1).as_str()), "{}", status.what);
        location = t.location(&status);
    }
    let closed = t.close_upload(&location, &digest, &[]);
    closed.expect(201);
    assert_eq!(t.location_path(&closed), format!("/v2/{repo}/blobs/{digest}"), "{}", closed.what);
    assert_eq!(closed.header("docker-content-digest"), Some(digest.as_str()), "{}", closed.what);
    let stored = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    stored.expect(200);
    assert!(stored.body == bytes, "{}: chunks were not joined in order", stored.what);
    t.get(&location).expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
}

/// The final chunk may travel in the closing PUT instead of a PATCH.
pub fn blob_push_chunked_final_in_put(t: &Target) {
    let repo = t.repo("blob_push_chunked_final_in_put");
    let bytes = random_bytes(1500);
    let digest = sha256(&bytes);
    let location = t.open_upload(&repo);
    let first = patch_chunk(t, &location, &bytes[..1000], 0);
    first.expect(202);
    let location = t.location(&first);
    let closed = t.send(
        t.request(Method::PUT, &location)
            .query(&[("digest", digest.as_str())])
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", "1000-1499")
            .body(bytes[1000..].to_vec()),
    );
    closed.expect(201);
    let stored = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    stored.expect(200);
    assert!(stored.body == bytes, "{}: body differs", stored.what);
}

/// end-5: a chunk that does not start where the upload ends is 416, and so is resending a chunk
/// through the session's first location; that location still reports the real offset.
pub fn blob_chunk_out_of_order(t: &Target) {
    let repo = t.repo("blob_chunk_out_of_order");
    let bytes = random_bytes(200);
    let first_location = t.open_upload(&repo);
    if !t.enforces_chunk_ranges {
        eprintln!("[{}] known deviation: Content-Range is not enforced, no 416 for out-of-order chunks", t.name);
        return;
    }
    patch_chunk(t, &first_location, &bytes[100..], 100).expect(416);
    // A range ending at the largest offset has no length to compute: refused, not a panic.
    let endless = t.send(
        t.request(Method::PATCH, &first_location)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("0-{}", u64::MAX))
            .body(bytes[..100].to_vec()),
    );
    endless.expect(416);
    let first = patch_chunk(t, &first_location, &bytes[..100], 0);
    first.expect(202);
    patch_chunk(t, &first_location, &bytes[..100], 0).expect(416);
    let status = t.get(&first_location);
    status.expect(204);
    assert_eq!(status.header("range"), Some("0-99"), "{}", status.what);
    let second = patch_chunk(t, &t.location(&status), &bytes[100..], 100);
    second.expect(202);
    t.close_upload(&t.location(&second), &sha256(&bytes), &[]).expect(201);
}

/// end-13: a session URL the registry never issued is 404. Clients are not meant to build
/// these URLs, so a registry may call one invalid (distribution wants its signed state in the
/// query) rather than unknown; sessions that did exist are checked in `blob_push_chunked`.
pub fn blob_upload_unknown(t: &Target) {
    let repo = t.repo("blob_upload_unknown");
    t.push_blob(&repo, &random_bytes(10));
    let session = "3f1e4b52-7f5c-4b2a-9a57-0c1d2e3f4a5b";
    t.get(&format!("/v2/{repo}/blobs/uploads/{session}"))
        .expect_error(404, &["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"]);
}

/// end-6: a closing PUT whose digest does not match is 400 DIGEST_INVALID, and stores nothing
/// under either digest.
pub fn blob_push_wrong_digest(t: &Target) {
    let repo = t.repo("blob_push_wrong_digest");
    let bytes = random_bytes(500);
    let claimed = sha256(&random_bytes(500));
    let location = t.open_upload(&repo);
    t.close_upload(&location, &claimed, &bytes).expect_error(400, &["DIGEST_INVALID"]);
    t.head(&format!("/v2/{repo}/blobs/{claimed}")).expect(404);
    t.head(&format!("/v2/{repo}/blobs/{}", sha256(&bytes))).expect(404);
}

/// A 256 KiB blob, pushed whole and in 64 KiB chunks, comes back byte for byte.
pub fn blob_large(t: &Target) {
    let repo = t.repo("blob_large");
    let bytes = random_bytes(256 * 1024);
    let digest = t.push_blob(&repo, &bytes);
    let whole = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    whole.expect(200);
    assert!(whole.body == bytes, "{}: body differs", whole.what);
    let chunked_repo = t.repo("blob_large_chunked");
    let mut location = t.open_upload(&chunked_repo);
    for start in (0..bytes.len()).step_by(64 * 1024) {
        let answer = patch_chunk(t, &location, &bytes[start..start + 64 * 1024], start);
        answer.expect(202);
        location = t.location(&answer);
    }
    t.close_upload(&location, &digest, &[]).expect(201);
    let chunked = t.get(&format!("/v2/{chunked_repo}/blobs/{digest}"));
    chunked.expect(200);
    assert!(chunked.body == bytes, "{}: body differs", chunked.what);
}

/// A blob pushed under a sha512 digest is verified against it and pullable by it. Where sha512
/// is not kept as canonical, the spec lets the registry name the blob by sha256 instead.
pub fn blob_sha512(t: &Target) {
    let repo = t.repo("blob_sha512");
    let bytes = random_bytes(900);
    let digest = sha512(&bytes);
    let location = t.open_upload(&repo);
    let closed = t.close_upload(&location, &digest, &bytes);
    closed.expect(201);
    let canonical = if t.supports_sha512 { digest.clone() } else { sha256(&bytes) };
    assert_eq!(closed.header("docker-content-digest"), Some(canonical.as_str()), "{}", closed.what);
    let stored = t.get(&format!("/v2/{repo}/blobs/{digest}"));
    stored.expect(200);
    assert!(stored.body == bytes, "{}: body differs", stored.what);
    let head = t.head(&format!("/v2/{repo}/blobs/{digest}"));
    head.expect(200);
    assert_eq!(head.content_length(), Some(900), "{}", head.what);
    // The digest is checked whatever the algorithm.
    let location = t.open_upload(&repo);
    t.close_upload(&location, &sha512(&random_bytes(900)), &bytes).expect_error(400, &["DIGEST_INVALID"]);
}

/// end-11: mounting a blob from another repository is 201 with the blob's new location.
pub fn blob_mount(t: &Target) {
    let from = t.repo("blob_mount_from");
    let to = t.repo("blob_mount_to");
    let bytes = random_bytes(600);
    let digest = t.push_blob(&from, &bytes);
    let answer = t.send(
        t.request(Method::POST, &format!("/v2/{to}/blobs/uploads/"))
            .query(&[("mount", digest.as_str()), ("from", from.as_str())]),
    );
    answer.expect(201);
    assert_eq!(t.location_path(&answer), format!("/v2/{to}/blobs/{digest}"), "{}", answer.what);
    assert_eq!(answer.header("docker-content-digest"), Some(digest.as_str()), "{}", answer.what);
    let mounted = t.get(&format!("/v2/{to}/blobs/{digest}"));
    mounted.expect(200);
    assert!(mounted.body == bytes, "{}: body differs", mounted.what);
}

/// end-11: a mount the registry cannot make (unknown blob, or no `from`) falls back to 202 and
/// an upload session the client can finish.
pub fn blob_mount_fallback(t: &Target) {
    let from = t.repo("blob_mount_fallback_from");
    let to = t.repo("blob_mount_fallback_to");
    t.push_blob(&from, &random_bytes(10));
    let bytes = random_bytes(300);
    let digest = sha256(&bytes);
    let answer = t.send(
        t.request(Method::POST, &format!("/v2/{to}/blobs/uploads/"))
            .query(&[("mount", digest.as_str()), ("from", from.as_str())]),
    );
    answer.expect(202);
    assert!(t.location_path(&answer).starts_with(&format!("/v2/{to}/blobs/uploads/")), "{}", answer.what);
    t.close_upload(&t.location(&answer), &digest, &bytes).expect(201);
    let unknown = sha256(&random_bytes(10));
    let without_from =
        t.send(t.request(Method::POST, &format!("/v2/{to}/blobs/uploads/")).query(&[("mount", unknown.as_str())]));
    without_from.expect(202);
    assert!(t.location_path(&without_from).starts_with(&format!("/v2/{to}/blobs/uploads/")), "{}", without_from.what);
}

// ---------------------------------------------------------------------------------------------
// Push and pull: manifests

/// Checks GET and HEAD of a pushed manifest by `reference`: exact bytes and matching headers.
fn assert_manifest_served(t: &Target, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
    let digest = sha256(body);
    let got = t.get_manifest(repo, reference);
    got.expect(200);
    assert!(got.body == body, "{}: not the bytes that were pushed: {}", got.what, got.text());
    assert_eq!(got.header("content-type"), Some(media_type), "{}", got.what);
    assert_eq!(got.header("docker-content-digest"), Some(digest.as_str()), "{}", got.what);
    assert_eq!(got.content_length(), Some(body.len() as u64), "{}", got.what);
    let head = t.head_manifest(repo, reference);
    head.expect(200);
    assert!(head.body.is_empty(), "{}: HEAD sent a body", head.what);
    assert_eq!(head.header("content-type"), Some(media_type), "{}", head.what);
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()), "{}", head.what);
    assert_eq!(head.content_length(), Some(body.len() as u64), "{}", head.what);
}

/// end-7 + end-3: an OCI image manifest pushed by tag is served by tag and by digest.
pub fn manifest_oci_image(t: &Target) {
    let repo = t.repo("manifest_oci_image");
    let image = t.oci_image(&repo);
    let digest = t.push_manifest(&repo, "v1", OCI_MANIFEST, &image.manifest);
    assert_eq!(digest, image.digest);
    assert_manifest_served(t, &repo, "v1", OCI_MANIFEST, &image.manifest);
    assert_manifest_served(t, &repo, &digest, OCI_MANIFEST, &image.manifest);
    // What the manifest names stays pullable through the same repository.
    for blob in [&image.config_digest, &image.layer_digest] {
        t.head(&format!("/v2/{repo}/blobs/{blob}")).expect(200);
    }
}

/// end-7: a manifest pushed by digest is served by digest and creates no tag.
pub fn manifest_push_by_digest(t: &Target) {
    let repo = t.repo("manifest_push_by_digest");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, &image.digest, OCI_MANIFEST, &image.manifest);
    assert_manifest_served(t, &repo, &image.digest, OCI_MANIFEST, &image.manifest);
    // Pushing the same bytes again is not an error.
    t.push_manifest(&repo, &image.digest, OCI_MANIFEST, &image.manifest);
    let tags = t.get(&format!("/v2/{repo}/tags/list"));
    if t.lists_tags_of_untagged_repositories {
        tags.expect(200);
        assert!(tag_names(&tags).is_empty(), "{}: a push by digest made tags: {}", tags.what, tags.text());
    } else {
        eprintln!("[{}] known deviation: tags/list of an untagged repository is 404", t.name);
        tags.expect_error(404, &["NAME_UNKNOWN"]);
    }
}

/// An image manifest with no layers is an image too (the spec lets the layer list be empty).
pub fn manifest_without_layers(t: &Target) {
    let repo = t.repo("manifest_without_layers");
    let config = image_config(&sha256(b""));
    let manifest = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [],
    }));
    t.push_blob(&repo, &config);
    t.push_manifest(&repo, "empty", OCI_MANIFEST, &manifest);
    assert_manifest_served(t, &repo, "empty", OCI_MANIFEST, &manifest);
}

/// end-7: an OCI index over two pushed images, by tag and by digest.
pub fn manifest_oci_index(t: &Target) {
    let repo = t.repo("manifest_oci_index");
    let amd64 = t.oci_image(&repo);
    let arm64 = t.oci_image(&repo);
    t.push_manifest(&repo, &amd64.digest, OCI_MANIFEST, &amd64.manifest);
    t.push_manifest(&repo, &arm64.digest, OCI_MANIFEST, &arm64.manifest);
    let index = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            platform(amd64.descriptor(), "amd64"),
            platform(arm64.descriptor(), "arm64"),
        ],
    }));
    let digest = t.push_manifest(&repo, "multi", OCI_INDEX, &index);
    assert_manifest_served(t, &repo, "multi", OCI_INDEX, &index);
    assert_manifest_served(t, &repo, &digest, OCI_INDEX, &index);
    // The children stay reachable through the index's descriptors.
    assert_manifest_served(t, &repo, &arm64.digest, OCI_MANIFEST, &arm64.manifest);
}

/// end-7: a Docker schema 2 image manifest, by tag and by digest.
pub fn manifest_docker_schema2(t: &Target) {
    let repo = t.repo("manifest_docker_schema2");
    let image = t.docker_image(&repo);
    let digest = t.push_manifest(&repo, "docker", DOCKER_MANIFEST, &image.manifest);
    assert_manifest_served(t, &repo, "docker", DOCKER_MANIFEST, &image.manifest);
    assert_manifest_served(t, &repo, &digest, DOCKER_MANIFEST, &image.manifest);
}

/// end-7: a Docker manifest list over two Docker images, by tag and by digest.
pub fn manifest_docker_list(t: &Target) {
    let repo = t.repo("manifest_docker_list");
    let amd64 = t.docker_image(&repo);
    let arm64 = t.docker_image(&repo);
    t.push_manifest(&repo, &amd64.digest, DOCKER_MANIFEST, &amd64.manifest);
    t.push_manifest(&repo, &arm64.digest, DOCKER_MANIFEST, &arm64.manifest);
    let list = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            platform(amd64.descriptor(), "amd64"),
            platform(arm64.descriptor(), "arm64"),
        ],
    }));
    let digest = t.push_manifest(&repo, "list", DOCKER_LIST, &list);
    assert_manifest_served(t, &repo, "list", DOCKER_LIST, &list);
    assert_manifest_served(t, &repo, &digest, DOCKER_LIST, &list);
}

/// end-7: a manifest whose blobs or child manifests are not in the repository is rejected with
/// MANIFEST_BLOB_UNKNOWN (the spec lets a registry reject it, and names the code if it does),
/// and nothing is tagged.
pub fn manifest_blob_unknown(t: &Target) {
    let repo = t.repo("manifest_blob_unknown");
    let config = image_config(&sha256(b"none"));
    t.push_blob(&repo, &config);
    let missing_layer = random_bytes(100);
    let manifest = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER_TAR, &missing_layer)],
    }));
    t.put_manifest(&repo, "broken", OCI_MANIFEST, &manifest).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    t.get_manifest(&repo, "broken").expect_error(404, &["MANIFEST_UNKNOWN"]);
    let missing_config = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &image_config(&sha256(b"other"))),
        "layers": [],
    }));
    t.put_manifest(&repo, "noconfig", OCI_MANIFEST, &missing_config).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
    let index = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len()}],
    }));
    t.put_manifest(&repo, "orphan", OCI_INDEX, &index).expect_error(400, &["MANIFEST_BLOB_UNKNOWN"]);
}

/// end-7: a body whose digest is not the one in the URL is 400 DIGEST_INVALID, and not stored.
pub fn manifest_digest_mismatch(t: &Target) {
    let repo = t.repo("manifest_digest_mismatch");
    let image = t.oci_image(&repo);
    let other = sha256(&random_bytes(32));
    t.put_manifest(&repo, &other, OCI_MANIFEST, &image.manifest).expect_error(400, &["DIGEST_INVALID"]);
    t.get_manifest(&repo, &other).expect(404);
    t.get_manifest(&repo, &image.digest).expect(404);
}

/// end-7: a body that is not a manifest is 400 MANIFEST_INVALID.
pub fn manifest_invalid(t: &Target) {
    let repo = t.repo("manifest_invalid");
    t.push_blob(&repo, &random_bytes(10));
    t.put_manifest(&repo, "junk", OCI_MANIFEST, b"{ not json").expect_error(400, &["MANIFEST_INVALID"]);
    t.get_manifest(&repo, "junk").expect(404);
}

/// end-3: an unknown tag or digest in a repository that exists is 404 MANIFEST_UNKNOWN.
pub fn manifest_unknown(t: &Target) {
    let repo = t.repo("manifest_unknown");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, "present", OCI_MANIFEST, &image.manifest);
    t.get_manifest(&repo, "absent").expect_error(404, &["MANIFEST_UNKNOWN"]);
    t.head_manifest(&repo, "absent").expect(404);
    let missing = sha256(&random_bytes(32));
    t.get_manifest(&repo, &missing).expect_error(404, &["MANIFEST_UNKNOWN"]);
    t.head_manifest(&repo, &missing).expect(404);
}

/// end-7: a manifest may name a `subject` that is not there yet, so referrers can come first.
pub fn manifest_subject_missing(t: &Target) {
    let repo = t.repo("manifest_subject_missing");
    t.push_empty_config(&repo);
    let absent = json!({"mediaType": OCI_MANIFEST, "digest": sha256(&random_bytes(32)), "size": 1234});
    let artifact = artifact_manifest(Some("application/vnd.kiln.conformance.note"), None, &absent, "early");
    let digest = sha256(&artifact);
    let answer = t.put_manifest(&repo, &digest, OCI_MANIFEST, &artifact);
    answer.expect(201);
    assert_manifest_served(t, &repo, &digest, OCI_MANIFEST, &artifact);
}

/// Registries should take manifests of at least 4 MB.
pub fn manifest_four_megabytes(t: &Target) {
    let repo = t.repo("manifest_four_megabytes");
    let image = t.oci_image(&repo);
    let mut manifest: Value = serde_json::from_slice(&image.manifest).expect("manifest JSON");
    let filler = "k".repeat(4_000_000 - image.manifest.len() - 64);
    manifest["annotations"]["org.kiln.conformance.filler"] = Value::String(filler);
    let body = serde_json::to_vec(&manifest).expect("serialize");
    assert!(body.len() > 3_990_000 && body.len() <= 4_000_000, "{}", body.len());
    t.push_manifest(&repo, "big", OCI_MANIFEST, &body);
    assert_manifest_served(t, &repo, "big", OCI_MANIFEST, &body);
}

/// Pushing another manifest under an existing tag moves the tag; the old one stays by digest.
pub fn manifest_tag_moves(t: &Target) {
    let repo = t.repo("manifest_tag_moves");
    let first = t.oci_image(&repo);
    let second = t.oci_image(&repo);
    t.push_manifest(&repo, "latest", OCI_MANIFEST, &first.manifest);
    t.push_manifest(&repo, "latest", OCI_MANIFEST, &second.manifest);
    assert_manifest_served(t, &repo, "latest", OCI_MANIFEST, &second.manifest);
    assert_manifest_served(t, &repo, &first.digest, OCI_MANIFEST, &first.manifest);
}

/// A tag may be 128 characters of `[a-zA-Z0-9_][a-zA-Z0-9._-]*`; a longer one is refused (400,
/// or 404 from a route that does not match) and never created.
pub fn tag_name_limits(t: &Target) {
    let repo = t.repo("tag_name_limits");
    let image = t.oci_image(&repo);
    let longest = format!("_V1.{}", "x-".repeat(62));
    assert_eq!(longest.len(), 128);
    t.push_manifest(&repo, &longest, OCI_MANIFEST, &image.manifest);
    assert_manifest_served(t, &repo, &longest, OCI_MANIFEST, &image.manifest);
    let too_long = format!("{longest}y");
    let answer = t.put_manifest(&repo, &too_long, OCI_MANIFEST, &image.manifest);
    assert!(matches!(answer.status, 400 | 404), "{}: answered {}: {}", answer.what, answer.status, answer.text());
    if answer.status == 400 || answer.is_json() {
        answer.expect_error(answer.status, &["TAG_INVALID", "MANIFEST_INVALID", "NAME_INVALID"]);
    }
    let tags = t.get(&format!("/v2/{repo}/tags/list"));
    tags.expect(200);
    assert_eq!(tag_names(&tags), [longest], "{}", tags.what);
}

// ---------------------------------------------------------------------------------------------
// Content discovery

/// end-8a/8b: tags come back in lexical order; `n` and `last` page through them with a `Link`
/// to the next page, and `n=0` is an empty list without one.
pub fn tag_list(t: &Target) {
    let repo = t.repo("tag_list");
    let image = t.oci_image(&repo);
    let mut tags = vec!["delta", "alpha", "echo", "charlie", "bravo"];
    for tag in &tags {
        t.push_manifest(&repo, tag, OCI_MANIFEST, &image.manifest);
    }
    tags.sort_unstable();
    // Without lexical order only the set can be compared (and paging cannot work).
    let listed = |answer: &Answer| {
        let mut names = tag_names(answer);
        if !t.sorts_tags {
            names.sort_unstable();
        }
        names
    };
    let all = t.get(&format!("/v2/{repo}/tags/list"));
    all.expect(200);
    assert_eq!(all.json()["name"], repo.as_str(), "{}", all.what);
    if !t.sorts_tags {
        eprintln!("[{}] known deviation: tags/list is not in lexical order", t.name);
    }
    assert_eq!(listed(&all), tags, "{}", all.what);
    let first = t.send(t.request(Method::GET, &format!("/v2/{repo}/tags/list")).query(&[("n", "2")]));
    first.expect(200);
    if !t.paginates_tags {
        eprintln!("[{}] known deviation: tags/list ignores n and last", t.name);
        assert_eq!(listed(&first), tags, "{}", first.what);
        return;
    }
    assert_eq!(tag_names(&first), ["alpha", "bravo"], "{}", first.what);
    let next = link_next(t, &first).unwrap_or_else(|| panic!("{}: more tags exist but no Link", first.what));
    let second = t.get(&next);
    second.expect(200);
    assert_eq!(tag_names(&second), ["charlie", "delta"], "{}", second.what);
    let last_page = t.get(&link_next(t, &second).unwrap_or_else(|| panic!("{}: no Link", second.what)));
    last_page.expect(200);
    assert_eq!(tag_names(&last_page), ["echo"], "{}", last_page.what);
    assert!(link_next(t, &last_page).is_none(), "{}: Link past the end", last_page.what);
    let after =
        t.send(t.request(Method::GET, &format!("/v2/{repo}/tags/list")).query(&[("n", "2"), ("last", "bravo")]));
    after.expect(200);
    assert_eq!(tag_names(&after), ["charlie", "delta"], "{}", after.what);
    let rest = t.send(t.request(Method::GET, &format!("/v2/{repo}/tags/list")).query(&[("last", "charlie")]));
    rest.expect(200);
    assert_eq!(tag_names(&rest), ["delta", "echo"], "{}", rest.what);
    let none = t.send(t.request(Method::GET, &format!("/v2/{repo}/tags/list")).query(&[("n", "0")]));
    none.expect(200);
    assert!(tag_names(&none).is_empty(), "{}: n=0 listed tags", none.what);
    assert!(none.header("link").is_none(), "{}: n=0 with a Link", none.what);
    let everything = t.send(t.request(Method::GET, &format!("/v2/{repo}/tags/list")).query(&[("n", "10")]));
    assert_eq!(tag_names(&everything), tags, "{}", everything.what);
    assert!(link_next(t, &everything).is_none(), "{}: Link with nothing left", everything.what);
}

/// end-8a: the tags of a repository that does not exist are 404 NAME_UNKNOWN.
pub fn tag_list_unknown_repository(t: &Target) {
    let repo = t.repo("tag_list_unknown_repository");
    t.get(&format!("/v2/{repo}/tags/list")).expect_error(404, &["NAME_UNKNOWN"]);
}

/// `GET /v2/_catalog` (Docker's extension, which clients use) lists a pushed repository and
/// pages with `n` and a `Link`.
pub fn catalog(t: &Target) {
    let repo = t.repo("catalog");
    // Two, so the n=1 page has a next one even on an otherwise empty registry.
    for repo in [repo.clone(), t.repo("catalog")] {
        let image = t.oci_image(&repo);
        t.push_manifest(&repo, "v1", OCI_MANIFEST, &image.manifest);
    }
    assert!(catalog_names(t).contains(&repo), "[{}] {repo} is not in the catalog", t.name);
    let one = t.get("/v2/_catalog?n=1");
    one.expect(200);
    assert_eq!(one.json()["repositories"].as_array().map(Vec::len), Some(1), "{}", one.what);
    assert!(link_next(t, &one).is_some(), "{}: one of many repositories but no Link", one.what);
}

/// Requests to a repository that does not exist are 404: NAME_UNKNOWN, or the unknown-resource
/// code for what was asked (the spec names no single one).
pub fn unknown_repository(t: &Target) {
    let repo = t.repo("unknown_repository");
    let digest = sha256(&random_bytes(16));
    t.get_manifest(&repo, "latest").expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    t.head_manifest(&repo, "latest").expect(404);
    t.get(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
    t.head(&format!("/v2/{repo}/blobs/{digest}")).expect(404);
    t.delete(&format!("/v2/{repo}/manifests/{digest}")).expect_error(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    t.delete(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
}

/// Names outside the spec's grammar (uppercase, `..`, a leading or trailing separator) are
/// refused: 400 NAME_INVALID, or a 404 that does not treat them as a repository; nothing is
/// created under them.
pub fn invalid_repository_name(t: &Target) {
    let suffix = format!("{:08x}", random_u64() as u32);
    let names = [
        format!("{}/Upper{suffix}", t.namespace),
        format!("{}/a..b{suffix}", t.namespace),
        format!("{}/-lead{suffix}", t.namespace),
        format!("{}/trail{suffix}-", t.namespace),
    ];
    for name in &names {
        let attempts = [
            t.get(&format!("/v2/{name}/tags/list")),
            t.get_manifest(name, "latest"),
            t.send(t.request(Method::POST, &format!("/v2/{name}/blobs/uploads/"))),
        ];
        for answer in attempts {
            match answer.status {
                400 => {
                    answer.expect_error(400, &["NAME_INVALID"]);
                }
                404 if answer.is_json() => {
                    answer.expect_error(404, &["NAME_INVALID", "NAME_UNKNOWN"]);
                }
                404 => {}
                other => panic!("{}: answered {other} for an invalid name: {}", answer.what, answer.text()),
            }
        }
    }
    let listed = catalog_names(t);
    for name in &names {
        assert!(!listed.contains(name), "[{}] {name} was created", t.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Content management

/// end-10: DELETE of a blob is 202; afterwards it is 404 BLOB_UNKNOWN, and a second DELETE is 404.
pub fn blob_delete(t: &Target) {
    let repo = t.repo("blob_delete");
    let digest = t.push_blob(&repo, &random_bytes(100));
    t.delete(&format!("/v2/{repo}/blobs/{digest}")).expect(202);
    t.head(&format!("/v2/{repo}/blobs/{digest}")).expect(404);
    t.get(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, &["BLOB_UNKNOWN"]);
    t.delete(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, &["BLOB_UNKNOWN"]);
}

/// end-9: DELETE of a manifest by digest is 202; it and every tag on it are then 404.
pub fn manifest_delete(t: &Target) {
    let repo = t.repo("manifest_delete");
    let image = t.oci_image(&repo);
    let keep = t.oci_image(&repo);
    t.push_manifest(&repo, "gone", OCI_MANIFEST, &image.manifest);
    t.push_manifest(&repo, "gone-too", OCI_MANIFEST, &image.manifest);
    t.push_manifest(&repo, "kept", OCI_MANIFEST, &keep.manifest);
    t.delete(&format!("/v2/{repo}/manifests/{}", image.digest)).expect(202);
    t.get_manifest(&repo, &image.digest).expect_error(404, &["MANIFEST_UNKNOWN"]);
    t.head_manifest(&repo, &image.digest).expect(404);
    t.get_manifest(&repo, "gone").expect_error(404, &["MANIFEST_UNKNOWN"]);
    t.get_manifest(&repo, "gone-too").expect(404);
    let tags = t.get(&format!("/v2/{repo}/tags/list"));
    tags.expect(200);
    assert_eq!(tag_names(&tags), ["kept"], "{}", tags.what);
    t.delete(&format!("/v2/{repo}/manifests/{}", image.digest)).expect_error(404, &["MANIFEST_UNKNOWN"]);
    assert_manifest_served(t, &repo, "kept", OCI_MANIFEST, &keep.manifest);
}

/// end-9: DELETE by tag removes only the tag (202); where tag deletion is off, 400 or 405 and
/// the tag stays. The spec names no code for that 400: the conformance tool wants UNSUPPORTED,
/// distribution says DIGEST_INVALID (it deletes by digest only).
pub fn tag_delete(t: &Target) {
    let repo = t.repo("tag_delete");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, "one", OCI_MANIFEST, &image.manifest);
    t.push_manifest(&repo, "two", OCI_MANIFEST, &image.manifest);
    let answer = t.delete(&format!("/v2/{repo}/manifests/one"));
    if t.supports_tag_delete {
        answer.expect(202);
        t.get_manifest(&repo, "one").expect_error(404, &["MANIFEST_UNKNOWN"]);
        assert_manifest_served(t, &repo, "two", OCI_MANIFEST, &image.manifest);
        assert_manifest_served(t, &repo, &image.digest, OCI_MANIFEST, &image.manifest);
    } else {
        match answer.status {
            400 => {
                answer.expect_error(400, &["UNSUPPORTED", "DIGEST_INVALID"]);
            }
            405 => {}
            other => panic!("{}: answered {other}, not 400 or 405: {}", answer.what, answer.text()),
        }
        assert_manifest_served(t, &repo, "one", OCI_MANIFEST, &image.manifest);
    }
}

// ---------------------------------------------------------------------------------------------
// Referrers

/// end-12a: referrers of an image list each artifact with its artifactType (or the config's
/// media type when it has none, or nothing for an index without one) and its annotations.
/// A push with `subject` is acknowledged by `OCI-Subject`. Without the API: 404, and no header.
pub fn referrers(t: &Target) {
    let repo = t.repo("referrers");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, "subject", OCI_MANIFEST, &image.manifest);
    let subject = image.descriptor();
    t.push_empty_config(&repo);
    let sbom = artifact_manifest(Some("application/vnd.kiln.conformance.sbom"), None, &subject, "sbom");
    let signature_config = br#"{"kind":"signature"}"#.to_vec();
    t.push_blob(&repo, &signature_config);
    let signature = artifact_manifest(
        None,
        Some(descriptor("application/vnd.kiln.conformance.signature", &signature_config)),
        &subject,
        "signature",
    );
    let index = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "subject": subject,
        "annotations": {"org.kiln.conformance": "index"},
    }));
    let mut pushed = Vec::new();
    for (body, media_type) in [(&sbom, OCI_MANIFEST), (&signature, OCI_MANIFEST), (&index, OCI_INDEX)] {
        let digest = sha256(body);
        let answer = t.put_manifest(&repo, &digest, media_type, body);
        answer.expect(201);
        if t.supports_referrers {
            assert_eq!(answer.header("oci-subject"), Some(image.digest.as_str()), "{}", answer.what);
        } else {
            assert!(answer.header("oci-subject").is_none(), "{}: OCI-Subject without the API", answer.what);
        }
        pushed.push(digest);
    }
    let listed = t.get(&format!("/v2/{repo}/referrers/{}", image.digest));
    if !t.supports_referrers {
        listed.expect(404);
        return;
    }
    let manifests = referrer_index(&listed);
    assert_eq!(manifests.len(), 3, "{}: {}", listed.what, listed.text());
    let find = |digest: &str| {
        manifests.iter().find(|m| m["digest"] == digest).unwrap_or_else(|| panic!("{}: {digest} missing", listed.what))
    };
    let entry = find(&pushed[0]);
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["size"], sbom.len());
    assert_eq!(entry["artifactType"], "application/vnd.kiln.conformance.sbom");
    assert_eq!(entry["annotations"], json!({"org.kiln.conformance": "sbom"}));
    let entry = find(&pushed[1]);
    assert_eq!(entry["artifactType"], "application/vnd.kiln.conformance.signature");
    assert_eq!(entry["annotations"], json!({"org.kiln.conformance": "signature"}));
    let entry = find(&pushed[2]);
    assert_eq!(entry["mediaType"], OCI_INDEX);
    assert!(entry.get("artifactType").is_none(), "{}: an index without artifactType got one", listed.what);
    assert_eq!(entry["annotations"], json!({"org.kiln.conformance": "index"}));
    // A deleted referrer leaves the list.
    t.delete(&format!("/v2/{repo}/manifests/{}", pushed[0])).expect(202);
    let after = t.get(&format!("/v2/{repo}/referrers/{}", image.digest));
    let remaining = referrer_index(&after);
    assert_eq!(remaining.len(), 2, "{}: {}", after.what, after.text());
    assert!(!remaining.iter().any(|m| m["digest"] == pushed[0].as_str()), "{}", after.what);
}

/// end-12b: `?artifactType=` keeps only matching referrers and says so in `OCI-Filters-Applied`.
pub fn referrers_filter(t: &Target) {
    let repo = t.repo("referrers_filter");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, &image.digest, OCI_MANIFEST, &image.manifest);
    t.push_empty_config(&repo);
    let mut wanted = Vec::new();
    for (artifact_type, note) in
        [("application/vnd.kiln.a", "a1"), ("application/vnd.kiln.b", "b"), ("application/vnd.kiln.a", "a2")]
    {
        let body = artifact_manifest(Some(artifact_type), None, &image.descriptor(), note);
        t.push_manifest(&repo, &sha256(&body), OCI_MANIFEST, &body);
        if artifact_type == "application/vnd.kiln.a" {
            wanted.push(sha256(&body));
        }
    }
    let answer = t.send(
        t.request(Method::GET, &format!("/v2/{repo}/referrers/{}", image.digest))
            .query(&[("artifactType", "application/vnd.kiln.a")]),
    );
    if !t.supports_referrers {
        answer.expect(404);
        return;
    }
    let manifests = referrer_index(&answer);
    assert_eq!(answer.header("oci-filters-applied"), Some("artifactType"), "{}", answer.what);
    let mut digests: Vec<&str> = manifests.iter().filter_map(|m| m["digest"].as_str()).collect();
    digests.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(digests, wanted, "{}: {}", answer.what, answer.text());
    assert!(manifests.iter().all(|m| m["artifactType"] == "application/vnd.kiln.a"), "{}", answer.what);
}

/// end-12a: a digest nothing refers to (pushed or not) is 200 with an empty index; a malformed
/// digest is 400.
pub fn referrers_empty(t: &Target) {
    let repo = t.repo("referrers_empty");
    let image = t.oci_image(&repo);
    t.push_manifest(&repo, "lonely", OCI_MANIFEST, &image.manifest);
    let unknown = sha256(&random_bytes(32));
    for digest in [image.digest.as_str(), unknown.as_str()] {
        let answer = t.get(&format!("/v2/{repo}/referrers/{digest}"));
        if !t.supports_referrers {
            answer.expect(404);
            continue;
        }
        assert!(referrer_index(&answer).is_empty(), "{}: {}", answer.what, answer.text());
        assert!(answer.header("oci-filters-applied").is_none(), "{}: no filter was asked for", answer.what);
    }
    if t.supports_referrers {
        let answer = t.get(&format!("/v2/{repo}/referrers/sha256:totallywrong"));
        answer.expect(400);
    }
}

/// end-12a: a referrer pushed before its subject is listed once the subject is asked about.
pub fn referrers_before_subject(t: &Target) {
    let repo = t.repo("referrers_before_subject");
    let image = t.oci_image(&repo);
    t.push_empty_config(&repo);
    let note = artifact_manifest(Some("application/vnd.kiln.conformance.note"), None, &image.descriptor(), "early");
    let answer = t.put_manifest(&repo, &sha256(&note), OCI_MANIFEST, &note);
    answer.expect(201);
    if !t.supports_referrers {
        t.get(&format!("/v2/{repo}/referrers/{}", image.digest)).expect(404);
        return;
    }
    assert_eq!(answer.header("oci-subject"), Some(image.digest.as_str()), "{}", answer.what);
    let before = t.get(&format!("/v2/{repo}/referrers/{}", image.digest));
    assert_eq!(referrer_index(&before).len(), 1, "{}: {}", before.what, before.text());
    t.push_manifest(&repo, "late", OCI_MANIFEST, &image.manifest);
    let after = t.get(&format!("/v2/{repo}/referrers/{}", image.digest));
    let manifests = referrer_index(&after);
    assert_eq!(manifests.len(), 1, "{}: {}", after.what, after.text());
    assert_eq!(manifests[0]["digest"], sha256(&note).as_str());
}

/// Checks a referrers answer is a 200 OCI index and returns its descriptors.
fn referrer_index(answer: &Answer) -> Vec<Value> {
    answer.expect(200);
    assert_eq!(answer.header("content-type"), Some(OCI_INDEX), "{}", answer.what);
    let body = answer.json();
    assert_eq!(body["schemaVersion"], 2, "{}", answer.what);
    assert_eq!(body["mediaType"], OCI_INDEX, "{}", answer.what);
    body["manifests"].as_array().cloned().unwrap_or_else(|| panic!("{}: no manifests array", answer.what))
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/// PATCHes one chunk that starts at `start` with the headers the spec asks for.
fn patch_chunk(t: &Target, location: &str, chunk: &[u8], start: usize) -> Answer {
    t.send(
        t.request(Method::PATCH, location)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{start}-{}", start + chunk.len() - 1))
            .header("Content-Length", chunk.len().to_string())
            .body(chunk.to_vec()),
    )
}

/// Every repository in the catalog, following its `Link`s (pages of 100: distribution refuses
/// an `n` above its configured maximum).
fn catalog_names(t: &Target) -> Vec<String> {
    let mut next = Some("/v2/_catalog?n=100".to_string());
    let mut names = Vec::new();
    for _ in 0..1000 {
        let Some(path) = next.take() else { break };
        let page = t.get(&path);
        page.expect(200);
        let listed = page.json()["repositories"].as_array().cloned().unwrap_or_default();
        names.extend(listed.iter().filter_map(|n| n.as_str().map(str::to_string)));
        next = link_next(t, &page);
    }
    assert!(next.is_none(), "[{}] the catalog did not end within 1000 pages", t.name);
    names
}

/// The tags of a tags/list answer (`null` counts as none).
fn tag_names(answer: &Answer) -> Vec<String> {
    let body = answer.json();
    match &body["tags"] {
        Value::Null => Vec::new(),
        Value::Array(tags) => tags.iter().map(|t| t.as_str().expect("tag is a string").to_string()).collect(),
        other => panic!("{}: tags is {other}", answer.what),
    }
}

/// The target of a `Link: <url>; rel="next"` header (RFC 5988).
fn link_next(t: &Target, answer: &Answer) -> Option<String> {
    let link = answer.header("link")?;
    let (target, params) = link.split_once(';')?;
    assert!(params.replace(' ', "").contains("rel=\"next\""), "{}: Link without rel=\"next\": {link}", answer.what);
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    Some(t.url(target))
}

/// An artifact manifest with `subject`, either an `artifactType` and the empty config, or a
/// config of its own whose media type stands in for the artifact type.
fn artifact_manifest(artifact_type: Option<&str>, config: Option<Value>, subject: &Value, note: &str) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.unwrap_or_else(|| json!({"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2})),
        "layers": [{"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2}],
        "subject": subject,
        "annotations": {"org.kiln.conformance": note},
    });
    if let Some(artifact_type) = artifact_type {
        manifest["artifactType"] = Value::String(artifact_type.to_string());
    }
    pretty(&manifest)
}

pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

fn platform(mut descriptor: Value, architecture: &str) -> Value {
    descriptor["platform"] = json!({"architecture": architecture, "os": "linux"});
    descriptor
}

/// An image config whose one layer is `diff_id`; a nonce keeps each config unique.
fn image_config(diff_id: &str) -> Vec<u8> {
    pretty(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": format!("kiln conformance {:016x}", random_u64())}],
    }))
}

/// Pretty JSON with a trailing newline: a registry that re-serialises instead of keeping the
/// client's bytes shows up as a digest or body mismatch.
pub fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("serialize JSON");
    bytes.push(b'\n');
    bytes
}

/// A one-file ustar archive, so layers are real (uncompressed) tar for any registry that looks.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[148..156].fill(b' ');
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut archive = header.to_vec();
    archive.extend_from_slice(content);
    archive.resize(archive.len().div_ceil(512) * 512 + 1024, 0);
    archive
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
}

pub fn random_u64() -> u64 {
    getrandom::u64().expect("random number")
}
