//! Definition files: the seed's image definition YAML and Dispatch-style multi-document
//! files (`kind: BaseImage | Image | Package | PackageSource`), checked against their
//! published JSON Schemas and turned into API objects, with errors that name the document,
//! line and column.

mod schema;
mod seed;
pub mod yaml;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::includes::{Format, IncludeError, Includes};
use crate::requirements_includes::{self, Source};
use crate::validation::{FieldError, ValidationErrors};
use crate::{BaseImage, Image, Package, PackageSource};
pub use schema::{SCHEMA_NAMES, schema};
pub use seed::ImageDefinition;
use yaml::{Document, field_to_pointer, parse_documents, pointer_to_field};

/// One object read from a file.
// A file holds a handful of definitions, each read once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    BaseImage(BaseImage),
    Image(Image),
    Package(Package),
    PackageSource(PackageSource),
}

impl Definition {
    pub fn kind(&self) -> Kind {
        match self {
            Definition::BaseImage(_) => Kind::BaseImage,
            Definition::Image(_) => Kind::Image,
            Definition::Package(_) => Kind::Package,
            Definition::PackageSource(_) => Kind::PackageSource,
        }
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        match self {
            Definition::BaseImage(o) => o.validate(),
            Definition::Image(o) => o.validate(),
            Definition::Package(o) => o.validate(),
            Definition::PackageSource(o) => o.validate(),
        }
    }
}

/// The `kind` of a document, as written in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum Kind {
    BaseImage,
    Image,
    Package,
    PackageSource,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::BaseImage, Kind::Image, Kind::Package, Kind::PackageSource];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BaseImage => "BaseImage",
            Kind::Image => "Image",
            Kind::Package => "Package",
            Kind::PackageSource => "PackageSource",
        }
    }

    /// The name its schema is published under.
    pub fn schema_name(self) -> &'static str {
        match self {
            Kind::BaseImage => "base-image",
            Kind::Image => "image",
            Kind::Package => "package",
            Kind::PackageSource => "package-source",
        }
    }
}

/// An object and the document it came from (0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub document: usize,
    pub definition: Definition,
}

/// Parses every document of a definition file. All documents are checked and every problem
/// reported, so one run shows a user everything to fix. `@path` references in manifest fields
/// and the `-r`/`-c` files they name are read through `includes`, relative to its root.
pub fn load(text: &str, includes: &Includes<'_>) -> Result<Vec<Loaded>, ValidationErrors> {
    let documents = parse_documents(text).map_err(|e| ValidationErrors(vec![e]))?;
    if documents.is_empty() {
        return Err(ValidationErrors::single("", "the file holds no documents"));
    }
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for doc in documents {
        match load_document(doc, includes) {
            Ok(item) => loaded.push(item),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(loaded) } else { Err(ValidationErrors(errors)) }
}

fn load_document(mut doc: Document, includes: &Includes<'_>) -> Result<Loaded, Vec<FieldError>> {
    if !doc.value.is_object() {
        return Err(vec![doc.error_at("", "", "a document must be a mapping of fields")]);
    }
    let kind = match doc.value.get("kind") {
        None => None,
        Some(Value::String(text)) => match Kind::ALL.into_iter().find(|k| k.as_str() == text) {
            Some(kind) => Some(kind),
            None => {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(vec![doc.error_at(
                    "/kind",
                    "kind",
                    format!("{text:?} is not a kind: use one of {}", names.join(", ")),
                )]);
            }
        },
        Some(_) => return Err(vec![doc.error_at("/kind", "kind", "must be a string")]),
    };
    let Some(kind) = kind else {
        return load_seed(doc, includes);
    };
    if kind == Kind::BaseImage {
        if doc.value.get("reference").is_none() {
            doc.rename_key("dockerUrl", "reference");
        } else if doc.value.get("dockerUrl").is_some() {
            return Err(vec![doc.error_at(
                "/dockerUrl",
                "dockerUrl",
                "give either reference or dockerUrl (its Dispatch name), not both",
            )]);
        }
    }
    check_schema(&doc, kind.schema_name())?;
    if let Some(object) = doc.value.as_object_mut() {
        object.remove("kind");
    }
    if kind == Kind::Image {
        let format = match doc.value.pointer("/runtimeDependencies/format").and_then(Value::as_str) {
            Some("package.json") => Format::PackageJson,
            Some("requirements.txt") => Format::Requirements,
            _ => Format::Manifest,
        };
        let source = resolve_manifest(&mut doc, "/runtimeDependencies/manifest", format, includes)?;
        resolve_manifest(&mut doc, "/runtimeDependencies/lockfile", Format::Lockfile, includes)?;
        resolve_manifest(&mut doc, "/runtimeDependencies/constraints", Format::Requirements, includes)?;
        let manifest = "/runtimeDependencies/manifest";
        if let Some(constraints) = expand_manifest(&mut doc, manifest, source.as_deref(), includes)? {
            let runtime = doc.value.pointer_mut("/runtimeDependencies").and_then(Value::as_object_mut);
            if let Some(runtime) = runtime {
                let given = runtime.get("constraints").and_then(Value::as_str).unwrap_or_default().to_string();
                runtime.insert("constraints".to_string(), Value::String(given + &constraints));
            }
        }
    }
    let definition = match kind {
        Kind::BaseImage => Definition::BaseImage(decode(&doc)?),
        Kind::Image => Definition::Image(decode(&doc)?),
        Kind::Package => Definition::Package(decode(&doc)?),
        Kind::PackageSource => Definition::PackageSource(decode(&doc)?),
    };
    definition.validate().map_err(|e| located(&doc, e, field_to_pointer))?;
    Ok(Loaded { document: doc.index, definition })
}

fn load_seed(mut doc: Document, includes: &Includes<'_>) -> Result<Loaded, Vec<FieldError>> {
    check_schema(&doc, seed::SCHEMA_NAME)?;
    let source = resolve_manifest(&mut doc, "/runtime-manifest", Format::Manifest, includes)?;
    let constraints = expand_manifest(&mut doc, "/runtime-manifest", source.as_deref(), includes)?;
    let definition: ImageDefinition = decode(&doc)?;
    let uses_photon = doc.value.get("photon-packages").is_some();
    let mut image = definition.into_image();
    image.runtime_dependencies.constraints = constraints;
    image.validate().map_err(|e| located(&doc, e, |f| seed::pointer_for_image_field(f, uses_photon)))?;
    Ok(Loaded { document: doc.index, definition: Definition::Image(image) })
}

fn check_schema(doc: &Document, schema_name: &str) -> Result<(), Vec<FieldError>> {
    let problems = schema::check(schema_name, &doc.value);
    if problems.is_empty() {
        return Ok(());
    }
    Err(problems
        .into_iter()
        .map(|problem| {
            let field = pointer_to_field(&problem.pointer);
            match &problem.unexpected_key {
                Some(key) => {
                    let key_pointer = format!("{}/{}", problem.pointer, key.replace('~', "~0").replace('/', "~1"));
                    let mut error =
                        doc.error_at(&key_pointer, &pointer_to_field(&key_pointer), format!("unknown field {key:?}"));
                    if let Some((line, column)) = doc.locate_key(&key_pointer) {
                        error.line = Some(line);
                        error.column = Some(column);
                    }
                    error
                }
                None => doc.error_at(&problem.pointer, &field, problem.message),
            }
        })
        .collect())
}

/// Replaces `@file` at `pointer` with the text of the file, which must be `format`; returns
/// the file's path, or `None` for text given inline.
fn resolve_manifest(
    doc: &mut Document,
    pointer: &str,
    format: Format,
    includes: &Includes<'_>,
) -> Result<Option<PathBuf>, Vec<FieldError>> {
    let Some(Value::String(text)) = doc.value.pointer(pointer) else { return Ok(None) };
    let Some(reference) = text.strip_prefix('@') else { return Ok(None) };
    let reference = reference.to_string();
    let read = includes.resolve(&includes.root, &reference).and_then(|path| {
        let contents = includes.read(&path, format)?;
        Ok((path, contents))
    });
    match read {
        Ok((path, contents)) => {
            if let Some(slot) = doc.value.pointer_mut(pointer) {
                *slot = Value::String(contents);
            }
            Ok(Some(path))
        }
        Err(problem) => {
            let error = IncludeError { from: None, line: None, reference: format!("@{reference}"), problem };
            Err(vec![doc.error_at(pointer, &pointer_to_field(pointer), error.to_string())])
        }
    }
}

/// Inlines the `-r` files of a requirements text at `pointer` (read from the file `source`,
/// or given inline) and returns what its `-c` files hold. A package.json is left alone.
fn expand_manifest(
    doc: &mut Document,
    pointer: &str,
    source: Option<&Path>,
    includes: &Includes<'_>,
) -> Result<Option<String>, Vec<FieldError>> {
    let Some(Value::String(text)) = doc.value.pointer(pointer) else { return Ok(None) };
    if !requirements_includes::has_includes(text) || serde_json::from_str::<Value>(text).is_ok() {
        return Ok(None);
    }
    let name = source.map_or_else(|| "the manifest".to_string(), |path| path.display().to_string());
    // Inline text reads its includes from the root, like a file there.
    let dir = source.and_then(Path::parent).unwrap_or(&includes.root);
    let source = Source { name: &name, dir, path: source };
    match requirements_includes::expand_includes(source, text, includes) {
        Ok(expanded) => {
            if let Some(slot) = doc.value.pointer_mut(pointer) {
                *slot = Value::String(expanded.requirements);
            }
            Ok(expanded.constraints)
        }
        Err(error) => Err(vec![doc.error_at(pointer, &pointer_to_field(pointer), error.to_string())]),
    }
}

fn decode<T: DeserializeOwned>(doc: &Document) -> Result<T, Vec<FieldError>> {
    serde_json::from_value(doc.value.clone()).map_err(|e| vec![doc.error_at("", "", e.to_string())])
}

fn located(doc: &Document, errors: ValidationErrors, to_pointer: impl Fn(&str) -> String) -> Vec<FieldError> {
    errors
        .0
        .into_iter()
        .map(|e| {
            let pointer = to_pointer(&e.field);
            let mut out = doc.error_at(&pointer, &pointer_to_field(&pointer), e.message);
            if out.field.is_empty() {
                out.field = e.field;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests;
