//! `ferrio serve`: the server process.

use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use ferrio_socketio::{SocketIo, SocketIoConfig};

use crate::cli::ServeArgs;

/// How long connected clients get to hear of a shutdown before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (service, io) = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        tracing::debug!(id = %socket.id(), "connected");
        // `ferrio doctor` measures an event round trip with this event: echo it back.
        socket.on(crate::doctor::DOCTOR_EVENT, |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    });
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route_service("/socket.io/", service.clone())
        .route_service("/socket.io", service);

    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        "ferrio listening on http://{} (Socket.IO at /socket.io/)",
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
