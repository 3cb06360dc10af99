//! `kiln push`: copies an image from Kiln's registry to another registry, server side, with
//! the organisation's credentials for the destination host.

use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::json;

use crate::cli::{Output, PushCommand};
use crate::output::{out, outln};
use kiln_client::{Body, Client, segment};

pub async fn push(client: &Client, output: Output, command: PushCommand) -> Result<()> {
    let (source, to) = match command {
        PushCommand::Repository { source, to } => (source, to),
        PushCommand::Image { name, to } => {
            let image = client.get(&format!("/v1/images/{}", segment(&name))).await?;
            let status = image["status"].as_str().unwrap_or("unknown");
            let Some(reference) = image["reference"].as_str().filter(|_| status == "READY") else {
                bail!("image {name:?} is not built yet (status {status}): push it once it is READY");
            };
            // The built image's reference names this server's registry; the copy needs its repository.
            let repository = reference.split_once('/').map_or(reference, |(_, rest)| rest);
            (repository.to_string(), to)
        }
    };
    let body = json!({"source": source, "destination": to});
    let result = client.send(Method::POST, "/v1/registry/copies", Some(Body::Json(body))).await?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&result)?)?,
        Output::Yaml => out!("{}", serde_saphyr::to_string(&result)?)?,
        Output::Name => outln!(
            "{}@{}",
            result["destination"].as_str().unwrap_or_default(),
            result["digest"].as_str().unwrap_or_default()
        )?,
        Output::Table | Output::Wide => outln!(
            "pushed {} to {} ({} blobs copied, {} already there, {} bytes)",
            result["digest"].as_str().unwrap_or_default(),
            result["destination"].as_str().unwrap_or_default(),
            result["blobsCopied"],
            result["blobsPresent"],
            result["bytesCopied"],
        )?,
    }
    Ok(())
}
