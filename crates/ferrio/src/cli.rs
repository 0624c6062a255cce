//! Command-line interface.

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
    /// Diagnose a Socket.IO deployment step by step: what fails, why, and how to fix it.
    ///
    /// Exit status: 0 when no step failed, 1 when one did, 2 when nothing could be checked.
    Doctor(DoctorArgs),
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

/// What `ferrio doctor` checks.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The deployment, `http://host[:port]` (a path is taken as --path when --path is not given).
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
