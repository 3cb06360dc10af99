//! One error type for the build pipeline, so a task's failure keeps what failed underneath
//! (the store, the registry, a package source, the file system) and whether another attempt
//! may pass is decided here, by kind, rather than guessed again at every call site.

use std::fmt::Display;

use kiln_archive::LayerError;
use kiln_packages::npm::NpmError;
use kiln_registry::error::RegistryError;
use kiln_registry::image::ImageReadError;
use kiln_store::StoreError;
use kiln_tasks::TaskError;

use crate::functions::compose::ComposeError;

/// Why a build, bootstrap, debug variant or function composition failed.
///
/// Its `Display` text becomes the task's message, which people read and tests match, so
/// each variant prints exactly what the pipeline always said at that step.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The metadata store failed; a record it cannot read stays unreadable.
    #[error("{}", in_context(doing, source))]
    Store {
        doing: String,
        #[source]
        source: StoreError,
    },
    /// Kiln's registry failed (its storage or its records); another attempt may pass.
    // `RegistryError` is not a `std::error::Error`, so it is kept but cannot be a source;
    // the field is not named `source` because thiserror would make it one.
    #[error("{}", in_context(doing, &error.message))]
    Registry { doing: String, error: RegistryError },
    /// An image could not be read from Kiln's registry: only the registry failing is worth
    /// another attempt, a missing or malformed image stays so.
    #[error("{}", in_context(doing, source))]
    Image {
        doing: String,
        #[source]
        source: ImageReadError,
    },
    /// The local file system failed (scratch, cache); another attempt may pass.
    #[error("{}", in_context(doing, source))]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    /// A blocking thread doing part of the work panicked or was cancelled.
    #[error("{}", in_context(doing, source))]
    Stopped {
        doing: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A package source, index, resolution or package was refused or failed.
    // Boxed: the largest of these would make every `Result` of the pipeline carry its size.
    #[error("{}{}", in_context(doing, source), source.hint())]
    Packages {
        doing: String,
        #[source]
        source: Box<PackageError>,
    },
    /// The image's layers could not be planned or assembled from its packages.
    #[error("{}", in_context(doing, source))]
    Assemble {
        doing: String,
        #[source]
        source: kiln_build::AssembleError,
    },
    /// A config or SBOM document could not be written.
    #[error("{}", in_context(doing, source))]
    Document {
        doing: String,
        #[source]
        source: kiln_build::ConfigError,
    },
    /// A layer could not be unpacked: a refused entry stays refused, a failed write may pass.
    #[error("{}", in_context(doing, source))]
    Layer {
        doing: String,
        #[source]
        source: LayerError,
    },
    /// A function image could not be composed over its runtime image.
    #[error("{0}")]
    Compose(#[from] ComposeError),
    /// Bad input, a missing or unresolvable package, an invalid manifest: something another
    /// attempt will not fix.
    #[error("{0}")]
    Refused(String),
    /// Something that may pass on another attempt and has no typed cause.
    #[error("{0}")]
    Unavailable(String),
    /// What the task engine said (out of scratch space, cancelled), with its own verdict.
    #[error("{}", .0.message)]
    Task(TaskError),
}

/// The error types of `kiln-packages` the pipeline meets, kept as they are.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Cache(#[from] kiln_packages::cache::CacheError),
    #[error(transparent)]
    Fetch(#[from] kiln_packages::cache::FetchError),
    #[error(transparent)]
    DebIndex(#[from] kiln_packages::deb::index::IndexError),
    #[error(transparent)]
    DebResolve(#[from] kiln_packages::deb::resolve::ResolveError),
    #[error(transparent)]
    Unpack(#[from] kiln_packages::deb::unpack::UnpackError),
    #[error(transparent)]
    AptConfig(#[from] kiln_packages::deb::sources::SourcesError),
    #[error(transparent)]
    Keyring(#[from] kiln_packages::deb::release::KeyringError),
    #[error(transparent)]
    Repository(#[from] kiln_packages::deb::repository::RepositoryError),
    #[error(transparent)]
    PypiIndex(#[from] kiln_packages::pypi::index::IndexError),
    #[error(transparent)]
    PypiResolve(#[from] kiln_packages::pypi::resolve::ResolveError),
    #[error(transparent)]
    Requirements(#[from] kiln_packages::pypi::requirements::RequirementsError),
    #[error(transparent)]
    Npm(#[from] NpmError),
}

impl PackageError {
    /// Only opening a repository's index goes over the network without a verdict of its
    /// own; everything else is about the packages themselves, which another attempt gets
    /// the same.
    fn retryable(&self) -> bool {
        matches!(self, PackageError::Repository(_))
    }

    /// What an administrator can do about it, where a setting would let it through.
    fn hint(&self) -> &'static str {
        match self {
            PackageError::Unpack(e) if e.is_over_budget() => {
                "; if the package is genuine, raise kiln serve --build-memory-limit-bytes"
            }
            PackageError::Npm(NpmError::ScriptsRefused { .. }) => " with kiln serve --npm-allow-scripts",
            _ => "",
        }
    }
}

/// `doing: failure`, or the failure alone where the message never named the step (an empty
/// `doing`), so every task message reads as it always did.
fn in_context(doing: &str, failure: &dyn Display) -> String {
    if doing.is_empty() { failure.to_string() } else { format!("{doing}: {failure}") }
}

impl BuildError {
    pub fn store(doing: impl Into<String>, source: StoreError) -> BuildError {
        BuildError::Store { doing: doing.into(), source }
    }

    pub fn registry(doing: impl Into<String>, error: RegistryError) -> BuildError {
        BuildError::Registry { doing: doing.into(), error }
    }

    pub fn image(doing: impl Into<String>, source: ImageReadError) -> BuildError {
        BuildError::Image { doing: doing.into(), source }
    }

    pub fn io(doing: impl Into<String>, source: std::io::Error) -> BuildError {
        BuildError::Io { doing: doing.into(), source }
    }

    pub fn stopped(doing: impl Into<String>, source: tokio::task::JoinError) -> BuildError {
        BuildError::Stopped { doing: doing.into(), source }
    }

    pub fn packages(doing: impl Into<String>, source: impl Into<PackageError>) -> BuildError {
        BuildError::Packages { doing: doing.into(), source: Box::new(source.into()) }
    }

    pub fn assemble(doing: impl Into<String>, source: kiln_build::AssembleError) -> BuildError {
        BuildError::Assemble { doing: doing.into(), source }
    }

    pub fn document(doing: impl Into<String>, source: kiln_build::ConfigError) -> BuildError {
        BuildError::Document { doing: doing.into(), source }
    }

    pub fn layer(doing: impl Into<String>, source: LayerError) -> BuildError {
        BuildError::Layer { doing: doing.into(), source }
    }

    pub fn refused(message: impl Into<String>) -> BuildError {
        BuildError::Refused(message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> BuildError {
        BuildError::Unavailable(message.into())
    }

    /// Whether another attempt of the task may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            BuildError::Store { source, .. } => !matches!(source, StoreError::Corrupt { .. }),
            BuildError::Registry { .. } | BuildError::Io { .. } | BuildError::Stopped { .. } => true,
            BuildError::Image { source, .. } => matches!(source, ImageReadError::Registry(_)),
            BuildError::Packages { source, .. } => source.retryable(),
            BuildError::Layer { source, .. } => !source.is_refusal(),
            BuildError::Assemble { .. } | BuildError::Document { .. } | BuildError::Compose(_) => false,
            BuildError::Refused(_) => false,
            BuildError::Unavailable(_) => true,
            BuildError::Task(e) => e.retryable,
        }
    }
}

impl From<BuildError> for TaskError {
    fn from(e: BuildError) -> TaskError {
        TaskError { message: e.to_string(), retryable: e.retryable() }
    }
}

impl From<TaskError> for BuildError {
    fn from(e: TaskError) -> BuildError {
        BuildError::Task(e)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use kiln_registry::error::Code;

    use super::*;

    fn backend() -> StoreError {
        StoreError::Backend("disk full".into())
    }

    fn corrupt() -> StoreError {
        StoreError::Corrupt { key: "images/o/n".into(), message: "not JSON".into() }
    }

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied")
    }

    async fn join_error() -> tokio::task::JoinError {
        let handle = tokio::spawn(std::future::pending::<()>());
        handle.abort();
        match handle.await {
            Err(e) => e,
            Ok(()) => panic!("a pending task cannot finish"),
        }
    }

    #[tokio::test]
    async fn each_kind_decides_whether_to_try_again() {
        assert!(BuildError::store("reading", backend()).retryable());
        assert!(BuildError::registry("pushing", RegistryError::internal("down")).retryable());
        assert!(BuildError::io("creating /x", io()).retryable());
        assert!(BuildError::stopped("assembling stopped", join_error().await).retryable());
        assert!(BuildError::unavailable("gone for now").retryable());
        assert!(!BuildError::refused("no such package").retryable());
        assert!(BuildError::Task(TaskError::transient("busy")).retryable());
        assert!(!BuildError::Task(TaskError::permanent("cancelled")).retryable());
        let missing = ImageReadError::NoManifest { repository: "o/n".into(), reference: "latest".into() };
        assert!(!BuildError::image("the parent", missing).retryable());
        let registry = ImageReadError::Registry(RegistryError::internal("down"));
        assert!(BuildError::image("the parent", registry).retryable());
        let too_small = kiln_packages::cache::CacheError::TooSmall { needed: 2, limit: 1 };
        assert!(!BuildError::packages("", too_small).retryable());
        let offline = kiln_packages::deb::repository::RepositoryError::Fetch { url: "u".into(), why: "offline".into() };
        assert!(BuildError::packages("package source main", offline).retryable());
    }

    #[test]
    fn a_corrupt_record_is_not_read_again() {
        let e = BuildError::store("reading the parent", corrupt());
        assert!(!e.retryable());
        assert!(!TaskError::from(e).retryable);
    }

    #[test]
    fn the_cause_is_kept() {
        let store = BuildError::store("reading package sources", backend());
        let source = store.source().expect("a source");
        assert_eq!(source.downcast_ref::<StoreError>(), Some(&backend()));
        let io = BuildError::io("cannot create /x", io());
        let source = io.source().expect("a source");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        // Registry errors are not `std::error::Error`s: kept as a field, shown by message.
        let registry =
            BuildError::registry("pushing to Kiln's registry", RegistryError::new(Code::BlobUnknown, "gone"));
        assert!(registry.source().is_none());
        assert!(matches!(&registry, BuildError::Registry { error, .. } if error.code == Code::BlobUnknown));
    }

    #[test]
    fn messages_read_as_they_always_did() {
        assert_eq!(
            BuildError::store("reading package sources", backend()).to_string(),
            "reading package sources: store backend failed: disk full"
        );
        assert_eq!(BuildError::store("", backend()).to_string(), "store backend failed: disk full");
        assert_eq!(
            BuildError::registry("pushing to Kiln's registry", RegistryError::new(Code::BlobUnknown, "gone"))
                .to_string(),
            "pushing to Kiln's registry: gone"
        );
        assert_eq!(BuildError::io("cannot create /x", io()).to_string(), "cannot create /x: denied");
        assert_eq!(BuildError::refused("the image names no parent").to_string(), "the image names no parent");
    }

    #[test]
    fn the_task_error_keeps_message_and_verdict() {
        let task = TaskError::from(BuildError::store("reading image \"a\"", backend()));
        assert_eq!(task.message, "reading image \"a\": store backend failed: disk full");
        assert!(task.retryable);
        let task = TaskError::from(BuildError::refused("image \"a\" was deleted"));
        assert_eq!(task.message, "image \"a\" was deleted");
        assert!(!task.retryable);
        let task = TaskError::from(BuildError::from(TaskError::permanent("cancelled")));
        assert_eq!(task.message, "cancelled");
        assert!(!task.retryable);
        let task = TaskError::from(BuildError::from(TaskError::transient("out of scratch space")));
        assert_eq!(task.message, "out of scratch space");
        assert!(task.retryable);
    }
}
