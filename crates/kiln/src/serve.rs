//! `kiln serve`: settings from flags, KILN_* variables and an optional TOML file (in that
//! order of precedence), the embedded store under the data directory, and a graceful stop
//! on SIGINT / SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::ServeArgs;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./kiln-data";
const STORE_FILE: &str = "kiln.redb";
/// Registry blobs and uploads live under this directory of the data directory.
const REGISTRY_DIR: &str = "registry";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log: Option<String>,
    auth_failures_per_minute: Option<u32>,
    registry_gc_grace_seconds: Option<u64>,
    registry_gc_interval_seconds: Option<u64>,
    registry_upload_ttl_seconds: Option<u64>,
    controller_retry_seconds: Option<u64>,
    base_image_recheck_seconds: Option<u64>,
}

#[derive(Debug)]
struct Settings {
    listen: String,
    data_dir: PathBuf,
    log: String,
    auth_failures_per_minute: Option<u32>,
    registry: kiln_registry::Settings,
    controller: kiln_server::controller::Settings,
    run_controller: bool,
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

fn settle(args: ServeArgs) -> Result<Settings> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    Ok(Settings {
        listen: args.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into()),
        data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
        auth_failures_per_minute: args.auth_failures_per_minute.or(file.auth_failures_per_minute),
        run_controller: args.controller,
        controller: {
            let mut controller = kiln_server::controller::Settings::default();
            if let Some(seconds) = args.controller_retry_seconds.or(file.controller_retry_seconds) {
                controller.retry_min = Duration::from_secs(seconds.max(1));
                controller.retry_max = controller.retry_max.max(controller.retry_min);
            }
            if let Some(seconds) = args.base_image_recheck_seconds.or(file.base_image_recheck_seconds) {
                controller.recheck = Duration::from_secs(seconds.max(1));
            }
            controller
        },
        registry: {
            let defaults = kiln_registry::Settings::default();
            let seconds = |flag: Option<u64>, file: Option<u64>, default: Duration| {
                flag.or(file).map(Duration::from_secs).unwrap_or(default)
            };
            kiln_registry::Settings {
                gc_grace: seconds(args.registry_gc_grace_seconds, file.registry_gc_grace_seconds, defaults.gc_grace),
                gc_interval: seconds(
                    args.registry_gc_interval_seconds,
                    file.registry_gc_interval_seconds,
                    defaults.gc_interval,
                )
                .max(Duration::from_secs(1)),
                upload_ttl: seconds(
                    args.registry_upload_ttl_seconds,
                    file.registry_upload_ttl_seconds,
                    defaults.upload_ttl,
                ),
            }
        },
    })
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let settings = settle(args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .with_context(|| format!("log filter {:?} is not valid", settings.log))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    let store_path = settings.data_dir.join(STORE_FILE);
    let store = kiln_store::EmbeddedStore::open(&store_path).with_context(|| {
        format!("cannot open the store {} (is another kiln using this data directory?)", store_path.display())
    })?;
    let store: Arc<dyn kiln_store::KvStore> = Arc::new(store);

    let given = std::env::var("KILN_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    match kiln_server::auth::bootstrap::ensure_admin(store.as_ref(), given.as_deref()).await {
        Ok(Some(secret)) => {
            println!("created the administrator \"admin\"; its token is shown this once: {secret}");
        }
        Ok(None) => {}
        Err(e) => anyhow::bail!("creating the first administrator: {}", e.message),
    }

    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    println!("listening on http://{address}");
    tracing::info!(%address, data_dir = %settings.data_dir.display(), "kiln is serving");

    if settings.run_controller {
        kiln_server::controller::base_images::spawn(store.clone(), settings.controller.clone());
    }
    let registry_dir = settings.data_dir.join(REGISTRY_DIR);
    let blobs = kiln_registry::blobs::FsBlobStore::open(&registry_dir)
        .with_context(|| format!("cannot open the registry's blob directory {}", registry_dir.display()))?;
    let mut state = kiln_server::AppState::new(store);
    state.blobs = Some(Arc::new(blobs));
    state.registry = settings.registry;
    if let Some(limit) = settings.auth_failures_per_minute {
        state.auth_failures_per_minute = limit;
    }
    let app = kiln_server::app(state);
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Without TCP_NODELAY a streamed body's second small write waits for the client's
    // delayed ACK (40 ms per small blob pull).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
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
        ServeArgs {
            listen: listen.map(str::to_string),
            data_dir: None,
            config,
            log: None,
            auth_failures_per_minute: None,
            registry_gc_grace_seconds: None,
            registry_gc_interval_seconds: None,
            registry_upload_ttl_seconds: None,
            controller_retry_seconds: None,
            base_image_recheck_seconds: None,
            controller: true,
        }
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
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let err = settle(args(None, Some(path))).unwrap_err();
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
    }
}
