//! Python packages for an image: requirement lines resolved against a package index for the
//! image's own interpreter and C library, wheels verified and laid out as an installer
//! would, so no `pip` ever runs inside a build.

pub mod index;
pub mod install;
pub mod metadata;
pub mod native;
pub mod requirements;
pub mod resolve;
pub mod sdist;
pub mod wheel_name;

#[cfg(test)]
mod tests;

/// The interpreter and platform wheels are chosen for: what the image's dpkg status says
/// about its `python3` and `libc6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `3.11.2`
    pub python_full_version: String,
    /// Major and minor: (3, 11).
    pub python: (u64, u64),
    /// glibc major and minor, (2, 36); `None` for an image without glibc (no manylinux wheels).
    pub glibc: Option<(u64, u64)>,
    /// `x86_64`, `aarch64`.
    pub machine: String,
}

impl Target {
    /// `python3` from the Debian package version (`3.11.2-1+b1`) and glibc from `libc6`'s.
    pub fn from_debian(python_version: &str, libc_version: Option<&str>, machine: &str) -> Option<Target> {
        let upstream = python_version.split(['-', '+', '~']).next()?;
        let mut parts = upstream.split('.').map(|p| p.parse::<u64>());
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let glibc = libc_version.and_then(|v| {
            let mut parts = v.split(['-', '+', '~']).next()?.split('.').map(|p| p.parse::<u64>());
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        });
        Some(Target {
            python_full_version: upstream.to_string(),
            python: (major, minor),
            glibc,
            machine: machine.to_string(),
        })
    }

    /// Where Debian's `python3` looks for packages that are not Debian's own.
    pub fn site_packages(&self) -> String {
        format!("usr/local/lib/python{}.{}/dist-packages", self.python.0, self.python.1)
    }

    pub fn markers(&self) -> Result<pep508_rs::MarkerEnvironment, String> {
        let python_version = format!("{}.{}", self.python.0, self.python.1);
        pep508_rs::MarkerEnvironment::try_from(pep508_rs::MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &self.python_full_version,
            os_name: "posix",
            platform_machine: &self.machine,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &self.python_full_version,
            python_version: &python_version,
            sys_platform: "linux",
        })
        .map_err(|e| e.to_string())
    }
}

/// Names compare as PEP 503 says: lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}
