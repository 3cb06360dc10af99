//! Build commands: bootstrap root images, rebuild, wait for an image's build, and read what
//! a build produced (SBOM, inventory, Dockerfile).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Kind, Output};
use crate::output::{out, outln, print};
use kiln_client::{Body, Client, segment};

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

/// How often `--wait` on a definition file looks at what it waits for.
const POLL: Duration = Duration::from_millis(500);

/// Where an object a definition file created or changed stands.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// READY or ERROR for what the file asked: nothing more will happen by itself.
    Settled,
    /// Being checked or built, or waiting for its parent to be.
    Moving,
    /// Not picked up yet although nothing holds it back (its parent is READY): after
    /// `START_WITHIN` this is reported instead of waited on forever.
    Idle,
}

/// Waits until every object (base images and images; other kinds are settled when stored)
/// is READY or ERROR for its current definition, printing each as it settles; returns them
/// as they then are, in the order given.
pub async fn wait_for_objects(client: &Client, objects: &[(Kind, String)]) -> Result<Vec<(Kind, Value)>> {
    let mut settled: Vec<Option<Value>> = vec![None; objects.len()];
    let mut idle_since: Vec<Option<tokio::time::Instant>> = vec![None; objects.len()];
    loop {
        for (at, (kind, name)) in objects.iter().enumerate() {
            if settled[at].is_some() {
                continue;
            }
            let object = client.get(&format!("{}/{}", kind.collection(), segment(name))).await?;
            let standing = match kind {
                Kind::BaseImages => base_image_standing(&object),
                Kind::Images => image_standing(client, &object).await?,
                _ => Standing::Settled,
            };
            match standing {
                Standing::Settled => {
                    if matches!(kind, Kind::BaseImages | Kind::Images) {
                        eprintln!("{}", final_line(*kind, &object));
                    }
                    settled[at] = Some(object);
                }
                Standing::Moving => idle_since[at] = None,
                Standing::Idle => {
                    let since = *idle_since[at].get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() > START_WITHIN {
                        let (noun, word) = match kind {
                            Kind::Images => ("the build of image", "image"),
                            _ => ("the check of base image", "base-image"),
                        };
                        bail!(
                            "{noun} {name} did not start within {} s: is the server's controller running? (kiln get {word} {name})",
                            START_WITHIN.as_secs(),
                        );
                    }
                }
            }
        }
        if settled.iter().all(Option::is_some) {
            return Ok(objects.iter().zip(settled).filter_map(|((kind, _), object)| Some((*kind, object?))).collect());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `Image web READY` or `Image web ERROR: why`, for the end of a wait.
pub fn final_line(kind: Kind, object: &Value) -> String {
    let name = text(object, "name");
    let status = text(object, "status");
    let reasons: Vec<&str> =
        object.get("reason").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    if reasons.is_empty() {
        format!("{} {name} {status}", kind.document_kind())
    } else {
        format!("{} {name} {status}: {}", kind.document_kind(), reasons.join("; "))
    }
}

/// A base image is settled once the controller has looked at its reference.
fn base_image_standing(base: &Value) -> Standing {
    match text(base, "status") {
        "READY" | "ERROR" => Standing::Settled,
        _ => Standing::Idle,
    }
}

/// An image is settled once the build of its current definition has ended, or when it is
/// in ERROR because its parent is (no build will start until the parent is fixed). An
/// updated image still shows its earlier build's outcome until the new build starts, so
/// only a build of the definition it has now counts.
async fn image_standing(client: &Client, image: &Value) -> Result<Standing> {
    let status = text(image, "status");
    let definition = serde_json::from_value::<kiln_model::Image>(image.clone())
        .with_context(|| format!("the server's image {} cannot be read", text(image, "name")))?
        .definition_digest();
    let built = image.get("buildDefinition").and_then(Value::as_str);
    match status {
        "READY" | "ERROR" if built == Some(definition.as_str()) => return Ok(Standing::Settled),
        "CREATING" | "UPDATING" | "DELETING" => return Ok(Standing::Moving),
        _ => {}
    }
    Ok(match parent_status(client, image).await?.as_deref() {
        None | Some("ERROR") if status == "ERROR" => Standing::Settled,
        // The controller is about to say so.
        None | Some("ERROR") => Standing::Moving,
        Some("READY" | "INITIALIZED") => Standing::Idle,
        Some(_) => Standing::Moving,
    })
}

/// The status of the image's parent (its parent image, else its base image), as the
/// controller judges it before building; `None` if the parent is gone.
async fn parent_status(client: &Client, image: &Value) -> Result<Option<String>> {
    let (collection, reference) = match (
        image.get("parentImageName").and_then(Value::as_str),
        image.get("baseImageName").and_then(Value::as_str),
    ) {
        (Some(parent), _) => ("/v1/images", parent),
        (None, Some(base)) => ("/v1/base-images", base),
        (None, None) => return Ok(None),
    };
    let (org, name) = kiln_model::image::split_parent_reference(reference);
    let path = format!("{collection}/{}", segment(name));
    let parent = match org {
        Some(org) => client.in_org(org).get_if_present(&path).await?,
        None => client.get_if_present(&path).await?,
    };
    Ok(parent.map(|parent| {
        let status = text(&parent, "status");
        // A parent being rebuilt still has a READY digest to build on.
        if status == "UPDATING" && parent.get("digest").is_some() { "READY".to_string() } else { status.to_string() }
    }))
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

/// Makes the image's debug variant and says how to get a shell in it.
pub async fn debug(client: &Client, output: Output, name: &str) -> Result<()> {
    let path = format!("/v1/images/{}/debug", segment(name));
    let task = client.send(Method::POST, &path, None).await?;
    let id = text(&task, "id").to_string();
    crate::tasks::wait(client, &id).await?;
    let task = client.get(&format!("/v1/tasks/{}", segment(&id))).await?;
    let result = task.get("result").cloned().unwrap_or(Value::Null);
    if !output.is_table() {
        return print(Kind::Tasks, &[task], output, true);
    }
    let reference = text(&result, "reference");
    outln!("{reference}@{}", text(&result, "digest"))?;
    eprintln!(
        "debug variant of {name} ({}): pull it (podman pull --tls-verify=false --creds kiln:$KILN_TOKEN {reference}), \
         then get a shell with `podman run --rm -it --entrypoint busybox {reference} sh` \
         (--user root to be root; busybox --list names the tools)",
        text(&result, "imageDigest")
    );
    Ok(())
}

pub async fn sbom(client: &Client, image: &str) -> Result<()> {
    let document = client.get(&format!("/v1/images/{}/sbom", segment(image))).await?;
    outln!("{}", serde_json::to_string_pretty(&document)?)?;
    Ok(())
}

pub async fn dockerfile(client: &Client, image: &str) -> Result<()> {
    let text = client.get_text(&format!("/v1/images/{}/dockerfile", segment(image))).await?;
    out!("{text}")?;
    Ok(())
}

/// What an image holds, or a base image (a root image Kiln bootstrapped, or one it read
/// from another registry) of that name when no image has it.
pub async fn inventory(client: &Client, output: Output, image: &str) -> Result<()> {
    let name = segment(image);
    let answer = match client.get_if_present(&format!("/v1/images/{name}")).await? {
        Some(_) => client.get(&format!("/v1/images/{name}/packages")).await?,
        None if client.get_if_present(&format!("/v1/base-images/{name}")).await?.is_some() => {
            client.get(&format!("/v1/base-images/{name}/packages")).await?
        }
        None => bail!("no image or base image is named {image:?}: kiln get images and kiln get base-images list them"),
    };
    if output == Output::Name {
        for item in answer.get("items").and_then(Value::as_array).into_iter().flatten() {
            outln!("{}", text(item, "name"))?;
        }
        return Ok(());
    }
    if !output.is_table() {
        outln!("{}", serde_json::to_string_pretty(&answer)?)?;
        return Ok(());
    }
    let rows = answer.get("items").and_then(Value::as_array).into_iter().flatten().map(|item| {
        let layer = text(item, "layer");
        let layer = layer.strip_prefix("sha256:").map_or("(parent)", |hex| &hex[..12.min(hex.len())]);
        // A licence Kiln read out of free text is its guess, and the table says so.
        let license = match text(item, "licenseKind") {
            "concluded" => format!("{} (concluded)", text(item, "license")),
            _ => text(item, "license").to_string(),
        };
        [
            text(item, "ecosystem").to_string(),
            text(item, "name").to_string(),
            text(item, "version").to_string(),
            license,
            layer.to_string(),
        ]
    });
    outln!("{}", crate::output::render_table(&["ECOSYSTEM", "NAME", "VERSION", "LICENSE", "LAYER"], rows, output))?;
    Ok(())
}
