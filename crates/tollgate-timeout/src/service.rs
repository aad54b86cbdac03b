//! [`Timeout`]: the service.

use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body;
use tokio::time::Instant;
use tollgate_core::{BoxError, Deadline};
use tower_service::Service;

use crate::body::TimeoutBody;
use crate::config::{Packed, TimeoutConfig};
use crate::future::ResponseFuture;

/// Holds each call to the time limits of its [`TimeoutConfig`] and the request's
/// [`Deadline`]. Built by [`TimeoutLayer`](crate::TimeoutLayer).
///
/// See the [crate docs](crate) for examples.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limits: Packed,
}

impl<S> Timeout<S> {
    pub(crate) fn new(inner: S, config: TimeoutConfig) -> Self {
        Timeout {
            inner,
            limits: Packed::new(&config),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Timeout<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Unpin,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<TimeoutBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    /// Readies the inner service; no limit applies to waiting for it.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Calls the inner service, unless the request's deadline has already passed: then the
    /// attempt fails at once with a `TimedOut` for the deadline, and nothing is sent.
    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let deadline = Deadline::of(&request).map(Deadline::instant);
        if deadline.is_some_and(|at| at <= Instant::now()) {
            return ResponseFuture::expired(self.limits);
        }
        ResponseFuture::new(self.inner.call(request), self.limits, deadline)
    }
}
