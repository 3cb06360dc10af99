//! Image builds: the controller that starts them, the runner that does them (parent →
//! resolve → fetch → layers → config → manifest → push → SBOM) and what a finished build
//! records. Packages come from `kiln-packages`; layers and manifests from `kiln-build`.

pub mod bootstrap;
mod debian;
pub mod debug;
mod dockerfile;
mod node;
pub mod parent;
mod pipeline;
mod python;
pub mod record;
mod reuse;
mod sdist;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use kiln_model::Task;
use kiln_registry::Registry;
use kiln_store::{KvStore, Op, StoreError};

use crate::error::BuildError;
use kiln_tasks::{Outcome, Runner, TaskContext, TaskError};

/// What one build may hold in memory of its packages' contents unless told otherwise. Real
/// builds hold far less (measured: the python3 root image 61 MiB, pandas with numpy on it
/// 101 MiB), so only a bomb or a very large stack (CUDA wheels) meets it, and the default two
/// builds at once stay well inside a 24 GiB machine.
pub const DEFAULT_BUILD_MEMORY_LIMIT: u64 = 4 << 30;

/// How builds run.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// How Kiln's registry is addressed in image references (`host:port`).
    pub registry_host: String,
    /// Where apt's configuration is read from for the default package sources (`/etc/apt`);
    /// `None` uses only the package sources administrators added.
    pub apt_config_dir: Option<PathBuf>,
    /// Downloaded packages, shared by all builds, verified by hash.
    pub cache_dir: PathBuf,
    pub cache_limit: u64,
    /// Package layers per image at most (apko's `origin` budget).
    pub layer_budget: usize,
    /// Every timestamp in a built image; the same inputs then give the same digest.
    pub source_date_epoch: i64,
    /// Debian architecture of the images built.
    pub architecture: String,
    /// The Python package index searched after the organisations' own (`pypi` package
    /// sources); the machine's pip configuration by default, `None` for none.
    pub pypi_index_url: Option<String>,
    /// Bytes one wheel may unpack to; more is refused as a possible zip bomb.
    pub wheel_size_limit: u64,
    /// Bytes of package contents (unpacked `.deb`s, wheels, npm tarballs) one build may hold
    /// in memory together; a package taking it past this is refused as a possible
    /// decompression bomb, naming the package and file.
    pub build_memory_limit: u64,
    /// The npm registry used when the organisation has no `npm` package source; the
    /// machine's npm configuration by default, `None` for none.
    pub npm_registry_url: Option<String>,
    /// The image (`name` or `org/name`) whose root builds Python source distributions in a
    /// sandbox; `None` refuses them.
    pub pypi_sdist_builder: Option<String>,
    /// Install npm packages that have install scripts (never running the scripts) instead
    /// of refusing them.
    pub npm_allow_scripts: bool,
}

pub struct BuildRunner {
    pub registry: Arc<Registry>,
    pub settings: BuildSettings,
    pub http: reqwest::Client,
    pub(crate) sources: debian::SourceCache,
    pub(crate) universes: debian::UniverseCache,
    pub(crate) memo: reuse::BuildMemo,
}

impl BuildRunner {
    pub fn new(registry: Arc<Registry>, settings: BuildSettings) -> Result<BuildRunner, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for package sources: {e}"))?;
        let memo = reuse::BuildMemo::new(&settings.cache_dir);
        Ok(BuildRunner {
            registry,
            memo,
            settings,
            http,
            sources: debian::SourceCache::default(),
            universes: debian::UniverseCache::default(),
        })
    }
}

#[async_trait]
impl Runner for BuildRunner {
    async fn run(&self, ctx: &TaskContext) -> Result<serde_json::Value, TaskError> {
        let record = pipeline::build(self, ctx).await?;
        Ok(serde_json::to_value(record).map_err(|e| BuildError::refused(format!("recording the build: {e}")))?)
    }

    async fn settle(&self, store: &dyn KvStore, task: &Task, outcome: &Outcome) -> Result<Vec<Op>, StoreError> {
        record::settle(store, task, outcome).await
    }
}
