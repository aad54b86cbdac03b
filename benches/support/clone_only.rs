//! tower's retry with a policy that keeps a copy of each request and never retries: the least
//! any retry layer pays on a first try that succeeds, measured beside tollgate's `RetryLayer`.
//! Included with `#[path]` by the benches that have `tower` with its `retry` feature.

use http::Request;

/// Keeps a copy of every request (as a policy able to retry must), retries none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CloneOnly;

impl<B: Clone, Res, E> tower::retry::Policy<Request<B>, Res, E> for CloneOnly {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Request<B>, _: &mut Result<Res, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        Some(request.clone())
    }
}
