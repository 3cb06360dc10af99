//! SPDX 2.3 JSON for an image and the OCI 1.1 artifact manifest that attaches it to the image
//! as a referrer, so `oras discover`, trivy and the registry's referrers API find it.

use std::collections::BTreeSet;

use kiln_model::inventory::InventoryItem;
use kiln_oci::media_types::OCI_IMAGE_MANIFEST;
use kiln_oci::{Descriptor, Digest};
use serde_json::{Value, json};

use crate::config::{ConfigError, rfc3339};

/// Media type (and artifact type) of an SPDX JSON document.
pub const SPDX_JSON: &str = "application/spdx+json";

/// An SBOM and its artifact manifest, ready to push (document blob, empty config, manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    pub document: Vec<u8>,
    pub document_descriptor: Descriptor,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// The SPDX document for the image `image_name` (a repository such as
/// `registry.example/fn/hello`) whose manifest is `image`, listing `items` with their
/// licences declared or concluded as the inventory says (see [`licences`]). Deterministic:
/// packages sorted by (name, architecture, version), ids derived from them, time from
/// `source_date_epoch`.
pub fn spdx_document(
    image_name: &str,
    image: &Descriptor,
    items: &[InventoryItem],
    source_date_epoch: i64,
) -> Result<Vec<u8>, ConfigError> {
    let created = rfc3339(source_date_epoch)?;
    let mut sorted: Vec<&InventoryItem> = items.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.architecture, &a.version).cmp(&(&b.name, &b.architecture, &b.version)));
    let digest = &image.digest;
    let image_purl = format!(
        "pkg:oci/{}@{}?repository_url={}",
        image_name.rsplit('/').next().unwrap_or(image_name),
        digest.as_str().replace(':', "%3A"),
        image_name
    );
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": image_name,
        "versionInfo": digest.as_str(),
        "supplier": "NOASSERTION",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [purl_ref(&image_purl)],
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}),
    ];
    let mut used = BTreeSet::new();
    let mut extracted = licences::Extracted::default();
    for item in sorted {
        let id = unique_id(&mut used, item);
        let (concluded, declared) = extracted.fields(item);
        packages.push(json!({
            "SPDXID": id,
            "name": item.name,
            "versionInfo": item.version,
            "supplier": "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": concluded,
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
            "externalRefs": [purl_ref(&item.purl)],
        }));
        relationships
            .push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{image_name}@{digest}"),
        // A URI unique per image; `.invalid` says it is a name, not a place to fetch from.
        "documentNamespace": format!("https://kiln.invalid/spdx/{image_name}/{}-{}", digest.algorithm(), digest.hex()),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    let infos = extracted.infos();
    if !infos.is_empty() {
        document["hasExtractedLicensingInfos"] = Value::Array(infos);
    }
    Ok(serde_json::to_vec(&document)?)
}

/// The OCI 1.1 artifact manifest for `document`: `artifactType` SPDX, the empty config, one
/// layer, `subject` the image manifest.
pub fn sbom_manifest(document: &[u8], image: &Descriptor, source_date_epoch: i64) -> Result<Sbom, ConfigError> {
    let document_descriptor = Descriptor::for_content(SPDX_JSON, document);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_MANIFEST,
        "artifactType": SPDX_JSON,
        "config": Descriptor::empty(),
        "layers": [document_descriptor],
        "subject": Descriptor::new(image.media_type.clone(), image.digest.clone(), image.size),
        "annotations": { "org.opencontainers.image.created": rfc3339(source_date_epoch)? },
    });
    let manifest = serde_json::to_vec(&manifest)?;
    Ok(Sbom { manifest_digest: Digest::sha256(&manifest), document: document.to_vec(), document_descriptor, manifest })
}

fn purl_ref(purl: &str) -> Value {
    json!({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl})
}

/// `SPDXRef-Package-deb-<name>-<arch>` with characters SPDX ids forbid turned into `-`, and a
/// counter when two items still collide (`libstdc++6` vs `libstdc--6`).
fn unique_id(used: &mut BTreeSet<String>, item: &InventoryItem) -> String {
    let raw = format!("Package-{}-{}-{}", item.ecosystem.as_str(), item.name, item.architecture);
    let clean: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    let base = format!("SPDXRef-{}", clean.trim_end_matches('-'));
    let mut id = base.clone();
    let mut n = 2;
    while !used.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

mod licences;

#[cfg(test)]
mod tests;
