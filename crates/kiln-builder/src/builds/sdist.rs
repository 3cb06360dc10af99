//! The sandbox Python source distributions are built in, when an administrator allows it
//! (`--pypi-sdist-builder IMAGE`): an image Kiln built (python3 plus pip, setuptools and
//! wheel, and compilers if wanted) unpacked once as a read-only root, and runc running
//! `pip wheel` in it as the unprivileged `kiln` user with no network, no capabilities, CPU
//! and memory limits, and a time limit. Only the source file goes in, only a wheel comes out.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kiln_archive::{Applier, LayerError, Limits};
use kiln_build::fixups::KILN_UID;
use kiln_model::image::resolve_parent_reference;
use kiln_model::{Image, Status};
use kiln_oci::Digest;
use kiln_packages::pypi::sdist::{BuildResult, SdistBuilder};
use kiln_registry::image::{Config, ImageReadError};
use kiln_store::records;
use serde_json::{Value, json};

use super::BuildRunner;
use super::parent::image_repository;
use crate::error::BuildError;
use kiln_tasks::TaskContext;

/// One build may run this long before it is killed.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// CPU seconds and bytes of address space a build may use.
const CPU_SECONDS: u64 = 600;
const ADDRESS_SPACE: u64 = 4 << 30;
/// Lines of a failed build's output kept for the error.
const OUTPUT_LINES: usize = 15;

/// The sandbox for this build, or `None` when source distributions stay refused.
pub async fn sandbox(runner: &BuildRunner, ctx: &TaskContext) -> Result<Option<Arc<dyn SdistBuilder>>, BuildError> {
    let Some(builder) = &runner.settings.pypi_sdist_builder else { return Ok(None) };
    let (org, name) = resolve_parent_reference(&ctx.task.organization, builder);
    let unusable = |why: String| {
        BuildError::refused(format!(
            "source distributions are built in image {builder:?}, which {why}: create it on python3 with the system packages python3-pip python3-setuptools python3-wheel"
        ))
    };
    let entry = ctx
        .store()
        .get(&records::key::<Image>(org, name))
        .await
        .map_err(|e| BuildError::store("", e))?
        .ok_or_else(|| unusable("does not exist".to_string()))?;
    let image: Image = records::decode(&entry).map_err(|e| BuildError::store("", e))?;
    let digest = match (&image.digest, image.status) {
        (Some(digest), Status::Ready | Status::Updating) => digest.clone(),
        _ => return Err(unusable(format!("is not built (status {:?})", image.status))),
    };
    let digest: Digest = digest.parse().map_err(|e| unusable(format!("has a bad digest: {e}")))?;
    let rootfs = root_filesystem(runner, &image_repository(org, name), &digest).await?;
    ctx.log(format!("python: source distributions are built in {builder} ({digest})"));
    let work = ctx.scratch().join("sdist");
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| BuildError::io(format!("cannot create {}", work.display()), e))?;
    Ok(Some(Arc::new(RuncSandbox { rootfs, work })))
}

/// The builder image unpacked under the cache, once per digest; later builds reuse it.
async fn root_filesystem(runner: &BuildRunner, repository: &str, digest: &Digest) -> Result<PathBuf, BuildError> {
    let dir = runner.settings.cache_dir.join("sdist-rootfs").join(digest.to_string().replace(':', "-"));
    if tokio::fs::try_exists(&dir).await.unwrap_or(false) {
        return Ok(dir);
    }
    let registry = &runner.registry;
    let failed = |e: kiln_registry::error::RegistryError| BuildError::registry("reading the sandbox image", e);
    let missing =
        || BuildError::refused(format!("the sandbox image {repository}@{digest} left Kiln's registry: rebuild it"));
    let info = match registry.read_image(repository, &digest.to_string(), Config::Skip).await {
        Ok(image) => image.info,
        Err(ImageReadError::Registry(e)) => return Err(failed(e)),
        Err(ImageReadError::NoManifest { .. }) => return Err(missing()),
        Err(e) => return Err(BuildError::image(format!("the sandbox image {repository}@{digest}"), e)),
    };
    let mut layers = Vec::new();
    for layer in &info.layers {
        let reader = registry.open_blob(repository, &layer.digest).await.map_err(failed)?.ok_or_else(missing)?;
        layers.push(reader.file.into_std().await);
    }
    let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let partial = parent.join(format!(".partial-{}-{}", std::process::id(), rand_suffix()));
    let target = dir.clone();
    let described = format!("{repository}@{digest}");
    tokio::task::spawn_blocking(move || -> Result<(), BuildError> {
        let io = |what: &str, e: std::io::Error| BuildError::io(what, e);
        // Private to Kiln: what an image holds is nobody else's on this host. The root itself
        // is the container's `/`, which its unprivileged user must be able to walk.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .and_then(|()| std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| io(&format!("creating {}", parent.display()), e))?;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&partial)
            .map_err(|e| io(&format!("creating {}", partial.display()), e))?;
        let unpacked = unpack(&partial, layers);
        if let Err(e) = unpacked {
            let _ = std::fs::remove_dir_all(&partial);
            let doing = if e.is_refusal() {
                format!("the sandbox image {described} cannot be unpacked")
            } else {
                format!("unpacking the sandbox image {described}")
            };
            return Err(BuildError::layer(doing, e));
        }
        // Another build may have finished the same unpacking first; either copy serves.
        match std::fs::rename(&partial, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.exists() => {
                let _ = std::fs::remove_dir_all(&partial);
                Ok(())
            }
            Err(e) => Err(io("moving the sandbox root into place", e)),
        }
    })
    .await
    .map_err(|e| BuildError::stopped("unpacking the sandbox image stopped", e))??;
    Ok(dir)
}

fn rand_suffix() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// The image's layers, bottom to top, through the one checked applier.
fn unpack(root: &Path, layers: Vec<std::fs::File>) -> Result<(), LayerError> {
    let mut applier = Applier::new(root, Limits::default())?;
    for layer in layers {
        applier.apply(std::io::BufReader::new(layer))?;
    }
    applier.finish()
}

struct RuncSandbox {
    rootfs: PathBuf,
    work: PathBuf,
}

impl SdistBuilder for RuncSandbox {
    fn build<'a>(
        &'a self,
        sdist: &'a Path,
        filename: &'a str,
    ) -> Pin<Box<dyn Future<Output = BuildResult> + Send + 'a>> {
        Box::pin(self.run(sdist, filename))
    }
}

impl RuncSandbox {
    async fn run(&self, sdist: &Path, filename: &str) -> BuildResult {
        if filename.contains('/') || filename.starts_with('.') {
            return Err(format!("{filename:?} is not a plain file name"));
        }
        let id = format!("kiln-sdist-{}-{:x}", std::process::id(), rand_suffix());
        let dir = self.work.join(&id);
        let (src, out, bundle) = (dir.join("src"), dir.join("out"), dir.join("bundle"));
        for d in [&src, &out, &bundle] {
            tokio::fs::create_dir_all(d).await.map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        tokio::fs::copy(sdist, src.join(filename)).await.map_err(|e| format!("copying the source in: {e}"))?;
        let identity = Identity::of_this_process();
        if identity == Identity::Root {
            std::os::unix::fs::chown(&out, Some(KILN_UID), Some(KILN_UID))
                .map_err(|e| format!("handing the output directory to the sandbox user: {e}"))?;
        }
        let mut spec = runc(&dir);
        spec.arg("spec");
        if identity != Identity::Root {
            spec.arg("--rootless");
        }
        let spec = spec.arg("--bundle").arg(&bundle).output().await.map_err(no_runc)?;
        if !spec.status.success() {
            return Err(format!("runc spec failed: {}", String::from_utf8_lossy(&spec.stderr).trim()));
        }
        let config_path = bundle.join("config.json");
        let text = tokio::fs::read(&config_path).await.map_err(|e| format!("reading runc's spec: {e}"))?;
        let mut config: Value = serde_json::from_slice(&text).map_err(|e| format!("runc's spec: {e}"))?;
        configure(&mut config, &self.rootfs, &src, &out, filename, identity);
        tokio::fs::write(&config_path, config.to_string()).await.map_err(|e| format!("writing the spec: {e}"))?;

        let mut command = runc(&dir);
        command.args(["run", "--bundle"]).arg(&bundle).arg(&id).stdin(std::process::Stdio::null());
        command.kill_on_drop(true);
        let result = tokio::time::timeout(BUILD_TIMEOUT, command.output()).await;
        let output = match result {
            Ok(output) => output.map_err(no_runc)?,
            Err(_) => {
                let _ = runc(&dir).args(["kill", &id, "KILL"]).output().await;
                let _ = runc(&dir).args(["delete", "--force", &id]).output().await;
                return Err(format!("the build ran over {} seconds and was stopped", BUILD_TIMEOUT.as_secs()));
            }
        };
        let _ = runc(&dir).args(["delete", "--force", &id]).output().await;
        if !output.status.success() {
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(OUTPUT_LINES)..].join("\n");
            return Err(format!("pip wheel failed in the sandbox ({}):\n{tail}", output.status));
        }
        let mut wheels = Vec::new();
        let mut listing = tokio::fs::read_dir(&out).await.map_err(|e| format!("reading the output: {e}"))?;
        while let Some(entry) = listing.next_entry().await.map_err(|e| format!("reading the output: {e}"))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().await.map_err(|e| e.to_string())?;
            if name.ends_with(".whl") && meta.is_file() {
                wheels.push(entry.path());
            }
        }
        match wheels.as_slice() {
            [wheel] => Ok(wheel.clone()),
            [] => Err("the sandbox wrote no wheel".to_string()),
            _ => Err(format!("the sandbox wrote {} wheels, not one", wheels.len())),
        }
    }
}

fn no_runc(e: std::io::Error) -> String {
    format!("cannot run runc ({e}): install runc on the Kiln server to build source distributions")
}

/// runc with its state beside the build, so concurrent builds never share it.
fn runc(dir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("runc");
    command.arg("--root").arg(dir.join("state"));
    command
}

/// Who Kiln runs as, which decides how the sandbox gets its unprivileged user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    Root,
    /// An ordinary user: runc runs rootless, in a user namespace of its own.
    User {
        uid: u32,
        gid: u32,
    },
}

impl Identity {
    fn of_this_process() -> Identity {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user and group.
        match std::fs::metadata("/proc/self") {
            Ok(meta) if meta.uid() != 0 => Identity::User { uid: meta.uid(), gid: meta.gid() },
            _ => Identity::Root,
        }
    }
}

/// Turns runc's default spec (its own namespaces, network among them, so no network at all)
/// into the build: `pip wheel` of the one source file on a read-only root, as `kiln` when
/// Kiln runs as root; run rootless, the only user there is is Kiln's own, mapped to root
/// inside a user namespace that has no capabilities and no privilege on the host.
fn configure(config: &mut Value, rootfs: &Path, src: &Path, out: &Path, filename: &str, identity: Identity) {
    config["root"] = json!({"path": rootfs, "readonly": true});
    config["hostname"] = json!("kiln-sdist");
    if let Identity::User { uid, gid } = identity {
        config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        // runc's rootless spec shares the host's network; the build gets none.
        if let Some(namespaces) = config["linux"]["namespaces"].as_array_mut()
            && !namespaces.iter().any(|n| n["type"] == "network")
        {
            namespaces.push(json!({"type": "network"}));
        }
    }
    let process = &mut config["process"];
    process["terminal"] = json!(false);
    process["user"] = match identity {
        Identity::Root => json!({"uid": KILN_UID, "gid": KILN_UID}),
        Identity::User { .. } => json!({"uid": 0, "gid": 0}),
    };
    process["cwd"] = json!("/tmp");
    process["args"] = json!([
        "python3",
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--wheel-dir",
        "/out",
        format!("/src/{filename}")
    ]);
    process["env"] = json!([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/tmp",
        "TMPDIR=/tmp",
        "SOURCE_DATE_EPOCH=0",
        "PYTHONDONTWRITEBYTECODE=1"
    ]);
    process["capabilities"] = json!({"bounding": [], "effective": [], "permitted": [], "ambient": []});
    process["noNewPrivileges"] = json!(true);
    process["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
        {"type": "RLIMIT_CPU", "hard": CPU_SECONDS, "soft": CPU_SECONDS},
        {"type": "RLIMIT_AS", "hard": ADDRESS_SPACE, "soft": ADDRESS_SPACE},
        {"type": "RLIMIT_NPROC", "hard": 512, "soft": 512}
    ]);
    if let Some(mounts) = config["mounts"].as_array_mut() {
        mounts.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=2g"]}));
        mounts.push(json!({"destination": "/src", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]}));
        mounts.push(json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw", "nosuid", "nodev"]}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_isolates_the_build() {
        let mut config =
            json!({"process": {"args": ["sh"]}, "mounts": [], "linux": {"namespaces": [{"type": "network"}]}});
        configure(&mut config, Path::new("/r"), Path::new("/s"), Path::new("/o"), "x-1.0.tar.gz", Identity::Root);
        assert_eq!(config["root"]["readonly"], true);
        assert_eq!(config["process"]["user"]["uid"], KILN_UID);
        assert_eq!(config["process"]["capabilities"]["bounding"], json!([]));
        assert!(config["process"]["args"].to_string().contains("/src/x-1.0.tar.gz"));
        assert!(config["process"]["args"].to_string().contains("--no-index"));
        let mounts = config["mounts"].to_string();
        assert!(mounts.contains("\"/src\"") && mounts.contains("\"ro\""), "{mounts}");
        assert_eq!(config["linux"]["namespaces"], json!([{"type": "network"}]), "runc's own network namespace stays");
    }

    #[test]
    fn rootless_builds_get_a_network_namespace_and_only_kilns_own_user() {
        let mut config = json!({"process": {"args": ["sh"]}, "mounts": [],
                                "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}]}});
        let identity = Identity::User { uid: 1234, gid: 5678 };
        configure(&mut config, Path::new("/r"), Path::new("/s"), Path::new("/o"), "x-1.0.tar.gz", identity);
        assert!(config["linux"]["namespaces"].to_string().contains("\"network\""), "{config}");
        assert_eq!(config["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": 1234, "size": 1}]));
        assert_eq!(config["linux"]["gidMappings"], json!([{"containerID": 0, "hostID": 5678, "size": 1}]));
        assert_eq!(config["process"]["capabilities"]["bounding"], json!([]));
        assert_eq!(config["process"]["noNewPrivileges"], true);
    }
}
