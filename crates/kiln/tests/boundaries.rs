//! The workspace's boundaries check themselves: crates depend only on crates below them, and
//! the crates that must stay pure (domain types, digests, archives, layers) never pull in a
//! network client, an HTTP server or an async runtime, directly or through anything else.
//! ARCHITECTURE.md draws the same order.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Kiln's crates from the bottom up: each may depend only on crates before it.
const LAYERS: [&str; 13] = [
    "kiln-model",
    "kiln-oci",
    "kiln-registry-client",
    "kiln-archive",
    "kiln-store",
    "kiln-tasks",
    "kiln-registry",
    "kiln-packages",
    "kiln-build",
    "kiln-builder",
    "kiln-server",
    "kiln-client",
    "kiln",
];

/// Crates that do no I/O beyond files: they must not reach the network or need a runtime.
const PURE: [&str; 4] = ["kiln-model", "kiln-oci", "kiln-archive", "kiln-build"];

/// What a pure crate may not have anywhere in its (non-dev) dependency tree.
const NETWORK_OR_RUNTIME: [&str; 9] = ["tokio", "reqwest", "hyper", "axum", "h2", "mio", "async-std", "smol", "rustls"];

/// Crates that must not know an HTTP server. (`kiln-builder` pushes through the registry's
/// in-process API, which lives in one crate with its `/v2` routes.)
const NO_HTTP_SERVER: [&str; 3] = ["kiln-tasks", "kiln-registry-client", "kiln-client"];

/// Normal (not dev, not build) dependencies of every package, by name, for this platform.
fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path", manifest])
        .args(["--filter-platform", &platform])
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p["name"].as_str().expect("name")))
        .collect();
    let mut graph = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let name = names[node["id"].as_str().expect("node id")].to_string();
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| d["dep_kinds"].as_array().expect("dep kinds").iter().any(|k| k["kind"].is_null()))
            .map(|d| names[d["pkg"].as_str().expect("dep id")].to_string())
            .collect();
        graph.entry(name).or_insert_with(BTreeSet::new).extend::<BTreeSet<String>>(deps);
    }
    graph
}

/// Everything `root` pulls in, each with the chain that brings it.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = vec![vec![root.to_string()]];
    while let Some(chain) = queue.pop() {
        let last = chain.last().expect("chains are never empty").clone();
        for dep in graph.get(&last).into_iter().flatten() {
            if !seen.contains_key(dep) {
                let mut longer = chain.clone();
                longer.push(dep.clone());
                seen.insert(dep.clone(), longer.clone());
                queue.push(longer);
            }
        }
    }
    seen
}

#[test]
fn crates_depend_only_downwards_and_pure_crates_stay_pure() {
    let graph = dependency_graph();
    let mut problems = Vec::new();
    for (rank, name) in LAYERS.iter().enumerate() {
        let deps = graph.get(*name).unwrap_or_else(|| panic!("{name} is not in the workspace"));
        for dep in deps {
            if let Some(dep_rank) = LAYERS.iter().position(|l| l == dep)
                && dep_rank >= rank
            {
                problems.push(format!("{name} depends on {dep}, which is not below it"));
            }
        }
    }
    for name in PURE {
        for (dep, chain) in closure(&graph, name) {
            if NETWORK_OR_RUNTIME.contains(&dep.as_str()) {
                problems.push(format!("{name} must stay pure but pulls in {dep}: {}", chain.join(" -> ")));
            }
        }
    }
    for name in NO_HTTP_SERVER {
        for (dep, chain) in closure(&graph, name) {
            if dep == "axum" || dep == "kiln-server" {
                problems
                    .push(format!("{name} must not know an HTTP server but pulls in {dep}: {}", chain.join(" -> ")));
            }
        }
    }
    let workspace: BTreeSet<&str> = graph.keys().map(String::as_str).filter(|n| n.starts_with("kiln")).collect();
    for name in workspace {
        if !LAYERS.contains(&name) {
            problems.push(format!("{name} has no place in LAYERS: add it where ARCHITECTURE.md draws it"));
        }
    }
    assert!(problems.is_empty(), "crate boundaries broken:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_a_violation() {
    // A graph where the pure layer crate reaches tokio through another crate must be caught,
    // so the test above cannot pass by reading nothing.
    let mut graph = BTreeMap::new();
    graph.insert("kiln-build".to_string(), BTreeSet::from(["helper".to_string()]));
    graph.insert("helper".to_string(), BTreeSet::from(["tokio".to_string()]));
    let reached = closure(&graph, "kiln-build");
    assert_eq!(reached["tokio"], ["kiln-build", "helper", "tokio"]);
    let real = dependency_graph();
    assert!(real["kiln-server"].contains("axum"), "the graph holds kiln-server's real dependencies");
    assert!(closure(&real, "kiln-builder").contains_key("reqwest"), "the closure follows the real graph");
}
