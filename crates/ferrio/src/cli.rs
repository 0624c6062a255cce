//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Check or create a configuration file.
    Config(ConfigArgs),
    /// Diagnose a Socket.IO deployment step by step: what fails, why, and how to fix it.
    ///
    /// Exit status: 0 when no step failed, 1 when one did, 2 when nothing could be checked.
    Doctor(DoctorArgs),
    /// Measure a Socket.IO server that implements the benchmark contract (idle, echo, fanout,
    /// churn, poll, check): a summary table on stderr, one JSON line on stdout.
    Bench(ferrio_bench::Cli),
}

/// How `ferrio serve` is configured.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) sources: ConfigSources,
}

/// `ferrio config ...`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    pub(crate) command: ConfigCommand,
}

/// What `ferrio config` does.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration, where each value came from, and what looks wrong.
    ///
    /// Exit status: 0 when there is no error (warnings allowed), 1 when a lint found an error,
    /// 2 when the configuration cannot be loaded.
    Check(Box<ConfigSources>),
    /// Write a commented starter configuration file with freshly generated secrets.
    Init(InitArgs),
}

/// Where the configuration comes from: defaults < TOML file < .env < environment < flags.
/// docs/configuration.md lists every key.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ConfigSources {
    /// TOML configuration file [default: $FERRIO_CONFIG, else none].
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// The .env file to read settings from [default: ./.env when it exists]. It is read, never
    /// loaded into the process environment.
    #[arg(long, value_name = "PATH")]
    pub(crate) env_file: Option<PathBuf>,
    /// Read no .env file.
    #[arg(long, conflicts_with = "env_file")]
    pub(crate) no_env_file: bool,
    /// Sets any key, e.g. `--set heartbeat.ping_interval=20s` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Address to listen on (server.host).
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Port to listen on (server.port).
    #[arg(long)]
    pub(crate) port: Option<String>,
    /// Where Socket.IO is mounted (server.path).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// heartbeat.ping_interval (`25s`; a bare number is milliseconds).
    #[arg(long)]
    pub(crate) ping_interval: Option<String>,
    /// heartbeat.ping_timeout (`20s`; a bare number is milliseconds).
    #[arg(long)]
    pub(crate) ping_timeout: Option<String>,
    /// limits.max_payload, in bytes.
    #[arg(long)]
    pub(crate) max_payload: Option<String>,
    /// log.level (`info`, `debug`, or a filter such as `info,ferrio=debug`).
    #[arg(long)]
    pub(crate) log_level: Option<String>,
}

/// What `ferrio config init` writes.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The file to write.
    #[arg(default_value = "ferrio.toml")]
    pub(crate) path: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

/// What `ferrio doctor` checks.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The deployment, `http://host[:port]` or `https://host[:port]` (a path is taken as --path
    /// when --path is not given).
    pub(crate) url: String,
    /// The origin of the web page that connects (`https://app.example.com`), to check CORS.
    #[arg(long)]
    pub(crate) origin: Option<String>,
    /// Where the server mounts Socket.IO (the `path` option of the server).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// The namespace to connect to.
    #[arg(long, default_value = "/")]
    pub(crate) namespace: String,
    /// Sent as the auth payload `{"token": T}` of the namespace connection.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// The longest any one step may take (`10s`, `500ms`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// https: also trust the certificate authorities in this PEM file (a private or test CA).
    #[arg(long, value_name = "PATH")]
    pub(crate) ca_file: Option<PathBuf>,
    /// https: report a refused certificate as a warning and check the rest anyway. The
    /// connection is then open to interception: for diagnosis only.
    #[arg(long)]
    pub(crate) insecure: bool,
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use 10s, 500ms or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {text:?}: use ms, s or m")),
    };
    if !(seconds > 0.0 && seconds <= 3600.0) {
        return Err(format!("duration {text:?} out of range (0 to 1h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
