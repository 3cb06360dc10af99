//! What a manifest is read as: each media type, the fields that must be there, hostile and
//! malformed input, and platform selection.

use serde_json::{Value, json};

use super::*;
use crate::media_types::{
    DOCKER_CONTAINER_CONFIG, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_EMPTY_DIGEST,
    OCI_EMPTY_SIZE, OCI_IMAGE_CONFIG, OCI_LAYER_TAR_GZIP,
};

fn digest_of(s: &str) -> String {
    Digest::sha256(s.as_bytes()).to_string()
}

fn desc(media_type: &str, content: &str) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(content), "size": content.len()})
}

fn image() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": desc(OCI_IMAGE_CONFIG, "config"),
        "layers": [desc(OCI_LAYER_TAR_GZIP, "one"), desc(OCI_LAYER_TAR_GZIP, "two")],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        "somethingNew": {"ignored": true},
    })
}

fn parse(value: &Value, content_type: Option<&str>) -> Result<ManifestInfo, ManifestError> {
    ManifestInfo::parse(&serde_json::to_vec(value).unwrap(), content_type)
}

fn err_text(value: &Value, content_type: Option<&str>) -> String {
    parse(value, content_type).unwrap_err().to_string()
}

#[test]
fn parses_an_oci_image_manifest() {
    let info = parse(&image(), Some(OCI_IMAGE_MANIFEST)).unwrap();
    assert_eq!(info.media_type, OCI_IMAGE_MANIFEST);
    assert_eq!(info.kind, ManifestKind::Image);
    assert_eq!(info.config.as_ref().unwrap().media_type, OCI_IMAGE_CONFIG);
    assert_eq!(info.layers.len(), 2);
    assert_eq!(info.layers[1].digest, Digest::sha256(b"two"));
    assert_eq!(info.layers[1].size, 3);
    let blobs: Vec<_> = info.blobs().map(|d| d.digest.clone()).collect();
    assert_eq!(blobs, [Digest::sha256(b"config"), Digest::sha256(b"one"), Digest::sha256(b"two")]);
    assert!(info.manifests.is_empty());
    assert!(info.subject.is_none());
    assert_eq!(info.annotations["org.opencontainers.image.created"], "2024-01-01T00:00:00Z");
}

#[test]
fn media_type_comes_from_body_header_or_shape() {
    let mut body = image();
    body.as_object_mut().unwrap().remove("mediaType");
    assert_eq!(parse(&body, None).unwrap().media_type, OCI_IMAGE_MANIFEST);
    assert_eq!(parse(&body, Some("application/json")).unwrap().media_type, OCI_IMAGE_MANIFEST);
    assert_eq!(
        parse(&body, Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8")).unwrap().media_type,
        OCI_IMAGE_MANIFEST
    );
    // A Docker schema 2 body without its mediaType is accepted as Docker if the client says so.
    assert_eq!(parse(&body, Some(DOCKER_MANIFEST_V2)).unwrap().media_type, DOCKER_MANIFEST_V2);
    assert_eq!(parse(&image(), Some("application/octet-stream")).unwrap().media_type, OCI_IMAGE_MANIFEST);
}

#[test]
fn media_type_mismatch_names_both() {
    let err = parse(&image(), Some(DOCKER_MANIFEST_V2)).unwrap_err();
    assert_eq!(
        err,
        ManifestError::MediaTypeMismatch {
            body: OCI_IMAGE_MANIFEST.to_string(),
            header: DOCKER_MANIFEST_V2.to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "mediaType: the manifest says \"{OCI_IMAGE_MANIFEST}\" but the Content-Type is \"{DOCKER_MANIFEST_V2}\""
        )
    );
}

#[test]
fn refuses_non_manifest_media_types() {
    assert_eq!(
        parse(&image(), Some("text/plain")).unwrap_err(),
        ManifestError::UnsupportedMediaType { field: "Content-Type", value: "text/plain".to_string() }
    );
    let mut body = image();
    body["mediaType"] = json!(OCI_IMAGE_CONFIG);
    assert_eq!(
        err_text(&body, None),
        format!("mediaType: \"{OCI_IMAGE_CONFIG}\" is not a supported manifest media type")
    );
    body["mediaType"] = json!("not a media type");
    assert!(matches!(parse(&body, None), Err(ManifestError::InvalidMediaType { .. })));
}

#[test]
fn missing_layer_digest_names_the_field() {
    let mut body = image();
    body["layers"].as_array_mut().unwrap().push(json!({"mediaType": OCI_LAYER_TAR_GZIP, "size": 1}));
    assert_eq!(parse(&body, None).unwrap_err(), ManifestError::MissingField("layers[2].digest".to_string()));
    assert_eq!(err_text(&body, None), "layers[2].digest: missing");
}

#[test]
fn bad_descriptor_fields_name_the_field() {
    let mut body = image();
    body["layers"][1]["digest"] = json!("sha256:ABC");
    let err = parse(&body, None).unwrap_err();
    assert!(
        matches!(&err, ManifestError::InvalidDigest { field, source: DigestError::BadEncoding { .. } } if field == "layers[1].digest")
    );
    assert!(err.to_string().starts_with("layers[1].digest: sha256 digest must be 64"), "{err}");

    body = image();
    body["config"]["digest"] = json!("md5:d41d8cd98f00b204e9800998ecf8427e");
    assert!(matches!(
        parse(&body, None),
        Err(ManifestError::InvalidDigest { source: DigestError::UnsupportedAlgorithm(_), .. })
    ));

    body = image();
    body["layers"][0]["size"] = json!("12");
    let text = err_text(&body, None);
    assert!(text.starts_with("layers[0].size: invalid type: string \"12\", expected u64"), "{text}");

    body = image();
    body["layers"][0]["size"] = json!(-1);
    assert!(err_text(&body, None).starts_with("layers[0].size: invalid value: integer `-1`"));

    body = image();
    body["config"].as_object_mut().unwrap().remove("mediaType");
    assert_eq!(err_text(&body, None), "config.mediaType: missing");

    body = image();
    body["layers"][0]["annotations"] = json!({"a": 1});
    assert!(err_text(&body, None).starts_with("layers[0].annotations.a: invalid type: integer `1`"));

    body = image();
    body["layers"] = json!({});
    assert!(err_text(&body, None).starts_with("layers: invalid type: map, expected a sequence"));

    body = image();
    body["layers"][0]["artifactType"] = json!("nope");
    assert_eq!(err_text(&body, None), "layers[0].artifactType: \"nope\" is not a valid media type");
}

#[test]
fn image_manifest_needs_config_and_layers() {
    let mut body = image();
    body.as_object_mut().unwrap().remove("layers");
    assert_eq!(err_text(&body, None), "layers: missing");
    let mut body = image();
    body.as_object_mut().unwrap().remove("config");
    assert_eq!(err_text(&body, None), "config: missing");
    // Empty layers are allowed: artifacts often have none.
    let mut body = image();
    body["layers"] = json!([]);
    assert!(parse(&body, None).unwrap().layers.is_empty());
}

#[test]
fn schema_version_must_be_2() {
    let mut body = image();
    body["schemaVersion"] = json!(1);
    assert_eq!(err_text(&body, None), "schemaVersion: must be 2, got 1");
    body.as_object_mut().unwrap().remove("schemaVersion");
    assert_eq!(err_text(&body, None), "schemaVersion: missing");
}

#[test]
fn refuses_bad_json_and_non_objects() {
    assert!(matches!(ManifestInfo::parse(b"{\"schemaVersion\": 2", None), Err(ManifestError::Syntax(_))));
    assert!(matches!(ManifestInfo::parse(b"{} {}", None), Err(ManifestError::Syntax(_))));
    let err = ManifestInfo::parse(b"[1]", None).unwrap_err().to_string();
    assert!(err.starts_with("manifest: invalid type: sequence, expected a JSON object"), "{err}");
    let err = ManifestInfo::parse(br#"{"schemaVersion": 2, "layers": [], "layers": []}"#, None).unwrap_err();
    assert!(err.to_string().starts_with("manifest: duplicate field `layers`"), "{err}");
    // Serde would otherwise read arrays as structs, field by field.
    let err = ManifestInfo::parse(br#"[2, "application/vnd.oci.image.index.v1+json"]"#, None).unwrap_err();
    assert!(err.to_string().starts_with("manifest: invalid type: sequence, expected a JSON object"), "{err}");
    let mut body = image();
    body["config"] = json!([OCI_IMAGE_CONFIG, digest_of("config"), 6]);
    assert!(err_text(&body, None).starts_with("config: invalid type: sequence, expected a descriptor object"));
    body = image();
    body["layers"][0]["digest"] = json!(["sha256", "abc"]);
    assert!(err_text(&body, None).starts_with("layers[0].digest: invalid type: sequence, expected a string"));
}

#[test]
fn refuses_ambiguous_or_shapeless_documents() {
    let mut body = image();
    body.as_object_mut().unwrap().remove("mediaType");
    body["manifests"] = json!([]);
    assert_eq!(parse(&body, None).unwrap_err(), ManifestError::Ambiguous);
    // With an explicit media type the stray field is named instead.
    assert_eq!(
        err_text(&body, Some(OCI_IMAGE_MANIFEST)),
        format!("manifests: not allowed in a {OCI_IMAGE_MANIFEST} manifest")
    );
    assert_eq!(parse(&json!({"schemaVersion": 2}), None).unwrap_err(), ManifestError::UnknownKind);
}

#[test]
fn enforces_the_size_limit() {
    assert!(check_size(MAX_MANIFEST_SIZE).is_ok());
    assert_eq!(
        check_size(MAX_MANIFEST_SIZE + 1),
        Err(ManifestError::TooLarge { size: MAX_MANIFEST_SIZE + 1, limit: MAX_MANIFEST_SIZE })
    );
    let mut body = image();
    body["annotations"]["big"] = json!("x".repeat(usize::try_from(MAX_MANIFEST_SIZE).unwrap()));
    assert!(matches!(parse(&body, None), Err(ManifestError::TooLarge { .. })));
}

#[test]
fn artifact_type_is_explicit_or_falls_back_to_config() {
    assert_eq!(parse(&image(), None).unwrap().artifact_type.as_deref(), Some(OCI_IMAGE_CONFIG));
    let mut body = image();
    body["config"] = serde_json::to_value(Descriptor::empty()).unwrap();
    body["artifactType"] = json!("application/vnd.example.sbom+json");
    let info = parse(&body, None).unwrap();
    assert_eq!(info.artifact_type.as_deref(), Some("application/vnd.example.sbom+json"));
    assert_eq!(info.config.as_ref().unwrap().digest.as_str(), OCI_EMPTY_DIGEST);
    assert_eq!(info.config.as_ref().unwrap().size, OCI_EMPTY_SIZE);
}

fn index() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_INDEX,
        "manifests": [
            {"mediaType": OCI_IMAGE_MANIFEST, "digest": digest_of("amd64"), "size": 10,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_IMAGE_MANIFEST, "digest": digest_of("arm64"), "size": 11,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": OCI_IMAGE_MANIFEST, "digest": digest_of("attestation"), "size": 12,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        ],
    })
}

#[test]
fn parses_an_index_with_a_subject() {
    let mut body = index();
    body["subject"] = desc(OCI_IMAGE_MANIFEST, "subject");
    body["artifactType"] = json!("application/vnd.example.bundle");
    let info = parse(&body, Some(OCI_IMAGE_INDEX)).unwrap();
    assert_eq!(info.kind, ManifestKind::Index);
    assert_eq!(info.media_type, OCI_IMAGE_INDEX);
    assert_eq!(info.blobs().count(), 0);
    assert_eq!(info.manifests.len(), 3);
    assert_eq!(info.manifests[1].platform, Some(Platform::new("linux", "arm64").with_variant("v8")));
    assert_eq!(info.subject.as_ref().unwrap().digest, Digest::sha256(b"subject"));
    assert_eq!(info.artifact_type.as_deref(), Some("application/vnd.example.bundle"));
}

#[test]
fn index_without_artifact_type_has_none() {
    let info = parse(&index(), None).unwrap();
    assert_eq!(info.artifact_type, None);
    let mut body = index();
    body.as_object_mut().unwrap().remove("mediaType");
    assert_eq!(parse(&body, None).unwrap().media_type, OCI_IMAGE_INDEX);
}

#[test]
fn index_errors_name_the_field() {
    let mut body = index();
    body["manifests"][1]["platform"].as_object_mut().unwrap().remove("os");
    assert_eq!(err_text(&body, None), "manifests[1].platform.os: missing");
    let mut body = index();
    body["config"] = desc(OCI_IMAGE_CONFIG, "config");
    assert_eq!(err_text(&body, None), format!("config: not allowed in a {OCI_IMAGE_INDEX} manifest"));
    let mut body = index();
    body["subject"] = json!({"mediaType": OCI_IMAGE_MANIFEST, "digest": digest_of("s")});
    assert_eq!(err_text(&body, None), "subject.size: missing");
    assert_eq!(err_text(&json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX}), None), "manifests: missing");
}

#[test]
fn parses_docker_schema2_manifest() {
    let body = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_V2,
        "config": desc(DOCKER_CONTAINER_CONFIG, "config"),
        "layers": [desc(DOCKER_LAYER_TAR_GZIP, "layer")],
    });
    let info = parse(&body, Some(DOCKER_MANIFEST_V2)).unwrap();
    assert_eq!(info.media_type, DOCKER_MANIFEST_V2);
    assert_eq!(info.kind, ManifestKind::Image);
    assert_eq!(info.blobs().count(), 2);
    assert_eq!(info.artifact_type.as_deref(), Some(DOCKER_CONTAINER_CONFIG));
    assert_eq!(
        parse(&body, Some(OCI_IMAGE_MANIFEST)).unwrap_err(),
        ManifestError::MediaTypeMismatch {
            body: DOCKER_MANIFEST_V2.to_string(),
            header: OCI_IMAGE_MANIFEST.to_string()
        }
    );
}

#[test]
fn parses_docker_manifest_list() {
    let body = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": DOCKER_MANIFEST_V2, "digest": digest_of("a"), "size": 7143,
             "platform": {"architecture": "ppc64le", "os": "linux"}},
            {"mediaType": DOCKER_MANIFEST_V2, "digest": digest_of("b"), "size": 7682,
             "platform": {"architecture": "amd64", "os": "linux", "features": ["sse4"]}},
            {"mediaType": DOCKER_MANIFEST_V2, "digest": digest_of("w"), "size": 1000,
             "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1",
                          "os.features": ["win32k"]}},
        ],
    });
    let info = parse(&body, None).unwrap();
    assert_eq!(info.media_type, DOCKER_MANIFEST_LIST);
    assert_eq!(info.kind, ManifestKind::Index);
    assert_eq!(info.manifests[2].platform.as_ref().unwrap().os_features, ["win32k"]);
    let picked = info.select_platform(&"linux/amd64".parse().unwrap()).unwrap();
    assert_eq!(picked.digest, Digest::sha256(b"b"));
}

#[test]
fn referrer_descriptor_carries_artifact_type_and_annotations() {
    let info = parse(&image(), None).unwrap();
    let referrer = info.referrer_descriptor(Digest::sha256(b"manifest"), 123);
    assert_eq!(referrer.media_type, OCI_IMAGE_MANIFEST);
    assert_eq!(referrer.artifact_type.as_deref(), Some(OCI_IMAGE_CONFIG));
    assert_eq!(referrer.annotations, info.annotations);
    assert_eq!(referrer.size, 123);
}

#[test]
fn referrers_index_serializes_camel_case() {
    let mut referrer = Descriptor::new(OCI_IMAGE_MANIFEST, Digest::sha256(b"m"), 5);
    referrer.artifact_type = Some("application/vnd.example.sig".to_string());
    referrer.annotations.insert("k".to_string(), "v".to_string());
    let value: Value = serde_json::from_slice(&ImageIndex::new(vec![referrer.clone()]).to_json().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX,
            "manifests": [{
                "mediaType": OCI_IMAGE_MANIFEST,
                "digest": Digest::sha256(b"m").to_string(),
                "size": 5,
                "artifactType": "application/vnd.example.sig",
                "annotations": {"k": "v"},
            }],
        })
    );
    let empty: Value = serde_json::from_slice(&ImageIndex::new(Vec::new()).to_json().unwrap()).unwrap();
    assert_eq!(empty, json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX, "manifests": []}));
    // What the registry serves, it can parse back.
    let info = ManifestInfo::parse(&ImageIndex::new(vec![referrer]).to_json().unwrap(), None).unwrap();
    assert_eq!(info.manifests[0].artifact_type.as_deref(), Some("application/vnd.example.sig"));
}

#[test]
fn descriptor_serde_round_trips_with_platform() {
    let mut descriptor = Descriptor::for_content(OCI_IMAGE_MANIFEST, b"x");
    descriptor.platform = Some(Platform {
        os_version: Some("10.0".to_string()),
        os_features: vec!["win32k".to_string()],
        ..Platform::new("windows", "amd64")
    });
    let value = serde_json::to_value(&descriptor).unwrap();
    assert_eq!(value["platform"]["os.version"], "10.0");
    assert_eq!(value["platform"]["os.features"], json!(["win32k"]));
    assert_eq!(serde_json::from_value::<Descriptor>(value).unwrap(), descriptor);
    assert!(
        serde_json::from_value::<Descriptor>(json!({"mediaType": "a/b", "digest": "sha256:x", "size": 1})).is_err()
    );
}

#[test]
fn platform_parses_and_displays() {
    let platform: Platform = "linux/arm64/v8".parse().unwrap();
    assert_eq!(platform, Platform::new("linux", "arm64").with_variant("v8"));
    assert_eq!(platform.to_string(), "linux/arm64/v8");
    assert_eq!("linux/amd64".parse::<Platform>().unwrap().to_string(), "linux/amd64");
    for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
        assert!(bad.parse::<Platform>().is_err(), "{bad}");
    }
}

fn entry(content: &str, platform: &str) -> Descriptor {
    Descriptor {
        platform: Some(platform.parse().unwrap()),
        ..Descriptor::for_content(OCI_IMAGE_MANIFEST, content.as_bytes())
    }
}

fn pick<'a>(entries: &'a [Descriptor], wanted: &str) -> Option<&'a Digest> {
    select_platform(entries, &wanted.parse().unwrap()).map(|d| &d.digest)
}

#[test]
fn selects_platform_with_arm64_variant_either_way() {
    let with_variant = [entry("amd64", "linux/amd64"), entry("arm64", "linux/arm64/v8")];
    let without_variant = [entry("amd64", "linux/amd64"), entry("arm64", "linux/arm64")];
    let arm64 = Digest::sha256(b"arm64");
    for entries in [&with_variant[..], &without_variant[..]] {
        assert_eq!(pick(entries, "linux/arm64"), Some(&arm64));
        assert_eq!(pick(entries, "linux/arm64/v8"), Some(&arm64));
        assert_eq!(pick(entries, "linux/aarch64"), Some(&arm64));
        assert_eq!(pick(entries, "linux/x86_64"), Some(&Digest::sha256(b"amd64")));
        assert_eq!(pick(entries, "linux/amd64"), Some(&Digest::sha256(b"amd64")));
        assert_eq!(pick(entries, "windows/amd64"), None);
        assert_eq!(pick(entries, "linux/s390x"), None);
    }
}

#[test]
fn selects_exact_variant_over_compatible_ones() {
    let entries = [entry("v5", "linux/arm/v5"), entry("v6", "linux/arm/v6"), entry("v7", "linux/arm/v7")];
    assert_eq!(pick(&entries, "linux/arm/v7"), Some(&Digest::sha256(b"v7")));
    assert_eq!(pick(&entries, "linux/arm"), Some(&Digest::sha256(b"v7")));
    assert_eq!(pick(&entries, "linux/arm/v6"), Some(&Digest::sha256(b"v6")));
    // No v8 build: the closest lower variant runs.
    assert_eq!(pick(&entries, "linux/arm/v8"), Some(&Digest::sha256(b"v7")));
    assert_eq!(pick(&entries[..1], "linux/arm/v6"), Some(&Digest::sha256(b"v5")));
    // A higher variant never runs on a lower one.
    assert_eq!(pick(&entries[2..], "linux/arm/v6"), None);
    let amd = [entry("v1", "linux/amd64"), entry("v3", "linux/amd64/v3")];
    assert_eq!(pick(&amd, "linux/amd64"), Some(&Digest::sha256(b"v1")));
    assert_eq!(pick(&amd, "linux/amd64/v3"), Some(&Digest::sha256(b"v3")));
    assert_eq!(pick(&amd, "linux/amd64/v2"), Some(&Digest::sha256(b"v1")));
}

#[test]
fn selection_skips_entries_without_platform_and_prefers_first_and_os_version() {
    let mut bare = Descriptor::for_content(OCI_IMAGE_MANIFEST, b"bare");
    bare.platform = None;
    let entries = [bare, entry("first", "linux/amd64"), entry("second", "linux/amd64")];
    assert_eq!(pick(&entries, "linux/amd64"), Some(&Digest::sha256(b"first")));

    let mut old = entry("old", "windows/amd64");
    old.platform.as_mut().unwrap().os_version = Some("10.0.17763.1".to_string());
    let mut new = entry("new", "windows/amd64");
    new.platform.as_mut().unwrap().os_version = Some("10.0.20348.1".to_string());
    let entries = [old, new];
    let wanted = Platform { os_version: Some("10.0.20348.1".to_string()), ..Platform::new("windows", "amd64") };
    assert_eq!(select_platform(&entries, &wanted).map(|d| &d.digest), Some(&Digest::sha256(b"new")));
}
