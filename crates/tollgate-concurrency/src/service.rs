//! [`ConcurrencyLimit`]: the service.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;
use tollgate_core::key::{Keyer, Unkeyed};
use tollgate_core::observe::{Event, Observe, report_keys_at_cap};
use tollgate_core::{BoxError, Deadline, Priority, RouteKey, Sooner};
use tower_service::Service;

use crate::error::Saturated;
use crate::future::{ResponseFuture, Waiting, retry_hint};
use crate::shared::{Permit, Shared};

/// A service clone's own reference to the shared state.
pub(crate) type Local = Arc<Arc<Shared>>;

/// Caps the requests in flight to the inner service, per key. Built by
/// [`ConcurrencyLayer`](crate::ConcurrencyLayer).
///
/// See the [crate docs](crate) for examples.
pub struct ConcurrencyLimit<S, K = Unkeyed> {
    inner: S,
    keyer: K,
    shared: Local,
}

impl<S, K> ConcurrencyLimit<S, K> {
    pub(crate) fn new(inner: S, keyer: K, shared: Arc<Shared>) -> Self {
        ConcurrencyLimit {
            inner,
            keyer,
            shared: Arc::new(shared),
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

impl<S, K, B, ResBody> Service<http::Request<B>> for ConcurrencyLimit<S, K>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    K: Keyer<B>,
{
    type Response = http::Response<crate::PermitBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    /// Readies the inner service: which slot applies depends on the request's key.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Takes a slot for the request's key and calls the inner service at once; when none is
    /// free, queues the request (by priority, then first come) in the response future, or
    /// refuses it when the queue is full.
    #[inline]
    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let key = self.keyer.key(&request);
        if key.is_none() {
            // The common case, kept small enough to inline into the caller: unkeyed, a free
            // slot, nobody waiting.
            let shared = &**self.shared;
            let gate = &shared.unkeyed;
            let started = gate.cap().measures_latency().then(Instant::now);
            if gate.try_acquire() {
                let permit = Permit::new(Arc::clone(gate));
                let future = self.inner.call(request);
                let hold = shared.config.hold_until_body_end;
                return ResponseFuture::calling(future, permit, hold, started);
            }
        }
        self.call_checked(request, key)
    }
}

impl<S, K> ConcurrencyLimit<S, K> {
    /// Every other case of `call`: a keyed slot, or none free at once.
    #[inline(never)]
    fn call_checked<B, ResBody>(
        &mut self,
        request: http::Request<B>,
        key: Option<RouteKey>,
    ) -> ResponseFuture<S, B>
    where
        S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone,
    {
        let shared = &**self.shared;
        let config = &shared.config;
        let gate = match shared.gate(key.as_ref()) {
            Ok((gate, evicted)) => {
                if evicted > 0 {
                    report_keys_at_cap(&request, "concurrency", evicted, false);
                }
                gate
            }
            Err(refused) => {
                report_keys_at_cap(&request, "concurrency", 0, true);
                return ResponseFuture::refused(refused, config);
            }
        };
        let hold = config.hold_until_body_end;
        let started = config.cap.measures_latency().then(Instant::now);
        if gate.try_acquire() {
            let permit = Permit::new(gate);
            let future = self.inner.call(request);
            return ResponseFuture::calling(future, permit, hold, started);
        }
        let waiter = match gate.enqueue(Priority::of(&request), config.max_queue) {
            Ok(Some(waiter)) => waiter,
            Ok(None) => {
                let permit = Permit::new(gate);
                let future = self.inner.call(request);
                return ResponseFuture::calling(future, permit, hold, started);
            }
            Err(_) => {
                let hint = retry_hint(&gate, config.max_wait);
                let error = Saturated::new(gate.limit(), gate.waiting(), None, hint);
                return ResponseFuture::refused(error, config);
            }
        };
        if let Some(observe) = Observe::of(&request) {
            observe.event(&Event::ConcurrencyWait { key: key.as_ref() });
        }
        let now = Instant::now();
        let give_up_at =
            Deadline::sooner(Deadline::of(&request), config.max_wait, || now).map(Sooner::instant);
        let clone = self.inner.clone();
        let service = mem::replace(&mut self.inner, clone);
        let waiting = Waiting::new(
            Arc::clone(&gate),
            service,
            request,
            waiter,
            give_up_at,
            config.max_wait,
            now,
        );
        ResponseFuture::waiting(waiting, config)
    }
}

impl<S: Clone, K: Clone> Clone for ConcurrencyLimit<S, K> {
    fn clone(&self) -> Self {
        ConcurrencyLimit {
            inner: self.inner.clone(),
            keyer: self.keyer.clone(),
            shared: Arc::new(Arc::clone(&self.shared)),
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug> fmt::Debug for ConcurrencyLimit<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("keyer", &self.keyer)
            .field("config", &self.shared.config)
            .finish()
    }
}
