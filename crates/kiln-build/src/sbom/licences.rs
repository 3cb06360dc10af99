//! Licences as an SPDX 2.3 document must carry them: a package's expression valid against
//! the SPDX list, in `licenseDeclared` or `licenseConcluded` as the inventory says who
//! stands behind it, and every `LicenseRef-…` it names declared once in
//! `hasExtractedLicensingInfos` with its text.

use std::collections::BTreeMap;

use kiln_model::inventory::{InventoryItem, LicenseKind};
use serde_json::{Value, json};

const NOASSERTION: &str = "NOASSERTION";

/// Distinct texts given for one `LicenseRef-`, each with the packages that gave it.
type Texts = Vec<(String, Vec<String>)>;

/// The `LicenseRef-…`s of one document: id → (name, texts).
#[derive(Default)]
pub(super) struct Extracted {
    refs: BTreeMap<String, (String, Texts)>,
}

impl Extracted {
    /// (`licenseConcluded`, `licenseDeclared`) for `item`, its `LicenseRef-`s recorded.
    pub(super) fn fields(&mut self, item: &InventoryItem) -> (String, String) {
        let Some(license) = item.license.as_deref().map(str::trim).filter(|l| !l.is_empty()) else {
            return (NOASSERTION.to_string(), NOASSERTION.to_string());
        };
        let expression = match spdx::Expression::parse(license) {
            Ok(parsed)
                if !license.contains("DocumentRef-")
                    && !parsed.requirements().any(|r| matches!(r.req.addition, Some(spdx::AdditionItem::Other(_)))) =>
            {
                for requirement in parsed.requirements() {
                    if let spdx::LicenseItem::Other(other) = &requirement.req.license {
                        let id = format!("LicenseRef-{}", other.lic_ref);
                        let given = item.license_texts.iter().find(|t| t.id == id);
                        let (name, text) = match given {
                            Some(given) => (given.name.clone(), given.text.clone()),
                            None => (
                                other.lic_ref.clone(),
                                format!("{} {} names this licence without its text", item.name, item.version),
                            ),
                        };
                        self.add(&id, &name, &text, &item.name);
                    }
                }
                license.to_string()
            }
            // Metadata that is no SPDX expression (`SEE LICENSE IN LICENSE.md`, `BSD`)
            // is kept as written, under a name of its own.
            _ => {
                let id = crate::copyright::licence_ref(license);
                let text = format!("{} {} gives its licence as: {license}", item.name, item.version);
                self.add(&id, license, &text, &item.name);
                id
            }
        };
        match item.license_kind {
            Some(LicenseKind::Concluded) => (expression, NOASSERTION.to_string()),
            Some(LicenseKind::Declared) | None => (NOASSERTION.to_string(), expression),
        }
    }

    fn add(&mut self, id: &str, name: &str, text: &str, package: &str) {
        let (_, texts) = self.refs.entry(id.to_string()).or_insert_with(|| (name.to_string(), Vec::new()));
        match texts.iter_mut().find(|(known, _)| known == text) {
            Some((_, packages)) => packages.push(package.to_string()),
            None => texts.push((text.to_string(), vec![package.to_string()])),
        }
    }

    /// `hasExtractedLicensingInfos`: one entry per id; when packages give one name
    /// different texts, each text follows the packages it came from.
    pub(super) fn infos(&self) -> Vec<Value> {
        self.refs
            .iter()
            .map(|(id, (name, texts))| {
                let extracted = match texts.as_slice() {
                    [(text, _)] => text.clone(),
                    _ => texts
                        .iter()
                        .map(|(text, packages)| format!("[{}]\n{text}", packages.join(", ")))
                        .collect::<Vec<_>>()
                        .join("\n\n"),
                };
                let mut packages: Vec<&str> =
                    texts.iter().flat_map(|(_, packages)| packages.iter().map(String::as_str)).collect();
                packages.sort_unstable();
                packages.dedup();
                json!({
                    "licenseId": id,
                    "name": name,
                    "extractedText": extracted,
                    "comment": format!("named by: {}", packages.join(", ")),
                })
            })
            .collect()
    }
}
