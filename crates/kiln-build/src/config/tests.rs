//! Config and manifest tests against a Docker-style parent and from scratch.

use super::*;

fn layer(n: u8) -> NewLayer {
    NewLayer {
        descriptor: Descriptor::for_content(OCI_LAYER_TAR_GZIP, &[n]),
        diff_id: Digest::sha256(&[n, n]),
        created_by: format!("kiln: packages p{n}"),
    }
}

const PARENT: &str = r#"{"architecture":"arm64","os":"linux","config":{"Env":["PATH=/usr/bin","PORT=1"],"Cmd":["bash"],"Labels":{"z":"1","a":"2"}},"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},"history":[{"created_by":"debootstrap"}]}"#;

fn settings() -> ImageSettings {
    ImageSettings {
        env: vec![("PORT".into(), "8080".into()), ("NEW".into(), "a=b".into())],
        user: Some("kiln".into()),
        entrypoint: Some(vec!["/usr/bin/python3".into(), "/usr/lib/kiln/server.py".into()]),
        working_dir: Some("/function".into()),
        labels: [("a".to_string(), "x".to_string())].into(),
        exposed_ports: vec!["8080/tcp".into()],
        ..ImageSettings::default()
    }
}

#[test]
fn builds_on_a_parent() {
    let parent_layer = Descriptor::for_content(DOCKER_LAYER_TAR_GZIP, b"parent");
    let parent = ParentConfig { config: PARENT.as_bytes(), layers: std::slice::from_ref(&parent_layer) };
    let built =
        build_image(Some(parent), &[layer(1), layer(2)], &settings(), 1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
    let config: Value = serde_json::from_slice(&built.config).unwrap_or_default();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["config"]["Env"], json!(["PATH=/usr/bin", "PORT=8080", "NEW=a=b"]));
    assert_eq!(config["config"]["Cmd"], Value::Null, "new entrypoint drops the parent's cmd");
    assert_eq!(config["config"]["Labels"], json!({"a": "x", "z": "1"}));
    assert_eq!(config["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(config["config"]["User"], "kiln");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(3));
    assert_eq!(config["history"][2]["created_by"], "kiln: packages p2");
    assert_eq!(Digest::sha256(&built.config), built.config_digest);

    let manifest: Value = serde_json::from_slice(&built.manifest).unwrap_or_default();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], OCI_IMAGE_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], OCI_IMAGE_CONFIG);
    assert_eq!(manifest["config"]["digest"], built.config_digest.as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], OCI_LAYER_TAR_GZIP, "docker layer type rewritten");
    assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(3));
    assert_eq!(built.manifest_descriptor.digest, Digest::sha256(&built.manifest));
    let again =
        build_image(Some(parent), &[layer(1), layer(2)], &settings(), 1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, built);
}

#[test]
fn root_image_starts_empty() {
    let built = build_image(None, &[layer(1)], &ImageSettings::default(), 0).unwrap_or_else(|e| panic!("{e}"));
    let config: Value = serde_json::from_slice(&built.config).unwrap_or_default();
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some("amd64"), Some("linux")));
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(config["rootfs"]["diff_ids"], json!([layer(1).diff_id.as_str()]));
    let manifest: Value = serde_json::from_slice(&built.manifest).unwrap_or_default();
    assert!(manifest.get("annotations").is_none());
}

#[test]
fn rejects_inconsistent_parents() {
    let parent = ParentConfig { config: PARENT.as_bytes(), layers: &[] };
    assert!(matches!(
        build_image(Some(parent), &[], &ImageSettings::default(), 0),
        Err(ConfigError::LayerCount { diff_ids: 1, layers: 0 })
    ));
    let parent = ParentConfig { config: b"[1]", layers: &[] };
    assert!(matches!(build_image(Some(parent), &[], &ImageSettings::default(), 0), Err(ConfigError::ParentNotJson(_))));
}
