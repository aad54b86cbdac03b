//! [`BufferBodyLayer`]: buffering every request body before the inner service, with its service
//! [`BufferBody`] and response future [`BufferBodyFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::Body;
use pin_project_lite::pin_project;

use super::{BufferFuture, BufferedBody, DEFAULT_BODY_LIMIT, buffer_request};
use crate::BoxError;

/// Buffers each request's body once, before the inner service sees it: the inner service gets
/// `http::Request<`[`BufferedBody`]`>`, which is `Clone` and replays its bytes, so retry and
/// fallback above it can send it again. A body above the limit fails with [`BodyTooLarge`].
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tollgate_core::body::{BufferBodyLayer, BufferedBody};
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let inner = tower::service_fn(|request: http::Request<BufferedBody>| async move {
///     Ok::<_, std::convert::Infallible>(request.body().len())
/// });
/// let service = BufferBodyLayer::new().layer(inner);
/// let request = http::Request::new(Full::new(Bytes::from_static(b"hello")));
/// assert_eq!(service.oneshot(request).await.unwrap(), 5);
/// # }
/// ```
///
/// [`BodyTooLarge`]: super::BodyTooLarge
#[derive(Debug, Clone, Copy)]
pub struct BufferBodyLayer {
    limit: usize,
}

impl BufferBodyLayer {
    /// Buffers up to [`DEFAULT_BODY_LIMIT`] (32 MiB).
    pub const fn new() -> Self {
        BufferBodyLayer {
            limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Buffers up to `limit` bytes.
    #[must_use]
    pub const fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

impl Default for BufferBodyLayer {
    fn default() -> Self {
        BufferBodyLayer::new()
    }
}

impl<S> tower_layer::Layer<S> for BufferBodyLayer {
    type Service = BufferBody<S>;

    fn layer(&self, inner: S) -> BufferBody<S> {
        BufferBody {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`BufferBodyLayer`].
///
/// `poll_ready` readies the inner service; `call` hands it (swapped for a clone) and the request
/// to the response future, which reads the body, then calls it. Dropping the future drops the
/// request.
#[derive(Debug, Clone)]
pub struct BufferBody<S> {
    inner: S,
    limit: usize,
}

impl<S> BufferBody<S> {
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

impl<S, B> tower_service::Service<http::Request<B>> for BufferBody<S>
where
    S: tower_service::Service<http::Request<BufferedBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BufferBodyFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        BufferBodyFuture {
            state: BufferState::Reading {
                read: buffer_request(request, self.limit),
                service: Some(service),
            },
        }
    }
}

pin_project! {
    /// The response future of [`BufferBody`].
    #[must_use = "futures do nothing unless polled"]
    pub struct BufferBodyFuture<S, B>
    where
        S: tower_service::Service<http::Request<BufferedBody>>,
    {
        #[pin]
        state: BufferState<S, B, S::Future>,
    }
}

pin_project! {
    #[project = BufferStateProj]
    enum BufferState<S, B, F> {
        Reading {
            #[pin]
            read: BufferFuture<B>,
            service: Option<S>,
        },
        Calling {
            #[pin]
            future: F,
        },
    }
}

impl<S, B> Future for BufferBodyFuture<S, B>
where
    S: tower_service::Service<http::Request<BufferedBody>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                BufferStateProj::Reading { read, service } => {
                    let request = ready!(read.poll(cx))?;
                    let mut service = service.take().expect("read once");
                    let future = service.call(request);
                    this.state.set(BufferState::Calling { future });
                }
                BufferStateProj::Calling { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for BufferBodyFuture<S, B>
where
    S: tower_service::Service<http::Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferBodyFuture").finish_non_exhaustive()
    }
}
