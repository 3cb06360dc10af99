//! Where packages come from and how they become safe file-system entries: the builder asks
//! this crate for resolved, verified, unpacked packages and never touches a repository itself.

pub mod cache;
pub mod deb;
pub mod deb822;
pub mod memory;
pub mod npm;
pub mod pypi;
