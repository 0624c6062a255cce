//! `ferrio serve`: the server process.

use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use ferrio_socketio::{SocketIo, SocketIoConfig};

use crate::config::build::{mount_path, socketio_config};
use crate::config::model::{AdapterKind, Config, Log, LogFormat};

/// How long connected clients get to hear of a shutdown before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Installs the log subscriber: `log.level` as the filter, text or JSON lines.
pub(crate) fn init_logging(log: &Log) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    if config.cluster.adapter == AdapterKind::Redis {
        anyhow::bail!("cluster.adapter = \"redis\" is not available in this build of ferrio yet");
    }
    let io_config: SocketIoConfig = socketio_config(&config).map_err(anyhow::Error::msg)?;
    let path = mount_path(&config.server.path);
    let (service, io) = SocketIo::new(io_config);
    let gateway = crate::gateway::install(&io, &config).map_err(anyhow::Error::msg)?;
    tracing::info!("{}", gateway.describe());
    let mut app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route_service(&path, service.clone());
    let bare = path.trim_end_matches('/');
    if !bare.is_empty() {
        app = app.route_service(bare, service);
    }

    let address = (config.server.host.as_str(), config.server.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (server.host, server.port)",
                config.server.host, config.server.port
            )
        })?;
    tracing::info!(
        "ferrio listening on http://{} (Socket.IO at {path})",
        listener.local_addr()?
    );
    tokio::select! {
        result = ferrio_socketio::serve(listener, app) => result.context("server failed")?,
        () = shutdown_signal() => {
            tracing::info!("shutting down: disconnecting clients");
            io.close();
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
