//! The builder's use of Debian sources: which repositories an organisation builds from
//! (its package sources, then the machine's apt configuration), their verified indexes kept
//! warm in memory, and packages fetched through the shared cache and unpacked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_model::{Credentials, Ecosystem, PackageSource};
use kiln_oci::Digest;
use kiln_packages::deb::index::PackageRecord;
use kiln_packages::deb::keyring::Keyring;
use kiln_packages::deb::release::Distribution;
use kiln_packages::deb::repository::{RepoSpec, open_repository};
use kiln_packages::deb::resolve::Universe;
use kiln_packages::deb::sources::{SignedBy, read_apt_config};
use kiln_store::{KvStore, records};

use crate::error::BuildError;
use kiln_packages::deb::release::KeyringError;
use kiln_tasks::TaskContext;

/// The Debian archive's keys, for apt sources that name none.
const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// How long a verified index is used before its `InRelease` is fetched again.
const INDEX_FRESH_FOR: Duration = Duration::from_secs(300);

/// An opened index's records, shared by every universe built from it.
pub type Records = Arc<Vec<Arc<PackageRecord>>>;

/// One repository to build from, with where its files are.
#[derive(Clone)]
pub struct Source {
    pub spec: Arc<RepoSpec>,
    pub records: Records,
    /// Which distribution its signed release says it is.
    pub distribution: Arc<Distribution>,
}

/// A verified index, its distribution, and when it was read.
type Opened = (Instant, Records, Arc<Distribution>);

/// Indexes opened recently, by base URL, suite and components.
#[derive(Default)]
pub struct SourceCache {
    opened: Mutex<HashMap<String, Opened>>,
}

impl SourceCache {
    fn get(&self, key: &str) -> Option<(Records, Arc<Distribution>)> {
        let opened = self.opened.lock().ok()?;
        opened
            .get(key)
            .filter(|(at, _, _)| at.elapsed() < INDEX_FRESH_FOR)
            .map(|(_, records, distribution)| (records.clone(), distribution.clone()))
    }

    fn put(&self, key: String, records: Records, distribution: Arc<Distribution>) {
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(key, (Instant::now(), records, distribution));
        }
    }
}

/// Where each package file comes from: its SHA-256 → (source, record) positions, the first
/// source offering it.
#[derive(Default)]
pub struct SourceIndex(HashMap<Digest, (usize, usize)>);

impl SourceIndex {
    /// The source and record of exactly this package version and file.
    pub fn find<'a>(
        &self,
        sources: &'a [Source],
        name: &str,
        version: &str,
        sha256: &Digest,
    ) -> Option<(usize, &'a Arc<PackageRecord>)> {
        let &(source, at) = self.0.get(sha256)?;
        let record = sources.get(source)?.records.get(at)?;
        (record.name == name && record.version == version).then_some((source, record))
    }
}

/// The resolver's view of a set of opened indexes, built once per set: building it clones
/// every record of every index, which cost a quarter of a second on each build.
#[derive(Default)]
pub struct UniverseCache {
    built: Mutex<Option<BuiltUniverse>>,
}

struct BuiltUniverse {
    /// The indexes it was built from; holding them keeps their identity meaningful.
    from: Vec<(String, Records)>,
    universe: Arc<Universe>,
    sources: Arc<SourceIndex>,
}

impl UniverseCache {
    /// The universe and source index of `sources`, built now only if they changed.
    pub fn get(&self, sources: &[Source]) -> (Arc<Universe>, Arc<SourceIndex>) {
        let same = |built: &BuiltUniverse| {
            built.from.len() == sources.len()
                && built.from.iter().zip(sources).all(|((label, records), source)| {
                    *label == source.spec.label && Arc::ptr_eq(records, &source.records)
                })
        };
        if let Ok(guard) = self.built.lock()
            && let Some(built) = guard.as_ref().filter(|b| same(b))
        {
            return (built.universe.clone(), built.sources.clone());
        }
        let architecture = sources.first().map(|s| s.spec.architecture.clone()).unwrap_or_default();
        let universe = Arc::new(Universe::new(
            sources.iter().map(|s| (s.spec.label.clone(), s.records.as_ref().clone())).collect(),
            &architecture,
        ));
        let mut index = SourceIndex::default();
        for (position, source) in sources.iter().enumerate() {
            for (at, record) in source.records.iter().enumerate() {
                index.0.entry(record.sha256.clone()).or_insert((position, at));
            }
        }
        let index = Arc::new(index);
        if let Ok(mut guard) = self.built.lock() {
            *guard = Some(BuiltUniverse {
                from: sources.iter().map(|s| (s.spec.label.clone(), s.records.clone())).collect(),
                universe: universe.clone(),
                sources: index.clone(),
            });
        }
        (universe, index)
    }
}

fn keyring_from(signed_by: Option<&SignedBy>) -> Result<Keyring, KeyringError> {
    match signed_by {
        Some(SignedBy::Inline(text)) => Keyring::from_bytes(text.as_bytes()),
        Some(SignedBy::Path(path)) => Keyring::from_path(path),
        None => Keyring::from_path(Path::new(DEFAULT_KEYRING)),
    }
}

/// A package source's stored user name and password, if it has them.
pub(crate) async fn source_credentials(
    store: &dyn KvStore,
    org: &str,
    name: &str,
) -> Result<Option<(String, String)>, BuildError> {
    let failed = |e: kiln_store::StoreError| BuildError::store("reading package sources", e);
    let Some(secret) = store.get(&records::secret_key::<PackageSource>(org, name)).await.map_err(failed)? else {
        return Ok(None);
    };
    let credentials: Credentials = serde_json::from_slice(&secret.value)
        .map_err(|e| BuildError::refused(format!("package source {name:?}: stored credentials are unreadable: {e}")))?;
    Ok(Some((credentials.username, credentials.password)))
}

/// The repositories of an organisation, in the order they are searched.
async fn specs(
    store: &dyn KvStore,
    org: &str,
    apt_config_dir: Option<&Path>,
    architecture: &str,
) -> Result<Vec<RepoSpec>, BuildError> {
    let mut specs = Vec::new();
    let failed = |e: kiln_store::StoreError| BuildError::store("reading package sources", e);
    let page = store.list(&records::prefix::<PackageSource>(org), None, 1000).await.map_err(failed)?;
    for entry in &page.entries {
        let source: PackageSource = records::decode(entry).map_err(failed)?;
        if source.ecosystem != Ecosystem::Deb {
            continue;
        }
        let keyring = match &source.keyring {
            Some(text) => Keyring::from_bytes(text.as_bytes()),
            None => Keyring::from_path(Path::new(DEFAULT_KEYRING)),
        }
        .map_err(|e| {
            BuildError::packages(format!("package source {:?}: its keyring cannot be read", source.name), e)
        })?;
        let basic_auth = source_credentials(store, org, &source.name).await?;
        specs.push(RepoSpec {
            label: source.name.clone(),
            base_url: source.url.trim_end_matches('/').to_string(),
            suite: source.suite.clone().unwrap_or_default(),
            components: source.components.clone(),
            architecture: architecture.to_string(),
            keyring,
            basic_auth,
        });
    }
    if let Some(dir) = apt_config_dir {
        let sources = read_apt_config(dir).map_err(|e| {
            BuildError::packages(format!("the apt configuration in {} cannot be read", dir.display()), e)
        })?;
        for source in sources {
            if !source.architectures.is_empty() && !source.architectures.iter().any(|a| a == architecture) {
                continue;
            }
            let keyring = keyring_from(source.signed_by.as_ref()).map_err(|e| {
                BuildError::packages(format!("apt source {:?}: its keyring cannot be read", source.uris), e)
            })?;
            for uri in &source.uris {
                for suite in &source.suites {
                    specs.push(RepoSpec {
                        label: format!("apt:{} {suite}", uri.trim_end_matches('/')),
                        base_url: uri.trim_end_matches('/').to_string(),
                        suite: suite.clone(),
                        components: source.components.clone(),
                        architecture: architecture.to_string(),
                        keyring: keyring.clone(),
                        basic_auth: None,
                    });
                }
            }
        }
    }
    Ok(specs)
}

/// Opens (or reuses) every repository the organisation builds from.
pub async fn sources(
    runner: &super::BuildRunner,
    ctx: &TaskContext,
    index_dir: &Path,
) -> Result<Vec<Source>, BuildError> {
    let settings = &runner.settings;
    let specs =
        specs(ctx.store().as_ref(), &ctx.task.organization, settings.apt_config_dir.as_deref(), &settings.architecture)
            .await?;
    if specs.is_empty() {
        return Err(BuildError::refused(
            "no Debian package source is configured: add a package source (ecosystem deb) or start kiln with --apt-config-dir",
        ));
    }
    let mut opened = Vec::new();
    for spec in specs {
        let key = format!("{} {} {}", spec.base_url, spec.suite, spec.components.join(","));
        let (records, distribution) = match runner.sources.get(&key) {
            Some(opened) => opened,
            None => {
                let started = Instant::now();
                let opened = open_repository(&runner.http, &spec, index_dir, chrono::Utc::now())
                    .await
                    .map_err(|e| BuildError::packages(format!("package source {}", spec.label), e))?;
                let (records, distribution) = (opened.records, Arc::new(opened.distribution));
                ctx.log(format!(
                    "read the index of {}: {} packages in {} ms",
                    spec.label,
                    records.len(),
                    started.elapsed().as_millis()
                ));
                let records: Records = Arc::new(records.into_iter().map(Arc::new).collect());
                runner.sources.put(key, records.clone(), distribution.clone());
                (records, distribution)
            }
        };
        opened.push(Source { spec: Arc::new(spec), records, distribution });
    }
    Ok(opened)
}

/// The distribution an image is built from: the first source's (an organisation's own
/// sources come before the machine's apt configuration, and the first is the one named).
pub fn distribution(sources: &[Source]) -> Distribution {
    sources.first().map(|source| source.distribution.as_ref().clone()).unwrap_or_default()
}

pub fn index_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("indexes")
}
