//! One HTTP/1.1 keep-alive connection for polling requests, reopened when the server closes it.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::{stream, TransportError};
use crate::url::EngineUrl;

/// How much of an error response's body is kept for the error message.
const ERROR_BODY_CHARS: usize = 200;

/// A keep-alive HTTP/1.1 connection to the server, used for one request at a time.
///
/// Polling keeps two: one for the long-poll `GET`s, one for the `POST`s, so sending never waits
/// for a poll to return.
#[derive(Debug)]
pub(crate) struct HttpConnection {
    url: Arc<EngineUrl>,
    open: Option<(SendRequest<Full<Bytes>>, JoinHandle<()>)>,
}

impl HttpConnection {
    /// A connection to the server of `url`, opened on first use.
    pub(crate) fn new(url: Arc<EngineUrl>) -> Self {
        Self { url, open: None }
    }

    /// Sends `request` and reads the whole response body, refusing one over `max_body` bytes.
    ///
    /// A request the server never received because it had just closed the idle connection
    /// (Node closes keep-alive connections after 5 s) is sent again on a new connection.
    pub(crate) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        let mut request = request;
        let mut retried = false;
        loop {
            let sender = self.ready().await?;
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let body = Limited::new(response.into_body(), max_body)
                        .collect()
                        .await
                        .map_err(|error| match error.downcast::<hyper::Error>() {
                            Ok(error) => TransportError::Http(*error),
                            Err(_) => TransportError::TooLarge { max: max_body },
                        })?
                        .to_bytes();
                    return Ok((status, body));
                }
                Err(mut error) => {
                    self.close();
                    match error.take_message() {
                        Some(unsent) if !retried => {
                            retried = true;
                            request = unsent;
                        }
                        _ => return Err(TransportError::Http(error.into_error())),
                    }
                }
            }
        }
    }

    /// The open connection, ready for a request; opens one when there is none or the last one
    /// closed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, TransportError> {
        let stale = match &mut self.open {
            Some((sender, _)) => sender.is_closed() || sender.ready().await.is_err(),
            None => false,
        };
        if stale {
            self.close();
        }
        if self.open.is_none() {
            let stream = stream::connect(&self.url).await?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
            let driver = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "polling connection ended");
                }
            });
            self.open = Some((sender, driver));
        }
        match &mut self.open {
            Some((sender, _)) => Ok(sender),
            None => Err(TransportError::Handshake("no HTTP connection".to_owned())),
        }
    }

    fn close(&mut self) {
        if let Some((_, driver)) = self.open.take() {
            driver.abort();
        }
    }
}

impl Drop for HttpConnection {
    fn drop(&mut self) {
        self.close();
    }
}

/// Checks that a response is `200 OK`, or turns it into an error with the start of its body.
pub(crate) fn expect_ok(status: StatusCode, body: Bytes) -> Result<Bytes, TransportError> {
    if status == StatusCode::OK {
        return Ok(body);
    }
    let text = String::from_utf8_lossy(&body);
    Err(TransportError::Status {
        status,
        body: text.chars().take(ERROR_BODY_CHARS).collect(),
    })
}
