//! The listener of `ferrio serve`: plain HTTP, or TLS when `server.tls_cert` and
//! `server.tls_key` are set, with both files re-read on SIGHUP.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use axum::Router;
use ferrio_engineio::{serve_tls, ServeConfig, TlsFiles};
use tokio::net::TcpListener;

use crate::config::model::Server;

/// The server loop, to be spawned: it runs until dropped.
pub(crate) type Serving = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// Serves `app` on `listener`, with TLS when the configuration asks for it, and logs where.
/// Fails when only one TLS file is set or the files cannot be used (the lints say the same
/// before this runs).
pub(crate) fn serve(
    listener: TcpListener,
    app: Router,
    server: &Server,
    path: &str,
) -> anyhow::Result<Serving> {
    let local = listener.local_addr()?;
    match (server.tls_cert.is_empty(), server.tls_key.is_empty()) {
        (true, true) => {
            ignore_hangup()?;
            tracing::info!("ferrio listening on http://{local} (Socket.IO at {path})");
            Ok(Box::pin(ferrio_socketio::serve(listener, app)))
        }
        (false, false) => {
            let tls = TlsFiles::load(&server.tls_cert, &server.tls_key)
                .context("cannot use server.tls_cert and server.tls_key")?;
            reload_on_hangup(tls.clone())?;
            tracing::info!(
                "ferrio listening on https://{local} (Socket.IO at {path}; TLS from {}, reloaded on SIGHUP)",
                server.tls_cert
            );
            Ok(Box::pin(serve_tls(
                listener,
                app,
                ServeConfig::default(),
                tls,
            )))
        }
        _ => anyhow::bail!("server.tls_cert and server.tls_key must be set together"),
    }
}

/// Re-reads the TLS files on every SIGHUP, for as long as the process runs. A reload that
/// fails is logged and the certificate in use stays.
fn reload_on_hangup(tls: TlsFiles) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.cert_path().display(),
                    "TLS certificate reloaded: new connections use it, open ones keep theirs"
                ),
                Err(error) => tracing::error!(
                    %error,
                    "TLS reload failed; the previous certificate stays in use"
                ),
            }
        }
    });
    Ok(())
}

/// Without TLS there is nothing to reload, but a SIGHUP (sent by habit, or by a log rotation
/// script) must not end the process, which is the signal's default action: it is logged.
fn ignore_hangup() -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP received: no TLS files to reload (server.tls_cert is not set)");
        }
    });
    Ok(())
}
