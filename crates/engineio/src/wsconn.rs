//! An upgraded connection speaking RFC 6455 as the server: reads client frames through the
//! sans-IO [`Decoder`], writes whole server frames.
//!
//! The connection keeps no read buffer: each read lands in a scratch array on the stack of the
//! poll that makes it, and only the bytes of a frame still incomplete are kept (by the decoder)
//! until the frame completes. An idle connection therefore costs the struct alone.

// The futures that live in every session's task are `async` blocks returned by plain functions,
// not `async fn`s: an `async fn` copies its arguments into locals, so each was stored twice in
// the task (measured with `-Zprint-type-sizes`).
#![allow(clippy::manual_async_fn)]

use std::future::{poll_fn, Future};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use ferrio_engineio_proto::wsframe::{encode_close, CloseCode, Decoder, Event, FrameError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The most bytes one read call takes; the scratch array is this large.
pub(crate) const MAX_READ_CHUNK: usize = 16 * 1024;

/// Why no further event can be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The client closed the TCP connection without a close frame.
    #[error("connection closed without a close frame")]
    Eof,
    /// The connection failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke a framing rule.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// The byte stream under a WebSocket.
enum Io {
    /// A plain TCP connection accepted by [`crate::serve`], held inline.
    Tcp(TcpStream),
    /// Any other upgraded connection (TLS, or a server of the application's own). Boxed: it is
    /// larger, rarer, and every connection's task has room for the largest variant.
    Upgraded(Box<TokioIo<Upgraded>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Upgraded(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Upgraded(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Upgraded(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Upgraded(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One upgraded WebSocket connection, server side.
pub(crate) struct Connection {
    io: Io,
    decoder: Decoder,
    /// Bytes taken per read call, at most [`MAX_READ_CHUNK`].
    read_chunk: usize,
}

impl Connection {
    /// Wraps an upgraded connection; messages over `max_message` bytes are refused.
    pub(crate) fn new(upgraded: Upgraded, max_message: u64, read_chunk: usize) -> Self {
        let mut decoder = Decoder::new(max_message);
        let io = match crate::serve::into_tcp(upgraded) {
            Ok((stream, read_past)) => {
                // What a client sent right behind its request already belongs to the WebSocket.
                decoder.handle_bytes(&read_past);
                Io::Tcp(stream)
            }
            Err(upgraded) => Io::Upgraded(Box::new(TokioIo::new(upgraded))),
        };
        Self {
            io,
            decoder,
            read_chunk: read_chunk.clamp(1, MAX_READ_CHUNK),
        }
    }

    /// The next message or control frame from the client. Cancel-safe: bytes already read stay
    /// in the decoder.
    pub(crate) async fn next_event(&mut self) -> Result<Event, ReadError> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Polls for the next message or control frame; see [`Connection::next_event`].
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, ReadError>> {
        loop {
            if let Some(event) = self.decoder.poll_event()? {
                return Poll::Ready(Ok(event));
            }
            // On this poll's stack, not in the session's future: nothing is held while waiting.
            let mut scratch = [MaybeUninit::<u8>::uninit(); MAX_READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut scratch[..self.read_chunk]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
            if buf.filled().is_empty() {
                return Poll::Ready(Err(ReadError::Eof));
            }
            self.decoder.handle_bytes(buf.filled());
        }
    }

    /// Writes bytes holding whole frames, and flushes them. Not cancel-safe (a frame may be cut),
    /// so it is never raced against anything.
    ///
    /// A hand-written future: it keeps only the connection, the bytes and a count (32 B), where
    /// `write_all` and `flush` in an `async` block took 56 B of every session's task.
    pub(crate) fn write<'a>(
        &'a mut self,
        frames: &'a [u8],
    ) -> impl Future<Output = std::io::Result<()>> + 'a {
        let mut written = 0;
        poll_fn(move |cx| {
            while let Some(rest) = frames.get(written..).filter(|rest| !rest.is_empty()) {
                let n = ready!(Pin::new(&mut self.io).poll_write(cx, rest))?;
                if n == 0 {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                written += n;
            }
            Pin::new(&mut self.io).poll_flush(cx)
        })
    }

    /// Ends the connection: `frame` (a close frame, built by [`close_frame`]; nothing when
    /// empty), then the end of the TCP stream. Errors are ignored: the connection is going away
    /// either way.
    pub(crate) fn close<'a>(&'a mut self, frame: &'a [u8]) -> impl Future<Output = ()> + 'a {
        async move {
            if !frame.is_empty() && self.write(frame).await.is_err() {
                return;
            }
            let _ = self.io.shutdown().await;
        }
    }
}

/// A close frame with this code and reason ([`CloseCode::NO_STATUS`]: no payload).
pub(crate) fn close_frame(code: CloseCode, reason: &str) -> Vec<u8> {
    let mut frame = Vec::with_capacity(2 + 125);
    encode_close(&mut frame, code, reason);
    frame
}

/// A close frame without a code, as a constant: what the server sends when it ends a session.
pub(crate) const CLOSE_WITHOUT_CODE: &[u8] = &[0x88, 0x00];
