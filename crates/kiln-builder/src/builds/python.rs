//! The builder's Python step: an image's requirements resolved for the interpreter its parent
//! holds, wheels fetched through the verified cache and installed as image entries, with
//! what the parent already has kept as it is.

use std::path::PathBuf;
use std::sync::Arc;

use kiln_build::RuntimePackage;
use kiln_model::image::ManifestFormat;
use kiln_model::{Ecosystem, Image, InventoryItem, Lock, LockedPackage, PackageSource};
use kiln_packages::cache::DownloadCache;
use kiln_packages::deb::status::parse_status;
use kiln_packages::pypi::index::{Index, IndexSpec};
use kiln_packages::pypi::install::{Limits, install_wheel};
use kiln_packages::pypi::requirements::{Requirement, from_name_and_version, parse_requirements};
use kiln_packages::pypi::resolve::{fetch_wheel, resolve};
use kiln_packages::pypi::{Target, normalize_name};
use kiln_store::records;

use super::BuildRunner;
use super::debian::source_credentials;
use crate::error::BuildError;
use kiln_tasks::TaskContext;

/// The requirements an image declares for Python, or `None` when it has none.
pub fn requirements(image: &Image, language: Option<&str>) -> Result<Option<Vec<Requirement>>, BuildError> {
    let deps = &image.runtime_dependencies;
    let python = match deps.format {
        Some(ManifestFormat::RequirementsTxt) => true,
        Some(ManifestFormat::PackageJson) => false,
        None => language.is_some_and(|l| l.starts_with("python")),
    };
    if !python || (deps.manifest.is_none() && deps.packages.is_empty()) {
        return Ok(None);
    }
    let invalid = |e: kiln_packages::pypi::requirements::RequirementsError| BuildError::packages("", e);
    let mut out = match &deps.manifest {
        Some(text) => parse_requirements(text).map_err(invalid)?,
        None => Vec::new(),
    };
    for package in &deps.packages {
        out.push(from_name_and_version(&package.name, package.version.as_deref()).map_err(invalid)?);
    }
    Ok(Some(out))
}

/// The constraints an image holds its Python distributions to (pip's `-c` files, inlined).
pub fn constraints(image: &Image) -> Result<Vec<Requirement>, BuildError> {
    let Some(text) = &image.runtime_dependencies.constraints else { return Ok(Vec::new()) };
    parse_requirements(text).map_err(|e| BuildError::packages("constraints", e))
}

/// The interpreter and C library of the parent, from its dpkg status.
pub fn target(dpkg_status: &str, architecture: &str) -> Result<Target, BuildError> {
    let installed =
        parse_status(dpkg_status).map_err(|e| BuildError::packages("the parent's dpkg status cannot be read", e))?;
    let version_of = |name: &str| installed.iter().find(|p| p.name == name).map(|p| p.version.clone());
    let python = version_of("python3").ok_or_else(|| {
        BuildError::refused("the parent has no python3 package: build Python images on a python3 image")
    })?;
    let machine = match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    };
    // python3 3.11.2 names the minor version; the interpreter package knows the patch level.
    let interpreter = Target::from_debian(&python, None, machine)
        .and_then(|t| version_of(&format!("python{}.{}", t.python.0, t.python.1)))
        .unwrap_or(python);
    Target::from_debian(&interpreter, version_of("libc6").as_deref(), machine)
        .ok_or_else(|| BuildError::refused(format!("cannot tell the Python version from python3 {interpreter:?}")))
}

/// Indexes to search: the organisation's `pypi` package sources, then the machine's default.
async fn index_specs(runner: &BuildRunner, ctx: &TaskContext) -> Result<Vec<IndexSpec>, BuildError> {
    let org = &ctx.task.organization;
    let store = ctx.store();
    let failed = |e: kiln_store::StoreError| BuildError::store("reading package sources", e);
    let page = store.list(&records::prefix::<PackageSource>(org), None, 1000).await.map_err(failed)?;
    let mut specs = Vec::new();
    for entry in &page.entries {
        let source: PackageSource = records::decode(entry).map_err(failed)?;
        if source.ecosystem == Ecosystem::Pypi {
            let basic_auth = source_credentials(store.as_ref(), org, &source.name).await?;
            specs.push(IndexSpec { label: source.name.clone(), url: source.url.clone(), basic_auth });
        }
    }
    if let Some(url) = &runner.settings.pypi_index_url {
        specs.push(IndexSpec { label: format!("pip:{url}"), url: url.clone(), basic_auth: None });
    }
    if specs.is_empty() {
        return Err(BuildError::refused(
            "no Python package index is configured: add a package source (ecosystem pypi) or start kiln serve with --pypi-index-url",
        ));
    }
    Ok(specs)
}

/// What the Python step adds: packages to layer and lock entries.
pub struct PythonPackages {
    pub packages: Vec<RuntimePackage>,
    pub lock: Vec<LockedPackage>,
}

/// Resolves, fetches and installs. `parent_has` are the parent's Python distributions (kept
/// at their versions); `locked` replays an earlier build's Python lock exactly; `memory` is
/// the build's budget, shared with its other steps.
// Each argument is a distinct input of the step; a struct of them would only rename the list.
#[allow(clippy::too_many_arguments)]
pub async fn install(
    runner: &BuildRunner,
    ctx: &TaskContext,
    target: Target,
    mut requirements: Vec<Requirement>,
    constraints: Vec<Requirement>,
    parent_has: &[InventoryItem],
    locked: Option<&Lock>,
    memory: &kiln_packages::memory::MemoryBudget,
) -> Result<PythonPackages, BuildError> {
    if let Some(lock) = locked {
        requirements = lock
            .packages
            .iter()
            .filter(|p| p.ecosystem == Ecosystem::Pypi)
            .map(|p| {
                let mut requirement =
                    from_name_and_version(&p.name, Some(&p.version)).map_err(|e| BuildError::packages("", e))?;
                requirement.hashes = vec![super::pipeline::locked_sha256(p)?];
                Ok(requirement)
            })
            .collect::<Result<_, BuildError>>()?;
    }
    let kept: Vec<(String, String)> = parent_has
        .iter()
        .filter(|i| i.ecosystem == Ecosystem::Pypi)
        .map(|i| (normalize_name(&i.name), i.version.clone()))
        .collect();
    for (name, version) in &kept {
        requirements.push(from_name_and_version(name, Some(version)).map_err(|e| BuildError::packages("", e))?);
    }
    let specs = index_specs(runner, ctx).await?;
    let labels: Vec<String> = specs.iter().map(|s| s.label.clone()).collect();
    ctx.log(format!(
        "python: resolving {} requirement(s) for CPython {}.{} ({} glibc {}) from {}",
        requirements.len(),
        target.python.0,
        target.python.1,
        target.machine,
        target.glibc.map_or("none".to_string(), |(a, b)| format!("{a}.{b}")),
        labels.join(", ")
    ));
    let index = Arc::new(Index::new(runner.http.clone(), specs));
    let cache = Arc::new(
        DownloadCache::open(&runner.settings.cache_dir.join("wheels"), runner.settings.cache_limit)
            .map_err(|e| BuildError::packages("", e))?,
    );
    // A lock already holds the versions the constraints chose.
    let constraints = if locked.is_some() { Vec::new() } else { constraints };
    let sandbox = super::sdist::sandbox(runner, ctx).await?;
    let resolved = resolve(index.clone(), cache.clone(), target.clone(), requirements, constraints, sandbox)
        .await
        .map_err(|e| BuildError::packages("", e))?;
    ctx.check_cancelled()?;
    let mut packages = Vec::new();
    let mut lock = Vec::new();
    let mut pending = Vec::new();
    for dist in resolved {
        if kept.iter().any(|(name, _)| *name == dist.name) {
            continue;
        }
        let version = dist.version.to_string();
        // The file the index lists (a wheel, or the sdist a wheel was built from) must have
        // a usable SHA-256: it is what the lock and the --hash check hold it to.
        let sha256 =
            dist.wheel.sha256().map_err(|e| BuildError::packages(format!("{} {version}", dist.name), e))?.clone();
        if !dist.allowed_hashes.is_empty() && !dist.allowed_hashes.contains(&sha256) {
            return Err(BuildError::refused(format!(
                "{} {version}: its wheel {} has SHA-256 {}, not one of the --hash values given for it",
                dist.name,
                dist.wheel.filename,
                sha256.hex()
            )));
        }
        ctx.log(format!(
            "add pypi {}=={version} ({}) from {}",
            dist.name, dist.wheel.filename, labels[dist.wheel.index]
        ));
        let path: PathBuf = match &dist.built {
            Some(built) => {
                ctx.log(format!(
                    "python: {} {version} was built from {} in the sandbox",
                    dist.name, dist.wheel.filename
                ));
                built.clone()
            }
            None => fetch_wheel(&index, &cache, &dist.wheel, &|_| {})
                .await
                .map_err(|e| BuildError::packages(format!("{} {version}", dist.name), e))?,
        };
        let size = tokio::fs::metadata(&path).await.map(|m| m.len()).unwrap_or(0);
        let target = target.clone();
        let name = dist.name.clone();
        let limits = Limits { max_bytes: runner.settings.wheel_size_limit, ..Limits::default() };
        let memory = memory.clone();
        // Unpacking and checking a wheel is CPU work: all of them at once, on every core, held
        // together to the build's one memory budget.
        let installing = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            install_wheel(std::io::BufReader::new(file), &target, &limits, &memory).map_err(|e| {
                match e.is_over_budget() {
                    true => format!("{e}; if the wheel is genuine, raise kiln serve --build-memory-limit-bytes"),
                    false => e.to_string(),
                }
            })
        });
        pending.push((dist, version, sha256, size, name, installing));
        ctx.check_cancelled()?;
    }
    for (dist, version, sha256, size, name, installing) in pending {
        let installed = installing
            .await
            .map_err(|e| BuildError::stopped("installing stopped", e))?
            .map_err(|e| BuildError::refused(format!("{name} {version} ({}): {e}", dist.wheel.filename)))?;
        let display = if dist.metadata.name.is_empty() { dist.name.clone() } else { dist.metadata.name.clone() };
        packages.push(RuntimePackage {
            ecosystem: Ecosystem::Pypi,
            purl: format!("pkg:pypi/{}@{version}", dist.name),
            name: display,
            version: version.clone(),
            license: dist.metadata.license.clone(),
            location: None,
            entries: installed.entries,
        });
        lock.push(LockedPackage {
            ecosystem: Ecosystem::Pypi,
            name: dist.name.clone(),
            version,
            architecture: String::new(),
            sha256: sha256.hex().to_string(),
            size,
            source: labels[dist.wheel.index].clone(),
            filename: dist.wheel.filename.clone(),
            integrity: None,
        });
        ctx.check_cancelled()?;
    }
    Ok(PythonPackages { packages, lock })
}
