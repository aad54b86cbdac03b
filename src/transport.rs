//! [`ReqwestTransport`]: a `reqwest::Client` as the transport under a tollgate stack (feature
//! `reqwest`).
//!
//! reqwest implements `tower::Service<reqwest::Request>`, but tollgate's layers speak
//! `http::Request<BufferedBody>` and `http::Response<B>`: this adapter converts the request
//! with `reqwest::Request::try_from`, sends it with the client's own `Service` impl, and
//! converts the answer with `http::Response::from`. The body streams through untouched.
//!
//! The feature enables reqwest without TLS: enable a TLS backend on your own `reqwest`
//! dependency (`rustls-tls`, `native-tls`), and Cargo unifies the two.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tollgate_core::BoxError;
use tollgate_core::body::BufferedBody;
use tower::Service;

/// A [`reqwest::Client`] as a `tower::Service<http::Request<BufferedBody>>` answering
/// `http::Response<reqwest::Body>`, errors boxed: the transport a tollgate stack wraps.
///
/// Cloning is cheap and shares the client's connection pool. It is always ready. Timeouts,
/// TLS, proxies and pooling are the client's: configure them on the `reqwest::ClientBuilder`.
/// Errors are [`reqwest::Error`]s, boxed: a request whose URI reqwest cannot parse (a
/// relative one, say) fails without being sent; connect failures and timeouts keep their
/// `std::io::Error` source, which `ClassifyLayer` above turns into a `Connect` or `Timeout`
/// verdict.
///
/// # Examples
///
/// ```
/// use tollgate::ServiceBuilderExt;
/// use tollgate::providers::OpenAi;
/// use tollgate::retry::RetryPolicy;
/// use tollgate::transport::ReqwestTransport;
///
/// let client = tower::ServiceBuilder::new()
///     .retries(RetryPolicy::openai())
///     .classify(OpenAi::new())
///     .service(ReqwestTransport::new(reqwest::Client::new()));
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// Sends every request through `client`.
    pub fn new(client: reqwest::Client) -> Self {
        ReqwestTransport { client }
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport").finish_non_exhaustive()
    }
}

impl Service<http::Request<BufferedBody>> for ReqwestTransport {
    type Response = http::Response<reqwest::Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    /// Always ready: reqwest queues for a pooled connection inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    /// Converts the request (the buffered bytes become reqwest's body, without a copy) and
    /// sends it.
    fn call(&mut self, request: http::Request<BufferedBody>) -> ResponseFuture {
        let request = request.map(|body| reqwest::Body::from(body.into_bytes()));
        match reqwest::Request::try_from(request) {
            Ok(request) => ResponseFuture::Sending {
                future: self.client.call(request),
            },
            Err(error) => ResponseFuture::Invalid { error: Some(error) },
        }
    }
}

/// The future of [`ReqwestTransport`]: reqwest's own future, its answer converted.
///
/// # Cancellation
///
/// Dropping it drops reqwest's future, which abandons the request and its connection.
pub enum ResponseFuture {
    /// Sent; waiting for the response head.
    Sending {
        /// reqwest's future (`reqwest::Client`'s `Service::Future`).
        future: <reqwest::Client as Service<reqwest::Request>>::Future,
    },
    /// The request could not be converted: fails at the first poll.
    Invalid {
        /// The conversion error, until returned.
        error: Option<reqwest::Error>,
    },
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseFuture::Sending { .. } => f.write_str("ResponseFuture::Sending"),
            ResponseFuture::Invalid { .. } => f.write_str("ResponseFuture::Invalid"),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<reqwest::Body>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // reqwest's future is `Unpin` (it boxes its state), so no projection is needed.
        match self.get_mut() {
            ResponseFuture::Sending { future } => Pin::new(future)
                .poll(cx)
                .map(|outcome| outcome.map(http::Response::from).map_err(Into::into)),
            ResponseFuture::Invalid { error } => Poll::Ready(Err(error.take().map_or_else(
                || "ResponseFuture polled after completion".into(),
                Into::into,
            ))),
        }
    }
}
