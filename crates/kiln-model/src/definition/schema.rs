//! The JSON Schemas of the definition formats, generated from the Rust types so they
//! cannot drift, published by the server and used to check every file.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Value, json};

use super::seed::{ImageDefinition, SCHEMA_NAME as SEED_SCHEMA};
use crate::{BaseImage, Image, Package, PackageSource};

/// Names under which schemas are published (`/v1/schemas/{name}`).
pub const SCHEMA_NAMES: [&str; 5] = [SEED_SCHEMA, "base-image", "image", "package", "package-source"];

/// A document of `kind: K` is the API object plus its `kind`.
fn kind_document(mut schema: Value, kind: &str, title: &str) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), json!(title));
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            properties.insert("kind".into(), json!({ "const": kind }));
        }
        if let Some(Value::Array(required)) = object.get_mut("required") {
            required.push(json!("kind"));
        }
    }
    schema
}

fn build(name: &str) -> Option<Value> {
    let schema = match name {
        SEED_SCHEMA => {
            let mut s = schemars::schema_for!(ImageDefinition).to_value();
            if let Some(object) = s.as_object_mut() {
                object.insert("title".into(), json!("Kiln image definition (seed format)"));
            }
            s
        }
        "base-image" => {
            let mut s =
                kind_document(schemars::schema_for!(BaseImage).to_value(), "BaseImage", "Kiln BaseImage document");
            // Dispatch files say `dockerUrl`; either spelling names the reference.
            if let Some(object) = s.as_object_mut() {
                if let Some(Value::Object(properties)) = object.get_mut("properties") {
                    properties.insert(
                        "dockerUrl".into(),
                        json!({ "type": "string", "description": "Dispatch's name for `reference`" }),
                    );
                }
                if let Some(Value::Array(required)) = object.get_mut("required") {
                    required.retain(|r| r != "reference");
                }
                object.insert("anyOf".into(), json!([{ "required": ["reference"] }, { "required": ["dockerUrl"] }]));
            }
            s
        }
        "image" => kind_document(schemars::schema_for!(Image).to_value(), "Image", "Kiln Image document"),
        "package" => kind_document(schemars::schema_for!(Package).to_value(), "Package", "Kiln Package document"),
        "package-source" => kind_document(
            schemars::schema_for!(PackageSource).to_value(),
            "PackageSource",
            "Kiln PackageSource document",
        ),
        _ => return None,
    };
    Some(schema)
}

static SCHEMAS: LazyLock<HashMap<&'static str, Value>> =
    LazyLock::new(|| SCHEMA_NAMES.iter().filter_map(|name| Some((*name, build(name)?))).collect());

static VALIDATORS: LazyLock<HashMap<&'static str, jsonschema::Validator>> = LazyLock::new(|| {
    SCHEMAS
        .iter()
        .map(|(name, schema)| {
            // Generated from our own types; a schema the validator rejects is a bug caught by tests.
            let validator =
                jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("generated schema {name} is invalid: {e}"));
            (*name, validator)
        })
        .collect()
});

/// The published schema called `name`.
pub fn schema(name: &str) -> Option<&'static Value> {
    SCHEMAS.get(name)
}

/// One schema violation, at a JSON pointer into the document.
pub(super) struct Problem {
    pub pointer: String,
    pub message: String,
    /// Set when the problem is a field the schema does not know.
    pub unexpected_key: Option<String>,
}

pub(super) fn check(name: &str, instance: &Value) -> Vec<Problem> {
    let Some(validator) = VALIDATORS.get(name) else {
        return vec![Problem {
            pointer: String::new(),
            message: format!("no schema called {name}"),
            unexpected_key: None,
        }];
    };
    let mut problems = Vec::new();
    for error in validator.iter_errors(instance) {
        collect(&error, &mut problems);
    }
    problems
}

/// Turns one validation error into problems a user can act on. An `anyOf` (how optional
/// fields and string-or-number versions are written) is explained by its branches, leaving
/// out the `null` branch nobody meant.
fn collect(error: &jsonschema::ValidationError<'_>, problems: &mut Vec<Problem>) {
    use jsonschema::error::{TypeKind, ValidationErrorKind};
    let pointer = error.instance_path().as_str().to_string();
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for key in unexpected {
                problems.push(Problem {
                    pointer: pointer.clone(),
                    message: format!("unknown field {key:?}"),
                    unexpected_key: Some(key.clone()),
                });
            }
        }
        ValidationErrorKind::AnyOf { context } => {
            let is_null_branch = |branch: &Vec<jsonschema::ValidationError<'_>>| {
                branch.iter().all(|e| matches!(e.kind(), ValidationErrorKind::Type { kind: TypeKind::Single(t) } if format!("{t:?}").eq_ignore_ascii_case("null")))
            };
            let branches: Vec<_> = context.iter().filter(|b| !is_null_branch(b)).collect();
            let only_types =
                branches.iter().all(|b| b.iter().all(|e| matches!(e.kind(), ValidationErrorKind::Type { .. })));
            if branches.len() == 1 {
                for sub in branches[0] {
                    collect(sub, problems);
                }
            } else if only_types && !branches.is_empty() {
                let expected: Vec<String> = branches
                    .iter()
                    .flat_map(|b| b.iter())
                    .filter_map(|e| match e.kind() {
                        ValidationErrorKind::Type { kind: TypeKind::Single(t) } => {
                            Some(format!("{t:?}").to_lowercase())
                        }
                        _ => None,
                    })
                    .collect();
                problems.push(Problem {
                    pointer,
                    message: format!("must be a {}", expected.join(" or ")),
                    unexpected_key: None,
                });
            } else {
                problems.push(Problem { pointer, message: error.to_string(), unexpected_key: None });
            }
        }
        _ => problems.push(Problem { pointer, message: error.to_string(), unexpected_key: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_and_either_type_fields_explain_themselves() {
        let problems =
            check(super::SEED_SCHEMA, &json!({"name": "a", "parent": "b", "metadata": {"extendable": "yes"}}));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/metadata/extendable");
        assert!(problems[0].message.contains("boolean"), "{}", problems[0].message);
        let problems = check(super::SEED_SCHEMA, &json!({"name": "a", "parent": "b", "version": [1]}));
        assert_eq!(problems[0].pointer, "/version");
        assert!(problems[0].message.contains("must be a string or number"), "{}", problems[0].message);
    }

    #[test]
    fn every_schema_compiles() {
        for name in SCHEMA_NAMES {
            assert!(schema(name).is_some(), "{name}");
            assert!(check(name, &json!({})).iter().any(|p| !p.message.is_empty()), "{name} accepts an empty document");
        }
    }
}
