//! `ferrio serve`: the server process.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ferrio_socketio::{SocketIo, SocketIoConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::build::{mount_path, socketio_config};
use crate::config::model::{Config, Log, LogFormat};

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

/// The gauge of open Engine.IO connections, read at each scrape.
const CONNECTIONS: &str = "ferrio_connections";
/// The gauge of connected sockets per namespace, read at each scrape.
const SOCKETS: &str = "ferrio_sockets";
/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// What `GET /metrics` needs: the recorder's handle and the server it reads the gauges from.
struct Scrape {
    handle: PrometheusHandle,
    io: SocketIo,
    /// Namespaces given a `ferrio_sockets` value before, set to 0 once they are gone.
    namespaces: Mutex<BTreeSet<String>>,
}

impl Scrape {
    /// Updates the gauges read from the server, then renders every metric.
    fn render(&self) -> String {
        metrics::gauge!(CONNECTIONS).set(self.io.connection_count() as f64);
        let mut seen = BTreeSet::new();
        for namespace in self.io.namespaces() {
            let name = namespace.name().to_owned();
            metrics::gauge!(SOCKETS, "namespace" => name.clone())
                .set(namespace.socket_count() as f64);
            seen.insert(name);
        }
        let mut known = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        for gone in known.difference(&seen) {
            metrics::gauge!(SOCKETS, "namespace" => gone.clone()).set(0.0);
        }
        known.extend(seen);
        drop(known);
        self.handle.run_upkeep();
        self.handle.render()
    }
}

pub(crate) async fn run(config: Config) -> anyhow::Result<()> {
    // Installed before the server exists, so that no metric of the libraries is missed.
    let recorder = if config.server.metrics {
        Some(
            PrometheusBuilder::new()
                .install_recorder()
                .context("cannot install the metrics recorder")?,
        )
    } else {
        None
    };
    let mut io_config: SocketIoConfig = socketio_config(&config).map_err(anyhow::Error::msg)?;
    let history_shared = config.history.enabled
        && config.history.store == crate::config::model::HistoryStoreKind::Redis;
    let cluster = crate::cluster::ClusterLink::start(&config.cluster, history_shared)?;
    if let Some(link) = &cluster {
        link.install(&mut io_config);
    }
    let path = mount_path(&config.server.path);
    // Opened before the server: its namespaces start from the recovery state stored there.
    let history = crate::history::HistoryService::shared(&config).map_err(anyhow::Error::msg)?;
    let io_config = crate::history::with_recovery_store(io_config, history.as_deref());
    if let Some(history) = history.clone() {
        // In the background: Redis may be slow to answer, the server starts regardless.
        tokio::spawn(async move { history.warn_if_not_durable().await });
    }
    let (service, io) = SocketIo::new(io_config);
    let gateway = crate::gateway::install(&io, &config).map_err(anyhow::Error::msg)?;
    tracing::info!("{}", gateway.describe());
    let shutting_down = crate::drain::Draining::default();
    let ready = {
        let shutting_down = shutting_down.clone();
        let cluster = cluster.clone();
        let history = history.clone();
        move || {
            let cluster = cluster.clone();
            let history = history.clone();
            async move {
                if shutting_down.is_on() {
                    (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned())
                } else {
                    let mut body = crate::cluster::readiness(cluster.as_ref()).await;
                    // Stays 200 while Redis is down, as for the cluster line: every node would
                    // go out of the load balancer at once.
                    if let Some(line) = match &history {
                        Some(history) => history.status().await,
                        None => None,
                    } {
                        if !body.ends_with('\n') {
                            body.push('\n');
                        }
                        body.push_str(&line);
                        body.push('\n');
                    }
                    (StatusCode::OK, body)
                }
            }
        }
    };
    let mut app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready));
    if let Some(handle) = recorder {
        let scrape = Arc::new(Scrape {
            handle,
            io: io.clone(),
            namespaces: Mutex::new(BTreeSet::new()),
        });
        app = app.route(
            "/metrics",
            get(move || async move {
                ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], scrape.render()).into_response()
            }),
        );
    }
    let api = crate::api::routes(crate::api::ApiState::new(io.clone(), &config));
    app = app.merge(crate::api::router(&config.api.key, api));
    // A page over the API: it does nothing the key does not allow.
    app = app.merge(crate::admin::routes());
    let mut app = app.route_service(&path, service.clone());
    if config.ws.enabled {
        // Plain WebSocket clients become Socket.IO sockets of this same service.
        app = app.route(
            &config.ws.path,
            crate::plainws::route(service.clone(), &config, shutting_down.clone()),
        );
    }
    let bare = path.trim_end_matches('/');
    if !bare.is_empty() {
        app = app.route_service(bare, service);
    }
    let app = crate::drain::guard(app, &path, shutting_down.clone());

    let address = (config.server.host.as_str(), config.server.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (server.host, server.port)",
                config.server.host, config.server.port
            )
        })?;
    // The server goes on serving while draining: open sessions carry the close packet to their
    // clients, and probes read /ready's 503.
    let mut server = tokio::spawn(crate::listen::serve(listener, app, &config.server, &path)?);
    tokio::select! {
        result = &mut server => result.context("server task failed")?.context("server failed")?,
        () = shutdown_signal() => {
            tokio::select! {
                // First, so that the second signal is listened for before the drain begins.
                biased;
                () = shutdown_signal() => {
                    tracing::warn!("second shutdown signal: exiting without waiting for clients");
                }
                _ = crate::drain::drain(
                    &io,
                    &shutting_down,
                    config.server.shutdown_timeout,
                    gateway.webhooks().map(|hooks| hooks.as_ref()),
                    cluster.is_some() && config.recovery.enabled,
                ) => {}
            }
            server.abort();
        }
    }
    if let Some(history) = &history {
        // The sessions the shutdown kept, and the last packets, reach the disk before exiting.
        if let Err(error) = history.flush() {
            tracing::error!("history: the last writes may be lost: {error}");
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
