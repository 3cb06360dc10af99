//! Pushing a function's code: one small layer under `/function` on a built image and a new
//! manifest that reuses every layer of the image, so changing code never rebuilds, re-pushes
//! or even reads the dependencies (the CNAB seed's separation of code and runtime). The
//! record and its tag commit together; the HTTP layer only reads the body and maps errors.

use std::io::Read;
use std::sync::Arc;

use chrono::Utc;
use kiln_archive::tree::{Entry, EntryKind};
use kiln_build::{NewLayer, write_layer};
use kiln_model::function::function_tag;
use kiln_model::{Function, Image, Status};
use kiln_registry::Registry;
use kiln_store::{KvStore, Precondition, StoreError, records};
use kiln_tasks::Engine;

use super::compose::{ComposeError, compose, load_runtime};
use super::publish_ops;
use super::validate::check_code;
use crate::builds::BuildSettings;

/// Largest upload of function code (compressed or not) and largest unpacked tar.
pub const MAX_CODE: usize = 64 << 20;

/// Why code was not pushed; each names what to do.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("image {image:?} does not exist in organization {org:?}")]
    NoImage { image: String, org: String },
    #[error("image {image:?} is {status}: wait until it is READY")]
    NotReady { image: String, status: &'static str },
    #[error("function code unpacks to more than 64 MiB")]
    TooLarge,
    /// The upload is not a tar (or gzip) Kiln accepts: a malformed or hostile archive.
    #[error("function code: {0}")]
    Malformed(String),
    /// The code cannot run on the image: empty, no module, no handler.
    #[error("{0}")]
    Unrunnable(String),
    /// The image's manifest or config cannot take code: it needs a rebuild.
    #[error("{0}")]
    ImageUnusable(ComposeError),
    #[error("function {function:?} changed while its code was pushed: push it again")]
    Changed { function: String },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ComposeError> for PushError {
    fn from(e: ComposeError) -> PushError {
        match e {
            ComposeError::NoManifest { .. } | ComposeError::Unusable { .. } => PushError::ImageUnusable(e),
            other => PushError::Internal(other.to_string()),
        }
    }
}

/// What a push needs of the running server.
pub struct Pusher<'a> {
    pub store: &'a dyn KvStore,
    pub registry: &'a Arc<Registry>,
    pub settings: &'a BuildSettings,
    /// Cancels the compose task a replaced function had running.
    pub engine: Option<&'a Engine>,
}

/// A pushed function and whether it replaced one of the same name.
pub struct Pushed {
    pub function: Function,
    pub replaced: bool,
}

impl Pusher<'_> {
    /// Puts `code` (a tar, gzip-compressed or not) on image `image_name` as function
    /// `function`, whose name the caller has checked. A function of the same name is
    /// replaced, also when it was on another image (its old tag is removed).
    pub async fn push(&self, org: &str, image_name: &str, function: &str, code: &[u8]) -> Result<Pushed, PushError> {
        let entry = self.store.get(&records::key::<Image>(org, image_name)).await?;
        let image: Image = entry
            .as_ref()
            .map(records::decode)
            .transpose()?
            .ok_or_else(|| PushError::NoImage { image: image_name.to_string(), org: org.to_string() })?;
        let runtime_digest = match (&image.digest, image.status) {
            (Some(digest), Status::Ready | Status::Updating) => digest.clone(),
            _ => return Err(PushError::NotReady { image: image.name.clone(), status: image.status.as_str() }),
        };
        let previous_entry = self.store.get(&records::key::<Function>(org, function)).await?;
        let previous: Option<Function> = previous_entry.as_ref().map(records::decode).transpose()?;
        let entries = code_entries(code)?;

        let repository = crate::builds::parent::image_repository(org, &image.name);
        let runtime = load_runtime(self.registry, &repository, &image.name, &runtime_digest).await?;
        check_code(&image.name, &runtime.runtime, &entries).map_err(PushError::Unrunnable)?;

        let entries = layer_entries(entries);
        let scratch = self.settings.cache_dir.join("function-scratch");
        let epoch = self.settings.source_date_epoch;
        let layer = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
            write_layer(&entries, epoch, &scratch).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| PushError::Internal(format!("writing the code layer stopped: {e}")))?
        .map_err(|e| PushError::Internal(format!("writing the code layer: {e}")))?;
        let imported = self.registry.import_file(&repository, &layer.path, &layer.digest).await;
        let _ = tokio::fs::remove_file(&layer.path).await;
        imported.map_err(|e| PushError::Internal(e.message))?;
        let code = NewLayer {
            descriptor: layer.descriptor(),
            diff_id: layer.diff_id.clone(),
            created_by: format!("kiln: function {function} code"),
        };
        let digest = compose(self.registry, &repository, &runtime, function, code, epoch).await?;

        let now = Utc::now();
        let mut record = Function {
            name: function.to_string(),
            organization: org.to_string(),
            image: image.name.clone(),
            status: Status::Ready,
            reason: Vec::new(),
            reference: format!("{}/{repository}:{}", self.settings.registry_host, function_tag(function)),
            digest: digest.to_string(),
            runtime_digest,
            layer: layer.digest.to_string(),
            layer_size: layer.size,
            layer_diff_id: layer.diff_id.to_string(),
            language: runtime.runtime.language.map(str::to_string),
            module: runtime.runtime.module_file(),
            handler: runtime.runtime.language.map(|_| runtime.runtime.handler.clone()),
            compose_task: None,
            failed_runtime_digest: None,
            created_time: Some(previous.as_ref().and_then(|p| p.created_time).unwrap_or(now)),
            updated_time: Some(now),
            revision: None,
        };
        let expect = previous_entry.as_ref().map_or(Precondition::Absent, |e| Precondition::Revision(e.mod_revision));
        let ops = publish_ops(self.store, &record, expect, previous.as_ref()).await?;
        let revision = match self.store.txn(ops).await {
            Ok(revision) => revision,
            Err(StoreError::Conflict { .. }) => return Err(PushError::Changed { function: function.to_string() }),
            Err(e) => return Err(e.into()),
        };
        if let (Some(engine), Some(task)) = (self.engine, previous.as_ref().and_then(|p| p.compose_task.as_deref())) {
            // Its result would be thrown away; stop spending time on it.
            let _ = engine.cancel(org, task).await;
        }
        record.revision = Some(revision);
        Ok(Pushed { function: record, replaced: previous.is_some() })
    }
}

/// The uploaded tar (gzip-compressed or not) as checked entries, relative to the code's root.
fn code_entries(body: &[u8]) -> Result<Vec<Entry>, PushError> {
    let tar = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(MAX_CODE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| PushError::Malformed(format!("not a valid gzip stream: {e}")))?;
        if out.len() > MAX_CODE {
            return Err(PushError::TooLarge);
        }
        out
    } else {
        body.to_vec()
    };
    kiln_packages::deb::unpack::safe_entries("function code", &tar).map_err(|e| PushError::Malformed(e.to_string()))
}

/// The code's entries below `function/`, readable by the function server's user.
fn layer_entries(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out = vec![Entry { path: "function".into(), kind: EntryKind::Directory, mode: 0o755, uid: 0, gid: 0 }];
    for entry in entries {
        let mode = match &entry.kind {
            EntryKind::Directory => 0o755,
            EntryKind::File { .. } if entry.mode & 0o111 != 0 => 0o755,
            _ => 0o644,
        };
        let kind = match entry.kind {
            EntryKind::Hardlink { target } => EntryKind::Hardlink { target: format!("function/{target}") },
            other => other,
        };
        out.push(Entry { path: format!("function/{}", entry.path), kind, mode, uid: 0, gid: 0 });
    }
    out
}
