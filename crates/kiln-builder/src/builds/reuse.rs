//! What earlier builds already worked out, kept so a build does not do it again: packages
//! unpacked before (slimmed, in memory, by the `.deb`'s SHA-256), package layers written
//! before (by layer key, on disk beside the package cache, so a restart keeps them) and the
//! files read out of a parent's layers (by the parent's manifest digest, in memory). Every
//! key names its content exactly, so a hit is never stale; a layer is only reused while
//! Kiln's registry still holds its blob.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_build::{ReusedLayer, UnpackedPackage};
use kiln_oci::Digest;

/// Slimmed packages kept: a few thousand paths each, so a few hundred MB at worst.
const PACKAGES_KEPT: usize = 2048;
/// Parents whose files are kept.
const PARENTS_KEPT: usize = 64;

/// What a build reads out of its parent's layers.
#[derive(Clone)]
pub struct ParentFiles {
    pub dpkg_status: Option<String>,
    pub passwd: Option<String>,
    pub group: Option<String>,
    pub runtime: Vec<kiln_model::InventoryItem>,
    /// From the packages' copyright files, by package name.
    pub licences: std::collections::BTreeMap<String, kiln_model::PackageLicense>,
}

/// A map that forgets its oldest entries beyond a bound.
struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    bound: usize,
}

impl<V: Clone> Bounded<V> {
    fn new(bound: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), bound }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map.get(key).cloned()
    }

    fn put(&mut self, key: String, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.bound {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

pub struct BuildMemo {
    packages: Mutex<Bounded<Arc<UnpackedPackage>>>,
    parents: Mutex<Bounded<Arc<ParentFiles>>>,
    layers: Mutex<HashMap<Digest, ReusedLayer>>,
    layers_dir: PathBuf,
}

impl BuildMemo {
    /// Layer records live in `<cache_dir>/layers`, one small JSON file per key, named by the
    /// key's hex: keys are digests, so a record's name cannot leave the directory.
    pub fn new(cache_dir: &Path) -> BuildMemo {
        BuildMemo {
            packages: Mutex::new(Bounded::new(PACKAGES_KEPT)),
            parents: Mutex::new(Bounded::new(PARENTS_KEPT)),
            layers: Mutex::new(HashMap::new()),
            layers_dir: cache_dir.join("layers"),
        }
    }

    /// The slimmed package unpacked earlier from the `.deb` with this SHA-256.
    pub fn package(&self, sha256: &Digest) -> Option<Arc<UnpackedPackage>> {
        self.packages.lock().ok()?.get(sha256.as_str())
    }

    pub fn remember_package(&self, sha256: &Digest, package: &UnpackedPackage) {
        let slimmed = Arc::new(package.slimmed());
        if let Ok(mut packages) = self.packages.lock() {
            packages.put(sha256.to_string(), slimmed);
        }
    }

    pub fn parent(&self, key: &str) -> Option<Arc<ParentFiles>> {
        self.parents.lock().ok()?.get(key)
    }

    pub fn remember_parent(&self, key: String, files: ParentFiles) {
        if let Ok(mut parents) = self.parents.lock() {
            parents.put(key, Arc::new(files));
        }
    }

    /// The layer an earlier build wrote for `key`, from memory or from its record on disk.
    /// An unreadable record is treated as absent: the layer is simply written again.
    pub fn layer(&self, key: &Digest) -> Option<ReusedLayer> {
        if let Some(layer) = self.layers.lock().ok()?.get(key).cloned() {
            return Some(layer);
        }
        let bytes = std::fs::read(self.record_path(key)).ok()?;
        let layer: ReusedLayer = serde_json::from_slice(&bytes).ok()?;
        if let Ok(mut layers) = self.layers.lock() {
            layers.insert(key.clone(), layer.clone());
        }
        Some(layer)
    }

    /// Keys are SHA-256 digests (the layer writer makes no other); their hex is the name.
    fn record_path(&self, key: &Digest) -> PathBuf {
        self.layers_dir.join(key.hex())
    }

    /// Records layers once they are in the registry. Written to a temporary file and renamed,
    /// so a crash leaves either the whole record or none.
    pub fn remember_layers(&self, keyed: &[(Digest, ReusedLayer)]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.layers_dir)?;
        for (key, layer) in keyed {
            let known = self.layers.lock().ok().and_then(|layers| layers.get(key).cloned());
            if known.as_ref() == Some(layer) {
                continue;
            }
            let path = self.record_path(key);
            let temp = self.layers_dir.join(format!(".{}.{}", key.hex(), std::process::id()));
            std::fs::write(&temp, serde_json::to_vec(layer).map_err(std::io::Error::other)?)?;
            std::fs::rename(&temp, &path)?;
            if let Ok(mut layers) = self.layers.lock() {
                layers.insert(key.clone(), layer.clone());
            }
        }
        Ok(())
    }

    /// Forgets a layer the registry no longer holds.
    pub fn forget_layer(&self, key: &Digest) {
        if let Ok(mut layers) = self.layers.lock() {
            layers.remove(key);
        }
        let _ = std::fs::remove_file(self.record_path(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_records_survive_a_new_memo_and_are_named_by_their_digest() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let layer =
            ReusedLayer { digest: kiln_oci::Digest::sha256(b"gz"), diff_id: kiln_oci::Digest::sha256(b"tar"), size: 2 };
        let key = kiln_oci::Digest::sha256(b"layer key");
        let memo = BuildMemo::new(dir.path());
        memo.remember_layers(&[(key.clone(), layer.clone())]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(BuildMemo::new(dir.path()).layer(&key), Some(layer));
        // The on-disk name is the bare hex, as records written before keys were typed.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("layers"))
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()).unwrap_or_default())
            .collect();
        assert_eq!(names, [key.hex()]);
        memo.forget_layer(&key);
        assert_eq!(BuildMemo::new(dir.path()).layer(&key), None);
    }

    #[test]
    fn bounded_forgets_the_oldest() {
        let mut bounded = Bounded::new(2);
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            bounded.put(k.to_string(), v);
        }
        assert_eq!((bounded.get("a"), bounded.get("b"), bounded.get("c")), (None, Some(2), Some(3)));
    }
}
