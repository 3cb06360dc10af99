//! Turns resolved, unpacked packages into an OCI image: layers, config, manifest, SBOM and
//! the equivalent Dockerfile. No network and no store: the server feeds it and pushes the result.
//!
//! The server calls [`assemble()`] once per build, then pushes `layers`, `config` and
//! `manifest` in that order; [`spdx_document`] and [`sbom_manifest`] attach the SBOM as a
//! referrer. [`read_file_from_layers`] finds a parent's `/var/lib/dpkg/status` and
//! `/etc/passwd` for [`ParentImage`]. A root image for a language starts from [`plugin`].
//!
//! Layer rules (see [`write_layer`]): entries sorted bytewise by path, the last duplicate
//! wins, missing parents added as root-owned `0755` directories, every mtime
//! `SOURCE_DATE_EPOCH`, numeric owners only, PAX only for long names, gzip level
//! [`GZIP_LEVEL`] with no name or time in the gzip header.

pub mod assemble;
pub mod config;
pub mod copyright;
pub mod dockerfile;
pub mod dpkg;
pub mod fixups;
pub mod group;
pub mod layer;
pub mod package;
pub mod parallel;
pub mod plugins;
pub mod read;
pub mod sbom;
pub mod settings;

pub use assemble::{
    AssembleError, AssembleInput, AssembledImage, ParentImage, PlannedLayer, ReusedLayer, assemble, copyright_owner,
    deb_purl, dpkg_inventory, layer_key, licences_from_copyright_files, package_layers,
};
pub use config::{BuiltImage, ConfigError, NewLayer, ParentConfig, build_image};
pub use dockerfile::{
    ContextFile, DockerfileError, Recipe, Rendered, context_tar, render_dockerfile, settings_of_config,
};
pub use group::{DEFAULT_LAYER_BUDGET, GroupError, LayerPlan, MAX_LAYERS, plan_layers};
pub use layer::{GZIP_LEVEL, LayerBlob, LayerError, write_layer};
pub use package::{RuntimePackage, UnpackedPackage, merge_usr};
pub use plugins::{FUNCTION_PORT, Language, Plugin, plugin};
pub use read::{ReadError, read_file_from_layers, read_files_from_layers};
pub use sbom::{SPDX_JSON, Sbom, sbom_manifest, spdx_document};
pub use settings::ImageSettings;
