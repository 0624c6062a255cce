//! What every example does the same way: where it listens and how it logs.
//!
//! Included by each example with `#[path = "../common/mod.rs"] mod common;`.

use tokio::net::TcpListener;

/// Binds `HOST:PORT` from the environment (`127.0.0.1` and `default_port` when unset), so tests
/// and benchmarks can place an example on a free port.
pub(crate) async fn bind_from_env(default_port: u16) -> std::io::Result<TcpListener> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| default_port.to_string());
    TcpListener::bind(format!("{host}:{port}")).await
}

/// Logs warnings and errors to stderr; `RUST_LOG` chooses otherwise.
#[allow(dead_code)] // bench_server logs nothing, by contract.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}
