//! Build commands: bootstrap root images, rebuild, wait for an image's build, and read what
//! a build produced (SBOM, inventory, Dockerfile).

use std::time::Duration;

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use comfy_table::{ContentArrangement, Table, presets};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Kind, Output};
use crate::client::{Body, Client, segment};
use crate::output::{out, outln, print};

/// How long `--wait` gives the controller to start an image's build.
const START_WITHIN: Duration = Duration::from_secs(120);

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Waits until the build of a just-created image ends; returns the image as it then is.
pub async fn wait_for_image(client: &Client, name: &str) -> Result<Value> {
    let path = format!("/v1/images/{}", segment(name));
    let started = tokio::time::Instant::now();
    let task = loop {
        let image = client.get(&path).await?;
        match (text(&image, "status"), image.get("buildTask").and_then(Value::as_str)) {
            // A small build can be over before the first look: its task still tells.
            (_, Some(task)) => break task.to_string(),
            ("ERROR", None) => {
                bail!("image {name} is in ERROR: {}", image.get("reason").map(Value::to_string).unwrap_or_default())
            }
            _ if started.elapsed() > START_WITHIN => {
                bail!(
                    "the build of image {name} did not start within {} s: is its parent READY? (kiln get image {name})",
                    START_WITHIN.as_secs()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let outcome = crate::tasks::wait(client, &task).await;
    let image = client.get(&path).await?;
    outcome.map(|()| image)
}

pub async fn bootstrap(client: &Client, output: Output, languages: Vec<String>, wait: bool) -> Result<()> {
    let answer = client.send(Method::POST, "/v1/bootstrap", Some(Body::Json(json!({"languages": languages})))).await?;
    let tasks = answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if wait {
        for task in &tasks {
            eprintln!("root image {}:", text(task, "target"));
            crate::tasks::wait(client, text(task, "id")).await?;
        }
        let names: Vec<&str> = tasks.iter().map(|t| text(t, "target")).collect();
        let mut images = Vec::new();
        for name in names {
            images.push(client.get(&format!("/v1/base-images/{}", segment(name))).await?);
        }
        return print(Kind::BaseImages, &images, output, false);
    }
    print(Kind::Tasks, &tasks, output, false)
}

pub async fn rebuild(client: &Client, output: Output, name: &str, locked: bool, wait: bool) -> Result<()> {
    let path = format!("/v1/images/{}/rebuild", segment(name));
    let task = client.send(Method::POST, &path, Some(Body::Json(json!({"locked": locked})))).await?;
    if wait {
        crate::tasks::wait(client, text(&task, "id")).await?;
        let image = client.get(&format!("/v1/images/{}", segment(name))).await?;
        return print(Kind::Images, &[image], output, true);
    }
    print(Kind::Tasks, &[task], output, true)
}

pub async fn sbom(client: &Client, image: &str) -> Result<()> {
    let document = client.get(&format!("/v1/images/{}/sbom", segment(image))).await?;
    outln!("{}", serde_json::to_string_pretty(&document)?)?;
    Ok(())
}

/// Tars `code` and puts it on `image` as the function `name`.
pub async fn push_function(
    client: &Client,
    output: Output,
    image: &str,
    code: &Path,
    name: Option<&str>,
) -> Result<()> {
    let name = match name {
        Some(name) => name.to_string(),
        None => code
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
            .ok_or_else(|| anyhow!("cannot name the function after {}: give --name", code.display()))?,
    };
    if !code.is_dir() {
        bail!("{} is not a directory: give --code the directory holding the function", code.display());
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", code).with_context(|| format!("reading {}", code.display()))?;
    let tar = builder.into_inner().with_context(|| format!("packing {}", code.display()))?;
    let path = format!("/v1/images/{}/functions/{}", segment(image), segment(&name));
    let answer = client.send(Method::PUT, &path, Some(Body::Bytes(tar, "application/x-tar"))).await?;
    if output == Output::Table {
        let reference = answer.get("reference").and_then(Value::as_str).unwrap_or_default();
        let digest = answer.get("digest").and_then(Value::as_str).unwrap_or_default();
        outln!("{reference}@{digest}")?;
    } else {
        outln!("{}", serde_json::to_string_pretty(&answer)?)?;
    }
    Ok(())
}

pub async fn dockerfile(client: &Client, image: &str) -> Result<()> {
    let text = client.get_text(&format!("/v1/images/{}/dockerfile", segment(image))).await?;
    out!("{text}")?;
    Ok(())
}

pub async fn inventory(client: &Client, output: Output, image: &str) -> Result<()> {
    let answer = client.get(&format!("/v1/images/{}/packages", segment(image))).await?;
    if output != Output::Table {
        outln!("{}", serde_json::to_string_pretty(&answer)?)?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_HORIZONTAL_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(["ECOSYSTEM", "NAME", "VERSION", "LICENSE", "LAYER"]);
    for item in answer.get("items").and_then(Value::as_array).into_iter().flatten() {
        let layer = text(item, "layer");
        let layer = layer.strip_prefix("sha256:").map_or("(parent)", |hex| &hex[..12.min(hex.len())]);
        table.add_row([
            text(item, "ecosystem"),
            text(item, "name"),
            text(item, "version"),
            text(item, "license"),
            layer,
        ]);
    }
    outln!("{table}")?;
    Ok(())
}
