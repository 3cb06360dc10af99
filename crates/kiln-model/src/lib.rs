//! Kiln's domain: the objects users manage, their validation rules and the definition files
//! that describe them. Pure data and rules; no I/O, so every other crate can trust it.

pub mod auth;
pub mod base_image;
pub mod common;
pub mod definition;
pub mod function;
pub mod image;
pub mod includes;
pub mod inventory;
pub mod package;
pub mod package_source;
pub mod reference;
pub mod registry_credential;
pub mod requirements_includes;
pub mod task;
pub mod validation;

pub use base_image::BaseImage;
pub use common::{EnvVar, Status, Tag, Visibility, name_clash_reason};
pub use function::Function;
pub use image::Image;
pub use inventory::{
    BaseImageInventory, BuildRecord, ContextFile, InventoryItem, LicenseKind, LicenseText, Lock, LockedPackage,
    PackageLicense,
};
pub use package::{Decision, Ecosystem, Package};
pub use package_source::{Credentials, PackageSource};
pub use registry_credential::RegistryCredential;
pub use task::{LogLine, Progress, Task, TaskKind, TaskState};
pub use validation::{FieldError, ValidationErrors};

/// The organisation every object lives in until tenancy arrives.
pub const DEFAULT_ORG: &str = "default";
