//! Command-line interface.

use clap::{Args, Parser, Subcommand};

/// Ferrio: a production-grade Socket.IO server.
#[derive(Debug, Parser)]
#[command(name = "ferrio", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the Socket.IO server.
    Serve(ServeArgs),
}

/// Where `ferrio serve` listens.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FERRIO_HOST", default_value = "0.0.0.0")]
    pub(crate) host: String,
    /// Port to listen on.
    #[arg(long, env = "FERRIO_PORT", default_value_t = 3000)]
    pub(crate) port: u16,
}
