//! `check`: the contract check, pass/fail per item, against one server.

use std::sync::Arc;
use std::time::Duration;

use ferrio_engineio_proto::OpenData;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::conn::{
    classify_socketio, connect, join, next_text, open_websocket, send, Errors, EventTemplate,
    Incoming, Ws, PONG,
};
use crate::echo::ARG;
use crate::{CommonArgs, Report};

/// How long one step may take.
const STEP: Duration = Duration::from_secs(5);

/// The next Socket.IO packet text (after the Engine.IO `4`), answering pings meanwhile.
async fn next_socketio(ws: &mut Ws) -> Result<String, String> {
    let work = async {
        loop {
            let text = next_text(ws).await?;
            match text.as_bytes().first() {
                Some(b'2') => send(ws, Message::Text(PONG)).await?,
                Some(b'4') => return Ok(text.as_str()[1..].to_owned()),
                _ => return Err(format!("unexpected Engine.IO packet {:?}", text.as_str())),
            }
        }
    };
    tokio::time::timeout(STEP, work)
        .await
        .map_err(|_| format!("nothing from the server within {STEP:?}"))?
}

/// Sends `text` as an Engine.IO message and returns the first ack for `id` (skipping events).
async fn emit_and_ack(
    ws: &mut Ws,
    text: String,
    id: u64,
    seen: &mut Vec<String>,
) -> Result<String, String> {
    send(ws, Message::Text(Utf8Bytes::from(text))).await?;
    // Bounded: a server that keeps sending other packets does not hold the check forever.
    for _ in 0..1000 {
        let packet = next_socketio(ws).await?;
        if let Incoming::Ack(got, body) = classify_socketio(&packet) {
            if got == id {
                return Ok(body.to_owned());
            }
        }
        seen.push(packet);
    }
    Err(format!("no ack {id} among 1000 packets"))
}

fn verdict(
    report: &mut Report,
    passed: &mut u64,
    failed: &mut u64,
    item: &str,
    result: Result<(), String>,
) {
    match result {
        Ok(()) => {
            *passed += 1;
            report.set(&format!("check_{item}"), "pass");
        }
        Err(reason) => {
            *failed += 1;
            report.set(&format!("check_{item}"), format!("fail: {reason}"));
        }
    }
}

pub(crate) async fn run(
    common: &CommonArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (mut passed, mut failed) = (0, 0);
    let port = common.port;

    // 1. The open packet is the first frame, with the contract's heartbeat.
    let mut ws = tokio::time::timeout(STEP, open_websocket(port))
        .await
        .map_err(|_| anyhow::anyhow!("no WebSocket within {STEP:?}"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    let first = tokio::time::timeout(STEP, next_text(&mut ws))
        .await
        .map_err(|_| anyhow::anyhow!("no open packet within {STEP:?}"))?
        .map_err(|e| anyhow::anyhow!(e))?;
    let open = first
        .as_str()
        .strip_prefix('0')
        .ok_or_else(|| format!("first frame is {:?}, not an open packet", first.as_str()))
        .and_then(|json| {
            OpenData::parse(json.as_bytes()).map_err(|e| format!("bad open packet: {e}"))
        });
    verdict(
        report,
        &mut passed,
        &mut failed,
        "open_packet_first",
        open.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let heartbeat = match &open {
        Ok(open)
            if open.ping_interval == Duration::from_millis(25_000)
                && open.ping_timeout == Duration::from_millis(20_000) =>
        {
            Ok(())
        }
        Ok(open) => Err(format!(
            "pingInterval {:?}, pingTimeout {:?}",
            open.ping_interval, open.ping_timeout
        )),
        Err(e) => Err(e.clone()),
    };
    verdict(
        report,
        &mut passed,
        &mut failed,
        "ping_interval_timeout",
        heartbeat,
    );

    // 2. The Socket.IO connect to "/".
    send(&mut ws, Message::Text(Utf8Bytes::from_static("40")))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let reply = next_socketio(&mut ws).await;
    let connected = match &reply {
        Ok(text) if text.starts_with("0{") && text.contains("\"sid\"") => Ok(()),
        Ok(text) => Err(format!("connect answered with {text:?}")),
        Err(e) => Err(e.clone()),
    };
    let ok = connected.is_ok();
    verdict(report, &mut passed, &mut failed, "connect", connected);
    anyhow::ensure!(ok, "the Socket.IO connect failed; nothing else to check");

    // 3. Echo: the ack carries the argument byte for byte.
    let mut seen = Vec::new();
    let expected = serde_json::to_string(&[ARG])?;
    let echo = EventTemplate::new("echo", vec![ARG.into()]);
    let result = emit_and_ack(&mut ws, echo.text(1), 1, &mut seen)
        .await
        .and_then(|body| {
            if body == expected {
                Ok(())
            } else {
                Err(format!("ack {body:?}, expected {expected:?}"))
            }
        });
    verdict(report, &mut passed, &mut failed, "echo", result);
    // Several args (advisory in the contract).
    let multi = EventTemplate::new(
        "echo",
        vec!["a".into(), 1.into(), serde_json::json!({ "k": true })],
    );
    let result = emit_and_ack(&mut ws, multi.text(2), 2, &mut seen)
        .await
        .and_then(|body| {
            let want = r#"["a",1,{"k":true}]"#;
            if body == want {
                Ok(())
            } else {
                Err(format!("ack {body:?}, expected {want:?}"))
            }
        });
    verdict(
        report,
        &mut passed,
        &mut failed,
        "echo_all_args_advisory",
        result,
    );

    // 4. join, then broadcast to a room holding this socket and another one.
    let join_result = emit_and_ack(
        &mut ws,
        EventTemplate::new("join", vec!["r".into()]).text(3),
        3,
        &mut seen,
    )
    .await
    .map(|_| ());
    verdict(report, &mut passed, &mut failed, "join", join_result);
    let other = match connect(port, STEP).await {
        Ok((mut other, _)) => join(&mut other, "r", 1, STEP).await.map(|()| other),
        Err(e) => Err(e),
    };
    let payload = "T0:0:contract-check";
    let want_event = format!("2[\"bcast\",\"{payload}\"]");
    seen.clear();
    let broadcast = EventTemplate::new("broadcast", vec!["r".into(), payload.into()]);
    let sender_result = emit_and_ack(&mut ws, broadcast.text(4), 4, &mut seen)
        .await
        .and_then(|_| {
            // The sender is a member: its bcast comes before the ack (emit, then ack).
            if seen.contains(&want_event) {
                Ok(())
            } else {
                Err(format!(
                    "the sender got {seen:?} before the ack, not {want_event:?}"
                ))
            }
        });
    verdict(
        report,
        &mut passed,
        &mut failed,
        "broadcast_sender_then_ack",
        sender_result,
    );
    let member_result = match other {
        Ok(mut other) => next_socketio(&mut other).await.and_then(|packet| {
            if packet == want_event {
                Ok(())
            } else {
                Err(format!("the other member got {packet:?}"))
            }
        }),
        Err(e) => Err(format!("second client: {e}")),
    };
    verdict(
        report,
        &mut passed,
        &mut failed,
        "broadcast_member",
        member_result,
    );

    report.set("passed", passed);
    report.set("failed", failed);
    if failed > 0 {
        errors.record(format!("{failed} contract item(s) failed"));
    }
    Ok(())
}
