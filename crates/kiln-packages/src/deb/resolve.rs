//! Choosing packages the way apt would for a fresh install of what was asked: follow
//! `Pre-Depends` and `Depends` (not Recommends), honour version constraints, alternatives
//! and `Provides`, skip what the parent image already has, and put dependencies first.
//! `Conflicts` and `Breaks` are not checked: Debian's archive keeps one consistent version
//! of each package per suite, and a conflict would show when the image runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::index::{Dependency, Op, PackageRecord, Relation, compare_versions};
use super::status::InstalledPackage;

/// Every package the sources offer for one architecture.
pub struct Universe {
    labels: Vec<String>,
    /// By name, best candidate first.
    /// Shared with the indexes they came from: building a universe copies no record.
    by_name: HashMap<String, Vec<Arc<PackageRecord>>>,
    /// Virtual name → (provider name, provided version), most basic provider first.
    providers: HashMap<String, Vec<(String, Option<String>)>>,
}

impl Universe {
    /// `sources` in search order; among equal versions the first source wins.
    pub fn new(sources: Vec<(String, Vec<Arc<PackageRecord>>)>, architecture: &str) -> Universe {
        let mut labels = Vec::new();
        let mut by_name: HashMap<String, Vec<Arc<PackageRecord>>> = HashMap::new();
        for (label, records) in sources {
            labels.push(label);
            for record in records {
                if record.architecture == architecture || record.architecture == "all" {
                    by_name.entry(record.name.clone()).or_default().push(record);
                }
            }
        }
        let mut providers: HashMap<String, Vec<(u8, String, Option<String>)>> = HashMap::new();
        for list in by_name.values_mut() {
            // Stable: equal versions keep source order.
            list.sort_by(|a, b| compare_versions(&b.version, &a.version));
            list.dedup_by(|a, b| a.version == b.version);
            let Some(best) = list.first() else { continue };
            for provided in &best.provides {
                let version = provided.constraint.as_ref().map(|(_, v)| v.clone());
                let entry = providers.entry(provided.name.clone()).or_default();
                entry.push((priority_rank(best), best.name.clone(), version));
            }
        }
        // As apt does, a virtual package goes to its most basic provider (`mawk`, not `gawk`,
        // for `awk`), then by name so the choice never depends on index order.
        let providers = providers
            .into_iter()
            .map(|(name, mut list)| {
                list.sort();
                (name, list.into_iter().map(|(_, provider, version)| (provider, version)).collect())
            })
            .collect();
        Universe { labels, by_name, providers }
    }

    pub fn candidates(&self, name: &str) -> &[Arc<PackageRecord>] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }
}

fn priority_rank(record: &PackageRecord) -> u8 {
    match record.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") | None => 3,
        Some(_) => 4,
    }
}

/// What an image already contains.
#[derive(Default)]
pub struct Installed {
    versions: HashMap<String, String>,
    provided: HashMap<String, Vec<Option<String>>>,
}

impl Installed {
    pub fn from_packages(packages: Vec<InstalledPackage>) -> Installed {
        let mut installed = Installed::default();
        for package in packages {
            for provided in package.provides {
                installed.provided.entry(provided.name).or_default().push(provided.constraint.map(|(_, v)| v));
            }
            installed.versions.insert(package.name, package.version);
        }
        installed
    }
}

/// A request: a name and optionally an exact version or a constraint (`>= 1.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no package {name} in sources {}: check the name (apt-cache search) or add a package source that has it", searched.join(", "))]
    UnknownPackage { name: String, searched: Vec<String> },
    #[error("{name} version {wanted} is not available; available: {}", available.join(", "))]
    VersionUnavailable { name: String, wanted: String, available: Vec<String> },
    #[error("cannot satisfy {dependency} needed by {}: no version of it is available that matches", chain.join(" → "))]
    Unsatisfiable { chain: Vec<String>, dependency: String },
}

fn constraint_of(version: &str) -> Option<(Op, String)> {
    let version = version.trim();
    for (prefix, op) in
        [(">=", Op::Ge), ("<=", Op::Le), (">>", Op::Gt), ("<<", Op::Lt), ("=", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
    {
        if let Some(rest) = version.strip_prefix(prefix) {
            return Some((op, rest.trim().to_string()));
        }
    }
    Some((Op::Eq, version.to_string()))
}

struct Solver<'a> {
    universe: &'a Universe,
    installed: &'a Installed,
    chosen: HashMap<String, &'a PackageRecord>,
    order: Vec<&'a PackageRecord>,
}

impl<'a> Solver<'a> {
    fn version_ok(constraint: &Option<(Op, String)>, version: Option<&str>) -> bool {
        match (constraint, version) {
            (None, _) => true,
            (Some((op, wanted)), Some(version)) => op.matches(version, wanted),
            (Some(_), None) => false,
        }
    }

    /// Already there, installed or chosen (directly or through Provides).
    fn satisfied(&self, dependency: &Dependency) -> bool {
        let name = dependency.name.as_str();
        let constraint = &dependency.constraint;
        if self.installed.versions.get(name).is_some_and(|v| Self::version_ok(constraint, Some(v))) {
            return true;
        }
        if self.chosen.get(name).is_some_and(|r| Self::version_ok(constraint, Some(&r.version))) {
            return true;
        }
        if self
            .installed
            .provided
            .get(name)
            .is_some_and(|list| list.iter().any(|v| Self::version_ok(constraint, v.as_deref())))
        {
            return true;
        }
        self.chosen.values().any(|r| {
            r.provides
                .iter()
                .any(|p| p.name == name && Self::version_ok(constraint, p.constraint.as_ref().map(|(_, v)| v.as_str())))
        })
    }

    /// Packages that could satisfy `dependency`, best first.
    fn options(&self, dependency: &Dependency) -> Vec<&'a PackageRecord> {
        let universe: &'a Universe = self.universe;
        let mut options: Vec<&'a PackageRecord> = universe
            .candidates(&dependency.name)
            .iter()
            .filter(|r| Self::version_ok(&dependency.constraint, Some(&r.version)))
            .map(|r| r.as_ref())
            .collect();
        for (provider, version) in universe.providers.get(&dependency.name).into_iter().flatten() {
            if Self::version_ok(&dependency.constraint, version.as_deref())
                && let Some(record) = universe.candidates(provider).first()
            {
                options.push(record.as_ref());
            }
        }
        options
    }

    fn add(&mut self, record: &'a PackageRecord, chain: &mut Vec<String>) -> Result<(), ResolveError> {
        if self.chosen.contains_key(&record.name) {
            return Ok(());
        }
        self.chosen.insert(record.name.clone(), record);
        chain.push(format!("{} {}", record.name, record.version));
        for relation in record.pre_depends.iter().chain(&record.depends) {
            self.relation(relation, chain)?;
        }
        chain.pop();
        self.order.push(record);
        Ok(())
    }

    fn relation(&mut self, relation: &Relation, chain: &mut Vec<String>) -> Result<(), ResolveError> {
        if relation.alternatives.iter().any(|d| self.satisfied(d)) {
            return Ok(());
        }
        let mut first_error = None;
        for dependency in &relation.alternatives {
            for option in self.options(dependency) {
                let (chosen, order) = (self.chosen.clone(), self.order.len());
                match self.add(option, chain) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        // Undo this attempt and try the next way to satisfy the relation.
                        self.chosen = chosen;
                        self.order.truncate(order);
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| ResolveError::Unsatisfiable { chain: chain.clone(), dependency: relation.to_string() }))
    }
}

/// The packages to add for `requests`, dependencies before what needs them.
pub fn resolve(
    universe: &Universe,
    installed: &Installed,
    requests: &[Request],
) -> Result<Vec<PackageRecord>, ResolveError> {
    let mut solver = Solver { universe, installed, chosen: HashMap::new(), order: Vec::new() };
    let mut seen = HashSet::new();
    for request in requests {
        if !seen.insert(request.name.clone()) {
            continue;
        }
        let constraint = request.version.as_deref().and_then(constraint_of);
        let dependency = Dependency { name: request.name.clone(), arch: None, constraint: constraint.clone() };
        if solver.satisfied(&dependency) {
            continue;
        }
        let candidates = universe.candidates(&request.name);
        if candidates.is_empty() && !universe.providers.contains_key(&request.name) {
            return Err(ResolveError::UnknownPackage { name: request.name.clone(), searched: universe.labels.clone() });
        }
        let options = solver.options(&dependency);
        let Some(best) = options.first().copied() else {
            return Err(ResolveError::VersionUnavailable {
                name: request.name.clone(),
                wanted: request.version.clone().unwrap_or_default(),
                available: candidates.iter().map(|r| r.version.clone()).collect(),
            });
        };
        solver.add(best, &mut Vec::new())?;
    }
    Ok(solver.order.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::index::parse_packages;

    fn universe(text: &str) -> Universe {
        Universe::new(
            vec![("test".to_string(), parse_packages(text).unwrap().into_iter().map(Arc::new).collect())],
            "amd64",
        )
    }

    fn stanza(name: &str, version: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\n{extra}Filename: pool/{name}.deb\nSize: 1\nSHA256: {}\n\n",
            "0".repeat(64)
        )
    }

    fn names(resolved: &[PackageRecord]) -> Vec<String> {
        resolved.iter().map(|r| format!("{}={}", r.name, r.version)).collect()
    }

    #[test]
    fn dependencies_come_first_with_the_best_version() {
        let text = [
            stanza("app", "1", "Depends: lib (>= 2), mta | mail-transport-agent\n"),
            stanza("lib", "1", ""),
            stanza("lib", "3", "Pre-Depends: base\n"),
            stanza("base", "1", ""),
            stanza("postfix", "1", "Provides: mail-transport-agent\n"),
        ]
        .concat();
        let resolved =
            resolve(&universe(&text), &Installed::default(), &[Request { name: "app".into(), version: None }]).unwrap();
        assert_eq!(names(&resolved), ["base=1", "lib=3", "postfix=1", "app=1"]);
    }

    #[test]
    fn what_the_parent_has_is_not_added() {
        let text = [stanza("app", "1", "Depends: lib\n"), stanza("lib", "1", "")].concat();
        let installed = Installed::from_packages(vec![InstalledPackage {
            name: "lib".into(),
            version: "1".into(),
            architecture: "amd64".into(),
            provides: vec![],
            source_name: None,
            source_version: None,
        }]);
        let resolved = resolve(&universe(&text), &installed, &[Request { name: "app".into(), version: None }]).unwrap();
        assert_eq!(names(&resolved), ["app=1"]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let text =
            [stanza("app", "1", "Depends: lib (>= 9)\n"), stanza("lib", "1", ""), stanza("other", "2", "")].concat();
        let u = universe(&text);
        let err = resolve(&u, &Installed::default(), &[Request { name: "nope".into(), version: None }]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no package nope in sources test: check the name (apt-cache search) or add a package source that has it"
        );
        let err = resolve(&u, &Installed::default(), &[Request { name: "other".into(), version: Some("1".into()) }])
            .unwrap_err();
        assert_eq!(err.to_string(), "other version 1 is not available; available: 2");
        let err = resolve(&u, &Installed::default(), &[Request { name: "app".into(), version: None }]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot satisfy lib (>= 9) needed by app 1: no version of it is available that matches"
        );
    }

    #[test]
    fn a_virtual_package_goes_to_its_most_basic_provider() {
        let text = [
            stanza("base", "1", "Pre-Depends: awk\n"),
            stanza("gawk", "5", "Priority: optional\nProvides: awk\nDepends: libmpfr\n"),
            stanza("mawk", "1", "Priority: required\nProvides: awk\n"),
            stanza("libmpfr", "1", ""),
        ]
        .concat();
        let resolved =
            resolve(&universe(&text), &Installed::default(), &[Request { name: "base".into(), version: None }])
                .unwrap();
        assert_eq!(names(&resolved), ["mawk=1", "base=1"]);
    }
}
