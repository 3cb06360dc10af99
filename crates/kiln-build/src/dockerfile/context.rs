//! What goes around the Dockerfile: the build context its `COPY` lines read (one tar to
//! download and build from), and the runtime settings read back from the image config, so
//! the Dockerfile says what the image really has, the parents' settings included.

use std::collections::BTreeMap;

use crate::settings::ImageSettings;

/// A file of the build context, by its path relative to the context directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub path: String,
    pub data: Vec<u8>,
}

/// A tar of `Dockerfile` and the context files, ready for `docker build -` or to unpack and
/// `buildah bud`. Paths were checked when the Dockerfile was rendered.
pub fn context_tar(dockerfile: &str, files: &[ContextFile]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        builder.append_data(&mut header, path, data)
    };
    append("Dockerfile", dockerfile.as_bytes())?;
    for file in files {
        append(&file.path, &file.data)?;
    }
    builder.into_inner()
}

/// The settings an OCI image config holds (`config.Env`, `User`, `WorkingDir`,
/// `Entrypoint`, `Cmd`, `Labels`, `ExposedPorts`); members of the wrong type are skipped.
pub fn settings_of_config(config: &[u8]) -> ImageSettings {
    let document: serde_json::Value = serde_json::from_slice(config).unwrap_or_default();
    let config = &document["config"];
    let text = |key: &str| config.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let list = |key: &str| {
        config
            .get(key)
            .and_then(|v| v.as_array())
            .map(|items| items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect::<Vec<_>>())
    };
    let env = list("Env")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(n, v)| (n.to_string(), v.to_string())))
        .collect();
    let labels: BTreeMap<String, String> = config
        .get("Labels")
        .and_then(|v| v.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let exposed_ports =
        config.get("ExposedPorts").and_then(|v| v.as_object()).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    ImageSettings {
        env,
        user: text("User"),
        entrypoint: list("Entrypoint"),
        cmd: list("Cmd"),
        working_dir: text("WorkingDir"),
        labels,
        exposed_ports,
        architecture: document.get("architecture").and_then(|v| v.as_str()).map(str::to_string),
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_back_from_the_config() {
        let config = br#"{"architecture":"amd64","config":{"Env":["PATH=/usr/bin","PORT=8080"],"User":"kiln",
            "Entrypoint":["/usr/bin/python3","/usr/lib/kiln/server.py"],"Cmd":null,"WorkingDir":"/function",
            "Labels":{"dev.kiln.language":"python3"},"ExposedPorts":{"8080/tcp":{}}}}"#;
        let settings = settings_of_config(config);
        assert_eq!(settings.env, [("PATH".into(), "/usr/bin".into()), ("PORT".into(), "8080".into())]);
        assert_eq!(settings.user.as_deref(), Some("kiln"));
        assert_eq!(settings.cmd, None);
        assert_eq!(settings.exposed_ports, ["8080/tcp"]);
        assert_eq!(settings.labels.get("dev.kiln.language").map(String::as_str), Some("python3"));
        assert_eq!(settings_of_config(b"not json"), ImageSettings::default());
    }

    #[test]
    fn the_context_tar_holds_the_dockerfile_and_the_files() {
        let files = [ContextFile { path: "usr/lib/kiln/server.py".into(), data: b"print()\n".to_vec() }];
        let tar = context_tar("FROM x\n", &files).expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .filter_map(|e| e.ok()?.path().ok().map(|p| p.display().to_string()))
            .collect();
        assert_eq!(names, ["Dockerfile", "usr/lib/kiln/server.py"]);
    }
}
