//! Task commands: read and follow a task's log, cancel it, and wait for one with a live
//! progress line (`create image --wait`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::cli::{Kind, Output};
use crate::output::{outln, print};
use kiln_client::{Client, segment};

/// Calls `on_event` for each event of the task's stream until it returns `false` or the
/// stream ends.
async fn follow(client: &Client, id: &str, mut on_event: impl FnMut(&str, &Value) -> bool) -> Result<()> {
    let response = client.stream(&format!("/v1/tasks/{}/events", segment(id))).await?;
    let mut body = response.bytes_stream();
    let mut parser = kiln_client::sse::Parser::default();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the task's event stream broke off")?;
        for event in parser.push(&chunk) {
            if !on_event(&event.name, &event.data) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `target` is a task id, or an image whose current or last build is shown; while
/// following, an image whose build has not started yet is waited for.
pub async fn logs(client: &Client, target: &str, follow_it: bool) -> Result<()> {
    if uuid::Uuid::parse_str(target).is_ok() {
        return task_logs(client, target, follow_it).await;
    }
    let path = format!("/v1/images/{}", segment(target));
    let started = tokio::time::Instant::now();
    loop {
        let Some(image) = client.get_if_present(&path).await? else {
            bail!("no task or image is named {target:?}: kiln get tasks and kiln get images list them");
        };
        if let Some(task) = image.get("buildTask").and_then(Value::as_str) {
            return task_logs(client, task, follow_it).await;
        }
        let status = image.get("status").and_then(Value::as_str).unwrap_or("unknown");
        if !follow_it || status == "ERROR" || started.elapsed() > BUILD_STARTS_WITHIN {
            bail!(
                "image {target:?} has no build yet (status {status}): kiln get image {target} says why, kiln logs {target} -f waits for it"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long `kiln logs IMAGE -f` waits for the controller to start the image's build.
const BUILD_STARTS_WITHIN: Duration = Duration::from_secs(120);

async fn task_logs(client: &Client, id: &str, follow_it: bool) -> Result<()> {
    if follow_it {
        let mut failed = None;
        let mut written = Ok(());
        follow(client, id, |name, data| {
            match name {
                "log" => {
                    written = outln!("{}", data.get("line").and_then(Value::as_str).unwrap_or_default());
                    // Nobody reads on: stop following.
                    return written.is_ok();
                }
                "end" => {
                    failed = ended_badly(data);
                    return false;
                }
                _ => {}
            }
            true
        })
        .await?;
        written?;
        return failed.map_or(Ok(()), |why| bail!("{why}"));
    }
    let mut after = 0u64;
    loop {
        let page = client.get(&format!("/v1/tasks/{}/logs?after={after}", segment(id))).await?;
        let items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        for item in &items {
            outln!("{}", item.get("line").and_then(Value::as_str).unwrap_or_default())?;
        }
        let next = page.get("next").and_then(Value::as_u64).unwrap_or(after);
        if items.is_empty() || next == after {
            return Ok(());
        }
        after = next;
    }
}

/// The error to report if the finished task did not succeed.
fn ended_badly(task: &Value) -> Option<String> {
    let state = task.get("state").and_then(Value::as_str).unwrap_or_default();
    if state == "succeeded" {
        return None;
    }
    let error = task.get("error").and_then(Value::as_str).unwrap_or("no reason given");
    let id = task.get("id").and_then(Value::as_str).unwrap_or_default();
    Some(format!("task {id} {state}: {error} (see `kiln logs {id}`)"))
}

pub async fn cancel(client: &Client, output: Output, id: &str) -> Result<()> {
    let task = client.send(Method::DELETE, &format!("/v1/tasks/{}", segment(id)), None).await?;
    if output.is_table() {
        let state = task.get("state").and_then(Value::as_str).unwrap_or_default();
        if state == "cancelled" {
            outln!("task {id} cancelled")?;
        } else {
            outln!("task {id} is stopping; `kiln logs -f {id}` shows when it has")?;
        }
        return Ok(());
    }
    print(Kind::Tasks, &[task], output, true)
}

/// Waits for a task, drawing a progress line on a terminal (plain step lines otherwise).
pub async fn wait(client: &Client, id: &str) -> Result<()> {
    let terminal = std::io::stderr().is_terminal();
    let mut last_step = String::new();
    let mut outcome = None;
    follow(client, id, |name, data| {
        match name {
            "progress" | "end" => {
                let progress = data.get("progress").cloned().unwrap_or(Value::Null);
                let step = progress.get("step").and_then(Value::as_str).unwrap_or("queued").to_string();
                let percent = progress.get("percent").and_then(Value::as_u64).unwrap_or(0).min(100);
                if terminal {
                    let filled = (percent / 5) as usize;
                    let bytes = progress.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                    let detail =
                        if bytes > 0 { format!(" {:.1} MiB", bytes as f64 / 1048576.0) } else { String::new() };
                    eprint!(
                        "\r\x1b[2K[{}{}] {percent:>3}% {step}{detail}",
                        "#".repeat(filled),
                        "-".repeat(20 - filled)
                    );
                    let _ = std::io::stderr().flush();
                } else if step != last_step {
                    eprintln!("{percent:>3}% {step}");
                }
                last_step = step;
                if name == "end" {
                    if terminal {
                        eprintln!();
                    }
                    outcome = Some(ended_badly(data));
                    return false;
                }
            }
            "log" if !terminal => {}
            _ => {}
        }
        true
    })
    .await?;
    match outcome {
        Some(None) => Ok(()),
        Some(Some(why)) => bail!("{why}"),
        None => bail!("the server stopped sending events before task {id} ended: check it with `kiln get task {id}`"),
    }
}
