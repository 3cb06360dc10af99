//! One build, step by step: resolve the packages against what the parent already has,
//! fetch them through the verified cache, unpack, assemble layers, config and manifest,
//! push everything into Kiln's registry, attach the SBOM, and say what went in.

use std::collections::BTreeMap;

use futures::StreamExt;
use kiln_archive::tree::{Entry, EntryKind};
use kiln_build::{AssembleInput, ImageSettings, UnpackedPackage};
use kiln_model::{BuildRecord, Ecosystem, Image, Lock, LockedPackage};
use kiln_oci::Digest;
use kiln_packages::cache::DownloadCache;
use kiln_packages::deb::index::PackageRecord;
use kiln_packages::deb::resolve::{Installed, Request, resolve};
use kiln_packages::memory::{MemoryBudget, human};
use kiln_store::records;

use super::BuildRunner;
use super::debian::{self, Source};
use super::parent::{self, LoadedParent};
use crate::error::BuildError;
use kiln_tasks::TaskContext;

/// What to build, for an image or a root image alike.
pub struct BuildSpec {
    pub parent: Option<LoadedParent>,
    pub requests: Vec<Request>,
    /// Fetch exactly these instead of resolving (`--locked`).
    pub locked: Option<Lock>,
    /// Python requirements, when the image has any, and the constraints they are held to.
    pub python: Option<Vec<kiln_packages::pypi::requirements::Requirement>>,
    pub python_constraints: Vec<kiln_packages::pypi::requirements::Requirement>,
    /// npm packages, when the image has any.
    pub node: Option<super::node::NodeManifest>,
    /// The parent's language packages (from its build record).
    pub parent_runtime: Vec<kiln_model::InventoryItem>,
    pub extra_files: Vec<Entry>,
    pub settings: ImageSettings,
    pub repository: String,
    /// `None`: the release's codename (a root image is tagged `bookworm` from bookworm).
    pub tag: Option<String>,
    /// Names the image in its SBOM.
    pub title: String,
}

pub struct Built {
    pub digest: Digest,
    pub reference: String,
    pub lock: Lock,
    pub inventory: Vec<kiln_model::InventoryItem>,
    pub sbom_digest: Digest,
    pub dockerfile: String,
    pub dockerfile_context: Vec<kiln_model::ContextFile>,
}

/// Package downloads in flight at once.
const FETCHES_AT_ONCE: usize = 4;

fn registry_error(e: kiln_registry::error::RegistryError) -> BuildError {
    BuildError::registry("pushing to Kiln's registry", e)
}

/// Builds an image from its stored definition.
pub async fn build(runner: &BuildRunner, ctx: &TaskContext) -> Result<BuildRecord, BuildError> {
    ctx.step("plan", 0);
    let org = ctx.task.organization.clone();
    let entry = ctx
        .store()
        .get(&records::key::<Image>(&org, &ctx.task.target))
        .await
        .map_err(|e| BuildError::store("", e))?
        .ok_or_else(|| BuildError::refused(format!("image {:?} was deleted", ctx.task.target)))?;
    let image: Image = records::decode(&entry).map_err(|e| BuildError::store("", e))?;
    if image.build_task.as_deref() != Some(ctx.task.id.as_str()) {
        return Err(BuildError::refused("a newer build of this image superseded this one"));
    }
    let definition = image.definition_digest();
    let parent =
        parent::load(ctx.store().as_ref(), &runner.registry, &runner.settings.registry_host, &runner.memo, &image)
            .await?;
    if let Some(trigger) = ctx.task.params.get("trigger").and_then(serde_json::Value::as_str) {
        ctx.log(format!("rebuilding: {trigger}"));
    }
    ctx.log(format!("parent {} ({})", parent.reference, parent.digest));
    let parent_digest = parent.digest.to_string();
    let locked = if ctx.task.params.get("locked").and_then(serde_json::Value::as_bool) == Some(true) {
        let record = ctx
            .store()
            .get(&records::key::<BuildRecord>(&org, &image.name))
            .await
            .map_err(|e| BuildError::store("", e))?
            .ok_or_else(|| BuildError::refused("--locked needs an earlier build's lock, and this image has none"))?;
        let record: BuildRecord = records::decode(&record).map_err(|e| BuildError::store("", e))?;
        Some(record.lock)
    } else {
        None
    };
    let mut labels = BTreeMap::new();
    labels.insert("org.opencontainers.image.title".to_string(), image.name.clone());
    labels.insert("dev.kiln.image".to_string(), format!("{org}/{}", image.name));
    labels.insert("dev.kiln.definition".to_string(), definition.clone());
    if let Some(version) = &image.version {
        labels.insert("org.opencontainers.image.version".to_string(), version.clone());
    }
    let settings = ImageSettings {
        env: image.environment.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
        labels,
        ..Default::default()
    };
    let tag =
        image.version.clone().unwrap_or_else(|| format!("def-{}", &definition.trim_start_matches("sha256:")[..12]));
    let language = image.language.clone().or_else(|| parent.language.clone());
    let python = super::python::requirements(&image, language.as_deref())?;
    let python_constraints = super::python::constraints(&image)?;
    let node = super::node::manifest(&image, language.as_deref())?;
    let parent_runtime = match &image.parent_image_name {
        Some(name) => {
            let (parent_org, parent_name) = kiln_model::image::resolve_parent_reference(&org, name);
            built_runtime(ctx.store().as_ref(), parent_org, parent_name, &parent.runtime).await?
        }
        // A parent Kiln did not build is known by what its layers hold.
        None => parent.runtime.clone(),
    };
    let spec = BuildSpec {
        parent: Some(parent),
        requests: image
            .system_dependencies
            .packages
            .iter()
            .map(|p| Request { name: p.name.clone(), version: p.version.clone() })
            .collect(),
        locked,
        python,
        python_constraints,
        node,
        parent_runtime,
        extra_files: Vec::new(),
        settings,
        repository: parent::image_repository(&org, &image.name),
        tag: Some(tag),
        title: format!("{org}/{}", image.name),
    };
    let built = run(runner, ctx, spec).await?;
    Ok(BuildRecord {
        task: ctx.task.id.clone(),
        definition,
        digest: built.digest.to_string(),
        reference: built.reference,
        parent_digest: Some(parent_digest),
        lock: built.lock,
        inventory: built.inventory,
        sbom_digest: Some(built.sbom_digest.to_string()),
        dockerfile: built.dockerfile,
        dockerfile_context: built.dockerfile_context,
        built_time: chrono::Utc::now(),
    })
}

/// The language packages (Python distributions, npm packages) of image `org/name` as its
/// last build recorded them, or `fallback` (what its layers were found to hold) when that
/// build recorded none.
pub async fn built_runtime(
    store: &dyn kiln_store::KvStore,
    org: &str,
    name: &str,
    fallback: &[kiln_model::InventoryItem],
) -> Result<Vec<kiln_model::InventoryItem>, BuildError> {
    let recorded: Vec<kiln_model::InventoryItem> =
        match store.get(&records::key::<BuildRecord>(org, name)).await.map_err(|e| BuildError::store("", e))? {
            Some(entry) => records::decode::<BuildRecord>(&entry)
                .map_err(|e| BuildError::store("", e))?
                .inventory
                .into_iter()
                .filter(|i| i.ecosystem != Ecosystem::Deb)
                .collect(),
            None => Vec::new(),
        };
    Ok(if recorded.is_empty() { fallback.to_vec() } else { recorded })
}

/// Picks the packages: from the lock, or by resolving the requests.
fn choose(
    runner: &BuildRunner,
    sources: &[Source],
    installed: &Installed,
    spec: &BuildSpec,
    requests: &[Request],
) -> Result<Vec<(usize, PackageRecord)>, BuildError> {
    let (universe, source_index) = runner.universes.get(sources);
    let source_of = |record: &PackageRecord| {
        source_index.find(sources, &record.name, &record.version, &record.sha256).map(|(i, _)| i)
    };
    if let Some(lock) = &spec.locked {
        let mut chosen = Vec::new();
        for locked in lock.packages.iter().filter(|p| p.ecosystem == Ecosystem::Deb) {
            let sha256 = locked_sha256(locked)?;
            let found = source_index
                .find(sources, &locked.name, &locked.version, &sha256)
                .map(|(i, r)| (i, r.as_ref().clone()));
            chosen.push(found.ok_or_else(|| {
                BuildError::refused(format!(
                    "the locked package {} {} (sha256 {}) is no longer offered by any source: rebuild without --locked to resolve again",
                    locked.name, locked.version, locked.sha256
                ))
            })?);
        }
        return Ok(chosen);
    }
    let resolved = resolve(&universe, installed, requests).map_err(|e| BuildError::packages("", e))?;
    resolved
        .into_iter()
        .map(|record| {
            let index = source_of(&record).ok_or_else(|| {
                BuildError::refused(format!("package {} {} has no source", record.name, record.version))
            })?;
            Ok((index, record))
        })
        .collect()
}

/// A lock is replayed only by the digests it names: a stored lock's hash is parsed like any
/// other before it can pick (and so name) a file.
pub(super) fn locked_sha256(locked: &LockedPackage) -> Result<Digest, BuildError> {
    Digest::from_hex(kiln_oci::Algorithm::Sha256, &locked.sha256).map_err(|e| {
        BuildError::refused(format!(
            "the lock's package {} {} has an unusable sha256: {e}: rebuild without --locked to resolve again",
            locked.name, locked.version
        ))
    })
}

pub async fn run(runner: &BuildRunner, ctx: &TaskContext, spec: BuildSpec) -> Result<Built, BuildError> {
    let settings = &runner.settings;
    // One budget for everything this build decompresses, in parallel or not; it goes when the
    // build does, with the packages it paid for.
    let memory = MemoryBudget::new(settings.build_memory_limit);
    // Python first: native extensions may need system libraries the resolution below adds.
    let mut requests = spec.requests.clone();
    let python = match &spec.python {
        Some(requirements) => {
            ctx.step("python", 5);
            let parent_status = spec.parent.as_ref().map_or("", |p| p.image.dpkg_status.as_str());
            let target = super::python::target(parent_status, &settings.architecture)?;
            let installed = super::python::install(
                runner,
                ctx,
                target,
                requirements.clone(),
                spec.python_constraints.clone(),
                &spec.parent_runtime,
                spec.locked.as_ref(),
                &memory,
            )
            .await?;
            let needed =
                kiln_packages::pypi::native::needed_libraries(installed.packages.iter().flat_map(|p| &p.entries));
            for soname in needed {
                match kiln_packages::pypi::native::debian_package_for(&soname) {
                    Some(package) if !requests.iter().any(|r| r.name == package) => {
                        ctx.log(format!("python: native code needs {soname}: adding system package {package}"));
                        requests.push(Request { name: package.to_string(), version: None });
                    }
                    Some(_) => {}
                    None if !kiln_packages::pypi::native::provided_by_glibc(&soname) => {
                        ctx.log(format!("python: native code needs {soname}, which no known system package provides"));
                    }
                    None => {}
                }
            }
            Some(installed)
        }
        None => None,
    };
    ctx.check_cancelled()?;
    let node = match &spec.node {
        Some(manifest) => {
            ctx.step("npm", 8);
            let parent_status = spec.parent.as_ref().map_or("", |p| p.image.dpkg_status.as_str());
            let node_version = super::node::node_version(parent_status)?;
            let recorded = spec.locked.as_ref().and_then(|l| l.npm_lockfile.as_deref());
            Some(super::node::install(runner, ctx, manifest, node_version, recorded, &memory).await?)
        }
        None => None,
    };
    ctx.check_cancelled()?;

    ctx.step("resolve", 10);
    let installed = match &spec.parent {
        Some(parent) => {
            let packages = kiln_packages::deb::status::parse_status(&parent.image.dpkg_status)
                .map_err(|e| BuildError::packages("the parent's dpkg status cannot be read", e))?;
            Installed::from_packages(packages)
        }
        None => Installed::default(),
    };
    let index_dir = debian::index_dir(&settings.cache_dir);
    tokio::fs::create_dir_all(&index_dir)
        .await
        .map_err(|e| BuildError::io(format!("cannot create {}", index_dir.display()), e))?;
    let sources = debian::sources(runner, ctx, &index_dir).await?;
    let distribution = debian::distribution(&sources);
    let started = std::time::Instant::now();
    let chosen = choose(runner, &sources, &installed, &spec, &requests)?;
    ctx.log(format!("resolved {} packages to add in {} ms", chosen.len(), started.elapsed().as_millis()));
    for (index, record) in &chosen {
        ctx.log(format!(
            "add {} {} ({}) from {}",
            record.name, record.version, record.architecture, sources[*index].spec.label
        ));
    }
    if chosen.is_empty() {
        ctx.log("no packages to add: the parent has everything asked for");
    }
    ctx.check_cancelled()?;

    ctx.step("fetch", 25);
    let total: u64 = chosen.iter().map(|(_, r)| r.size).sum();
    let cache = DownloadCache::open(&settings.cache_dir.join("debs"), settings.cache_limit)
        .map_err(|e| BuildError::packages("", e))?;
    cache.check_room(total).map_err(|e| BuildError::packages("", e))?;
    // Unpacked packages and layer files: a generous multiple of the compressed size.
    ctx.reserve_scratch(total.saturating_mul(6))?;
    // A few downloads at once: a mirror answers each request with a delay of its own.
    let fetched: Vec<std::sync::atomic::AtomicU64> =
        chosen.iter().map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
    let report = || {
        let sum = fetched.iter().map(|f| f.load(std::sync::atomic::Ordering::Relaxed)).sum();
        ctx.bytes(sum, Some(total));
    };
    let cache = &cache;
    // Owned work items: a stream of futures borrowing `chosen` would not be `Send`.
    let work: Vec<(usize, String, String, PackageRecord)> = chosen
        .iter()
        .enumerate()
        .map(|(at, (index, record))| {
            let spec = &sources[*index].spec;
            let url = kiln_packages::deb::repository::pool_url(&spec.base_url, record);
            (at, url, format!("the signed index of {}", spec.label), record.clone())
        })
        .collect();
    let downloads = work.into_iter().map(|(at, url, listed_by, record)| {
        let (fetched, report) = (&fetched, &report);
        async move {
            let progress = move |bytes: u64| {
                fetched[at].store(bytes, std::sync::atomic::Ordering::Relaxed);
                report();
            };
            cache
                .fetch(&runner.http, &url, &record.sha256, record.size, &listed_by, &progress)
                .await
                .map_err(|e| BuildError::packages(format!("package {} {}", record.name, record.version), e))
        }
    });
    let mut files = Vec::new();
    let mut downloads = futures::stream::iter(downloads).buffered(FETCHES_AT_ONCE);
    while let Some(path) = downloads.next().await {
        files.push(path?);
        ctx.check_cancelled()?;
    }
    drop(downloads);

    ctx.step("unpack", 45);
    let records: Vec<PackageRecord> = chosen.iter().map(|(_, r)| r.clone()).collect();
    // A package an earlier build unpacked comes slimmed from memory; only the rest are unpacked.
    let mut unpacked: Vec<Option<UnpackedPackage>> =
        records.iter().map(|r| runner.memo.package(&r.sha256).map(|p| p.as_ref().clone())).collect();
    let missing: Vec<usize> = (0..records.len()).filter(|&i| unpacked[i].is_none()).collect();
    for (at, package) in missing.iter().zip(unpack_some(&records, &files, &missing, &memory).await?) {
        runner.memo.remember_package(&records[*at].sha256, &package);
        unpacked[*at] = Some(package);
    }
    let unpacked: Vec<UnpackedPackage> = unpacked
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| BuildError::unavailable("a package went missing while unpacking"))?;
    ctx.check_cancelled()?;

    ctx.step("layers", 60);
    let (mut runtime, python_lock) = python.map(|p| (p.packages, p.lock)).unwrap_or_default();
    let mut extra_files = spec.extra_files.clone();
    let mut image_settings = spec.settings.clone();
    let mut lock = Lock {
        packages: chosen
            .iter()
            .map(|(index, r)| LockedPackage {
                ecosystem: Ecosystem::Deb,
                name: r.name.clone(),
                version: r.version.clone(),
                architecture: r.architecture.clone(),
                sha256: r.sha256.hex().to_string(),
                size: r.size,
                source: sources[*index].spec.label.clone(),
                filename: r.filename.clone(),
                integrity: None,
            })
            .collect(),
        npm_lockfile: None,
    };
    lock.packages.extend(python_lock);
    if let Some(node) = node {
        runtime.extend(node.packages);
        extra_files.extend(node.shared);
        lock.packages.extend(node.lock);
        lock.npm_lockfile = Some(node.lockfile);
        if !image_settings.env.iter().any(|(name, _)| name == "NODE_PATH") {
            let modules = format!("/{}/node_modules", kiln_build::plugins::NODE_PREFIX);
            image_settings.env.push(("NODE_PATH".to_string(), modules));
        }
    }
    let parent_image = spec.parent.as_ref().map(|p| p.image.clone());
    let input = AssembleInput {
        parent: parent_image,
        packages: unpacked,
        runtime,
        parent_runtime: spec.parent_runtime.clone(),
        extra_files,
        settings: image_settings.clone(),
        layer_budget: settings.layer_budget,
        source_date_epoch: settings.source_date_epoch,
        scratch_dir: ctx.scratch().to_path_buf(),
        merged_usr: true,
        distro: distribution.purl_distro(),
        reuse: BTreeMap::new(),
    };
    let input = reuse_layers(runner, &records, &files, input, &memory).await?;
    ctx.log(format!(
        "package contents held in memory: {} at most (the build's limit is {})",
        human(memory.peak()),
        human(memory.limit())
    ));
    let assembled = tokio::task::spawn_blocking(move || kiln_build::assemble(input))
        .await
        .map_err(|e| BuildError::stopped("assembling stopped", e))?
        .map_err(|e| BuildError::assemble("assembling the image", e))?;
    for line in &assembled.log {
        ctx.log(line.clone());
    }
    ctx.check_cancelled()?;

    ctx.step("push", 80);
    let repository = &spec.repository;
    let registry = &runner.registry;
    // The parent's layers and the reused ones are in the registry already: one commit links them.
    let mut present: Vec<Digest> =
        spec.parent.iter().flat_map(|p| p.image.layers.iter().map(|l| l.digest.clone())).collect();
    present.extend(assembled.reused.iter().cloned());
    if !registry.link_blobs(repository, &present).await.map_err(registry_error)? {
        for (key, layer) in &assembled.keyed {
            if assembled.reused.contains(&layer.digest) {
                runner.memo.forget_layer(key);
            }
        }
        return Err(BuildError::unavailable(
            "a layer of the parent or of an earlier build left Kiln's registry during the build; it is built again",
        ));
    }
    let tag = spec.tag.clone().or_else(|| distribution.codename.clone()).unwrap_or_else(|| "latest".to_string());
    for layer in &assembled.layers {
        registry.import_file(repository, &layer.path, &layer.digest).await.map_err(registry_error)?;
    }
    registry.put_blob(repository, &assembled.config).await.map_err(registry_error)?;
    let digest = registry
        .put_manifest(repository, Some(&tag), assembled.manifest.clone(), kiln_oci::media_types::OCI_IMAGE_MANIFEST)
        .await
        .map_err(registry_error)?;
    let reference = format!("{}/{repository}:{tag}", settings.registry_host);
    ctx.log(format!("pushed {reference} ({digest})"));
    if let Err(e) = runner.memo.remember_layers(&assembled.keyed) {
        ctx.log(format!(
            "the layer cache could not record this build's layers (they are written again next time): {e}"
        ));
    }

    ctx.step("sbom", 92);
    let document = kiln_build::spdx_document(
        &spec.title,
        &assembled.manifest_descriptor,
        &assembled.inventory,
        settings.source_date_epoch,
    )
    .map_err(|e| BuildError::document("writing the SBOM", e))?;
    let sbom = kiln_build::sbom_manifest(&document, &assembled.manifest_descriptor, settings.source_date_epoch)
        .map_err(|e| BuildError::document("writing the SBOM", e))?;
    registry.put_blob(repository, kiln_oci::media_types::OCI_EMPTY_CONTENT).await.map_err(registry_error)?;
    registry.put_blob(repository, &sbom.document).await.map_err(registry_error)?;
    let sbom_digest = registry
        .put_manifest(repository, None, sbom.manifest.clone(), kiln_oci::media_types::OCI_IMAGE_MANIFEST)
        .await
        .map_err(registry_error)?;
    let (dockerfile, dockerfile_context) =
        match super::dockerfile::equivalent(&spec, &distribution, &lock, &assembled.config) {
            Ok(rendered) => rendered,
            Err(e) => (format!("# no equivalent Dockerfile: {e}\n"), Vec::new()),
        };
    Ok(Built { digest, reference, lock, inventory: assembled.inventory, sbom_digest, dockerfile, dockerfile_context })
}

/// Which of the image's package layers an earlier build already put in the registry: those
/// are reused, and any slimmed package of a layer that must be written is unpacked again.
async fn reuse_layers(
    runner: &BuildRunner,
    records: &[PackageRecord],
    files: &[std::path::PathBuf],
    mut input: AssembleInput,
    memory: &MemoryBudget,
) -> Result<AssembleInput, BuildError> {
    let planned = kiln_build::package_layers(&input).map_err(|e| BuildError::assemble("assembling the image", e))?;
    let mut again = std::collections::BTreeSet::new();
    for layer in planned {
        if let Some(key) = &layer.key
            && let Some(reused) = runner.memo.layer(key)
        {
            if runner.registry.has_blob(&reused.digest).await.map_err(registry_error)? {
                input.reuse.insert(key.clone(), reused);
                continue;
            }
            runner.memo.forget_layer(key);
        }
        again.extend(layer.packages);
    }
    let again: Vec<usize> = (0..input.packages.len())
        .filter(|&i| {
            let p = &input.packages[i];
            p.is_slimmed() && again.contains(&(p.name.clone(), p.architecture.clone()))
        })
        .collect();
    for (at, package) in again.iter().zip(unpack_some(records, files, &again, memory).await?) {
        input.packages[*at] = package;
    }
    Ok(input)
}

/// Unpacks the packages at `which` on every core: xz decompression is most of a cold build's
/// CPU. What they hold comes out of the build's one `memory` budget, however many run at once.
async fn unpack_some(
    records: &[PackageRecord],
    files: &[std::path::PathBuf],
    which: &[usize],
    memory: &MemoryBudget,
) -> Result<Vec<UnpackedPackage>, BuildError> {
    if which.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<(PackageRecord, std::path::PathBuf)> =
        which.iter().map(|&i| (records[i].clone(), files[i].clone())).collect();
    let memory = memory.clone();
    tokio::task::spawn_blocking(move || {
        kiln_build::parallel::map_largest_first(
            &items,
            |(record, _)| record.size,
            |(record, path)| unpack_one(record, path, &memory),
        )
        .into_iter()
        .map(|unpacked| {
            unpacked.unwrap_or_else(|| Err(BuildError::unavailable("an unpacking thread stopped before its package")))
        })
        .collect()
    })
    .await
    .map_err(|e| BuildError::stopped("unpacking stopped", e))?
}

fn unpack_one(
    record: &PackageRecord,
    path: &std::path::Path,
    memory: &MemoryBudget,
) -> Result<UnpackedPackage, BuildError> {
    let file =
        std::fs::File::open(path).map_err(|e| BuildError::io(format!("reading the cached {}", path.display()), e))?;
    let deb = kiln_packages::deb::unpack::read_deb(std::io::BufReader::with_capacity(256 << 10, file), memory)
        .map_err(|e| {
            let file = record.filename.rsplit('/').next().unwrap_or(&record.filename);
            BuildError::packages(format!("package {} {} ({file})", record.name, record.version), e)
        })?;
    let copyright = format!("usr/share/doc/{}/copyright", record.name);
    let license = deb.entries.iter().find(|e| e.path == copyright).and_then(|e| match &e.kind {
        EntryKind::File { data } => kiln_build::copyright::license_of(&String::from_utf8_lossy(data)),
        _ => None,
    });
    Ok(UnpackedPackage {
        name: record.name.clone(),
        version: record.version.clone(),
        architecture: record.architecture.clone(),
        source_name: record.source_name.clone(),
        source_version: record.source_version.clone(),
        multi_arch: record.multi_arch.clone(),
        control: deb.control,
        md5sums: deb.md5sums,
        conffiles: deb.conffiles,
        maintainer_scripts: deb.maintainer_scripts,
        entries: deb.entries,
        license,
        origin: Some(record.sha256.to_string()),
        built: deb.built,
        slimmed_bytes: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_names_files_only_by_a_parsed_digest() {
        let locked = |sha256: &str| LockedPackage {
            ecosystem: Ecosystem::Pypi,
            name: "demo".into(),
            version: "1.0".into(),
            architecture: String::new(),
            sha256: sha256.into(),
            size: 1,
            source: "index".into(),
            filename: "demo-1.0-py3-none-any.whl".into(),
            integrity: None,
        };
        let hex = Digest::sha256(b"").hex().to_uppercase();
        assert_eq!(locked_sha256(&locked(&hex)).ok(), Some(Digest::sha256(b"")));
        for bad in ["/../../tmp/planted.whl", "../x", ""] {
            let err = locked_sha256(&locked(bad)).expect_err("refused");
            assert!(!err.retryable());
            let err = err.to_string();
            assert!(
                err.contains("the lock's package demo 1.0 has an unusable sha256") && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }
}
