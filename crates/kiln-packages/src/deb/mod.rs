//! Debian packages: apt sources, signed releases, indexes, resolution, unpacking, licences.

pub mod index;
pub mod keyring;
pub mod release;
pub mod repository;
pub mod resolve;
pub mod sources;
pub mod status;
pub mod unpack;
