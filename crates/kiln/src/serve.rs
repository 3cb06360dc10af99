//! `kiln serve`: settings from flags, KILN_* variables and an optional TOML file (in that
//! order of precedence), the embedded store under the data directory, and a graceful stop
//! on SIGINT / SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::ServeArgs;

/// Not 8080: that is where the function servers of the images Kiln builds listen, and a
/// developer running both on one machine should not have to move either.
const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
const DEFAULT_DATA_DIR: &str = "./kiln-data";
const STORE_FILE: &str = "kiln.redb";
/// Registry blobs and uploads live under this directory of the data directory.
const REGISTRY_DIR: &str = "registry";
/// Task scratch directories.
const SCRATCH_DIR: &str = "scratch";
/// This server's node name (see `node_name`).
const NODE_FILE: &str = "node";
/// Downloaded packages and verified indexes, shared by builds.
const CACHE_DIR: &str = "cache";
/// Where the machine's apt configuration lives: its sources are the default package sources.
const DEFAULT_APT_CONFIG_DIR: &str = "/etc/apt";

struct Settings {
    listen: String,
    data_dir: PathBuf,
    log: String,
    auth_failures_per_minute: Option<u32>,
    registry: kiln_registry::Settings,
    controller: kiln_builder::controllers::Settings,
    run_controller: bool,
    workers: Option<usize>,
    task_timeout: Option<Duration>,
    task_lease: Option<Duration>,
    scratch_limit: Option<u64>,
    registry_host: Option<String>,
    /// `None`: only administrators' package sources.
    apt_config_dir: Option<PathBuf>,
    package_cache_limit: Option<u64>,
    layer_budget: Option<usize>,
    /// `None`: only administrators' `pypi` package sources.
    pypi_index_url: Option<String>,
    wheel_size_limit: Option<u64>,
    build_memory_limit: Option<u64>,
    /// `None`: only administrators' `npm` package sources.
    npm_registry_url: Option<String>,
    npm_allow_scripts: bool,
    pypi_sdist_builder: Option<String>,
}

fn read_config(path: &Path) -> Result<ServeArgs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

/// The flags (and `KILN_*` variables) over the config file: a setting the flags leave unset
/// comes from the file. Done through the one struct's serde form, so no setting is listed twice.
fn merged(flags: ServeArgs) -> Result<ServeArgs> {
    let Some(path) = flags.config.clone() else { return Ok(flags) };
    let file = read_config(&path)?;
    let as_object = |args: &ServeArgs| match serde_json::to_value(args) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => anyhow::bail!("serve settings are not a table"),
        Err(e) => Err(e).context("reading serve settings"),
    };
    let mut object = as_object(&file)?;
    for (key, value) in as_object(&flags)? {
        if !value.is_null() {
            object.insert(key, value);
        }
    }
    let mut merged: ServeArgs =
        serde_json::from_value(serde_json::Value::Object(object)).context("merging serve settings")?;
    merged.config = Some(path);
    Ok(merged)
}

fn settle(args: ServeArgs) -> Result<Settings> {
    let args = merged(args)?;
    Ok(Settings {
        listen: args.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
        data_dir: args.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        log: args.log.unwrap_or_else(|| "info".into()),
        auth_failures_per_minute: args.auth_failures_per_minute,
        run_controller: args.controller.unwrap_or(true),
        workers: args.workers,
        task_timeout: args.task_timeout_seconds.map(Duration::from_secs),
        task_lease: args.task_lease_seconds.map(|s| Duration::from_secs(s.max(3))),
        scratch_limit: args.scratch_limit_bytes,
        registry_host: args.registry_host,
        apt_config_dir: match args.apt_config_dir {
            Some(dir) if dir.as_os_str().is_empty() || dir.as_os_str() == "none" => None,
            Some(dir) => Some(dir),
            None => Some(PathBuf::from(DEFAULT_APT_CONFIG_DIR)),
        },
        package_cache_limit: args.package_cache_limit_bytes,
        layer_budget: args.layer_budget,
        pypi_index_url: match args.pypi_index_url {
            Some(url) if url.is_empty() || url == "none" => None,
            Some(url) => Some(url),
            None => crate::pip_config::machine_index_url(),
        },
        wheel_size_limit: args.wheel_size_limit_bytes,
        build_memory_limit: args.build_memory_limit_bytes,
        npm_registry_url: match args.npm_registry_url {
            Some(url) if url.is_empty() || url == "none" => None,
            Some(url) => Some(url),
            None => crate::npm_config::machine_registry_url(),
        },
        npm_allow_scripts: args.npm_allow_scripts.unwrap_or(false),
        pypi_sdist_builder: args.pypi_sdist_builder.filter(|n| !n.is_empty() && n != "none"),
        controller: {
            let mut controller = kiln_builder::controllers::Settings::default();
            if let Some(seconds) = args.controller_retry_seconds {
                controller.retry_min = Duration::from_secs(seconds.max(1));
                controller.retry_max = controller.retry_max.max(controller.retry_min);
            }
            if let Some(seconds) = args.base_image_recheck_seconds {
                controller.recheck = Duration::from_secs(seconds.max(1));
            }
            controller
        },
        registry: {
            let defaults = kiln_registry::Settings::default();
            let seconds = |flag: Option<u64>, default: Duration| flag.map(Duration::from_secs).unwrap_or(default);
            kiln_registry::Settings {
                gc_grace: seconds(args.registry_gc_grace_seconds, defaults.gc_grace),
                gc_interval: seconds(args.registry_gc_interval_seconds, defaults.gc_interval)
                    .max(Duration::from_secs(1)),
                upload_ttl: seconds(args.registry_upload_ttl_seconds, defaults.upload_ttl),
            }
        },
    })
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let settings = settle(args)?;
    // The PyPI solver narrates every step at INFO; that is its debugging, not Kiln's news.
    let directives = match settings.log.contains("pubgrub") {
        true => settings.log.clone(),
        false => format!("{},pubgrub=warn", settings.log),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("log filter {:?} is not valid", settings.log))?;
    // Colour codes only for a person at a terminal; a file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();

    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let store_path = settings.data_dir.join(STORE_FILE);
    let store = kiln_store::EmbeddedStore::open(&store_path).with_context(|| {
        format!("cannot open the store {} (is another kiln using this data directory?)", store_path.display())
    })?;
    let store: Arc<dyn kiln_store::KvStore> = Arc::new(store);

    // Everything that can fail comes before the administrator is created: a start that
    // cannot serve must not use up the token it would print.
    let listener = tokio::net::TcpListener::bind(&settings.listen).await.with_context(|| {
        format!("cannot listen on {}: is another server using the port? choose one with --listen", settings.listen)
    })?;
    let address = listener.local_addr().context("reading the bound address")?;

    let registry_dir = settings.data_dir.join(REGISTRY_DIR);
    let blobs = kiln_registry::blobs::FsBlobStore::open(&registry_dir)
        .with_context(|| format!("cannot open the registry's blob directory {}", registry_dir.display()))?;
    let mut state = kiln_server::AppState::new(store.clone());
    state.blobs = Some(Arc::new(blobs));
    state.registry = settings.registry;
    if let Some(limit) = settings.auth_failures_per_minute {
        state.auth_failures_per_minute = limit;
    }
    if settings.run_controller {
        let node = node_name(&settings.data_dir)?;
        let mut tasks = kiln_tasks::TaskSettings::new(settings.data_dir.join(SCRATCH_DIR), node);
        if let Some(workers) = settings.workers {
            tasks.workers = workers.max(1);
        }
        if let Some(timeout) = settings.task_timeout {
            tasks.default_timeout = timeout;
        }
        if let Some(lease) = settings.task_lease {
            tasks.lease = lease;
        }
        if let Some(limit) = settings.scratch_limit {
            tasks.scratch_limit = limit;
        }
        // Scratch left by a killed process belongs to nobody now; its tasks start afresh.
        let _ = std::fs::remove_dir_all(&tasks.scratch_dir);
        state.task_settings = Some(tasks);
        state.controller = Some(settings.controller.clone());
        let registry_host = settings.registry_host.clone().unwrap_or_else(|| match address.ip().is_unspecified() {
            true => format!("localhost:{}", address.port()),
            false => address.to_string(),
        });
        state.builds = Some(kiln_builder::builds::BuildSettings {
            registry_host,
            apt_config_dir: settings.apt_config_dir.clone(),
            cache_dir: settings.data_dir.join(CACHE_DIR),
            cache_limit: settings.package_cache_limit.unwrap_or(10 << 30),
            layer_budget: settings.layer_budget.unwrap_or(kiln_build::DEFAULT_LAYER_BUDGET),
            source_date_epoch: source_date_epoch()?,
            architecture: debian_architecture().to_string(),
            pypi_index_url: settings.pypi_index_url.clone(),
            wheel_size_limit: settings.wheel_size_limit.unwrap_or(1 << 30),
            build_memory_limit: settings.build_memory_limit.unwrap_or(kiln_builder::builds::DEFAULT_BUILD_MEMORY_LIMIT),
            npm_registry_url: settings.npm_registry_url.clone(),
            npm_allow_scripts: settings.npm_allow_scripts,
            pypi_sdist_builder: settings.pypi_sdist_builder.clone(),
        });
    }

    // Records from before names ignored case get their claims; clashing pairs are reported.
    for clash in kiln_server::migrate_name_claims(store.as_ref()).await.context("claiming stored names")? {
        tracing::warn!("{clash}");
    }

    let given = admin_token_from_env();
    match kiln_server::auth::bootstrap::ensure_admin(store.as_ref(), given.as_deref()).await {
        Ok(Some(secret)) => {
            println!("created the administrator \"admin\"; its token is shown this once: {secret}");
        }
        Ok(None) => {}
        Err(e) => anyhow::bail!("creating the first administrator: {}", e.message),
    }
    println!("listening on http://{address}");
    tracing::info!(%address, data_dir = %settings.data_dir.display(), "kiln is serving");

    let shutdown = tokio_util::sync::CancellationToken::new();
    let (app, background) = kiln_server::start(state, shutdown.clone());
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Without TCP_NODELAY a streamed body's second small write waits for the client's
    // delayed ACK (40 ms per small blob pull).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.cancel();
    });
    let served = axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await;
    // Tasks in flight stay RUNNING under this node; its next start takes them back.
    background.stop().await;
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// The administrator's token chosen by whoever starts Kiln (`KILN_ADMIN_TOKEN`), if any.
pub fn admin_token_from_env() -> Option<String> {
    std::env::var("KILN_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())
}

/// `kiln admin reset-token`: a new administrator token in a data directory no server is
/// using, every earlier token of `admin` revoked.
pub async fn reset_admin_token(data_dir: &Path) -> Result<()> {
    let store_path = data_dir.join(STORE_FILE);
    if !store_path.exists() {
        anyhow::bail!(
            "{} holds no Kiln store: give the --data-dir that kiln serve uses (its first start prints the administrator's token)",
            data_dir.display()
        );
    }
    let store = match kiln_store::EmbeddedStore::open(&store_path) {
        Ok(store) => store,
        Err(kiln_store::StoreError::InUse(_)) => anyhow::bail!(
            "a kiln server is using {}: stop it, then run kiln admin reset-token again",
            data_dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot open the store {}", store_path.display())),
    };
    let given = admin_token_from_env();
    let reset = kiln_server::auth::bootstrap::reset_admin(&store, given.as_deref()).await;
    store.close();
    match reset {
        Ok(Some(secret)) => {
            println!("the administrator \"admin\" has a new token, shown this once: {secret}");
            println!("every earlier token of admin is revoked");
        }
        Ok(None) => println!(
            "the administrator \"admin\" now uses the token in KILN_ADMIN_TOKEN; every earlier token of admin is revoked"
        ),
        Err(e) => anyhow::bail!("resetting the administrator's token: {}", e.message),
    }
    Ok(())
}

/// Every timestamp inside built images (reproducible builds' convention); 0 when unset.
fn source_date_epoch() -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => {
            text.parse().with_context(|| format!("SOURCE_DATE_EPOCH {text:?} is not a number of seconds"))
        }
        _ => Ok(0),
    }
}

fn debian_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// This server's stable name, kept in the data directory so that after a restart it takes
/// back at once the tasks it held when it stopped.
fn node_name(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(NODE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => return Ok(name.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let name = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    std::fs::write(&path, &name).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(name)
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(listen: Option<&str>, config: Option<PathBuf>) -> ServeArgs {
        ServeArgs { listen: listen.map(str::to_string), config, ..ServeArgs::default() }
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/k\"\n").unwrap();
        let from_file = settle(args(None, Some(path.clone()))).unwrap();
        assert_eq!((from_file.listen.as_str(), from_file.data_dir.as_path()), ("127.0.0.1:9999", Path::new("/tmp/k")));
        let from_flag = settle(args(Some("127.0.0.1:0"), Some(path))).unwrap();
        assert_eq!(from_flag.listen, "127.0.0.1:0");
        let defaults = settle(args(None, None)).unwrap();
        assert_eq!((defaults.listen.as_str(), defaults.log.as_str()), (DEFAULT_LISTEN, "info"));
        let port = DEFAULT_LISTEN.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        assert_ne!(port, Some(kiln_build::FUNCTION_PORT), "kiln and the functions it builds share a port");
        assert_eq!(
            crate::credentials::DEFAULT_SERVER,
            format!("http://{DEFAULT_LISTEN}"),
            "the client finds the server"
        );
    }

    #[test]
    fn every_flag_can_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "workers = 5\ncontroller = false\nnpm_allow_scripts = true\nlayer_budget = 3\n").unwrap();
        let settings = settle(ServeArgs { workers: Some(7), ..args(None, Some(path)) }).unwrap();
        assert_eq!(settings.workers, Some(7), "the flag wins");
        assert!(!settings.run_controller);
        assert!(settings.npm_allow_scripts);
        assert_eq!(settings.layer_budget, Some(3));
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let Err(err) = settle(args(None, Some(path))) else { panic!("an unknown key was accepted") };
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
    }
}
