//! The body of every answer the engine gives.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use thiserror::Error;

/// An answer body: a complete buffer, or a deliberate failure that makes the HTTP server drop the
/// connection mid-answer (how [`crate::Socket::abort`] resets a pending long-poll).
#[derive(Debug)]
pub struct ResponseBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Abort,
}

/// The error of an aborted answer body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the session's transport was aborted")]
pub struct BodyAborted;

impl ResponseBody {
    /// A body holding these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: Kind::Full(Some(bytes.into())),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// A body that fails as soon as it is read, so the connection is cut.
    pub fn abort() -> Self {
        Self { kind: Kind::Abort }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyAborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyAborted>>> {
        Poll::Ready(match &mut self.kind {
            Kind::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            Kind::Abort => Some(Err(BodyAborted)),
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Abort => SizeHint::default(),
        }
    }
}
