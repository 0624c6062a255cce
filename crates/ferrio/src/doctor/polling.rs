//! `long-poll`: one round trip over HTTP long-polling. A GET is left waiting, a POST sends the
//! Socket.IO CONNECT of the namespace, and the server's answer must come back on the waiting
//! GET at once. A proxy that buffers responses, or routes the POST to another node than the
//! GET (no sticky sessions), shows here.

use std::time::{Duration, Instant};

use ferrio_engineio_proto::{payload, Message, Packet, ProtocolVersion};
use http::{Method, StatusCode};

use super::probe;
use super::report::Outcome;
use super::target::Target;
use super::{handshake, human};

/// How long the GET is given to reach the server before the POST is sent.
const SETTLE: Duration = Duration::from_millis(150);
/// An answer later than this after the POST means something held it.
const PROMPT: Duration = Duration::from_secs(1);

/// Runs the round trip for the namespace `nsp`, with `{token}` auth when given.
pub(crate) async fn round_trip(
    target: &Target,
    nsp: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let query = target.query(4, "polling", None);
    let open = match probe::http(target, Method::GET, &query, &[], "").await {
        Ok(response) if response.status == StatusCode::OK => {
            match handshake::read_open(&response.body, ProtocolVersion::V4) {
                Ok(open) => open,
                Err(outcome) => return outcome,
            }
        }
        Ok(response) => {
            return Outcome::fail(
                format!("a second handshake answered {}", response.status),
                "the handshake is not stable: check the server's limits and the proxy",
            )
        }
        Err(error) => {
            return Outcome::fail(
                format!("a second handshake failed: {error}"),
                "check the server",
            )
        }
    };
    let session = target.query(4, "polling", Some(&open.sid));

    let mut poll = {
        let target = target.clone();
        let session = session.clone();
        tokio::spawn(async move {
            loop {
                let response = probe::http(&target, Method::GET, &session, &[], "").await?;
                if response.status != StatusCode::OK {
                    return Err(format!(
                        "the poll answered {}: {:?}",
                        response.status,
                        response.body_start()
                    ));
                }
                let packets = payload::decode(response.body.clone(), ProtocolVersion::V4, false)
                    .map_err(|e| format!("the poll's answer is not an Engine.IO payload: {e}"))?;
                if packets
                    .iter()
                    .any(|p| matches!(p, Packet::Message(Message::Text(_))))
                {
                    return Ok((Instant::now(), probe::snippet(&response.body)));
                }
                if packets.iter().any(|p| matches!(p, Packet::Close)) {
                    return Err("the server closed the session".to_owned());
                }
            }
        })
    };
    tokio::time::sleep(SETTLE).await;
    let connect = connect_packet(nsp, token);
    let sent = Instant::now();
    let posted = probe::http(target, Method::POST, &session, &[], &connect).await;
    let outcome = match posted {
        Err(error) => Outcome::fail(
            format!("the POST failed: {error}"),
            "check the proxy's rules for POST requests",
        ),
        Ok(response) if response.status == StatusCode::PAYLOAD_TOO_LARGE => {
            let who = if probe::from_nginx(&response) {
                "nginx refused"
            } else {
                "the server or a proxy refused"
            };
            Outcome::fail(
                format!(
                    "the POST answered {}: {who} a {}-byte polling body as too large",
                    response.status,
                    connect.len()
                ),
                "raise the proxy's request body limit to at least the server's \
                 maxHttpBufferSize (1 MB by default): nginx `client_max_body_size 2m;` in \
                 the Socket.IO location (0 turns the check off); clients' POSTs carry \
                 every queued packet at once",
            )
            .code("proxy-body-size")
        }
        Ok(response) if response.status != StatusCode::OK => {
            let body = response.body_start();
            let fix = if body.contains("Session ID unknown") {
                "the POST reached another server than the handshake: with several nodes \
                 behind a load balancer, enable sticky sessions (nginx: `ip_hash;` or \
                 `hash $remote_addr consistent;` in the upstream block)"
            } else {
                "the server refused a polling POST: check the proxy's body size limit \
                 (nginx client_max_body_size) and the server's maxHttpBufferSize"
            };
            Outcome::fail(
                format!("the POST answered {}: {body:?}", response.status),
                fix,
            )
        }
        Ok(_) => match tokio::time::timeout(timeout, &mut poll).await {
            Ok(Ok(Ok((answered, data)))) => {
                let waited = answered.saturating_duration_since(sent);
                if waited > PROMPT {
                    Outcome::warn(
                        format!(
                            "the answer to the POST came {} later on the waiting GET: \
                             something between holds long-poll responses ({data})",
                            human(waited)
                        ),
                        "a proxy is buffering responses: for nginx, `proxy_buffering off;` \
                         in the Socket.IO location; disable response buffering or \
                         compression in other proxies and CDNs",
                    )
                } else {
                    Outcome::pass(format!(
                        "POST answered on the waiting GET in {} ({data})",
                        human(waited)
                    ))
                }
            }
            Ok(Ok(Err(error))) => Outcome::fail(
                error,
                "check the proxy's handling of long requests (read timeouts, buffering)",
            ),
            Ok(Err(_)) => {
                Outcome::fail("the poll stopped", "report this as a bug of ferrio doctor")
            }
            Err(_) => Outcome::fail(
                format!(
                    "no answer on the waiting GET within {} of the POST: a proxy holds \
                     long-poll responses, or the server never answered the CONNECT",
                    human(timeout)
                ),
                "for nginx, `proxy_buffering off;` in the Socket.IO location; disable \
                 response buffering in other proxies and CDNs",
            ),
        },
    };
    poll.abort();
    handshake::close(target, 4, &open.sid, timeout);
    outcome
}

/// The Socket.IO CONNECT packet for `nsp`, as an Engine.IO message.
fn connect_packet(nsp: &str, token: Option<&str>) -> String {
    let mut packet = String::from("40");
    if nsp != "/" {
        packet.push_str(nsp);
        packet.push(',');
    }
    if let Some(token) = token {
        packet.push_str(&serde_json::json!({ "token": token }).to_string());
    }
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets() {
        assert_eq!(connect_packet("/", None), "40");
        assert_eq!(
            connect_packet("/chat", Some("a\"b")),
            r#"40/chat,{"token":"a\"b"}"#
        );
    }
}
