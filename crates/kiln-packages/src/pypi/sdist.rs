//! Source distributions are code that runs at build time, so this crate never builds one
//! itself: when an administrator allows them, a [`SdistBuilder`] the caller provides (an
//! isolated sandbox) turns each into a wheel, which is then resolved and installed like any
//! other.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

/// What a sandbox answers: the built wheel, or why it could not be built.
pub type BuildResult = Result<PathBuf, String>;

pub trait SdistBuilder: Send + Sync {
    /// Builds `sdist` (already verified against the index's SHA-256; its file name is
    /// `filename`) into one wheel and returns the wheel's path.
    fn build<'a>(
        &'a self,
        sdist: &'a Path,
        filename: &'a str,
    ) -> Pin<Box<dyn Future<Output = BuildResult> + Send + 'a>>;
}
