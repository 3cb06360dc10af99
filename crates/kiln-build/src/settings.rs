//! What a user (or a plugin) says about the running container, separate from how the config
//! JSON spells it, so the config writer and the Dockerfile renderer read the same values.

use std::collections::BTreeMap;

/// Runtime settings of an image, applied over the parent's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// Merged over the parent's `Env` by name: a name already there keeps its place with the
    /// new value, new names are appended in this order.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    /// Setting an entrypoint without a `cmd` drops the parent's `Cmd`, as `docker build` does:
    /// the parent's arguments were meant for the parent's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// Merged over the parent's labels; these win.
    pub labels: BTreeMap<String, String>,
    /// `port/proto` such as `8080/tcp`, added to the parent's.
    pub exposed_ports: Vec<String>,
    /// OCI architecture of a root image (no parent); `amd64` when absent. A parent's is kept.
    pub architecture: Option<String>,
    /// Annotations of the image manifest.
    pub annotations: BTreeMap<String, String>,
}

impl ImageSettings {
    /// `over` applied on top of `self`: for plugin defaults under a user's settings. Options
    /// set in `over` win; env and labels merge by name; ports and annotations add up.
    pub fn overlay(&self, over: &ImageSettings) -> ImageSettings {
        let mut env = self.env.clone();
        for (name, value) in &over.env {
            match env.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => env.push((name.clone(), value.clone())),
            }
        }
        let mut exposed_ports = self.exposed_ports.clone();
        for port in &over.exposed_ports {
            if !exposed_ports.contains(port) {
                exposed_ports.push(port.clone());
            }
        }
        let mut labels = self.labels.clone();
        labels.extend(over.labels.clone());
        let mut annotations = self.annotations.clone();
        annotations.extend(over.annotations.clone());
        ImageSettings {
            env,
            user: over.user.clone().or_else(|| self.user.clone()),
            entrypoint: over.entrypoint.clone().or_else(|| self.entrypoint.clone()),
            cmd: if over.entrypoint.is_some() && over.cmd.is_none() {
                None
            } else {
                over.cmd.clone().or_else(|| self.cmd.clone())
            },
            working_dir: over.working_dir.clone().or_else(|| self.working_dir.clone()),
            labels,
            exposed_ports,
            architecture: over.architecture.clone().or_else(|| self.architecture.clone()),
            annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_merges_by_name() {
        let base = ImageSettings {
            env: vec![("PORT".into(), "8080".into()), ("A".into(), "1".into())],
            cmd: Some(vec!["x".into()]),
            user: Some("kiln".into()),
            ..ImageSettings::default()
        };
        let over = ImageSettings {
            env: vec![("A".into(), "2".into()), ("B".into(), "3".into())],
            entrypoint: Some(vec!["/bin/app".into()]),
            ..ImageSettings::default()
        };
        let merged = base.overlay(&over);
        assert_eq!(merged.env, [("PORT".into(), "8080".into()), ("A".into(), "2".into()), ("B".into(), "3".into())]);
        assert_eq!(merged.user.as_deref(), Some("kiln"));
        assert_eq!(merged.cmd, None, "a new entrypoint drops the old cmd");
    }
}
