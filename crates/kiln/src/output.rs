//! How objects are shown: Dispatch-style tables by default, or JSON / YAML documents with
//! their `kind`, which `kiln update -f` takes back as they are.

use anyhow::{Context, Result};
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use crate::cli::{Kind, Output};

/// Standard output's reader went away (`kiln … | head -1`): the command stops quietly, as
/// Unix tools do, instead of panicking in `println!` or reporting an error.
#[derive(Debug)]
pub struct OutputClosed;

impl std::fmt::Display for OutputClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for OutputClosed {}

/// Writes to standard output as `print!` does, but hands a failed write back.
pub fn write_out(args: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_fmt(args) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(OutputClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `print!` that returns the write's result (see [`write_out`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `println!` that returns the write's result (see [`write_out`]).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};

impl Kind {
    pub fn collection(self) -> &'static str {
        match self {
            Kind::BaseImages => "/v1/base-images",
            Kind::Images => "/v1/images",
            Kind::Packages => "/v1/packages",
            Kind::PackageSources => "/v1/package-sources",
            Kind::Tasks => "/v1/tasks",
            Kind::Functions => "/v1/functions",
        }
    }

    pub fn document_kind(self) -> &'static str {
        match self {
            Kind::BaseImages => "BaseImage",
            Kind::Images => "Image",
            Kind::Packages => "Package",
            Kind::PackageSources => "PackageSource",
            Kind::Tasks => "Task",
            Kind::Functions => "Function",
        }
    }

    pub fn from_document_kind(kind: &str) -> Option<Kind> {
        [Kind::BaseImages, Kind::Images, Kind::Packages, Kind::PackageSources]
            .into_iter()
            .find(|k| k.document_kind() == kind)
    }

    fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::BaseImages => &[
                ("NAME", "name"),
                ("REFERENCE", "reference"),
                ("LANGUAGE", "language"),
                ("STATUS", "status"),
                ("CREATED DATE", "createdTime"),
            ],
            Kind::Images => &[
                ("NAME", "name"),
                ("BASE IMAGE", "baseImageName"),
                ("LANGUAGE", "language"),
                ("STATUS", "status"),
                ("REFERENCE", "reference"),
                ("CREATED DATE", "createdTime"),
            ],
            Kind::Packages => &[
                ("ECOSYSTEM", "ecosystem"),
                ("NAME", "name"),
                ("VERSIONS", "allowedVersions"),
                ("LICENSE", "license"),
                ("DECISION", "decision"),
            ],
            Kind::PackageSources => &[
                ("NAME", "name"),
                ("ECOSYSTEM", "ecosystem"),
                ("URL", "url"),
                ("SUITE", "suite"),
                ("CREDENTIALS", "hasCredentials"),
            ],
            Kind::Tasks => &[
                ("ID", "id"),
                ("KIND", "kind"),
                ("TARGET", "target"),
                ("STATE", "state"),
                ("STEP", "progress.step"),
                ("%", "progress.percent"),
                ("ATTEMPTS", "attempts"),
                ("CREATED DATE", "createdTime"),
            ],
            Kind::Functions => &[
                ("NAME", "name"),
                ("IMAGE", "image"),
                ("STATUS", "status"),
                ("REFERENCE", "reference"),
                ("UPDATED DATE", "updatedTime"),
            ],
        }
    }
}

/// The object with its `kind` first, as files write it.
pub fn as_document(kind: Kind, object: &Value) -> Value {
    let mut document = serde_json::Map::new();
    document.insert("kind".into(), Value::String(kind.document_kind().into()));
    if let Some(fields) = object.as_object() {
        for (k, v) in fields {
            document.insert(k.clone(), v.clone());
        }
    }
    Value::Object(document)
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().map(|v| cell(Some(v))).collect::<Vec<_>>().join(", "),
        Some(Value::Bool(true)) => "yes".into(),
        Some(Value::Bool(false)) => "no".into(),
        Some(other) => other.to_string(),
    }
}

/// Times in tables are read by people: to the second, in UTC.
fn when(value: Option<&Value>) -> String {
    let text = cell(value);
    chrono::DateTime::parse_from_rfc3339(&text)
        .map_or(text, |t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// Prints objects of one kind in the chosen format.
pub fn print(kind: Kind, objects: &[Value], format: Output, single: bool) -> Result<()> {
    let documents: Vec<Value> = objects.iter().map(|o| as_document(kind, o)).collect();
    match format {
        Output::Table => {
            let mut table = Table::new();
            table.load_preset(presets::UTF8_HORIZONTAL_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
            table.set_header(kind.columns().iter().map(|(title, _)| *title));
            for object in objects {
                table.add_row(kind.columns().iter().map(|(_, field)| {
                    let value = field.split('.').try_fold(object, |value, part| value.get(part));
                    if field.ends_with("Time") { when(value) } else { cell(value) }
                }));
            }
            outln!("{table}")?;
        }
        Output::Json => {
            let text = if single && documents.len() == 1 {
                serde_json::to_string_pretty(&documents[0])
            } else {
                serde_json::to_string_pretty(&documents)
            };
            outln!("{}", text.context("rendering JSON")?)?;
        }
        Output::Yaml => {
            let mut parts = Vec::new();
            for document in &documents {
                parts.push(serde_saphyr::to_string(document).context("rendering YAML")?);
            }
            out!("{}", parts.join("---\n"))?;
        }
    }
    Ok(())
}
