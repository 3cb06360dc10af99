//! The Dockerfile of a build, rendered from what the build produced: the image config's
//! settings, the parent's dpkg status and language packages, the lock and the plugin files.

use kiln_model::{Ecosystem, Lock};

use super::pipeline::BuildSpec;

/// The Dockerfile that builds the image again, with the files of its build context. An image
/// whose chain starts at a Kiln root image (its config carries the root's `dev.kiln.language`
/// label) is rebuilt whole from the release's Debian image: every Debian package of the chain
/// (the parent's dpkg status and this build's), every Python distribution, the root's function
/// server. Kiln's root images have no apt, so `FROM` one could not build. An image on a base
/// image from elsewhere starts from that base, which is expected to have apt.
pub(super) fn equivalent(
    spec: &BuildSpec,
    distribution: &kiln_packages::deb::release::Distribution,
    lock: &Lock,
    config: &[u8],
) -> Result<(String, Vec<kiln_model::ContextFile>), String> {
    let settings = kiln_build::settings_of_config(config);
    let root = settings.labels.get("dev.kiln.language").and_then(|l| kiln_build::Language::parse(l));
    let from_release = root.is_some() || spec.parent.is_none();
    // A release that is not Debian's has no official image; Debian stable is the nearest.
    let base = match (&spec.parent, from_release) {
        (Some(parent), false) => parent.reference.clone(),
        _ => distribution.docker_base().unwrap_or_else(|| "debian:stable-slim".to_string()),
    };
    let of = |ecosystem: Ecosystem| {
        lock.packages.iter().filter(move |p| p.ecosystem == ecosystem).map(|p| (p.name.clone(), p.version.clone()))
    };
    let mut debian = Vec::new();
    let mut python = Vec::new();
    let mut files = Vec::new();
    if from_release {
        if let Some(parent) = &spec.parent {
            let installed = kiln_packages::deb::status::parse_status(&parent.image.dpkg_status)
                .map_err(|e| format!("the parent's dpkg status cannot be read: {e}"))?;
            debian.extend(installed.into_iter().map(|p| (p.name, p.version)));
        }
        let ours: Vec<String> = of(Ecosystem::Pypi).map(|(n, _)| kiln_packages::pypi::normalize_name(&n)).collect();
        python.extend(
            spec.parent_runtime
                .iter()
                .filter(|i| i.ecosystem == Ecosystem::Pypi)
                .filter(|i| !ours.contains(&kiln_packages::pypi::normalize_name(&i.name)))
                .map(|i| (i.name.clone(), i.version.clone())),
        );
        if let Some(language) = root {
            files.extend(kiln_build::plugin(language).files);
        }
    }
    debian.extend(of(Ecosystem::Deb));
    python.extend(of(Ecosystem::Pypi));
    files.extend(spec.extra_files.iter().cloned());
    let python_sdists = lock.packages.iter().any(|p| p.ecosystem == Ecosystem::Pypi && !p.filename.ends_with(".whl"));
    let npm = match (&spec.node, &lock.npm_lockfile) {
        (Some(manifest), Some(lockfile)) => Some((manifest.package_json.as_slice(), lockfile.as_str())),
        _ => None,
    };
    let recipe = kiln_build::Recipe {
        debian,
        python,
        python_sdists,
        npm,
        files: &files,
        ..kiln_build::Recipe::new(&base, &settings)
    };
    let rendered = kiln_build::render_dockerfile(&recipe).map_err(|e| e.to_string())?;
    let mut context = Vec::new();
    for file in rendered.context {
        let content = String::from_utf8(file.data)
            .map_err(|_| format!("the build context's {} is not text, which a build record cannot hold", file.path))?;
        context.push(kiln_model::ContextFile { path: file.path, content });
    }
    Ok((rendered.dockerfile, context))
}
