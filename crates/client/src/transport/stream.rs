//! The byte stream under every transport: plain TCP, or TLS over TCP for `https://` and
//! `wss://` servers. hyper's client connection and tokio-tungstenite's handshake both take it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::TransportError;
use crate::tls::{CertificateError, TlsConnect};
use crate::url::EngineUrl;

/// A connection to the server.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `http://` and `ws://`.
    Plain(TcpStream),
    /// `https://` and `wss://`; boxed because a TLS session is large.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Opens a connection to the server of `url`, with TLS when its scheme asks for it.
pub(crate) async fn connect(url: &EngineUrl) -> Result<Stream, TransportError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|source| TransportError::Connect {
            addr: format!("{}:{}", url.host, url.port),
            source,
        })?;
    // Engine.IO packets are small and latency matters: do not wait to coalesce them.
    let _ = tcp.set_nodelay(true);
    match &url.tls {
        None => Ok(Stream::Plain(tcp)),
        Some(tls) => handshake(tls, tcp).await,
    }
}

async fn handshake(tls: &TlsConnect, tcp: TcpStream) -> Result<Stream, TransportError> {
    match tls.connector.connect(tls.server_name.clone(), tcp).await {
        Ok(stream) => Ok(Stream::Tls(Box::new(stream))),
        Err(error) => Err(TransportError::Tls(tls_failure(&error))),
    }
}

/// Why a TLS handshake failed, from the error tokio-rustls returns (a rustls error inside an
/// I/O error, or a plain I/O error when the connection ended).
fn tls_failure(error: &io::Error) -> TlsFailure {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(certificate)) => {
            TlsFailure::Certificate(CertificateError::from_rustls(certificate))
        }
        Some(rustls::Error::InvalidMessage(_)) => TlsFailure::Other(format!(
            "the server does not speak TLS on this port (is it plain http://?): {error}"
        )),
        Some(other) => TlsFailure::Other(other.to_string()),
        None if error.kind() == io::ErrorKind::UnexpectedEof => TlsFailure::Other(
            "the server closed the connection during the TLS handshake".to_owned(),
        ),
        None => TlsFailure::Other(error.to_string()),
    }
}

/// A failed TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsFailure {
    /// The server's certificate was refused.
    Certificate(CertificateError),
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Certificate(error) => write!(f, "the server's certificate was refused: {error}"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
