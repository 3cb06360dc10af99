//! apko-style "origin" layering: the largest packages get layers of their own, the rest share
//! one. A package's own layer holds only that package, so every image with the same package
//! version pushes the same blob and registries (and nodes' caches) keep one copy.

/// Layers for packages when the user does not say: apko's measured sweet spot.
pub const DEFAULT_LAYER_BUDGET: usize = 10;
/// containerd refuses images with more layers than this.
pub const MAX_LAYERS: usize = 127;

/// Which packages get their own layer and which share the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan<K> {
    /// One layer each, largest first (ties by key), which is also their order bottom-up.
    pub own: Vec<K>,
    /// Together in one layer, sorted by key; empty when every package has its own.
    pub shared: Vec<K>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupError {
    #[error("layer budget must be at least 1; set it between 1 and {MAX_LAYERS}")]
    ZeroBudget,
    #[error(
        "the image would need more than {MAX_LAYERS} layers: the parent and Kiln's own use {fixed}; \
         choose a parent with fewer layers (squash it)"
    )]
    TooManyLayers { fixed: usize },
}

/// Plans at most `budget` package layers for `packages` (key, unpacked size), given that
/// `fixed_layers` (the parent's plus Kiln's metadata and file layers) already exist. The
/// budget shrinks to what the 127-layer limit leaves.
pub fn plan_layers<K: Ord + Clone>(
    packages: &[(K, u64)],
    budget: usize,
    fixed_layers: usize,
) -> Result<LayerPlan<K>, GroupError> {
    if budget == 0 {
        return Err(GroupError::ZeroBudget);
    }
    let room = MAX_LAYERS.saturating_sub(fixed_layers);
    if room == 0 && !packages.is_empty() {
        return Err(GroupError::TooManyLayers { fixed: fixed_layers });
    }
    let budget = budget.min(room);
    let mut by_size: Vec<&(K, u64)> = packages.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // Everything fits: no shared layer at all. Otherwise the shared layer takes one slot.
    let own_count = if packages.len() <= budget { packages.len() } else { budget - 1 };
    let own = by_size[..own_count].iter().map(|(k, _)| k.clone()).collect();
    let mut shared: Vec<K> = by_size[own_count..].iter().map(|(k, _)| k.clone()).collect();
    shared.sort();
    Ok(LayerPlan { own, shared })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkgs() -> Vec<(&'static str, u64)> {
        vec![("libc6", 12), ("python3.11", 20), ("tzdata", 12), ("netbase", 1), ("base-files", 1), ("zlib1g", 2)]
    }

    #[test]
    fn largest_get_their_own_layer_ties_by_name() {
        let plan = plan_layers(&pkgs(), 3, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.own, ["python3.11", "libc6"]);
        assert_eq!(plan.shared, ["base-files", "netbase", "tzdata", "zlib1g"]);
    }

    #[test]
    fn everything_fits_without_a_shared_layer() {
        let plan = plan_layers(&pkgs(), 10, 5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.own.len(), 6);
        assert!(plan.shared.is_empty());
        let plan = plan_layers(&pkgs(), 1, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.own.is_empty());
        assert_eq!(plan.shared.len(), 6);
    }

    #[test]
    fn respects_the_layer_limit() {
        let plan = plan_layers(&pkgs(), 10, MAX_LAYERS - 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.own.len(), plan.shared.len()), (1, 5));
        assert_eq!(plan_layers(&pkgs(), 10, MAX_LAYERS), Err(GroupError::TooManyLayers { fixed: MAX_LAYERS }));
        assert_eq!(plan_layers(&pkgs(), 0, 0), Err(GroupError::ZeroBudget));
        assert_eq!(plan_layers::<&str>(&[], 10, MAX_LAYERS).map(|p| p.own.len()), Ok(0));
    }
}
