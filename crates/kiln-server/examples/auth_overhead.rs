//! Serves one store twice, with and without authorization, so `bench/auth.sh` can measure
//! what authorization costs per request on the same data. Not part of `kiln serve`.

use std::sync::Arc;

use kiln_server::{AppState, app, app_without_auth_for_benchmarks};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::env::args().nth(1).ok_or("usage: auth_overhead DATA_DIR (KILN_ADMIN_TOKEN sets the token)")?;
    let token = std::env::var("KILN_ADMIN_TOKEN").map_err(|_| "set KILN_ADMIN_TOKEN")?;
    std::fs::create_dir_all(&data_dir)?;
    let store: Arc<dyn kiln_store::KvStore> =
        Arc::new(kiln_store::EmbeddedStore::open(&std::path::Path::new(&data_dir).join("kiln.redb"))?);
    kiln_server::auth::bootstrap::ensure_admin(store.as_ref(), Some(&token)).await.map_err(|e| e.message)?;
    let with_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let without_auth = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("auth http://{}", with_auth.local_addr()?);
    println!("noauth http://{}", without_auth.local_addr()?);
    let state = AppState::new(store);
    let a = app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let b = app_without_auth_for_benchmarks(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::try_join!(axum::serve(with_auth, a), axum::serve(without_auth, b))?;
    Ok(())
}
