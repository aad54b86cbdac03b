//! [`CircuitBreaker`]: the service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tollgate_core::key::{Keyer, Unkeyed};
use tollgate_core::observe::{Event, Observe, report_keys_at_cap};
use tollgate_core::{BoxError, RouteKey};
use tower_service::Service;

use crate::breaker::{CLOSED, Change, Pass, Refusal};
use crate::config::Trip;
use crate::error::CircuitOpen;
use crate::future::{Guard, ResponseFuture};
use crate::handle::{Mode, OnStateChange};
use crate::shared::{Shared, announce};

/// A service clone's own reference to the shared breakers and the hook, so that clones on
/// different threads do not contend on one reference count.
pub(crate) struct Local<H> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) hook: Arc<H>,
}

impl<H> Local<H> {
    pub(crate) fn new(shared: Arc<Shared>, hook: Arc<H>) -> Arc<Self> {
        Arc::new(Local { shared, hook })
    }
}

impl<H: OnStateChange> Local<H> {
    /// Tells the hook of `changes` to the breaker of `key`.
    pub(crate) fn announce(&self, key: Option<&RouteKey>, changes: &[Change]) {
        announce(&*self.hook, key, changes);
    }
}

/// Fails calls at once while their target's breaker is open; counts the outcomes of the rest.
/// Built by [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// See the [crate docs](crate) for examples.
pub struct CircuitBreaker<S, K = Unkeyed, H = ()> {
    inner: S,
    keyer: K,
    local: Arc<Local<H>>,
}

impl<S, K, H> CircuitBreaker<S, K, H> {
    pub(crate) fn new(inner: S, keyer: K, local: Arc<Local<H>>) -> Self {
        CircuitBreaker {
            inner,
            keyer,
            local,
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

impl<S, K, H, B, ResBody> Service<http::Request<B>> for CircuitBreaker<S, K, H>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    K: Keyer<B>,
    H: OnStateChange + Send + Sync + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, H>;

    /// Readies the inner service: which breaker applies depends on the request.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Asks the request's breaker: closed (the common case: one atomic load, no clock, no
    /// lock for an unkeyed breaker) or a free half-open probe slot calls the inner service;
    /// otherwise the future fails at once with [`CircuitOpen`].
    #[inline]
    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = &*self.local.shared;
        let mode = shared.mode();
        if mode == Mode::Disabled {
            return ResponseFuture::calling(self.inner.call(request), None);
        }
        let key = self.keyer.key(&request);
        // The common case, kept small enough to inline into the caller: an unkeyed breaker,
        // closed, neither forced open nor timing calls.
        if key.is_none()
            && mode != Mode::ForcedOpen
            && shared.unkeyed.state() == CLOSED
            && !matches!(shared.config.trip, Trip::SlowCallRate { .. })
        {
            let observe = Observe::of(&request).cloned();
            let guard = Guard::new(
                Arc::clone(&self.local),
                None,
                None,
                Pass::Normal,
                None,
                observe,
            );
            return ResponseFuture::calling(self.inner.call(request), Some(guard));
        }
        self.call_checked(request, key, mode)
    }
}

impl<S, K, H> CircuitBreaker<S, K, H> {
    /// Every other case of `call`: a keyed breaker, one that is not closed, a forced-open
    /// mode, a slow-call trip.
    #[inline(never)]
    fn call_checked<B, ResBody>(
        &mut self,
        request: http::Request<B>,
        key: Option<RouteKey>,
        mode: Mode,
    ) -> ResponseFuture<S::Future, H>
    where
        S: Service<http::Request<B>, Response = http::Response<ResBody>>,
        H: OnStateChange + Send + Sync + 'static,
    {
        let local = &*self.local;
        let shared = &*local.shared;
        if mode == Mode::ForcedOpen {
            return ResponseFuture::refused(CircuitOpen::new(key, None));
        }
        let keyed = match key.as_ref().map(|k| shared.keyed(k)).transpose() {
            Ok(keyed) => keyed.map(|(breaker, evicted)| {
                if evicted > 0 {
                    report_keys_at_cap(&request, "breaker", evicted, false);
                }
                breaker
            }),
            Err(refused) => {
                report_keys_at_cap(&request, "breaker", 0, true);
                return ResponseFuture::refused(refused);
            }
        };
        let breaker = keyed.as_deref().unwrap_or(&shared.unkeyed);
        let pass = if breaker.state() == CLOSED {
            Ok(Pass::Normal)
        } else {
            let mut changes = Vec::new();
            let pass = breaker.admit(&shared.config, shared.now(), &mut changes);
            local.announce(key.as_ref(), &changes);
            pass
        };
        let pass = match (pass, mode) {
            (Ok(pass), _) => pass,
            // Watching only: count the call as if admitted while closed.
            (Err(_), Mode::MetricsOnly) => Pass::Normal,
            (Err(refusal), _) => {
                if let Some(observe) = Observe::of(&request) {
                    observe.event(&Event::BreakerRefused { key: key.as_ref() });
                }
                let wait = match refusal {
                    Refusal::Open(until) => {
                        Some(Duration::from_nanos(until.saturating_sub(shared.now())))
                    }
                    Refusal::Probing => None,
                };
                return ResponseFuture::refused(CircuitOpen::new(key, wait));
            }
        };
        let started = matches!(shared.config.trip, Trip::SlowCallRate { .. }).then(Instant::now);
        let observe = Observe::of(&request).cloned();
        let guard = Guard::new(Arc::clone(&self.local), keyed, key, pass, started, observe);
        ResponseFuture::calling(self.inner.call(request), Some(guard))
    }
}

impl<S: Clone, K: Clone, H> Clone for CircuitBreaker<S, K, H> {
    fn clone(&self) -> Self {
        CircuitBreaker {
            inner: self.inner.clone(),
            keyer: self.keyer.clone(),
            local: Local::new(Arc::clone(&self.local.shared), Arc::clone(&self.local.hook)),
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, H> fmt::Debug for CircuitBreaker<S, K, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("keyer", &self.keyer)
            .field("config", &self.local.shared.config)
            .finish_non_exhaustive()
    }
}
