//! Wheel file names and their compatibility tags: which wheels can run on the image's
//! interpreter, C library and machine, and which of several is the best fit (pip's order).

use super::Target;

/// `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`, each tag part possibly a
/// `.`-separated set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub name: String,
    pub version: String,
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelName {
    pub fn parse(filename: &str) -> Option<WheelName> {
        let stem = filename.strip_suffix(".whl")?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, tags) = match parts.len() {
            5 => (parts[0], parts[1], &parts[2..]),
            6 => (parts[0], parts[1], &parts[3..]),
            _ => return None,
        };
        let set = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        Some(WheelName {
            name: name.to_string(),
            version: version.to_string(),
            python: set(tags[0]),
            abi: set(tags[1]),
            platform: set(tags[2]),
        })
    }

    /// How well the wheel fits `target`, lower is better; `None` if it cannot run there.
    pub fn rank(&self, target: &Target) -> Option<Rank> {
        let mut best: Option<Rank> = None;
        for python in &self.python {
            for abi in &self.abi {
                for platform in &self.platform {
                    if let Some(rank) = rank_one(python, abi, platform, target) {
                        best = Some(best.map_or(rank, |b| b.min(rank)));
                    }
                }
            }
        }
        best
    }

    /// Why the wheel cannot run on `target`, for error messages.
    pub fn tags(&self) -> String {
        format!("{}-{}-{}", self.python.join("."), self.abi.join("."), self.platform.join("."))
    }
}

/// (pure wheel, interpreter group, interpreter distance, platform distance): pip prefers
/// platform wheels to pure ones, the exact interpreter ABI to `abi3` to none, and the newest
/// manylinux the C library allows.
pub type Rank = (bool, u32, u64, u64);

fn rank_one(python: &str, abi: &str, platform: &str, target: &Target) -> Option<Rank> {
    let (major, minor) = target.python;
    let platform_distance = if platform == "any" { 0 } else { platform_distance(platform, target)? };
    let exact = format!("cp{major}{minor}");
    let (group, distance) = if python == exact && (abi == exact || abi == format!("{exact}m")) {
        (0, 0)
    } else if abi == "abi3" {
        let version = python.strip_prefix(&format!("cp{major}"))?.parse::<u64>().ok()?;
        if version > minor {
            return None;
        }
        (1, minor - version)
    } else if abi == "none" {
        if python == exact {
            (2, 0)
        } else if python == format!("py{major}{minor}") {
            (3, 0)
        } else if python == format!("py{major}") {
            (3, 1)
        } else if let Some(version) = python.strip_prefix(&format!("py{major}")).and_then(|v| v.parse::<u64>().ok()) {
            if version > minor {
                return None;
            }
            (3, 2 + minor - version)
        } else {
            return None;
        }
    } else {
        return None;
    };
    Some((platform == "any", group, distance, platform_distance))
}

/// `manylinux_2_17_x86_64` and its legacy aliases, for this machine and no newer glibc.
fn platform_distance(platform: &str, target: &Target) -> Option<u64> {
    let (glibc_major, glibc_minor) = target.glibc?;
    let (wanted_major, wanted_minor, arch) = if let Some(rest) = platform.strip_prefix("manylinux_") {
        let mut parts = rest.splitn(3, '_');
        let major = parts.next()?.parse::<u64>().ok()?;
        let minor = parts.next()?.parse::<u64>().ok()?;
        (major, minor, parts.next()?)
    } else if let Some(arch) = platform.strip_prefix("manylinux2014_") {
        (2, 17, arch)
    } else if let Some(arch) = platform.strip_prefix("manylinux2010_") {
        (2, 12, arch)
    } else if let Some(arch) = platform.strip_prefix("manylinux1_") {
        (2, 5, arch)
    } else {
        return None;
    };
    if arch != target.machine || wanted_major != glibc_major || wanted_minor > glibc_minor {
        return None;
    }
    Some(glibc_minor - wanted_minor)
}
