//! The controllers notice objects whose actual state lags their desired state and start
//! the work: `base_images` resolves and mirrors base images, `images` starts builds (and has
//! functions follow their image). Handlers only store what was asked; everything slow
//! happens here, and a restart finds the same work again in the store.

pub mod base_images;
pub mod images;
mod mirror;
mod watch;

use std::time::Duration;

/// How the controller paces itself.
#[derive(Clone)]
pub struct Settings {
    /// First wait after a failure; doubled per failure up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// How often a READY base image is checked again (a tag may have moved).
    pub recheck: Duration,
    /// The platform picked from multi-platform indexes, as `os/arch[/variant]`.
    pub platform: String,
    /// Kiln's own registry and the host it is addressed by: references there are looked up
    /// in place, not over HTTP (which would need a token).
    pub local_registry: Option<(String, std::sync::Arc<kiln_registry::Registry>)>,
    /// Where layers of base images from other registries land on their way into Kiln's.
    pub copy_scratch: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Settings {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Settings {
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            recheck: Duration::from_secs(600),
            platform: format!("linux/{architecture}"),
            local_registry: None,
            copy_scratch: std::env::temp_dir().join("kiln-base-images"),
        }
    }
}
