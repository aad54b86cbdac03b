//! [`ClassifyService`].

use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tollgate_core::{BoxError, Classify};
use tower_service::Service;

use super::PeekedBody;
use super::future::ResponseFuture;

/// The service of [`ClassifyLayer`](super::ClassifyLayer): attaches a
/// [`Verdict`](tollgate_core::Verdict) to every response and wraps the inner service's call
/// errors in [`Classified`](tollgate_core::Classified) (readiness errors are only boxed).
///
/// See the [module docs](super) for examples.
#[derive(Debug, Clone)]
pub struct ClassifyService<S, C> {
    inner: S,
    classifier: C,
    peek_limit: usize,
}

// ===== impl ClassifyService =====

impl<S, C> ClassifyService<S, C> {
    pub(crate) const fn new(inner: S, classifier: C, peek_limit: usize) -> Self {
        ClassifyService {
            inner,
            classifier,
            peek_limit,
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

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The classifier.
    pub fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<S, C, ReqB, ResB> Service<Request<ReqB>> for ClassifyService<S, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body,
    C: Classify + Clone + Send + Sync + 'static,
{
    type Response = Response<PeekedBody<ResB>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        ResponseFuture::new(
            self.inner.call(request),
            self.classifier.clone(),
            self.peek_limit,
        )
    }
}
