//! Turns resolved, unpacked packages into an OCI image: layers, config, manifest, SBOM and
//! the equivalent Dockerfile. No network and no store: the server feeds it and pushes the result.

pub mod config;
pub mod layer;
pub mod settings;

pub use config::{BuiltImage, ConfigError, NewLayer, ParentConfig, build_image};
pub use layer::{GZIP_LEVEL, LayerBlob, LayerError, write_layer};
pub use settings::ImageSettings;
pub mod group;
pub mod read;
pub use group::{DEFAULT_LAYER_BUDGET, GroupError, LayerPlan, MAX_LAYERS, plan_layers};
pub use read::{ReadError, read_file_from_layers};
pub mod dpkg;
pub mod package;
pub use package::{UnpackedPackage, merge_usr};
pub mod assemble;
pub mod fixups;
pub use assemble::{AssembleError, AssembleInput, AssembledImage, ParentImage, assemble};
pub mod sbom;
pub use sbom::{SPDX_JSON, Sbom, sbom_manifest, spdx_document};
pub mod dockerfile;
pub use dockerfile::{DockerfileError, render_dockerfile};
pub mod plugins;
pub use plugins::{Language, Plugin, plugin};
