//! Archive entries proven to stay inside a root: `SafePath` for every name an archive gives,
//! one checker for image layers (`for_each_entry`, `check_layer`) and the one applier that
//! writes layers to a directory (`Applier`). No network, no store, no knowledge of images.

pub mod apply;
pub mod entry;
pub mod path;
pub mod tree;

pub use apply::Applier;
pub use entry::{Entry, EntryKind, LayerError, Limits, check_layer, for_each_entry};
pub use path::{PathError, SafePath, link_stays_inside};
