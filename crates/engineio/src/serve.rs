//! A minimal HTTP/1.1 server loop for running a service without a web framework.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::refusal::count_refusal;

/// Settings of [`serve_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a client may take to send a request's headers, counted from when the server
    /// starts waiting for them. Past it the connection is closed without an answer (hyper's
    /// `header_read_timeout`), so a client trickling its headers (slowloris) holds a connection
    /// only this long. The same clock closes a kept-alive connection idle for this long, as any
    /// HTTP server does; clients open a new one. A pending long-poll is not affected: the server
    /// is then writing, not waiting for headers. 30 s by default; `None` waits forever.
    pub header_read_timeout: Option<Duration>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Serves `service` on every connection `listener` accepts, until the task is dropped, with the
/// default [`ServeConfig`].
///
/// Each request carries the peer's [`SocketAddr`] in its extensions; sockets get `TCP_NODELAY`,
/// since Engine.IO packets are small and latency matters more than coalescing. Upgraded
/// connections (WebSocket) are handed over to the service.
pub async fn serve<S, B>(listener: TcpListener, service: S) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, service, ServeConfig::default()).await
}

/// [`serve`] with settings.
pub async fn serve_with<S, B>(
    listener: TcpListener,
    service: S,
    config: ServeConfig,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = http_builder(&config);
    loop {
        let (stream, peer) = accept(&listener).await;
        tokio::spawn(serve_connection(
            stream,
            peer,
            service.clone(),
            builder.clone(),
        ));
    }
}

/// The next connection `listener` accepts, with `TCP_NODELAY` set. A failed accept (running
/// out of file descriptors, say) is transient: it is logged, and the next is awaited after a
/// pause instead of spinning.
pub(crate) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP/1.1 builder [`serve_with`] (and the TLS loop) serves each connection with.
pub(crate) fn http_builder(config: &ServeConfig) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    builder
}

/// Serves one accepted connection (plain TCP, or TLS once its handshake is done) until it ends.
pub(crate) async fn serve_connection<I, S, B>(
    stream: I,
    peer: SocketAddr,
    service: S,
    builder: hyper::server::conn::http1::Builder,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert::<SocketAddr>(peer);
        let mut service = service.clone();
        service.call(request)
    });
    let stream = Watched::new(stream);
    let started_request = stream.started_request.clone();
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        if error.is_timeout() && started_request.load(Ordering::Relaxed) {
            // Part of a request head arrived, but not all of it in time. (A timeout
            // with nothing received is an idle connection closing: not a refusal.)
            tracing::info!(reason = "header_timeout", %peer, "refused: request headers not received in time");
            count_refusal("header_timeout");
        } else {
            tracing::trace!(%error, "connection ended with an error");
        }
    }
}

/// The TCP stream under a connection that [`serve_with`] upgraded, and the bytes the HTTP
/// parser had read past the request; the connection back when it came another way (TLS, or a
/// server of the application's own).
///
/// The session then holds the stream inline: the upgraded connection kept it boxed, with the
/// header timeout's flag, in two allocations of its own (~0.1 KiB per connection).
pub(crate) fn into_tcp(
    upgraded: hyper::upgrade::Upgraded,
) -> Result<(TcpStream, Bytes), hyper::upgrade::Upgraded> {
    let parts = upgraded.downcast::<TokioIo<Watched<TcpStream>>>()?;
    Ok((parts.io.into_inner().stream, parts.read_buf))
}

/// A stream that remembers whether bytes arrived since the server last wrote, that is,
/// whether a new request has started: the difference between a slow client and an idle one
/// when the header timeout fires. (Across an upgrade the flag goes on being kept, unused.)
struct Watched<I> {
    stream: I,
    started_request: Arc<AtomicBool>,
}

impl<I> Watched<I> {
    fn new(stream: I) -> Self {
        Self {
            stream,
            started_request: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.started_request.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.started_request.store(false, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.started_request.store(false, Ordering::Relaxed);
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
