//! [`Cache`]: the service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tollgate_core::BoxError;
use tollgate_core::body::BufferedBody;
use tollgate_core::observe::{Event, Observe};
use tower_service::Service;

use crate::body::CacheBody;
use crate::future::ResponseFuture;
use crate::policy::CacheStatus;
use crate::store::{Decision, Join, Shared};

/// Answers cacheable requests from the cache, coalesces concurrent identical ones into one
/// call of the inner service, and stores successful, complete responses. Built by
/// [`CacheLayer`](crate::CacheLayer); clones share the store.
///
/// See the [crate docs](crate) for examples.
pub struct Cache<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Cache<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Cache { inner, shared }
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

impl<S, ResBody> Service<http::Request<BufferedBody>> for Cache<S>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ResBody>;

    /// Readies the inner service. A hit leaves it readied for the next call.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    /// Answers a hit at once; a leader calls the readied inner service at once; a follower
    /// keeps an unreadied clone of it, in case it must go upstream itself.
    fn call(&mut self, mut request: http::Request<BufferedBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let miss = match shared.lookup(&mut request) {
            Decision::Pass => return ResponseFuture::passthrough(self.inner.call(request)),
            Decision::Hit(response) => {
                report(&request, CacheStatus::Hit);
                return ResponseFuture::ready(response);
            }
            Decision::Miss(miss) => miss,
        };
        let observe = Observe::of(&request).cloned();
        match shared.claim(&miss) {
            Join::Hit(stored) => {
                report(&request, CacheStatus::Hit);
                ResponseFuture::ready(stored.response(CacheStatus::Hit))
            }
            Join::Lead(guard) => {
                report(&request, CacheStatus::Miss);
                let future = self.inner.call(request);
                ResponseFuture::leading(future, guard, miss, shared)
            }
            Join::Follow(rx) => {
                ResponseFuture::following(rx, self.inner.clone(), request, miss, shared, observe)
            }
        }
    }
}

/// Reports the lookup's outcome to the request's observer.
pub(crate) fn report<B>(request: &http::Request<B>, status: CacheStatus) {
    if let Some(observe) = Observe::of(request) {
        report_to(observe, status);
    }
}

pub(crate) fn report_to(observe: &Observe, status: CacheStatus) {
    let (hit, coalesced) = match status {
        CacheStatus::Hit => (true, false),
        CacheStatus::Coalesced => (false, true),
        _ => (false, false),
    };
    observe.event(&Event::CacheLookup { hit, coalesced });
}

impl<S: Clone> Clone for Cache<S> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("inner", &self.inner)
            .field("shared", &self.shared)
            .finish()
    }
}
