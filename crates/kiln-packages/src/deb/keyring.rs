//! Repository signing keys (kept with release verification, which is their only use).

pub use super::release::{Keyring, KeyringError};
