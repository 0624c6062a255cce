//! `heartbeat`: a session watched until the server's first ping, one pingInterval in, over
//! the WebSocket of the `websocket` step, or over long-polling when no WebSocket got through.
//! A proxy whose read timeout is shorter than the interval cuts an idle WebSocket, or answers
//! a held poll with 504, before that ping; a ping much later than the interval was held on
//! the way.

use std::time::{Duration, Instant};

use ferrio_engineio_proto::{payload, OpenData, Packet, ProtocolVersion};
use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::probe;
use super::report::Outcome;
use super::target::Target;
use super::websocket::Opened;
use super::{handshake, human};

/// A ping later than the interval by this much (or half the interval, if longer) was held.
const LATE_BY: Duration = Duration::from_secs(1);

/// How long the watch lasts: to a late ping, or the timeout if shorter.
fn watch_for(open: &OpenData, timeout: Duration) -> (Duration, Duration) {
    let late = open.ping_interval + (open.ping_interval / 2).max(LATE_BY);
    (late, timeout.min(late))
}

/// Watches the WebSocket until the server's first ping, at most `timeout` from its opening.
pub(crate) async fn websocket(opened: Opened, timeout: Duration) -> Outcome {
    let Opened {
        mut stream,
        open,
        at,
    } = opened;
    let interval = open.ping_interval;
    let (late, watch) = watch_for(&open, timeout);
    let deadline = at + watch;
    let outcome = loop {
        let read = tokio::time::timeout_at(deadline.into(), stream.next()).await;
        let elapsed = at.elapsed();
        match read {
            Ok(Some(Ok(WsMessage::Text(text)))) if text.as_str() == "2" => {
                let _ = stream.send(WsMessage::text("3")).await;
                break on_time(elapsed, interval, late, "WebSocket");
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break cut("the WebSocket was closed", elapsed, &open),
            Err(_) => break unfinished(elapsed, interval, timeout < late),
        }
    };
    let _ = stream.close(None).await;
    outcome
}

/// Watches a new polling session until the server's first ping, at most `timeout` from the
/// handshake.
pub(crate) async fn polling(target: &Target, timeout: Duration) -> Outcome {
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
                format!("a new handshake answered {}", response.status),
                "the handshake is not stable: check the server's limits and the proxy",
            )
        }
        Err(error) => {
            return Outcome::fail(
                format!("a new handshake failed: {error}"),
                "check the server",
            )
        }
    };
    let at = Instant::now();
    let interval = open.ping_interval;
    let (late, watch) = watch_for(&open, timeout);
    let deadline = at + watch;
    let session = target.query(4, "polling", Some(&open.sid));
    let outcome = loop {
        let poll = probe::http(target, Method::GET, &session, &[], "");
        let answer = tokio::time::timeout_at(deadline.into(), poll).await;
        let elapsed = at.elapsed();
        match answer {
            Err(_) => break unfinished(elapsed, interval, timeout < late),
            Ok(Err(error)) => {
                break cut(&format!("the held poll failed ({error})"), elapsed, &open)
            }
            Ok(Ok(response)) if response.status != StatusCode::OK => {
                let status = response.status;
                break cut(
                    &format!("the held poll was answered {status}"),
                    elapsed,
                    &open,
                );
            }
            Ok(Ok(response)) => {
                let packets =
                    payload::decode(response.body, ProtocolVersion::V4, false).unwrap_or_default();
                if packets.iter().any(|p| matches!(p, Packet::Ping(_))) {
                    let pong = probe::http(target, Method::POST, &session, &[], "3");
                    let _ = tokio::time::timeout(timeout, pong).await;
                    break on_time(
                        elapsed,
                        interval,
                        late,
                        "long-polling (no WebSocket got through)",
                    );
                }
                if packets.iter().any(|p| matches!(p, Packet::Close)) {
                    break cut("the server closed the session", elapsed, &open);
                }
            }
        }
    };
    handshake::close(target, 4, &open.sid, timeout);
    outcome
}

/// The verdict on a first ping that came after `elapsed`.
fn on_time(elapsed: Duration, interval: Duration, late: Duration, over: &str) -> Outcome {
    if elapsed > late {
        return Outcome::warn(
            format!(
                "the first ping came after {} over {over}, pingInterval {}: something holds \
                 the server's messages on the way",
                human(elapsed),
                human(interval)
            ),
            "check for a buffering proxy between the client and the server (nginx: \
             `proxy_buffering off;`); clients drop the connection when a ping is later than \
             pingInterval + pingTimeout",
        );
    }
    Outcome::pass(format!(
        "first ping after {} over {over} (pingInterval {}), pong sent: the connection \
         outlived one interval",
        human(elapsed),
        human(interval)
    ))
}

/// The watch ended without a ping and without trouble.
fn unfinished(elapsed: Duration, interval: Duration, short_timeout: bool) -> Outcome {
    if short_timeout && elapsed < interval {
        return Outcome::warn(
            format!(
                "watched {} of the {} pingInterval without trouble, but not a whole interval",
                human(elapsed),
                human(interval)
            ),
            format!(
                "run again with --timeout {}s to watch past one interval",
                interval.as_secs() + 2
            ),
        );
    }
    Outcome::warn(
        format!(
            "no ping after {} (pingInterval {}): something holds the server's messages, or \
             the server does not ping",
            human(elapsed),
            human(interval)
        ),
        "check for a buffering proxy between the client and the server; clients drop the \
         connection after pingInterval + pingTimeout without a ping",
    )
}

/// The connection was cut before the first ping.
fn cut(what: &str, elapsed: Duration, open: &OpenData) -> Outcome {
    let needed = open.ping_interval + open.ping_timeout;
    let suggest = (needed.as_secs() + 10).max(60);
    Outcome::fail(
        format!(
            "{what} after {}, before the server's first ping (due after {}): a proxy read \
             timeout shorter than pingInterval cuts idle connections",
            human(elapsed),
            human(open.ping_interval)
        ),
        format!(
            "raise the proxy's read timeout above pingInterval + pingTimeout ({}): nginx \
             `proxy_read_timeout {suggest}s;` (and `proxy_send_timeout {suggest}s;`) in the \
             Socket.IO location; other proxies and load balancers: their idle timeout",
            human(needed)
        ),
    )
    .code("proxy-read-timeout")
}
