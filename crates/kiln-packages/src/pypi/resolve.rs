//! The Python dependency graph solved with PubGrub (the algorithm uv uses): every version
//! considered has a wheel for the image's interpreter and platform, markers are evaluated for
//! that target, extras are packages of their own, and a failure explains itself.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics, PubGrubError, Ranges, Reporter};

use super::Target;
use super::index::{DistFile, Index, IndexError};
use super::metadata::{CoreMetadata, parse_metadata};
use super::normalize_name;
use super::requirements::Requirement;
use super::sdist::SdistBuilder;
use super::wheel_name::{Rank, WheelName};
use crate::cache::DownloadCache;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Dist(String),
    /// `name[extra]`: the distribution's extra dependencies, pinned to its version.
    Extra(String, String),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => write!(f, "the image"),
            Pkg::Dist(name) => write!(f, "{name}"),
            Pkg::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

/// A distribution chosen for the image: its best wheel and what that wheel declares.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    pub version: Version,
    /// The wheel, or the source distribution a sandbox built into `built`.
    pub wheel: DistFile,
    /// The wheel built from a source distribution, when `wheel` is one.
    pub built: Option<std::path::PathBuf>,
    pub metadata: CoreMetadata,
    /// SHA-256 digests the requirements allow for it (from `--hash`); empty allows any.
    pub allowed_hashes: Vec<kiln_oci::Digest>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    Index(#[from] IndexError),
    #[error("cannot install these requirements together:\n{explanation}")]
    NoSolution { explanation: String },
    #[error("{0}")]
    Other(String),
}

/// Versions of one project with a usable wheel, newest first.
struct Candidates {
    versions: Vec<(Version, DistFile)>,
}

struct Provider<'a> {
    index: &'a Index,
    cache: &'a DownloadCache,
    target: &'a Target,
    markers: pep508_rs::MarkerEnvironment,
    runtime: tokio::runtime::Handle,
    root: Vec<(Pkg, Ranges<Version>)>,
    /// pip's constraints: they narrow a distribution whenever something depends on it, but
    /// add nothing by themselves.
    constraints: HashMap<String, Ranges<Version>>,
    /// Builds source distributions when an administrator allows them.
    sdists: Option<&'a dyn SdistBuilder>,
    /// Wheels built from source distributions, by the source file's name.
    built: RefCell<HashMap<String, std::path::PathBuf>>,
    candidates: RefCell<HashMap<String, Arc<Candidates>>>,
    metadata: RefCell<HashMap<(String, Version), CoreMetadata>>,
    /// Why versions were passed over, for the failure message.
    notes: RefCell<BTreeSet<String>>,
    /// Versions no wheel serves here, by project: each with whether a source distribution
    /// exists (`false`: wheels only for other platforms or Pythons).
    unusable: RefCell<HashMap<String, BTreeMap<Version, bool>>>,
}

fn specifier_range(specifier: &VersionSpecifier) -> Ranges<Version> {
    let version = specifier.version().clone();
    let star = |version: &Version| {
        let release = version.release();
        let mut upper: Vec<u64> = release.to_vec();
        if let Some(last) = upper.last_mut() {
            *last += 1;
        }
        let low = Version::new(release.iter().copied()).with_dev(Some(0));
        let high = Version::new(upper).with_dev(Some(0));
        Ranges::between(low, high)
    };
    match specifier.operator() {
        Operator::Equal | Operator::ExactEqual => Ranges::singleton(version),
        Operator::NotEqual => Ranges::singleton(version).complement(),
        Operator::EqualStar => star(&version),
        Operator::NotEqualStar => star(&version).complement(),
        Operator::TildeEqual => {
            let release = version.release();
            let prefix = Version::new(release[..release.len().saturating_sub(1).max(1)].iter().copied());
            Ranges::higher_than(version.clone()).intersection(&star(&prefix))
        }
        Operator::LessThan => Ranges::strictly_lower_than(version),
        Operator::LessThanEqual => Ranges::lower_than(version),
        Operator::GreaterThan => Ranges::strictly_higher_than(version),
        Operator::GreaterThanEqual => Ranges::higher_than(version),
    }
}

pub fn specifiers_range(specifiers: &VersionSpecifiers) -> Ranges<Version> {
    specifiers.iter().fold(Ranges::full(), |range, s| range.intersection(&specifier_range(s)))
}

fn requirement_range(requirement: &pep508_rs::Requirement) -> Ranges<Version> {
    match &requirement.version_or_url {
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(specifiers)) => specifiers_range(specifiers),
        _ => Ranges::full(),
    }
}

/// `(package, range)` for a requirement, plus one per extra it asks for.
fn packages_for(requirement: &pep508_rs::Requirement) -> Vec<(Pkg, Ranges<Version>)> {
    let name = normalize_name(requirement.name.as_ref());
    let range = requirement_range(requirement);
    let mut out = vec![(Pkg::Dist(name.clone()), range.clone())];
    for extra in &requirement.extras {
        out.push((Pkg::Extra(name.clone(), normalize_name(extra.as_ref())), range.clone()));
    }
    out
}

fn merge(list: Vec<(Pkg, Ranges<Version>)>) -> Vec<(Pkg, Ranges<Version>)> {
    let mut merged: Vec<(Pkg, Ranges<Version>)> = Vec::new();
    for (package, range) in list {
        match merged.iter_mut().find(|(p, _)| *p == package) {
            Some((_, existing)) => *existing = existing.intersection(&range),
            None => merged.push((package, range)),
        }
    }
    merged
}

impl Provider<'_> {
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn python_matches(&self, requires_python: Option<&str>) -> bool {
        let Some(text) = requires_python else { return true };
        let Ok(specifiers) = VersionSpecifiers::from_str(text) else { return true };
        let Ok(python) = Version::from_str(&self.target.python_full_version) else { return true };
        specifiers.contains(&python)
    }

    /// When the versions the image asks for directly exist but no wheel of them serves this
    /// image (only a source distribution that may not be built, or wheels for other platforms
    /// or Pythons), the failure says that first, by name and version.
    fn unusable_versions_asked_for(&self) -> Option<String> {
        let candidates = self.candidates.borrow();
        let unusable = self.unusable.borrow();
        let lines: Vec<String> = self
            .root
            .iter()
            .filter_map(|(package, range)| {
                let Pkg::Dist(name) = package else { return None };
                let usable = candidates.get(name).is_some_and(|c| c.versions.iter().any(|(v, _)| range.contains(v)));
                let asked: Vec<(&Version, bool)> =
                    unusable.get(name)?.iter().rev().filter(|(v, _)| range.contains(*v)).map(|(v, s)| (v, *s)).collect();
                let (_, has_source) = *asked.first()?;
                if usable || (has_source && self.sdists.is_some()) {
                    return None;
                }
                let shown: Vec<String> = asked.iter().take(3).map(|(v, _)| v.to_string()).collect();
                let why = match has_source {
                    true => format!(
                        "has no wheel for {}, only a source distribution: pick a version with wheels, or ask an administrator to allow source builds (kiln serve --pypi-sdist-builder)",
                        self.target_text()
                    ),
                    false => format!("has no wheel for {}: pick a version that has one", self.target_text()),
                };
                Some(format!("{name} {} {why}", shown.join(", ")))
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn target_text(&self) -> String {
        format!(
            "CPython {}.{} on {} glibc {}",
            self.target.python.0,
            self.target.python.1,
            self.target.machine,
            self.target.glibc.map_or("none".to_string(), |(a, b)| format!("{a}.{b}"))
        )
    }

    fn candidates(&self, name: &str) -> Result<Arc<Candidates>, ResolveError> {
        if let Some(found) = self.candidates.borrow().get(name) {
            return Ok(found.clone());
        }
        let files = self.block_on(self.index.files(name))?;
        let mut best: HashMap<Version, (Rank, DistFile)> = HashMap::new();
        let mut source_only: BTreeSet<Version> = BTreeSet::new();
        let mut wrong_platform: BTreeSet<Version> = BTreeSet::new();
        let mut sources: HashMap<Version, DistFile> = HashMap::new();
        for file in files.iter() {
            if file.yanked {
                continue;
            }
            let Some(wheel) = WheelName::parse(&file.filename) else {
                if let Some(version) = sdist_version(&file.filename, name) {
                    if self.sdists.is_some()
                        && !version.any_prerelease()
                        && self.python_matches(file.requires_python.as_deref())
                    {
                        sources.entry(version.clone()).or_insert_with(|| file.clone());
                    }
                    source_only.insert(version);
                }
                continue;
            };
            let Ok(version) = Version::from_str(&wheel.version) else { continue };
            if version.any_prerelease() || !self.python_matches(file.requires_python.as_deref()) {
                continue;
            }
            let Some(rank) = wheel.rank(self.target) else {
                wrong_platform.insert(version);
                continue;
            };
            let better = best.get(&version).is_none_or(|(current, _)| rank < *current);
            if better {
                best.insert(version, (rank, file.clone()));
            }
        }
        let mut versions: Vec<(Version, DistFile)> = best.into_iter().map(|(v, (_, f))| (v, f)).collect();
        // Built from source only where no wheel serves.
        for (version, file) in sources {
            if !versions.iter().any(|(v, _)| *v == version) {
                versions.push((version, file));
            }
        }
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        let unusable: BTreeMap<Version, bool> = source_only
            .iter()
            .chain(wrong_platform.iter())
            .filter(|v| !versions.iter().any(|(usable, _)| usable == *v))
            .map(|v| (v.clone(), source_only.contains(v)))
            .collect();
        self.unusable.borrow_mut().insert(name.to_string(), unusable);
        let newest_usable = versions.first().map(|(v, _)| v.clone());
        let target = self.target_text();
        // Only newer versions than the best usable one explain a surprising choice.
        let newer = |v: &&Version| newest_usable.as_ref().is_none_or(|n| *v > n);
        let source_only: Vec<String> =
            source_only.iter().filter(newer).filter(|v| !wrong_platform.contains(v)).map(|v| v.to_string()).collect();
        if !source_only.is_empty() && self.sdists.is_none() {
            self.notes.borrow_mut().insert(format!(
                "{name} {} only as source (sdist): building from source is not allowed, pin a version with wheels or ask an administrator to enable source builds in a sandbox",
                source_only.iter().rev().take(3).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let wrong: Vec<String> = wrong_platform.iter().filter(newer).map(|v| v.to_string()).collect();
        if !wrong.is_empty() {
            self.notes.borrow_mut().insert(format!(
                "{name} {} has no wheel for {target}",
                wrong.iter().rev().take(3).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let found = Arc::new(Candidates { versions });
        self.candidates.borrow_mut().insert(name.to_string(), found.clone());
        Ok(found)
    }

    fn wheel_of(&self, name: &str, version: &Version) -> Result<DistFile, ResolveError> {
        let candidates = self.candidates(name)?;
        candidates
            .versions
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| ResolveError::Other(format!("{name} {version} has no usable wheel")))
    }

    fn core_metadata(&self, name: &str, version: &Version) -> Result<CoreMetadata, ResolveError> {
        let key = (name.to_string(), version.clone());
        if let Some(found) = self.metadata.borrow().get(&key) {
            return Ok(found.clone());
        }
        let wheel = self.wheel_of(name, version)?;
        let text = if WheelName::parse(&wheel.filename).is_none() {
            // A source distribution's metadata may be computed by its build: build it.
            let built = self.built_wheel(name, version, &wheel)?;
            let bytes =
                std::fs::read(&built).map_err(|e| ResolveError::Other(format!("reading {}: {e}", built.display())))?;
            super::install::read_metadata(&bytes)
                .map_err(|e| ResolveError::Other(format!("{} built from {}: {e}", name, wheel.filename)))?
        } else {
            match self.block_on(self.index.metadata(&wheel))? {
                Some(text) => text,
                None => self.block_on(metadata_from_wheel(self.index, self.cache, &wheel))?,
            }
        };
        let parsed = parse_metadata(&text);
        self.metadata.borrow_mut().insert(key, parsed.clone());
        Ok(parsed)
    }

    /// The wheel the sandbox built from `sdist`, building it on first use.
    fn built_wheel(&self, name: &str, version: &Version, sdist: &DistFile) -> Result<std::path::PathBuf, ResolveError> {
        if let Some(found) = self.built.borrow().get(&sdist.filename) {
            return Ok(found.clone());
        }
        let Some(builder) = self.sdists else {
            return Err(ResolveError::Other(format!("{name} {version} is only a source distribution")));
        };
        let source = self.block_on(fetch_wheel(self.index, self.cache, sdist, &|_| {}))?;
        let wheel = self
            .block_on(builder.build(&source, &sdist.filename))
            .map_err(|why| ResolveError::Other(format!("building {name} {version} from {}: {why}", sdist.filename)))?;
        let file_name = wheel.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_string();
        let matches = WheelName::parse(&file_name).is_some_and(|w| {
            normalize_name(&w.name) == name && Version::from_str(&w.version).ok().as_ref() == Some(version)
        });
        if !matches {
            return Err(ResolveError::Other(format!(
                "building {name} {version} from {} gave {file_name:?}, not a wheel of {name} {version}",
                sdist.filename
            )));
        }
        self.built.borrow_mut().insert(sdist.filename.clone(), wheel.clone());
        Ok(wheel)
    }

    fn requirements_of(&self, metadata: &CoreMetadata, extra: Option<&str>) -> Vec<(Pkg, Ranges<Version>)> {
        let extras: Vec<pep508_rs::ExtraName> =
            extra.and_then(|e| pep508_rs::ExtraName::from_str(e).ok()).into_iter().collect();
        let mut out = Vec::new();
        for line in &metadata.requires_dist {
            let Ok(requirement) = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(line) else {
                self.notes
                    .borrow_mut()
                    .insert(format!("{} {}: ignored unreadable requirement {line:?}", metadata.name, metadata.version));
                continue;
            };
            let with_extra = requirement.marker.evaluate(&self.markers, &extras);
            // For an extra, only what the extra adds: the rest comes with the distribution.
            if extra.is_some() && (!with_extra || requirement.marker.evaluate(&self.markers, &[])) {
                continue;
            }
            if extra.is_none() && !with_extra {
                continue;
            }
            out.extend(packages_for(&requirement));
        }
        out
    }
}

/// Reads `*.dist-info/METADATA` from a wheel, downloading it into the cache.
async fn metadata_from_wheel(index: &Index, cache: &DownloadCache, wheel: &DistFile) -> Result<String, ResolveError> {
    let path = fetch_wheel(index, cache, wheel, &|_| {}).await?;
    let bytes =
        tokio::fs::read(&path).await.map_err(|e| ResolveError::Other(format!("reading {}: {e}", path.display())))?;
    super::install::read_metadata(&bytes).map_err(|e| ResolveError::Other(format!("{}: {e}", wheel.filename)))
}

/// The wheel's file, verified against the index's SHA-256 (an index must list a usable one).
pub async fn fetch_wheel(
    index: &Index,
    cache: &DownloadCache,
    wheel: &DistFile,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<std::path::PathBuf, ResolveError> {
    let sha256 = wheel.sha256()?;
    let listed_by = index.describe(wheel.index);
    cache
        .fetch_with(index.request(wheel.index, &wheel.url), &wheel.url, sha256, None, &listed_by, progress)
        .await
        .map_err(|e| ResolveError::Other(e.to_string()))
}

fn sdist_version(filename: &str, name: &str) -> Option<Version> {
    let stem = filename.strip_suffix(".tar.gz").or_else(|| filename.strip_suffix(".zip"))?;
    let (project, version) = stem.rsplit_once('-')?;
    (normalize_name(project) == name).then(|| Version::from_str(version).ok()).flatten()
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Priority = (u32, bool);
    type Err = ResolveError;

    fn prioritize(&self, _package: &Pkg, range: &Ranges<Version>, stats: &PackageResolutionStatistics) -> (u32, bool) {
        (stats.conflict_count(), range.as_singleton().is_some())
    }

    fn choose_version(&self, package: &Pkg, range: &Ranges<Version>) -> Result<Option<Version>, ResolveError> {
        let name = match package {
            Pkg::Root => return Ok(Some(Version::new([0]))),
            Pkg::Dist(name) | Pkg::Extra(name, _) => name,
        };
        let candidates = self.candidates(name)?;
        Ok(candidates.versions.iter().map(|(v, _)| v).find(|v| range.contains(v)).cloned())
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, ResolveError> {
        let list = match package {
            Pkg::Root => self.root.clone(),
            Pkg::Dist(name) => {
                let metadata = self.core_metadata(name, version)?;
                self.requirements_of(&metadata, None)
            }
            Pkg::Extra(name, extra) => {
                let metadata = self.core_metadata(name, version)?;
                let mut list = vec![(Pkg::Dist(name.clone()), Ranges::singleton(version.clone()))];
                list.extend(self.requirements_of(&metadata, Some(extra)));
                list
            }
        };
        let constrained = merge(list).into_iter().map(|(package, range)| {
            let limit = match &package {
                Pkg::Dist(name) | Pkg::Extra(name, _) => self.constraints.get(name),
                Pkg::Root => None,
            };
            let range = limit.map_or(range.clone(), |limit| range.intersection(limit));
            (package, range)
        });
        Ok(Dependencies::Available(constrained.collect()))
    }
}

/// Resolves `requirements` for `target`, every distribution held to `constraints` (pip's
/// `-c` files) when it is installed at all; runs the solver on a blocking thread.
pub async fn resolve(
    index: Arc<Index>,
    cache: Arc<DownloadCache>,
    target: Target,
    requirements: Vec<Requirement>,
    constraints: Vec<Requirement>,
    sdists: Option<Arc<dyn SdistBuilder>>,
) -> Result<Vec<Resolved>, ResolveError> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        solve(&index, &cache, &target, &requirements, &constraints, sdists.as_deref(), runtime)
    })
    .await
    .map_err(|e| ResolveError::Other(format!("the resolver stopped: {e}")))?
}

fn solve(
    index: &Index,
    cache: &DownloadCache,
    target: &Target,
    requirements: &[Requirement],
    constraints: &[Requirement],
    sdists: Option<&dyn SdistBuilder>,
    runtime: tokio::runtime::Handle,
) -> Result<Vec<Resolved>, ResolveError> {
    let markers = target.markers().map_err(ResolveError::Other)?;
    let mut root = Vec::new();
    for requirement in requirements {
        if requirement.requirement.marker.evaluate(&markers, &[]) {
            root.extend(packages_for(&requirement.requirement));
        }
    }
    let mut constraint_ranges: HashMap<String, Ranges<Version>> = HashMap::new();
    let mut constraint_notes = BTreeSet::new();
    for constraint in constraints.iter().filter(|c| c.requirement.marker.evaluate(&markers, &[])) {
        let name = normalize_name(constraint.requirement.name.as_ref());
        let range = requirement_range(&constraint.requirement);
        constraint_notes.insert((
            name.clone(),
            format!("constraint {} (constraints line {})", constraint.requirement, constraint.line),
        ));
        let merged = constraint_ranges.remove(&name).map_or(range.clone(), |r| r.intersection(&range));
        constraint_ranges.insert(name, merged);
    }
    let provider = Provider {
        index,
        cache,
        target,
        markers,
        runtime,
        root: merge(root),
        constraints: constraint_ranges,
        sdists,
        built: RefCell::new(HashMap::new()),
        candidates: RefCell::new(HashMap::new()),
        metadata: RefCell::new(HashMap::new()),
        notes: RefCell::new(BTreeSet::new()),
        unusable: RefCell::new(HashMap::new()),
    };
    let solution = match pubgrub::resolve(&provider, Pkg::Root, Version::new([0])) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(tree)) => {
            // The root's made-up version means nothing to a reader, nor does pubgrub's word.
            let report = pubgrub::DefaultStringReporter::report(&tree)
                .replace("the image 0", "the image")
                .replace("the image is forbidden", "the image cannot be built");
            let mut explanation = match provider.unusable_versions_asked_for() {
                Some(headline) => format!("{headline}\n{report}"),
                None => report,
            };
            for note in provider.notes.borrow().iter() {
                explanation.push_str(&format!("\nnote: {note}"));
            }
            let relevant: Vec<&String> = constraint_notes
                .iter()
                .filter(|(name, _)| explanation.contains(name.as_str()))
                .map(|(_, n)| n)
                .collect();
            for note in relevant {
                explanation.push_str(&format!("\nnote: {note}"));
            }
            return Err(ResolveError::NoSolution { explanation });
        }
        Err(PubGrubError::ErrorChoosingVersion { source, .. }) => return Err(source),
        Err(PubGrubError::ErrorRetrievingDependencies { package, version, source }) => {
            return Err(ResolveError::Other(format!("reading the dependencies of {package} {version}: {source}")));
        }
        Err(other) => return Err(ResolveError::Other(other.to_string())),
    };
    let mut out = Vec::new();
    let mut chosen: Vec<(String, Version)> = solution
        .into_iter()
        .filter_map(|(package, version)| match package {
            Pkg::Dist(name) => Some((name, version)),
            _ => None,
        })
        .collect();
    chosen.sort();
    for (name, version) in chosen {
        let wheel = provider.wheel_of(&name, &version)?;
        let metadata = provider.core_metadata(&name, &version)?;
        let allowed_hashes = requirements
            .iter()
            .chain(constraints)
            .filter(|r| normalize_name(r.requirement.name.as_ref()) == name)
            .flat_map(|r| r.hashes.iter().cloned())
            .collect();
        let built = provider.built.borrow().get(&wheel.filename).cloned();
        out.push(Resolved { name, version, wheel, built, metadata, allowed_hashes });
    }
    Ok(out)
}
