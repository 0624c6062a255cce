//! `ferrio`: the standalone Socket.IO gateway.
//!
//! `ferrio serve` runs a Socket.IO server at `/socket.io/` with the reference server's defaults
//! (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize 1 MB, polling and WebSocket with
//! upgrades, Engine.IO v3 clients accepted) on `0.0.0.0:3000`, with no other setup. Its
//! configuration comes from defaults < TOML file < `.env` < environment < flags
//! (`docs/configuration.md`); `ferrio config check` shows where each value came from and lints
//! it, `ferrio config init` writes a starter file.
//!
//! `ferrio doctor URL` walks a deployment step by step (TCP, handshake, CORS, long-polling,
//! the WebSocket upgrade, heartbeat, namespaces, events) and says, for every step that fails,
//! why and how to fix it.
//!
//! `ferrio bench ...` is the load generator of `crates/bench` (`docs/benchmarks.md`).

mod admin;
mod api;
mod cli;
mod cluster;
mod config;
mod doctor;
mod drain;
mod gateway;
mod history;
mod listen;
mod plainws;
mod serve;
mod webhook;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        cli::Command::Serve(args) => {
            let loaded = match args.sources.load() {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(config::EXIT_LOAD_ERROR)
                }
            };
            let lints = config::lint::check(&loaded);
            let (errors, warnings): (Vec<_>, Vec<_>) = lints
                .iter()
                .partition(|l| l.severity == config::lint::Severity::Error);
            if !errors.is_empty() {
                for lint in errors {
                    eprintln!("{lint}");
                }
                eprintln!(
                    "ferrio serve: not started; `ferrio config check` shows the full configuration"
                );
                std::process::exit(1)
            }
            serve::init_logging(&loaded.config.log);
            for lint in warnings {
                tracing::warn!("{lint}");
            }
            runtime.block_on(serve::run(loaded.config))
        }
        cli::Command::Config(args) => std::process::exit(match args.command {
            cli::ConfigCommand::Check(sources) => config::run_check(&sources),
            cli::ConfigCommand::Init(init) => config::run_init(&init),
        }),
        // The load generator sizes its own runtime to the CPUs it may use.
        cli::Command::Bench(args) => {
            drop(runtime);
            ferrio_bench::run_cli(args).map(|_| ())
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
