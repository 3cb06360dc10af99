//! npm's resolution without npm: breadth first from package.json, each dependency gets the
//! version npm would pick and is placed as high in `node_modules` as it can go without
//! changing what any already placed package loads; a conflicting version nests under the
//! package that needs it. Peers go beside their dependent, never under it.

use std::collections::{HashSet, VecDeque};

use super::error::NpmError;
use super::manifest::{Edge, EdgeKind, Manifest, Spec, parse_spec, platform_problem, satisfies, valid_name};
use super::registry::NpmSource;
use super::tree::{ROOT, Tree};

/// An optional dependency left out, and why, for the build log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedOptional {
    pub name: String,
    pub spec: String,
    pub chain: String,
    pub why: String,
}

pub async fn resolve<S: NpmSource>(
    source: &S,
    root: Manifest,
    node_version: Option<&str>,
) -> Result<(Tree, Vec<SkippedOptional>), NpmError> {
    let mut tree = Tree::new(root, "package.json");
    let mut skipped = Vec::new();
    let mut queue = VecDeque::from([ROOT]);
    while let Some(id) = queue.pop_front() {
        if tree.nodes[id].failed {
            continue;
        }
        for edge in tree.nodes[id].edges.clone() {
            match add_edge(source, &mut tree, id, &edge, node_version).await {
                Ok(Some(new)) => queue.push_back(new),
                Ok(None) => {}
                Err(error) => {
                    let chain = tree.nodes[id].chain.clone();
                    let origin = if edge.kind == EdgeKind::Optional { None } else { tree.nodes[id].optional_origin };
                    let why = error.to_string();
                    if edge.kind == EdgeKind::Optional {
                        skipped.push(SkippedOptional { name: edge.name.clone(), spec: edge.spec.clone(), chain, why });
                    } else if let Some(origin) = origin {
                        // A failure deep inside an optional dependency drops that dependency.
                        tree.nodes[origin].failed = true;
                        let node = &tree.nodes[origin];
                        skipped.push(SkippedOptional {
                            name: node.name.clone(),
                            spec: node.version.clone(),
                            chain: node.chain.clone(),
                            why,
                        });
                    } else {
                        return Err(error);
                    }
                }
            }
        }
    }
    tree.prune(&HashSet::new());
    Ok((tree, skipped))
}

/// Satisfies one edge of `from`, returning the node it had to add, if any.
async fn add_edge<S: NpmSource>(
    source: &S,
    tree: &mut Tree,
    from: usize,
    edge: &Edge,
    node_version: Option<&str>,
) -> Result<Option<usize>, NpmError> {
    let chain = tree.nodes[from].chain.clone();
    if !valid_name(&edge.name) {
        return Err(NpmError::UnsupportedSpec {
            name: edge.name.clone(),
            spec: edge.spec.clone(),
            chain,
            why: "has a name npm would not accept: fix the dependency name".into(),
        });
    }
    let spec = parse_spec(&edge.spec).map_err(|why| NpmError::UnsupportedSpec {
        name: edge.name.clone(),
        spec: edge.spec.clone(),
        chain: chain.clone(),
        why,
    })?;
    let found = tree.lookup(from, &edge.name).filter(|&f| !tree.nodes[f].failed);
    if let Some(found) = found
        && satisfies(&tree.nodes[found].version, &spec) == Some(true)
    {
        return Ok(None);
    }
    let packument = source.packument(&edge.name).await?;
    if let (Some(found), Spec::Tag(tag)) = (found, &spec)
        && packument.dist_tags.get(tag) == Some(&tree.nodes[found].version)
    {
        return Ok(None);
    }
    let manifest = packument.pick(&spec).cloned().ok_or_else(|| NpmError::NoMatch {
        name: edge.name.clone(),
        spec: edge.spec.clone(),
        chain: chain.clone(),
        available: packument.newest(5),
    })?;
    if let Some(why) = platform_problem(&manifest, node_version) {
        return Err(NpmError::Platform {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            chain: chain.clone(),
            why,
        });
    }
    let Some(target) = placement(tree, from, edge, &manifest.version) else {
        let blocker =
            found.or_else(|| tree.nodes[from].parent.and_then(|p| tree.nodes[p].children.get(&edge.name).copied()));
        let found = match blocker {
            Some(b) => {
                format!(
                    "{}@{} is installed at {} for {}",
                    edge.name,
                    tree.nodes[b].version,
                    tree.path(b),
                    tree.nodes[b].chain
                )
            }
            None => format!("another version of {} is installed where it would have to go", edge.name),
        };
        return Err(NpmError::PeerConflict { name: edge.name.clone(), spec: edge.spec.clone(), chain, found });
    };
    let new_chain = format!("{chain} → {}@{}", manifest.name, manifest.version);
    let new = tree.add(target, manifest, new_chain);
    tree.nodes[new].optional_origin =
        if edge.kind == EdgeKind::Optional { Some(new) } else { tree.nodes[from].optional_origin };
    Ok(Some(new))
}

/// The highest directory on `from`'s path where `version` of the edge's package can live.
fn placement(tree: &Tree, from: usize, edge: &Edge, version: &str) -> Option<usize> {
    let path = tree.ancestors(from);
    // A peer must be found from its dependent's own directory, so never nests inside it.
    let candidates = if edge.kind == EdgeKind::Peer && from != ROOT { &path[..path.len() - 1] } else { &path[..] };
    'candidates: for (i, &target) in candidates.iter().enumerate() {
        if tree.nodes[target].children.contains_key(&edge.name) {
            continue;
        }
        if path[i + 1..].iter().any(|&n| tree.nodes[n].children.contains_key(&edge.name)) {
            continue;
        }
        // Packages below `target` that now load a copy from above it would load this one
        // instead: allowed only if it satisfies them too.
        for (id, node) in tree.nodes.iter().enumerate() {
            if node.failed || !tree.is_within(id, target) {
                continue;
            }
            for other in node.edges.iter().filter(|e| e.name == edge.name) {
                let Some(seen) = tree.lookup(id, &other.name) else { continue };
                let seen_parent = tree.nodes[seen].parent.unwrap_or(ROOT);
                if tree.is_within(seen_parent, target) {
                    continue;
                }
                let fits = parse_spec(&other.spec).ok().and_then(|s| satisfies(version, &s)).unwrap_or(false);
                if !fits {
                    continue 'candidates;
                }
            }
        }
        return Some(target);
    }
    None
}
