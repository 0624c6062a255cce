//! `tcp`: the host resolves and accepts a connection.

use tokio::net::TcpStream;

use super::report::Outcome;
use super::target::Target;

/// Resolves the host and opens a TCP connection (the caller bounds the wait).
pub(crate) async fn connect(target: &Target) -> Outcome {
    match TcpStream::connect((target.host.as_str(), target.port)).await {
        Ok(stream) => {
            let peer = stream
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            Outcome::pass(format!("connected to {peer}"))
        }
        Err(error) => {
            let fix = match error.kind() {
                std::io::ErrorKind::ConnectionRefused => format!(
                    "nothing listens on {}:{}: start the server, or check the port (and that \
                     the server listens on an address reachable from here, not only 127.0.0.1)",
                    target.host, target.port
                ),
                _ if error.to_string().contains("lookup")
                    || error.to_string().contains("resolve")
                    || error.to_string().contains("Name or service") =>
                {
                    format!(
                        "the name {:?} does not resolve: check the URL and DNS",
                        target.host
                    )
                }
                _ => "check the host and port, and that no firewall blocks the connection".into(),
            };
            Outcome::fail(
                format!("cannot connect to {}:{}: {error}", target.host, target.port),
                fix,
            )
        }
    }
}
