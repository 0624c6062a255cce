//! The socketioxide peer of the side-by-side benchmark: implements `shared/bench/CONTRACT.md`
//! with the Rust Socket.IO server socketioxide 0.18, as `examples/bench_server` does with Ferrio.
//!
//! `PORT=<port> HOST=127.0.0.1 socketioxide-bench-peer`
//!
//! One process listening on `HOST:PORT` (default `127.0.0.1:3000`), path `/socket.io/`,
//! Engine.IO v4 with pingInterval 25 s / pingTimeout 20 s (both transports, as the Node peer),
//! namespace `/` with three events:
//! - `echo`: acknowledged with the same arguments (all of them, see [`Args`]);
//! - `join` `<room>`: joins the room, then acknowledges with no arguments;
//! - `broadcast` `<room>` `<payload>`: emits `bcast` `<payload>` to the room (the sender too
//!   when it is a member), then acknowledges with no arguments.
//!
//! Every accepted TCP socket gets `TCP_NODELAY` (socketioxide leaves that to the HTTP server)
//! and is served by hyper's HTTP/1 connection with upgrades (the websocket). Rooms are the
//! in-process local adapter. Logs nothing per connection or message; exits at once on SIGTERM.

use std::fmt;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// Packets a connection may have queued for sending before an emit to it fails. socketioxide's
/// default is 128: above that a broadcast silently skips the socket. The other peers queue
/// without a bound, and the contract has every broadcast reach every member, so this is raised
/// (the queue is a tokio channel, which allocates as it fills, not up front).
const MAX_BUFFER_SIZE: usize = 1 << 16;

/// Every argument of an event, or of an acknowledgement, however many.
///
/// socketioxide hands an extractor the first argument only, unless the type is a tuple in serde's
/// model; `Args` deserializes and serializes as a tuple of any length, so it gets (and sends)
/// them all.
struct Args(Vec<serde_json::Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the arguments of an event")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

/// An acknowledgement with no arguments (`43<id>[]`): an empty tuple in serde's model (`()`
/// would be sent as `[null]`).
const NO_ARGS: [u8; 0] = [];

fn main() -> std::io::Result<()> {
    // The default runtime: one worker per CPU this process may run on (one when pinned).
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    let (service, io) = SocketIo::builder()
        .req_path("/socket.io")
        .ping_interval(Duration::from_millis(25_000))
        .ping_timeout(Duration::from_millis(20_000))
        .max_buffer_size(MAX_BUFFER_SIZE)
        .build_svc();

    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |Data(args): Data<Args>, ack: AckSender| {
            let _ = ack.send(&args);
        });
        socket.on(
            "join",
            async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room);
                let _ = ack.send(&NO_ARGS);
            },
        );
        socket.on(
            "broadcast",
            async |io: SocketIo,
                   Data((room, payload)): Data<(String, serde_json::Value)>,
                   ack: AckSender| {
                let _ = io.to(room).emit("bcast", &payload).await;
                let _ = ack.send(&NO_ARGS);
            },
        );
    });

    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = TcpListener::bind(format!("{host}:{port}")).await?;
    let mut terminate = signal(SignalKind::terminate())?;

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: try again shortly, as hyper's server does.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = terminate.recv() => std::process::exit(0),
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
