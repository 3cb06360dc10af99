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

/// Widest cell of a plain table; `-o wide` shows every cell whole.
const CELL_WIDTH: usize = 48;

/// A table as kubectl and docker print them: a header, one line per row, columns aligned,
/// no rules. Long cells are cut with `…` unless `output` is `Wide`, so a row stays one line.
pub fn render_table<R: IntoIterator<Item = String>>(
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
    output: Output,
) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.into_iter().map(|cell| cut(cell, output)));
    }
    // Each line starts with the padding of the first column; a plain table starts at column 0.
    table
        .to_string()
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn cut(cell: String, output: Output) -> String {
    let single = if cell.contains('\n') { cell.replace('\n', " ") } else { cell };
    if output == Output::Wide || single.chars().count() <= CELL_WIDTH {
        return single;
    }
    let mut short: String = single.chars().take(CELL_WIDTH - 1).collect();
    short.push('…');
    short
}

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

    fn columns(self, output: Output) -> Vec<(&'static str, &'static str)> {
        let mut columns = self.plain_columns().to_vec();
        if output == Output::Wide {
            columns.extend(match self {
                Kind::BaseImages => &[("DIGEST", "digest"), ("UPDATED DATE", "updatedTime")][..],
                Kind::Images => &[("VERSION", "version"), ("DIGEST", "digest"), ("UPDATED DATE", "updatedTime")][..],
                Kind::Tasks => &[("ERROR", "error")][..],
                Kind::Functions => &[("DIGEST", "digest"), ("RUNTIME DIGEST", "runtimeDigest")][..],
                Kind::Packages | Kind::PackageSources => &[][..],
            });
        }
        columns
    }

    fn plain_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::BaseImages => &[
                ("NAME", "name"),
                ("REFERENCE", "reference"),
                ("LANGUAGE", "language"),
                ("STATUS", "status"),
                ("REASON", "reason"),
                ("CREATED DATE", "createdTime"),
            ],
            Kind::Images => &[
                ("NAME", "name"),
                ("BASE IMAGE", "baseImageName"),
                ("LANGUAGE", "language"),
                ("STATUS", "status"),
                ("REASON", "reason"),
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
                ("REASON", "reason"),
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
        Output::Table | Output::Wide => {
            let columns = kind.columns(format);
            let rows = objects.iter().map(|object| {
                columns.iter().map(move |(_, field)| {
                    let value = field.split('.').try_fold(object, |value, part| value.get(part));
                    match *field {
                        f if f.ends_with("Time") => when(value),
                        // The first reason says why; the rest are in `kiln get … -o yaml`.
                        "reason" => value.and_then(|v| v.get(0)).map(|v| cell(Some(v))).unwrap_or_default(),
                        _ => cell(value),
                    }
                })
            });
            let header: Vec<&str> = columns.iter().map(|(title, _)| *title).collect();
            outln!("{}", render_table(&header, rows, format))?;
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
        Output::Name => {
            for object in objects {
                let name = object.get("name").or_else(|| object.get("id"));
                outln!("{}", name.and_then(Value::as_str).unwrap_or_default())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_one_line_per_row_and_cut_long_cells_unless_wide() {
        let reason = format!("package {} not found", "x".repeat(80));
        let rows = || {
            vec![
                vec!["pg".to_string(), "ERROR".to_string(), reason.clone()],
                vec!["web".into(), "READY".into(), String::new()],
            ]
        };
        let plain = render_table(&["NAME", "STATUS", "REASON"], rows(), Output::Table);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 3, "a header and one line per row, no rules:\n{plain}");
        assert!(lines[0].starts_with("NAME") && lines[1].starts_with("pg"), "{plain}");
        assert!(lines[1].contains('…') && !lines[1].contains(&reason), "{plain}");
        assert!(lines.iter().all(|l| !l.contains('─')), "{plain}");
        let wide = render_table(&["NAME", "STATUS", "REASON"], rows(), Output::Wide);
        assert!(wide.contains(&reason), "{wide}");
        assert_eq!(wide.lines().count(), 3);
        // A cell with a line break would break the row in two.
        let broken = render_table(&["A"], vec![vec!["one\ntwo".to_string()]], Output::Table);
        assert_eq!(broken.lines().count(), 2, "{broken}");
    }
}
