//! The [`Stack`](super::Stack)'s response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use tollgate_core::BoxError;

use super::StackBody;

pub(crate) type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<StackBody>, BoxError>> + Send + 'static>>;

/// The response future of a [`Stack`](super::Stack): the response, or the error of the layer
/// that gave up.
pub struct ResponseFuture {
    inner: BoxFuture,
}

impl ResponseFuture {
    pub(crate) fn new(inner: BoxFuture) -> Self {
        ResponseFuture { inner }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<StackBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
