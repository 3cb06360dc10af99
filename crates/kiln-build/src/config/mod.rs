//! The image config and manifest on top of a parent: the only JSON a registry needs besides
//! the layers. Written from `serde_json` values in a fixed order so equal inputs give equal
//! digests.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use kiln_oci::media_types::{
    DOCKER_FOREIGN_LAYER_TAR_GZIP, DOCKER_LAYER_TAR_GZIP, OCI_IMAGE_CONFIG, OCI_IMAGE_MANIFEST, OCI_LAYER_TAR_GZIP,
};
use kiln_oci::{Descriptor, Digest};
use serde_json::{Map, Value, json};

use crate::settings::ImageSettings;

/// The parent image as the registry gave it.
#[derive(Debug, Clone, Copy)]
pub struct ParentConfig<'a> {
    /// The parent's config blob (OCI or Docker image config JSON).
    pub config: &'a [u8],
    /// The parent manifest's layers, bottom to top.
    pub layers: &'a [Descriptor],
}

/// One layer this build adds, with the history text that says what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
    pub created_by: String,
}

/// Config and manifest bytes, ready to push (config first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    /// The manifest's own descriptor, e.g. the `subject` of an SBOM.
    pub manifest_descriptor: Descriptor,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("parent image config is not a JSON object: {0}; check the parent's config blob digest")]
    ParentNotJson(String),
    #[error(
        "parent config lists {diff_ids} diff_ids but its manifest has {layers} layers; the parent image is inconsistent"
    )]
    LayerCount { diff_ids: usize, layers: usize },
    #[error("SOURCE_DATE_EPOCH {0} is not a representable time")]
    BadEpoch(i64),
    #[error("cannot serialise image JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `SOURCE_DATE_EPOCH` as the RFC 3339 UTC text OCI uses for `created`.
pub fn rfc3339(source_date_epoch: i64) -> Result<String, ConfigError> {
    DateTime::from_timestamp(source_date_epoch, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .ok_or(ConfigError::BadEpoch(source_date_epoch))
}

/// Builds the config (parent's, or an empty `linux/amd64` one) with `settings` applied,
/// `layers` appended to `rootfs.diff_ids` and `history`, and the OCI manifest naming parent
/// layers then `layers`. Docker layer media types of the parent are rewritten to their OCI
/// equivalents (same bytes), so the manifest is pure OCI.
pub fn build_image(
    parent: Option<ParentConfig<'_>>,
    layers: &[NewLayer],
    settings: &ImageSettings,
    source_date_epoch: i64,
) -> Result<BuiltImage, ConfigError> {
    let created = rfc3339(source_date_epoch)?;
    let mut root = match parent {
        Some(parent) => match serde_json::from_slice::<Value>(parent.config) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(ConfigError::ParentNotJson("not an object".into())),
            Err(e) => return Err(ConfigError::ParentNotJson(e.to_string())),
        },
        None => empty_config(settings),
    };
    root.insert("created".into(), json!(created));
    apply_settings(object(&mut root, "config"), settings);

    let rootfs = object(&mut root, "rootfs");
    rootfs.insert("type".into(), json!("layers"));
    let diff_ids = array(rootfs, "diff_ids");
    let parent_layers = parent.map(|p| p.layers).unwrap_or_default();
    if diff_ids.len() != parent_layers.len() {
        return Err(ConfigError::LayerCount { diff_ids: diff_ids.len(), layers: parent_layers.len() });
    }
    diff_ids.extend(layers.iter().map(|l| json!(l.diff_id.as_str())));
    let history = array(&mut root, "history");
    for layer in layers {
        history.push(json!({ "created": created, "created_by": layer.created_by, "comment": "kiln" }));
    }
    let config = serde_json::to_vec(&Value::Object(root))?;
    let config_descriptor = Descriptor::for_content(OCI_IMAGE_CONFIG, &config);

    let all_layers: Vec<Descriptor> =
        parent_layers.iter().map(oci_layer).chain(layers.iter().map(|l| l.descriptor.clone())).collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "config": config_descriptor,
        "layers": all_layers,
    });
    if !settings.annotations.is_empty()
        && let Some(map) = manifest.as_object_mut()
    {
        map.insert("annotations".into(), json!(settings.annotations));
    }
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_descriptor = Descriptor::for_content(OCI_IMAGE_MANIFEST, &manifest);
    Ok(BuiltImage {
        config_digest: config_descriptor.digest,
        manifest_digest: manifest_descriptor.digest.clone(),
        config,
        manifest,
        manifest_descriptor,
    })
}

fn empty_config(settings: &ImageSettings) -> Map<String, Value> {
    let architecture = settings.architecture.as_deref().unwrap_or("amd64");
    let value = json!({
        "created": "",
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [] },
        "history": [],
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn apply_settings(config: &mut Map<String, Value>, settings: &ImageSettings) {
    if !settings.env.is_empty() {
        let env = array(config, "Env");
        for (name, value) in &settings.env {
            let line = json!(format!("{name}={value}"));
            let same_name = |v: &Value| v.as_str().and_then(|s| s.split_once('=')).is_some_and(|(n, _)| n == name);
            match env.iter_mut().find(|v| same_name(v)) {
                Some(slot) => *slot = line,
                None => env.push(line),
            }
        }
    }
    if let Some(user) = &settings.user {
        config.insert("User".into(), json!(user));
    }
    if let Some(entrypoint) = &settings.entrypoint {
        config.insert("Entrypoint".into(), json!(entrypoint));
        if settings.cmd.is_none() {
            config.remove("Cmd");
        }
    }
    if let Some(cmd) = &settings.cmd {
        config.insert("Cmd".into(), json!(cmd));
    }
    if let Some(dir) = &settings.working_dir {
        config.insert("WorkingDir".into(), json!(dir));
    }
    if !settings.labels.is_empty() {
        let mut labels = string_map(config.get("Labels"));
        labels.extend(settings.labels.iter().map(|(k, v)| (k.clone(), json!(v))));
        config.insert("Labels".into(), json!(labels));
    }
    if !settings.exposed_ports.is_empty() {
        let mut ports = string_map(config.get("ExposedPorts"));
        ports.extend(settings.exposed_ports.iter().map(|p| (p.clone(), json!({}))));
        config.insert("ExposedPorts".into(), json!(ports));
    }
}

/// An object member as a sorted map, so merged labels come out in one order whatever the
/// parent's order was.
fn string_map(value: Option<&Value>) -> BTreeMap<String, Value> {
    match value {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    }
}

/// The object at `key`, replacing a `null` or missing member (Docker writes `"Env": null`).
fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(inner) => inner,
        _ => unreachable!("just made an object"),
    }
}

fn array<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = map.entry(key).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    match slot {
        Value::Array(inner) => inner,
        _ => unreachable!("just made an array"),
    }
}

/// Docker gzip layers are byte-identical to OCI gzip layers; only the name differs.
fn oci_layer(descriptor: &Descriptor) -> Descriptor {
    let media_type = match descriptor.media_type.as_str() {
        DOCKER_LAYER_TAR_GZIP => OCI_LAYER_TAR_GZIP,
        DOCKER_FOREIGN_LAYER_TAR_GZIP => "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        other => other,
    };
    Descriptor { media_type: media_type.to_string(), ..descriptor.clone() }
}

#[cfg(test)]
mod tests;
