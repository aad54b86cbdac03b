//! [`Fallback`]: the service, and the state its clones share.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::time::Instant;
use tollgate_core::body::BufferedBody;
use tollgate_core::clock::Origin;
use tollgate_core::{BoxError, Deadline};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::target::{FallbackPolicy, Target};

/// Which list of targets a request is going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// The primary (the inner service), then the fallbacks.
    Main,
    /// Larger-context models, after a context-window failure.
    ContextWindow,
    /// Other providers or models, after a content-policy refusal.
    ContentPolicy,
}

/// A target's cooldown: nanoseconds since the origin until which it is skipped.
#[derive(Default)]
pub(crate) struct Cooldown(AtomicU64);

impl Cooldown {
    pub(crate) fn until(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Extends the cooldown to `until`, never shortening it.
    pub(crate) fn extend(&self, until: u64) {
        self.0.fetch_max(until, Ordering::AcqRel);
    }
}

pub(crate) struct Shared<S> {
    /// Shared with the streams that may still fail after their response was handed back.
    pub(crate) policy: Arc<FallbackPolicy>,
    pub(crate) origin: Origin,
    pub(crate) primary: Arc<Cooldown>,
    pub(crate) primary_name: Arc<str>,
    pub(crate) fallbacks: Vec<(Target<S>, Arc<Cooldown>)>,
    pub(crate) context_window: Vec<(Target<S>, Arc<Cooldown>)>,
    pub(crate) content_policy: Vec<(Target<S>, Arc<Cooldown>)>,
}

impl<S> Shared<S> {
    pub(crate) fn new(
        policy: FallbackPolicy,
        primary_name: Arc<str>,
        fallbacks: Vec<Target<S>>,
        context_window: Vec<Target<S>>,
        content_policy: Vec<Target<S>>,
    ) -> Self {
        let cool =
            |targets: Vec<Target<S>>| targets.into_iter().map(|t| (t, Arc::default())).collect();
        Shared {
            policy: Arc::new(policy),
            origin: Origin::new(),
            primary: Arc::default(),
            primary_name,
            fallbacks: cool(fallbacks),
            context_window: cool(context_window),
            content_policy: cool(content_policy),
        }
    }

    /// Nanoseconds since the origin, on tokio's clock.
    pub(crate) fn now(&self) -> u64 {
        self.origin.elapsed_nanos()
    }

    pub(crate) fn chain(&self, chain: Chain) -> &[(Target<S>, Arc<Cooldown>)] {
        match chain {
            Chain::Main => &self.fallbacks,
            Chain::ContextWindow => &self.context_window,
            Chain::ContentPolicy => &self.content_policy,
        }
    }
}

/// Sends each request to the inner service (the primary) and, when its verdict says so, to the
/// next target. Built by [`FallbackLayer`](crate::FallbackLayer).
///
/// See the [crate docs](crate) for examples.
pub struct Fallback<S> {
    inner: S,
    shared: Arc<Shared<S>>,
}

impl<S> Fallback<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<S>>) -> Self {
        Fallback { inner, shared }
    }

    /// The primary.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The primary, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The primary, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ResBody> Service<http::Request<BufferedBody>> for Fallback<S>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, ResBody>;

    /// Readies the primary.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Sends the request to the primary at once unless it is cooling down, keeping the request
    /// for the targets after it.
    fn call(&mut self, request: http::Request<BufferedBody>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // Waiting for a cooling target is allowed until then; `None`: not at all.
        let give_up_at = {
            let max_wait = shared.policy.max_wait;
            let by_policy = (!max_wait.is_zero()).then_some(max_wait);
            Deadline::sooner(Deadline::of(&request), by_policy, Instant::now)
                .map(|end| shared.origin.offset_nanos(end.instant()))
        };
        // No clock read unless the primary ever cooled down.
        let until = shared.primary.until();
        if until == 0 || until <= shared.now() {
            let future = self.inner.call(request.clone());
            return ResponseFuture::calling_primary(future, request, shared, give_up_at);
        }
        ResponseFuture::skipping_primary(self.inner.clone(), request, shared, give_up_at)
    }
}

impl<S: Clone> Clone for Fallback<S> {
    fn clone(&self) -> Self {
        Fallback {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Fallback<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .field("fallbacks", &self.shared.fallbacks.len())
            .finish_non_exhaustive()
    }
}
