//! Kiln's build pipeline, apart from HTTP: the controllers that notice work (base images to
//! resolve and mirror, images to build, functions to follow their image), the task runners
//! that do it (build, bootstrap, debug variant, function composition) and what a finished
//! build records. Packages come from `kiln-packages`, layers and manifests from `kiln-build`,
//! the registry from `kiln-registry`; work runs as `kiln-tasks` tasks.

pub mod builds;
pub mod controllers;
pub mod functions;
pub mod hosts;
