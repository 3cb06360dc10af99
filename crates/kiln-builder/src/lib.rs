//! Kiln's build pipeline, apart from HTTP: the controllers that notice work (base images to
//! resolve and mirror, images to build, functions to follow their image), the task runners
//! that do it (build, bootstrap, debug variant, function composition) and what a finished
//! build records. Packages come from `kiln-packages`, layers and manifests from `kiln-build`,
//! the registry from `kiln-registry`; work runs as `kiln-tasks` tasks.

pub mod builds;
pub mod controllers;
pub mod error;
pub mod functions;
pub mod hosts;

pub use error::BuildError;

use std::sync::Arc;

use kiln_model::TaskKind;
use kiln_registry::Registry;
use kiln_tasks::Engine;

/// Registers the runners of every task kind the builder does: builds, the debug variant,
/// bootstrap of root images and function composition.
pub fn register_runners(
    engine: &mut Engine,
    registry: &Arc<Registry>,
    settings: builds::BuildSettings,
) -> Result<(), String> {
    let runner = Arc::new(builds::BuildRunner::new(registry.clone(), settings)?);
    engine.register(TaskKind::BuildImage, runner.clone());
    engine.register(
        TaskKind::ComposeFunction,
        Arc::new(functions::runner::ComposeRunner {
            registry: registry.clone(),
            source_date_epoch: runner.settings.source_date_epoch,
        }),
    );
    engine.register(TaskKind::DebugImage, Arc::new(builds::debug::DebugRunner(runner.clone())));
    engine.register(TaskKind::Bootstrap, Arc::new(builds::bootstrap::BootstrapRunner(runner)));
    Ok(())
}
