//! Events between the servers of a cluster: `io.serverSideEmit` in Node.
//!
//! A server emits an event that the *other* servers of the namespace receive in the handlers
//! registered with [`Namespace::on_server_side_emit`]; no client sees it. The adapter carries
//! it: a single-process adapter has no other server, so an emit reaches no one, and a multi-node
//! adapter (Redis) publishes it. Arguments are JSON values, as in the Node adapters, which
//! serialize them with `JSON.stringify`.
//!
//! With [`Namespace::server_side_emit_with_ack`], every other server answers once (with one
//! value, the first argument its handler acknowledges with), and the emitter gets the answers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::{Namespace, SocketIo};

/// Event names reserved by Socket.IO, refused by [`Namespace::server_side_emit`] as in Node.
const RESERVED: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Why a server-side emit failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ServerSideEmitError {
    /// The event name is reserved by the protocol (`connect`, `disconnect`, ...).
    #[error("the event name {0:?} is reserved")]
    ReservedEvent(String),
    /// The other servers cannot be reached now (a multi-node adapter lost its link); nothing
    /// was sent.
    #[error("the other servers cannot be reached: {0}")]
    Unreachable(String),
    /// Not every other server answered within the timeout; `responses` holds the answers that
    /// came.
    #[error("timeout reached: only {} responses received out of {expected}", responses.len())]
    Timeout {
        /// The answers that came in time.
        responses: Vec<Value>,
        /// How many servers were expected to answer.
        expected: usize,
    },
}

/// Answers a server-side emit that asked for an acknowledgement. Only the first answer counts
/// (as in Node); dropping it unanswered sends nothing, and the emitter times out.
pub struct ServerAck(Box<dyn FnOnce(Value) + Send>);

impl std::fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAck").finish_non_exhaustive()
    }
}

impl ServerAck {
    /// An acknowledgement that runs `send` with the answer; adapters build it.
    pub fn new(send: impl FnOnce(Value) + Send + 'static) -> Self {
        Self(Box::new(send))
    }

    /// Answers with one JSON value.
    pub fn send(self, value: Value) {
        (self.0)(value);
    }

    /// Answers with one value serialized to JSON.
    pub fn send_json(self, value: impl serde::Serialize) -> Result<(), serde_json::Error> {
        self.send(serde_json::to_value(value)?);
        Ok(())
    }
}

/// An event another server emitted.
#[derive(Debug)]
pub struct ServerEvent {
    /// The event name.
    pub name: String,
    /// Its arguments, after the name.
    pub args: Vec<Value>,
    /// Present when the emitter waits for an answer.
    pub ack: Option<ServerAck>,
}

/// Handles events from other servers: see [`Namespace::on_server_side_emit`].
pub type ServerEventHandler = Arc<dyn Fn(ServerEvent) + Send + Sync>;

/// The server-side event handlers of one namespace, kept by its adapter (the one that receives
/// the events).
#[derive(Default)]
pub struct ServerSideHandlers {
    by_name: RwLock<HashMap<String, ServerEventHandler>>,
}

impl std::fmt::Debug for ServerSideHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        f.debug_struct("ServerSideHandlers")
            .field("events", &names)
            .finish()
    }
}

impl ServerSideHandlers {
    /// Sets the handler of event `name`, replacing any before.
    pub fn set(&self, name: &str, handler: ServerEventHandler) {
        self.by_name
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), handler);
    }

    /// Runs the handler of an event received as `[name, ...args]` (the `data` of the Node
    /// adapter's request). Returns whether a handler ran; an event with no handler or no name is
    /// dropped, and its acknowledgement is never sent.
    pub fn dispatch(&self, mut data: Vec<Value>, ack: Option<ServerAck>) -> bool {
        let name = match data.first() {
            Some(Value::String(name)) => name.clone(),
            _ => return false,
        };
        let handler = self
            .by_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned();
        let Some(handler) = handler else {
            return false;
        };
        data.remove(0);
        handler(ServerEvent {
            name,
            args: data,
            ack,
        });
        true
    }
}

fn check_name(event: &str) -> Result<(), ServerSideEmitError> {
    if RESERVED.contains(&event) {
        return Err(ServerSideEmitError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

impl Namespace {
    /// Handles event `event` when another server of the cluster emits it with
    /// [`Namespace::server_side_emit`] (or Node's `io.serverSideEmit`). Handlers run on the
    /// adapter's receiving task: keep them short and spawn longer work. With a single-process
    /// adapter there is no other server and the handler never runs.
    pub fn on_server_side_emit<F>(&self, event: &str, handler: F)
    where
        F: Fn(ServerEvent) + Send + Sync + 'static,
    {
        match self.adapter().server_side_handlers() {
            Some(handlers) => handlers.set(event, Arc::new(handler)),
            None => tracing::debug!(
                nsp = self.name(),
                event,
                "server-side handler ignored: the adapter spans one server"
            ),
        }
    }

    /// Sends an event with these arguments to the other servers of the cluster (not to this
    /// one, and to no client). With a single-process adapter it reaches no one.
    pub fn server_side_emit(
        &self,
        event: &str,
        args: Vec<Value>,
    ) -> Result<(), ServerSideEmitError> {
        check_name(event)?;
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        self.adapter().server_side_emit(data);
        Ok(())
    }

    /// Sends an event to the other servers and waits, at most `timeout`, for each one's answer.
    /// The answers come in arrival order; none when there is no other server.
    ///
    /// Cancel-safe: dropping the future forgets the request.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ServerSideEmitError> {
        check_name(event)?;
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        self.adapter()
            .server_side_emit_with_ack(data, timeout)
            .await
    }
}

impl SocketIo {
    /// [`Namespace::on_server_side_emit`] on the main namespace.
    pub fn on_server_side_emit<F>(&self, event: &str, handler: F)
    where
        F: Fn(ServerEvent) + Send + Sync + 'static,
    {
        self.of("/").on_server_side_emit(event, handler);
    }

    /// [`Namespace::server_side_emit`] on the main namespace.
    pub fn server_side_emit(
        &self,
        event: &str,
        args: Vec<Value>,
    ) -> Result<(), ServerSideEmitError> {
        self.of("/").server_side_emit(event, args)
    }

    /// [`Namespace::server_side_emit_with_ack`] on the main namespace. Cancel-safe.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ServerSideEmitError> {
        self.of("/")
            .server_side_emit_with_ack(event, args, timeout)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn dispatch_finds_the_handler_by_name_and_passes_the_ack() {
        let handlers = ServerSideHandlers::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        handlers.set(
            "hello",
            Arc::new(move |event: ServerEvent| {
                seen2
                    .lock()
                    .unwrap()
                    .push((event.name.clone(), event.args.clone()));
                if let Some(ack) = event.ack {
                    ack.send(Value::from("pong"));
                }
            }),
        );
        let answer = Arc::new(Mutex::new(None));
        let answer2 = answer.clone();
        let ack = ServerAck::new(move |v| *answer2.lock().unwrap() = Some(v));
        assert!(handlers.dispatch(vec![Value::from("hello"), Value::from(1)], Some(ack)));
        assert!(!handlers.dispatch(vec![Value::from("other")], None));
        assert!(!handlers.dispatch(vec![Value::from(3)], None));
        assert!(!handlers.dispatch(Vec::new(), None));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("hello".to_owned(), vec![Value::from(1)])]
        );
        assert_eq!(*answer.lock().unwrap(), Some(Value::from("pong")));
    }

    #[tokio::test]
    async fn reserved_names_are_refused_and_a_single_node_has_no_one_to_answer() {
        let (_service, io) = SocketIo::new(crate::SocketIoConfig::default());
        assert_eq!(
            io.server_side_emit("disconnect", Vec::new()),
            Err(ServerSideEmitError::ReservedEvent("disconnect".to_owned()))
        );
        assert_eq!(io.server_side_emit("hello", vec![Value::from(1)]), Ok(()));
        assert_eq!(
            io.server_side_emit_with_ack("hello", Vec::new(), Duration::from_secs(1))
                .await,
            Ok(Vec::new())
        );
    }
}
