//! The smallest useful Ferrio server: every event a client sends on the main namespace `/` comes
//! back to that client under the same name with the same arguments, binary ones included, and is
//! acknowledged with those arguments when the client asks for an acknowledgement.
//!
//! Listens on `HOST:PORT` (default `127.0.0.1:3000`):
//!
//! ```sh
//! cargo run --release --example echo
//! ```
//!
//! Try it with the official client, e.g. the one `tests/interop` installs (`npm ci` there):
//!
//! ```sh
//! cd tests/interop && node --input-type=module -e '
//!   import { io } from "sio-client-v4";
//!   const socket = io("http://127.0.0.1:3000");
//!   socket.on("hello", (...args) => console.log("echoed:", ...args));
//!   socket.emit("hello", "world", Buffer.from([1, 2, 3]));
//!   console.log("acked:", await socket.emitWithAck("hello", { n: 1 }));
//!   socket.close();'
//! ```

#[path = "../common/mod.rs"]
mod common;

use ferrio_socketio::{SocketIo, SocketIoConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (service, io) = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        socket.on_any(|socket, event| {
            // Echoing may fail only if the client is gone or never reads: nothing to do then.
            let _ = socket.emit_payload(&event.name, event.payload.clone());
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    });

    let listener = common::bind_from_env(3000).await?;
    eprintln!("echo server on http://{}", listener.local_addr()?);
    ferrio_socketio::serve(listener, service).await
}
