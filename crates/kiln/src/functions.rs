//! `kiln function …`: push a directory as a function's code (packed without what
//! `.kilnignore` leaves out, Python checked to compile), and list, show or delete functions.

use std::path::Path;

use anyhow::{Result, anyhow};
use reqwest::Method;
use serde_json::Value;

use crate::cli::{FunctionCommand, Kind, Output};
use crate::output::{outln, print};
use crate::pack;
use kiln_client::{Body, Client, segment};

pub async fn run(client: &Client, output: Output, command: FunctionCommand) -> Result<()> {
    match command {
        FunctionCommand::Push { image, code, name } => push(client, output, &image, &code, name.as_deref()).await,
        FunctionCommand::List { image } => {
            let path = match image {
                Some(image) => format!("/v1/functions?image={}", segment(&image)),
                None => "/v1/functions".to_string(),
            };
            let mut items = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page_path = match &token {
                    Some(token) if path.contains('?') => format!("{path}&pageToken={}", segment(token)),
                    Some(token) => format!("{path}?pageToken={}", segment(token)),
                    None => path.clone(),
                };
                let page = client.get(&page_path).await?;
                items.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
                match page.get("nextPageToken").and_then(Value::as_str) {
                    Some(next) => token = Some(next.to_string()),
                    None => break,
                }
            }
            print(Kind::Functions, &items, output, false)
        }
        FunctionCommand::Get { name } => {
            let function = client.get(&format!("/v1/functions/{}", segment(&name))).await?;
            print(Kind::Functions, &[function], output, true)
        }
        FunctionCommand::Delete { name } => {
            let deleted = client.send(Method::DELETE, &format!("/v1/functions/{}", segment(&name)), None).await?;
            if output.is_table() {
                return outln!("Function {name} deleted");
            }
            print(Kind::Functions, &[deleted], output, true)
        }
    }
}

/// Packs `code` and puts it on `image` as the function `name`.
async fn push(client: &Client, output: Output, image: &str, code: &Path, name: Option<&str>) -> Result<()> {
    let packed = pack::pack(code)?;
    let name = match name {
        Some(name) => name.to_string(),
        None => code
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
            .ok_or_else(|| anyhow!("cannot name the function after {}: give --name", code.display()))?,
    };
    if !pack::check_python(code, &packed.files)? {
        eprintln!("note: no python3 here to check the code compiles; the server checks only that the handler exists");
    }
    if !packed.left_out.is_empty() {
        eprintln!("left out (see {}): {}", pack::IGNORE_FILE, pack::list(&packed.left_out));
    }
    let path = format!("/v1/images/{}/functions/{}", segment(image), segment(&name));
    let answer = client.send(Method::PUT, &path, Some(Body::Bytes(packed.tar, "application/x-tar"))).await?;
    if output.is_table() {
        let reference = answer.get("reference").and_then(Value::as_str).unwrap_or_default();
        let digest = answer.get("digest").and_then(Value::as_str).unwrap_or_default();
        outln!("{reference}@{digest}")?;
        return Ok(());
    }
    print(Kind::Functions, &[answer], output, true)
}
