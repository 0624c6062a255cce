//! `ferrio`: the standalone Socket.IO gateway.
//!
//! `ferrio serve` runs a Socket.IO server at `/socket.io/` with the reference server's defaults
//! (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1 MB, polling and WebSocket with
//! upgrades, Engine.IO v3 clients accepted) on `0.0.0.0:3000`, with no other setup.
//!
//! `ferrio doctor URL` walks a deployment step by step (TCP, handshake, CORS, long-polling,
//! the WebSocket upgrade, heartbeat, namespaces, events) and says, for every step that fails,
//! why and how to fix it.

mod cli;
mod doctor;
mod serve;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        cli::Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("FERRIO_LOG")
                        .unwrap_or_else(|_| "info".into()),
                )
                .init();
            runtime.block_on(serve::run(args))
        }
        // The doctor's report is its whole output: no log lines are mixed into it.
        cli::Command::Doctor(args) => {
            let code = runtime.block_on(doctor::run(args));
            // Probes still winding down (a closing WebSocket) are not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            std::process::exit(code)
        }
    }
}
