//! The `node_modules` tree both resolution and lockfiles produce: each node is one package
//! copy at one directory, looked up the way Node's `require` walks upwards, so placement and
//! verification reason about exactly what the program will load at run time.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::manifest::{Edge, EdgeKind, Manifest};

pub const ROOT: usize = 0;

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub version: String,
    pub parent: Option<usize>,
    pub children: BTreeMap<String, usize>,
    pub manifest: Arc<Manifest>,
    pub edges: Vec<Edge>,
    /// How the package came to be needed, for error messages: `package.json → a@1.0.0`.
    pub chain: String,
    /// The optional dependency whose subtree this node belongs to, if any: a failure inside
    /// it drops that subtree instead of the installation.
    pub optional_origin: Option<usize>,
    pub failed: bool,
    /// Shipped inside its parent's tarball (`bundleDependencies`), so never fetched.
    pub in_bundle: bool,
    pub keep: bool,
    /// Reached only through optional edges.
    pub optional: bool,
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn new(root: Manifest, chain: &str) -> Tree {
        let edges = root.edges();
        Tree {
            nodes: vec![Node {
                name: root.name.clone(),
                version: root.version.clone(),
                parent: None,
                children: BTreeMap::new(),
                manifest: Arc::new(root),
                edges,
                chain: chain.to_string(),
                optional_origin: None,
                failed: false,
                in_bundle: false,
                keep: true,
                optional: false,
            }],
        }
    }

    pub fn add(&mut self, parent: usize, manifest: Arc<Manifest>, chain: String) -> usize {
        let id = self.nodes.len();
        let name = manifest.name.clone();
        self.nodes.push(Node {
            name: name.clone(),
            version: manifest.version.clone(),
            parent: Some(parent),
            children: BTreeMap::new(),
            edges: manifest.edges(),
            manifest,
            chain,
            optional_origin: None,
            failed: false,
            in_bundle: false,
            keep: true,
            optional: false,
        });
        self.nodes[parent].children.insert(name, id);
        id
    }

    /// `node_modules/a/node_modules/b`; empty for the root.
    pub fn path(&self, id: usize) -> String {
        let mut names = Vec::new();
        let mut at = id;
        while let Some(parent) = self.nodes[at].parent {
            names.push(self.nodes[at].name.as_str());
            at = parent;
        }
        names.reverse();
        names.iter().map(|n| format!("node_modules/{n}")).collect::<Vec<_>>().join("/")
    }

    /// The copy of `name` that `require` from inside `from` finds.
    pub fn lookup(&self, from: usize, name: &str) -> Option<usize> {
        let mut at = Some(from);
        while let Some(id) = at {
            if let Some(&found) = self.nodes[id].children.get(name) {
                return Some(found);
            }
            at = self.nodes[id].parent;
        }
        None
    }

    /// Whether `id` is `ancestor` or lies below it.
    pub fn is_within(&self, id: usize, ancestor: usize) -> bool {
        let mut at = Some(id);
        while let Some(n) = at {
            if n == ancestor {
                return true;
            }
            at = self.nodes[n].parent;
        }
        false
    }

    /// Root first, `id` last.
    pub fn ancestors(&self, id: usize) -> Vec<usize> {
        let mut path = vec![id];
        let mut at = id;
        while let Some(parent) = self.nodes[at].parent {
            path.push(parent);
            at = parent;
        }
        path.reverse();
        path
    }

    fn walk(&self, follow_optional: bool, excluded: &HashSet<usize>) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        seen[ROOT] = true;
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            for edge in &self.nodes[id].edges {
                if edge.kind == EdgeKind::Optional && !follow_optional {
                    continue;
                }
                if let Some(found) = self.lookup(id, &edge.name)
                    && !excluded.contains(&found)
                    && !self.nodes[found].failed
                    && !seen[found]
                {
                    seen[found] = true;
                    stack.push(found);
                }
            }
        }
        seen
    }

    /// Which nodes are needed at all (`keep`) and which only through optional edges.
    pub fn prune(&mut self, excluded: &HashSet<usize>) {
        let required = self.walk(false, excluded);
        let reachable = self.walk(true, excluded);
        for (id, node) in self.nodes.iter_mut().enumerate() {
            node.keep = reachable[id];
            node.optional = reachable[id] && !required[id];
        }
    }

    /// Kept packages (not the root), in path order.
    pub fn installed(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (1..self.nodes.len()).filter(|&id| self.nodes[id].keep).collect();
        ids.sort_by_cached_key(|&id| self.path(id));
        ids
    }
}
