//! SPDX shape tests: the 2.3 schema's required fields, written out here, and the referrer.

use kiln_model::inventory::{LicenseKind, LicenseText};
use kiln_model::package::Ecosystem;
use kiln_oci::media_types::{OCI_EMPTY, OCI_EMPTY_DIGEST};

use super::*;

/// `required` lists of the SPDX 2.3 JSON schema (spdx-schema.json, v2.3) for what Kiln writes.
const DOCUMENT_REQUIRED: [&str; 6] =
    ["SPDXID", "creationInfo", "dataLicense", "documentNamespace", "name", "spdxVersion"];
const CREATION_INFO_REQUIRED: [&str; 2] = ["created", "creators"];
const PACKAGE_REQUIRED: [&str; 3] = ["SPDXID", "downloadLocation", "name"];
const EXTERNAL_REF_REQUIRED: [&str; 3] = ["referenceCategory", "referenceLocator", "referenceType"];
const RELATIONSHIP_REQUIRED: [&str; 2] = ["spdxElementId", "relationshipType"];

fn item(name: &str, license: Option<&str>) -> InventoryItem {
    InventoryItem {
        ecosystem: Ecosystem::Deb,
        name: name.into(),
        version: "1.0".into(),
        architecture: "amd64".into(),
        source_name: None,
        source_version: None,
        license: license.map(str::to_string),
        license_kind: license.map(|_| LicenseKind::Declared),
        license_texts: Vec::new(),
        purl: format!("pkg:deb/debian/{name}@1.0?arch=amd64"),
        layer: None,
    }
}

fn image() -> Descriptor {
    Descriptor::for_content(OCI_IMAGE_MANIFEST, b"{}")
}

fn has_all(value: &Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(value.get(field).is_some(), "{what} lacks required {field}: {value}");
    }
}

#[test]
fn document_has_the_required_fields() {
    let items = [item("libstdc++6", Some("GPL-3.0-only")), item("zlib1g", None), item("libstdc--6", None)];
    let bytes = spdx_document("registry.example/fn/hello", &image(), &items, 0).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    has_all(&doc, &DOCUMENT_REQUIRED, "document");
    has_all(&doc["creationInfo"], &CREATION_INFO_REQUIRED, "creationInfo");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    assert!(doc["documentNamespace"].as_str().is_some_and(|n| n.ends_with(image().digest.hex())));
    let packages = doc["packages"].as_array().cloned().unwrap_or_default();
    assert_eq!(packages.len(), 4);
    let mut ids = BTreeSet::new();
    for package in &packages {
        has_all(package, &PACKAGE_REQUIRED, "package");
        for reference in package["externalRefs"].as_array().into_iter().flatten() {
            has_all(reference, &EXTERNAL_REF_REQUIRED, "externalRef");
        }
        let id = package["SPDXID"].as_str().unwrap_or_default().to_string();
        assert!(
            id.starts_with("SPDXRef-") && id[8..].chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)),
            "{id}"
        );
        assert!(ids.insert(id));
    }
    assert_eq!(packages[1]["licenseDeclared"], "GPL-3.0-only");
    assert_eq!(packages[1]["SPDXID"], "SPDXRef-Package-deb-libstdc--6-amd64");
    assert_eq!(packages[2]["name"], "libstdc--6");
    assert_eq!(packages[2]["SPDXID"], "SPDXRef-Package-deb-libstdc--6-amd64-2");
    assert_eq!(packages[3]["licenseConcluded"], "NOASSERTION");
    let relationships = doc["relationships"].as_array().cloned().unwrap_or_default();
    assert_eq!(relationships.len(), 4);
    relationships.iter().for_each(|r| has_all(r, &RELATIONSHIP_REQUIRED, "relationship"));
    assert_eq!(relationships[0]["relationshipType"], "DESCRIBES");
    let again = spdx_document("registry.example/fn/hello", &image(), &items, 0).unwrap_or_default();
    assert_eq!(again, bytes);
}

#[test]
fn artifact_manifest_refers_to_the_image() {
    let sbom = sbom_manifest(b"{\"spdxVersion\":\"SPDX-2.3\"}", &image(), 0).unwrap_or_else(|e| panic!("{e}"));
    let manifest: Value = serde_json::from_slice(&sbom.manifest).unwrap_or_default();
    assert_eq!(manifest["artifactType"], SPDX_JSON);
    assert_eq!(manifest["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(manifest["config"]["digest"], OCI_EMPTY_DIGEST);
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(manifest["layers"][0]["mediaType"], SPDX_JSON);
    assert_eq!(manifest["layers"][0]["digest"], sbom.document_descriptor.digest.as_str());
    assert_eq!(manifest["subject"]["digest"], image().digest.as_str());
    assert_eq!(Digest::sha256(&sbom.manifest), sbom.manifest_digest);
    let parsed = kiln_oci::ManifestInfo::parse(&sbom.manifest, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.subject.map(|s| s.digest), Some(image().digest));
}

#[test]
fn licences_are_declared_or_concluded_and_every_ref_has_its_text() {
    let text = |id: &str, words: &str| LicenseText { id: id.into(), name: "public-domain".into(), text: words.into() };
    let mut tzdata = item("tzdata", Some("LicenseRef-public-domain"));
    tzdata.license_texts = vec![text("LicenseRef-public-domain", "These files are in the public domain.")];
    let mut libc = item("libc6", Some("GPL-2.0-or-later AND LicenseRef-public-domain AND LGPL-2.1-or-later"));
    libc.license_kind = Some(LicenseKind::Concluded);
    libc.license_texts = vec![text("LicenseRef-public-domain", "This file is placed in the public domain.")];
    let mut sqlite = item("libsqlite3-0", Some("LicenseRef-public-domain"));
    sqlite.license_texts = tzdata.license_texts.clone();
    let mut npm = item("left-pad", Some("SEE LICENSE IN LICENSE.md"));
    npm.ecosystem = Ecosystem::Npm;
    let mut old_record = item("zlib1g", Some("Zlib"));
    old_record.license_kind = None;
    let unnamed = item("libpq5", Some("PostgreSQL AND LicenseRef-SSLeay"));
    let items = [tzdata, libc, sqlite, npm, old_record, unnamed];
    let bytes = spdx_document("registry.example/fn/hello", &image(), &items, 0).unwrap_or_else(|e| panic!("{e}"));
    let doc: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let package = |name: &str| {
        doc["packages"].as_array().into_iter().flatten().find(|p| p["name"] == name).cloned().unwrap_or_default()
    };
    let libc = package("libc6");
    assert_eq!(libc["licenseConcluded"], "GPL-2.0-or-later AND LicenseRef-public-domain AND LGPL-2.1-or-later");
    assert_eq!(libc["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        (package("tzdata")["licenseDeclared"].as_str(), package("tzdata")["licenseConcluded"].as_str()),
        (Some("LicenseRef-public-domain"), Some("NOASSERTION"))
    );
    assert_eq!(package("zlib1g")["licenseDeclared"], "Zlib");
    assert_eq!(package("left-pad")["licenseDeclared"], "LicenseRef-SEE-LICENSE-IN-LICENSE.md");
    let infos = doc["hasExtractedLicensingInfos"].as_array().cloned().unwrap_or_default();
    let info = |id: &str| infos.iter().find(|i| i["licenseId"] == id).cloned().unwrap_or_default();
    // Two texts under one name: each after the packages that gave it.
    let public_domain = info("LicenseRef-public-domain");
    assert_eq!(
        public_domain["extractedText"],
        "[libc6]\nThis file is placed in the public domain.\n\n[libsqlite3-0, tzdata]\nThese files are in the public domain."
    );
    assert_eq!(public_domain["name"], "public-domain");
    assert!(
        info("LicenseRef-SEE-LICENSE-IN-LICENSE.md")["extractedText"]
            .as_str()
            .is_some_and(|t| t.contains("SEE LICENSE IN LICENSE.md"))
    );
    assert!(info("LicenseRef-SSLeay")["extractedText"].as_str().is_some_and(|t| t.contains("libpq5")));
    // Every LicenseRef a package names is declared, and nothing else is.
    let mut named = BTreeSet::new();
    for package in doc["packages"].as_array().into_iter().flatten() {
        for field in ["licenseConcluded", "licenseDeclared"] {
            let value = package[field].as_str().unwrap_or_default();
            named.extend(value.split([' ', '(', ')']).filter(|w| w.starts_with("LicenseRef-")).map(str::to_string));
        }
    }
    let declared: BTreeSet<String> = infos.iter().filter_map(|i| i["licenseId"].as_str().map(str::to_string)).collect();
    assert_eq!(named, declared);
    for info in &infos {
        let id = info["licenseId"].as_str().unwrap_or_default();
        assert!(id[11..].chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)), "{id}");
        assert!(info["extractedText"].as_str().is_some_and(|t| !t.is_empty()) && info["name"].is_string(), "{info}");
    }
}
