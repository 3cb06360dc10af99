//! OCI content types shared by Kiln's registry server, its registry client and its image builder: digests,
//! media types and what a manifest references. No I/O and no HTTP, so each of them can trust the same rules.

pub mod digest;
pub mod manifest;
pub mod media_types;

pub use digest::{Algorithm, Digest, DigestError, Hasher, Verifier, VerifyError};
pub use manifest::{
    Descriptor, ImageIndex, MAX_MANIFEST_SIZE, ManifestError, ManifestInfo, ManifestKind, Platform, PlatformParseError,
    check_size, select_platform,
};
