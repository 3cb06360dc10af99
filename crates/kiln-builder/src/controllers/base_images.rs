//! Makes base images real: resolves each reference through the registry client (with the
//! organisation's credentials for the host), records digest, platform and config, and moves
//! the base image to `READY`, or to `ERROR` with a reason that says what failed. Failures
//! are retried with exponential backoff; READY images are checked again periodically; a
//! change to the base image or to registry credentials wakes the loop at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use kiln_model::reference::Reference;
use kiln_model::{BaseImage, BaseImageInventory, Status};
use kiln_registry::image::{Config, ImageReadError};
use kiln_registry_client::{Client, ClientError, Resolved};
use kiln_store::records;
use kiln_store::{KvStore, Precondition};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Settings;

/// Base images checked at the same time.
const PARALLEL: usize = 4;
/// Hosts of references that name none (Docker Hub's conventions).
const DEFAULT_HOST: &str = "registry-1.docker.io";

struct Backoff {
    failures: u32,
    next: Instant,
}

/// Starts the base-image controller; it stops when `shutdown` is cancelled.
pub fn spawn(store: Arc<dyn KvStore>, settings: Settings, shutdown: CancellationToken) -> JoinHandle<()> {
    let controller = BaseImageController { store: store.clone(), settings, backoff: HashMap::new() };
    tokio::spawn(super::watch::run(store, controller, shutdown))
}

struct BaseImageController {
    store: Arc<dyn KvStore>,
    settings: Settings,
    backoff: HashMap<String, Backoff>,
}

impl super::watch::Reconciler for BaseImageController {
    const NAME: &'static str = "base-image controller";

    async fn pass(&mut self) -> Result<Duration, kiln_store::StoreError> {
        pass(&self.store, &self.settings, &mut self.backoff).await
    }

    fn after_failure(&self) -> Duration {
        self.settings.retry_min
    }

    fn wakes_on(&mut self, key: &str) -> bool {
        if key.starts_with("registry-credentials/") || key.starts_with("secrets/registry-credentials/") {
            // New credentials may fix what failed: try again now.
            self.backoff.clear();
            return true;
        }
        key.starts_with("base-images/")
    }
}

/// Checks every base image that is due; returns how long until the next one is.
async fn pass(
    store: &Arc<dyn KvStore>,
    settings: &Settings,
    backoff: &mut HashMap<String, Backoff>,
) -> Result<Duration, kiln_store::StoreError> {
    let now = Instant::now();
    let mut due = Vec::new();
    let mut wait = settings.recheck;
    let mut after: Option<String> = None;
    loop {
        let page = store.list("base-images/", after.as_deref(), 500).await?;
        for entry in &page.entries {
            let Ok(base) = records::decode::<BaseImage>(entry) else { continue };
            let until = match base.status {
                Status::Ready => base.checked_time.map_or(Duration::ZERO, |checked| {
                    let age = (Utc::now() - checked).to_std().unwrap_or_default();
                    settings.recheck.saturating_sub(age)
                }),
                _ => backoff.get(&entry.key).map_or(Duration::ZERO, |b| b.next.saturating_duration_since(now)),
            };
            if until.is_zero() {
                due.push((entry.key.clone(), base));
            } else {
                wait = wait.min(until);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let outcomes: Vec<(String, bool)> = futures::stream::iter(due)
        .map(|(key, base)| async move {
            let ok = check(store.as_ref(), settings, &key, base).await;
            (key, ok)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for (key, ok) in outcomes {
        if ok {
            backoff.remove(&key);
            continue;
        }
        let entry = backoff.entry(key).or_insert(Backoff { failures: 0, next: now });
        entry.failures = entry.failures.saturating_add(1);
        let delay = settings.retry_min.saturating_mul(2u32.saturating_pow(entry.failures - 1)).min(settings.retry_max);
        entry.next = Instant::now() + delay;
        wait = wait.min(delay);
    }
    Ok(wait)
}

/// Resolves one base image and records the outcome; `true` if it is READY.
async fn check(store: &dyn KvStore, settings: &Settings, key: &str, base: BaseImage) -> bool {
    let outcome = resolve(store, settings, &base).await;
    let ready = outcome.is_ok();
    if let Err(e) = record(store, key, &base, outcome).await {
        tracing::warn!(error = %e, base_image = base.name, "could not record the check of a base image");
    }
    ready
}

async fn resolve(store: &dyn KvStore, settings: &Settings, base: &BaseImage) -> Result<Resolved, String> {
    // A base image whose name another spelling holds would mirror into that one's repository.
    if let Ok(kiln_store::records::Claim::Held { name: holder, .. }) =
        kiln_store::records::claim_of::<BaseImage>(store, &base.organization, &base.name).await
        && holder != base.name
    {
        return Err(kiln_model::name_clash_reason(&holder));
    }
    let platform = settings.platform.as_str();
    let reference = Reference::parse(&base.reference).map_err(|e| format!("reference {:?}: {e}", base.reference))?;
    if let Some((host, registry)) = &settings.local_registry
        && reference.registry.as_deref() == Some(host.as_str())
    {
        let resolved = resolve_local(registry, &reference).await?;
        take_inventory(store, registry, base, &reference.repository, &resolved.digest).await?;
        return Ok(resolved);
    }
    let host = reference.registry.clone().unwrap_or_else(|| DEFAULT_HOST.to_string());
    let repository = if reference.registry.is_none() && !reference.repository.contains('/') {
        format!("library/{}", reference.repository)
    } else {
        reference.repository.clone()
    };
    let target = reference.digest.clone().or(reference.tag.clone()).unwrap_or_else(|| "latest".to_string());
    let options = crate::hosts::host_options(store, &base.organization, &host).await.map_err(|e| e.to_string())?;
    let platform = platform.parse().map_err(|_| format!("controller platform {platform:?} is not os/arch"))?;
    let client = Client::new(&host, options).map_err(|e| e.to_string())?;
    let resolved = client.resolve(&repository, &target, &platform).await.map_err(|e| describe(&host, e))?;
    // An index is searched for the platform; a lone manifest must already be for it.
    if let (Some(os), Some(architecture)) = (&resolved.os, &resolved.architecture) {
        let wanted = settings.platform.as_str();
        let (wanted_os, wanted_rest) = wanted.split_once('/').unwrap_or((wanted, ""));
        let wanted_architecture = wanted_rest.split('/').next().unwrap_or_default();
        if os != wanted_os || architecture != wanted_architecture {
            return Err(format!(
                "platform: {} is built for {os}/{architecture}, not {wanted}: point it at an image (or index) for {wanted}",
                base.reference
            ));
        }
    }
    if let Some((_, registry)) = &settings.local_registry {
        let (org, name) = (&base.organization, &base.name);
        let copied =
            super::mirror::copy_in(&client, &repository, &resolved.digest, registry, &settings.copy_scratch, org, name)
                .await
                .map_err(|e| format!("copying {} into Kiln's registry failed: {e}", base.reference))?;
        take_inventory(store, registry, base, &copied, &resolved.digest).await?;
    }
    Ok(resolved)
}

/// Scans the image's layers once per digest (again for scans from before the layer checker):
/// its inventory is stored, or the base image fails naming the entry that could escape.
async fn take_inventory(
    store: &dyn KvStore,
    registry: &kiln_registry::Registry,
    base: &BaseImage,
    repository: &str,
    digest: &kiln_oci::Digest,
) -> Result<(), String> {
    let key = records::key::<BaseImageInventory>(&base.organization, &base.name);
    let known = store.get(&key).await.map_err(|e| e.to_string())?;
    let current = known
        .as_ref()
        .and_then(|entry| records::decode::<BaseImageInventory>(entry).ok())
        .is_some_and(|inventory| inventory.digest == digest.as_str() && inventory.layers_checked);
    if current {
        return Ok(());
    }
    match super::mirror::scan(registry, repository, digest).await {
        super::mirror::Scanned::Inventory(inventory) => {
            let value = records::encode(&inventory).map_err(|e| e.to_string())?;
            store.put(&key, value, Precondition::Any).await.map_err(|e| e.to_string())?;
            Ok(())
        }
        super::mirror::Scanned::Unsafe(why) => {
            Err(format!("{why}: Kiln builds nothing on this image; fix the image and register it again"))
        }
    }
}

/// A reference into Kiln's own registry: the manifest must be there (images only, no
/// indexes: Kiln builds one platform).
async fn resolve_local(registry: &kiln_registry::Registry, reference: &Reference) -> Result<Resolved, String> {
    let target = reference.digest.clone().or(reference.tag.clone()).unwrap_or_else(|| "latest".to_string());
    let image = match registry.read_image(&reference.repository, &target, Config::Skip).await {
        Ok(image) => image,
        Err(ImageReadError::Registry(e)) => return Err(e.message),
        Err(ImageReadError::NoManifest { .. }) => {
            return Err(format!("not found: {}:{target} is not in Kiln's registry", reference.repository));
        }
        Err(e) => return Err(e.to_string()),
    };
    let (digest, stored, info) = (image.digest, image.stored, image.info);
    let config_digest = info.config.as_ref().map(|c| c.digest.clone());
    let config = match &config_digest {
        Some(config) => registry
            .read_blob(&reference.repository, config, kiln_registry::image::MAX_CONFIG)
            .await
            .map_err(|e| e.message)?
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok()),
        None => None,
    };
    let field = |name: &str| config.as_ref().and_then(|c| c.get(name)).and_then(|v| v.as_str()).map(str::to_string);
    Ok(Resolved {
        digest,
        index_digest: None,
        media_type: stored.meta.media_type.clone(),
        os: field("os"),
        architecture: field("architecture"),
        variant: field("variant"),
        config_digest,
        layers_size: info.layers.iter().map(|l| l.size).sum(),
        config,
    })
}

fn describe(host: &str, error: ClientError) -> String {
    match error {
        ClientError::Unauthorized(why) => {
            format!("unauthorized: {why}: check the registry credentials for {host}")
        }
        ClientError::Network(why) => format!("network: {host} cannot be reached: {why}"),
        other => other.to_string(),
    }
}

/// Writes the outcome if the base image is still the one that was checked.
async fn record(
    store: &dyn KvStore,
    key: &str,
    checked: &BaseImage,
    outcome: Result<Resolved, String>,
) -> Result<(), kiln_store::StoreError> {
    let Some(entry) = store.get(key).await? else { return Ok(()) };
    let mut current: BaseImage = records::decode(&entry)?;
    if current.reference != checked.reference {
        return Ok(());
    }
    let before = current.clone();
    match outcome {
        Ok(resolved) => {
            current.status = Status::Ready;
            current.reason = Vec::new();
            current.digest = Some(resolved.digest.to_string());
            current.index_digest = resolved.index_digest.map(|d| d.to_string());
            current.platform = match (resolved.os, resolved.architecture) {
                (Some(os), Some(architecture)) => Some(match resolved.variant {
                    Some(variant) => format!("{os}/{architecture}/{variant}"),
                    None => format!("{os}/{architecture}"),
                }),
                _ => None,
            };
            current.config_digest = resolved.config_digest.map(|d| d.to_string());
        }
        Err(reason) => {
            current.status = Status::Error;
            current.reason = vec![reason];
        }
    }
    // A failure that repeats itself is not news; skip the write.
    if current.status == Status::Error && before.status == Status::Error && current.reason == before.reason {
        return Ok(());
    }
    current.checked_time = Some(Utc::now());
    current.updated_time = Some(Utc::now());
    store.put(key, records::encode(&current)?, Precondition::Revision(entry.mod_revision)).await.map(|_| ())
}
