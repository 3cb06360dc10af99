//! Dockerfile rendering tests, including values that try to inject instructions.

use std::collections::BTreeMap;

use kiln_model::inventory::LockedPackage;
use kiln_model::package::Ecosystem;

use super::*;

fn lock(packages: &[(&str, &str)]) -> Lock {
    Lock {
        packages: packages
            .iter()
            .map(|(name, version)| LockedPackage {
                ecosystem: Ecosystem::Deb,
                name: name.to_string(),
                version: version.to_string(),
                architecture: "amd64".into(),
                sha256: String::new(),
                size: 0,
                source: "debian".into(),
                filename: String::new(),
                integrity: None,
            })
            .collect(),
        npm_lockfile: None,
    }
}

fn entry(path: &str, kind: EntryKind, mode: u32, owner: u32) -> Entry {
    Entry { path: path.into(), kind, mode, uid: owner, gid: owner }
}

#[test]
fn renders_a_function_image() {
    let settings = ImageSettings {
        env: vec![("PORT".into(), "8080".into()), ("GREETING".into(), "say \"hi\" to $USER\\".into())],
        user: Some("kiln".into()),
        working_dir: Some("/function".into()),
        entrypoint: Some(vec!["/usr/bin/python3".into(), "/usr/lib/kiln/server.py".into()]),
        labels: BTreeMap::from([("org.example/x".to_string(), "a b".to_string())]),
        exposed_ports: vec!["8080/tcp".into()],
        ..ImageSettings::default()
    };
    let files = [
        entry("usr/lib/kiln/server.py", EntryKind::File { data: "".into() }, 0o644, 0),
        entry("function", EntryKind::Directory, 0o755, 1000),
    ];
    let text = render_dockerfile(
        "debian:bookworm-slim",
        &lock(&[("python3", "3.11.2-1+b1"), ("libpq5", "15.8-0+deb12u1")]),
        &files,
        &settings,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let expected = r#"FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 \
        libpq5=15.8-0+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
ENV PORT="8080"
ENV GREETING="say \"hi\" to \$USER\\"
LABEL "org.example/x"="a b"
RUN install -d -m 0755 -o 1000 -g 1000 '/function'
COPY --chmod=0644 ["usr/lib/kiln/server.py", "/usr/lib/kiln/server.py"]
EXPOSE 8080/tcp
USER "kiln"
WORKDIR "/function"
ENTRYPOINT ["/usr/bin/python3","/usr/lib/kiln/server.py"]
"#;
    assert_eq!(text.split_once('\n').map(|(_, rest)| rest), Some(expected));
}

#[test]
fn refuses_what_cannot_be_escaped() {
    let newline = ImageSettings { env: vec![("A".into(), "x\nRUN rm -rf /".into())], ..ImageSettings::default() };
    assert!(matches!(render_dockerfile("d", &Lock::default(), &[], &newline), Err(DockerfileError::LineBreak { .. })));
    let bad_name = ImageSettings { env: vec![("A B".into(), "x".into())], ..ImageSettings::default() };
    assert!(matches!(render_dockerfile("d", &Lock::default(), &[], &bad_name), Err(DockerfileError::EnvName(_))));
    let injected = lock(&[("python3", "1 && curl evil")]);
    assert!(matches!(
        render_dockerfile("d", &injected, &[], &ImageSettings::default()),
        Err(DockerfileError::Package { .. })
    ));
    let label =
        ImageSettings { labels: BTreeMap::from([("k".to_string(), "v\r".to_string())]), ..ImageSettings::default() };
    assert!(render_dockerfile("d", &Lock::default(), &[], &label).is_err());
    let from = render_dockerfile("d\nRUN x", &Lock::default(), &[], &ImageSettings::default());
    assert!(from.is_err());
}

#[test]
fn links_are_quoted_for_sh() {
    let files = [entry("usr/bin/x", EntryKind::Symlink { target: "it's".into() }, 0o777, 0)];
    let text = render_dockerfile("d", &Lock::default(), &files, &ImageSettings::default()).unwrap_or_default();
    assert!(text.contains(r#"RUN ln -sfn 'it'\''s' '/usr/bin/x'"#), "{text}");
}

#[test]
fn npm_packages_become_npm_ci_of_the_lock() {
    let mut lock = lock(&[("libpq5", "15.8-0+deb12u1")]);
    lock.packages.push(LockedPackage {
        ecosystem: Ecosystem::Npm,
        name: "lodash".into(),
        version: "4.17.21".into(),
        architecture: String::new(),
        sha256: String::new(),
        size: 0,
        source: "npm".into(),
        filename: "node_modules/lodash".into(),
        integrity: Some("sha512-x".into()),
    });
    let text = render_dockerfile("kiln/nodejs:1", &lock, &[], &ImageSettings::default()).expect("renders");
    assert!(text.contains("libpq5=15.8-0+deb12u1"), "{text}");
    assert!(!text.contains("lodash=4"), "npm packages are not apt packages: {text}");
    assert!(text.contains("COPY package.json package-lock.json /opt/kiln/node/\n"), "{text}");
    assert!(text.contains("npm ci --omit=dev --ignore-scripts"), "{text}");
}
