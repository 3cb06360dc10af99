//! Reads YAML documents into JSON values while remembering where each value sat in the
//! file, so schema and validation errors can name a line and column.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::validation::FieldError;

/// 1-based line and column.
pub type Position = (u64, u64);

/// One YAML document as JSON, with positions by JSON pointer.
#[derive(Debug, Clone)]
pub struct Document {
    pub index: usize,
    pub value: Value,
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl Document {
    /// Where the value at `pointer` (or its nearest ancestor) starts.
    pub fn locate(&self, pointer: &str) -> Option<Position> {
        let mut current = pointer;
        loop {
            if let Some(pos) = self.values.get(current) {
                return Some(*pos);
            }
            match current.rfind('/') {
                Some(i) => current = &current[..i],
                None => return None,
            }
        }
    }

    /// Where the key of the entry at `pointer` is written, for errors about the key itself.
    pub fn locate_key(&self, pointer: &str) -> Option<Position> {
        self.keys.get(pointer).copied().or_else(|| self.locate(pointer))
    }

    /// Moves an entry to a new key, keeping its positions (used for accepted aliases).
    pub fn rename_key(&mut self, from: &str, to: &str) {
        let Some(object) = self.value.as_object_mut() else { return };
        let Some(entry) = object.remove(from) else { return };
        object.insert(to.to_string(), entry);
        let (from_ptr, to_ptr) = (format!("/{from}"), format!("/{to}"));
        for map in [&mut self.values, &mut self.keys] {
            let moved: Vec<(String, Position)> = map
                .iter()
                .filter(|(k, _)| *k == &from_ptr || k.starts_with(&format!("{from_ptr}/")))
                .map(|(k, v)| (format!("{to_ptr}{}", &k[from_ptr.len()..]), *v))
                .collect();
            map.extend(moved);
        }
    }

    pub fn error_at(&self, pointer: &str, field: &str, message: impl Into<String>) -> FieldError {
        let mut error = FieldError::new(field, message);
        error.document = Some(self.index);
        if let Some((line, column)) = self.locate(pointer) {
            error.line = Some(line);
            error.column = Some(column);
        }
        error
    }
}

enum Node {
    Null,
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Text(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Signed(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Text(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn position(node: &Spanned<impl Sized>) -> Position {
    (node.referenced.line(), node.referenced.column())
}

/// The scalar as written, for numbers whose value would lose how they were spelled.
fn source_text<'a>(node: &Spanned<Node>, source: &'a str) -> Option<&'a str> {
    let span = node.referenced.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    source.get(start..start + len).map(str::trim)
}

/// Plain decimal integers stay numbers; `1.10`, `010`, `1e3` or `0x1F` keep their spelling
/// as text, since in a definition they are versions, and `1.10` is not `1.1`.
fn number(node: &Spanned<Node>, source: &str, value: Value, is_float: bool) -> Value {
    match source_text(node, source) {
        Some(text) if !text.is_empty() => {
            let plain_integer = text.strip_prefix('-').unwrap_or(text);
            let plain = (plain_integer == "0" || !plain_integer.starts_with('0'))
                && plain_integer.chars().all(|c| c.is_ascii_digit());
            if plain && !is_float { value } else { Value::String(text.to_string()) }
        }
        _ => value,
    }
}

fn convert(node: Spanned<Node>, pointer: String, doc: &mut Document, source: &str) -> Value {
    doc.values.insert(pointer.clone(), position(&node));
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Signed(n) => number(&node, source, Value::Number(n.into()), false),
        Node::Unsigned(n) => number(&node, source, Value::Number(n.into()), false),
        Node::Float(f) => number(&node, source, Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null), true),
        Node::Text(s) => Value::String(s),
        Node::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| convert(item, format!("{pointer}/{i}"), doc, source))
                .collect(),
        ),
        Node::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let child = format!("{pointer}/{}", escape(&key.value));
                doc.keys.insert(child.clone(), position(&key));
                let converted = convert(value, child, doc, source);
                object.insert(key.value, converted);
            }
            Value::Object(object)
        }
    }
}

/// Largest definition file accepted; a definition is a few kilobytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Splits `text` into documents. YAML 1.2 booleans only, so `NO` stays a string.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, FieldError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(FieldError::new("", format!("file is {} bytes; the limit is {MAX_FILE_BYTES}", text.len())));
    }
    let options = serde_saphyr::options! { strict_booleans: true };
    let nodes: Vec<Spanned<Node>> = serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
        let mut error = FieldError::new("", format!("invalid YAML: {}", e.without_snippet()));
        if let Some(location) = e.location() {
            error.line = Some(location.line());
            error.column = Some(location.column());
        }
        error
    })?;
    let mut documents: Vec<Document> = nodes
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            let mut doc = Document { index, value: Value::Null, values: HashMap::new(), keys: HashMap::new() };
            doc.value = convert(node, String::new(), &mut doc, text);
            doc
        })
        .collect();
    // A single top-level list (as in a JSON array of objects) holds one document per item.
    if documents.len() == 1
        && documents[0].value.is_array()
        && let Some(list) = documents.pop()
    {
        return Ok(split_list(list));
    }
    Ok(documents)
}

fn split_list(list: Document) -> Vec<Document> {
    let Value::Array(items) = list.value else { return Vec::new() };
    items
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let root = format!("/{index}");
            let rebase = |map: &HashMap<String, Position>| -> HashMap<String, Position> {
                map.iter()
                    .filter_map(|(pointer, pos)| {
                        let rest = pointer.strip_prefix(&root)?;
                        (rest.is_empty() || rest.starts_with('/')).then(|| (rest.to_string(), *pos))
                    })
                    .collect()
            };
            Document { index, value, values: rebase(&list.values), keys: rebase(&list.keys) }
        })
        .collect()
}

/// `systemDependencies.packages[2].name` → `/systemDependencies/packages/2/name`.
pub fn field_to_pointer(field: &str) -> String {
    let mut pointer = String::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        pointer.push('/');
        pointer.push_str(&escape(name));
        for index in indexes.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                pointer.push('/');
                pointer.push_str(index);
            }
        }
    }
    pointer
}

/// `/systemDependencies/packages/2/name` → `systemDependencies.packages[2].name`.
pub fn pointer_to_field(pointer: &str) -> String {
    let mut field = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            field.push_str(&format!("[{part}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&part);
        }
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_values() {
        let docs = parse_documents("name: a\nlist:\n  - x: 1\n    y: NO\n---\nname: b\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].locate("/list/0/y"), Some((4, 8)));
        assert_eq!(docs[0].value["list"][0]["y"], "NO");
        // Lines count from the start of the file, as editors show them.
        assert_eq!(docs[1].locate("/name"), Some((6, 7)));
        assert_eq!(docs[0].locate("/list/0/missing"), Some((3, 5)));
    }

    #[test]
    fn a_top_level_list_is_one_document_per_item() {
        let docs = parse_documents("[{\"name\": \"a\"},\n {\"name\": 7}]").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[1].index, docs[1].locate("/name")), (1, Some((2, 11))));
    }

    #[test]
    fn numbers_keep_their_spelling_unless_plain_integers() {
        let docs =
            parse_documents("a: 1.10\nb: 010\nc: 1e3\nd: 0x1F\ne: 12\nf: -3\ng: '1.10'\nh: 18446744073709551616\n")
                .unwrap();
        let v = &docs[0].value;
        assert_eq!(
            (v["a"].as_str(), v["b"].as_str(), v["c"].as_str(), v["d"].as_str()),
            (Some("1.10"), Some("010"), Some("1e3"), Some("0x1F"))
        );
        assert_eq!((v["e"].as_u64(), v["f"].as_i64(), v["g"].as_str()), (Some(12), Some(-3), Some("1.10")));
        assert!(v["h"].is_string(), "{}", v["h"]);
    }

    #[test]
    fn syntax_errors_carry_position() {
        let err = parse_documents("name: a\n  bad: [\n").unwrap_err();
        assert!(err.line.is_some(), "{err}");
    }

    #[test]
    fn paths_round_trip() {
        let field = "systemDependencies.packages[2].name";
        assert_eq!(field_to_pointer(field), "/systemDependencies/packages/2/name");
        assert_eq!(pointer_to_field("/systemDependencies/packages/2/name"), field);
    }
}
