//! `ferrio`: the standalone Socket.IO gateway.
//!
//! `ferrio serve` runs a Socket.IO server at `/socket.io/` with the reference server's defaults
//! (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1 MB, polling and WebSocket with
//! upgrades, Engine.IO v3 clients accepted) on `0.0.0.0:3000`, with no other setup.

mod cli;
mod serve;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRIO_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match cli.command {
        cli::Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(serve::run(args)),
    }
}
