//! [`RateLimit`]: the service.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{BoxError, Cost, Deadline, Priority, RouteKey};
use tower_service::Service;

use crate::error::RateLimited;
use crate::estimate::{Estimator, PerRequest};
use crate::future::{Admission, Answer, ResponseFuture, Waiting};
use crate::key::{Keyer, Unkeyed};
use crate::limiter::{Limiter, Local, Place};
use crate::store::{MemoryStore, QuotaDecision, Store};

/// Admits each request against its key's quota, waiting fairly or refusing, then calls the
/// inner service. Built by [`RateLimitLayer`](crate::RateLimitLayer).
///
/// See the [crate docs](crate) for examples.
pub struct RateLimit<S, K = Unkeyed, E = PerRequest, St: Store = MemoryStore> {
    inner: S,
    /// Whether `poll_ready` has readied `inner` for the next `call`.
    ready: bool,
    keyer: K,
    estimator: E,
    max_wait: Option<Duration>,
    limiter: Local<St>,
}

impl<S, K, E, St: Store> RateLimit<S, K, E, St> {
    pub(crate) fn new(
        inner: S,
        keyer: K,
        estimator: E,
        max_wait: Option<Duration>,
        limiter: Arc<Limiter<St>>,
    ) -> Self {
        RateLimit {
            inner,
            ready: false,
            keyer,
            estimator,
            max_wait,
            limiter: Arc::new(limiter),
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

impl<S, K, E, St, B, ResBody> Service<http::Request<B>> for RateLimit<S, K, E, St>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    K: Keyer<B>,
    E: Estimator<B> + Clone + Send + 'static,
    St: Store,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, E, St>;

    /// Readies the inner service only: the request, and so its cost and key, is not known yet.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                self.ready = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes the request's key, cost, priority and deadline and asks for admission. Admitted at
    /// once (the quota has room and nobody waits), it calls the readied inner service now;
    /// otherwise it hands the readied service and the request to the response future, which
    /// waits for admission and then calls it, and keeps a fresh clone for the next call.
    ///
    /// # Panics
    ///
    /// When `poll_ready` has not returned `Ready(Ok(()))` since the last `call`.
    #[inline]
    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        assert!(
            mem::take(&mut self.ready),
            "RateLimit::call without poll_ready: poll_ready must return Ready(Ok(())) before each call"
        );
        let key = self.keyer.key(&request);
        let cost = match Cost::of(&request) {
            Some(cost) => *cost,
            None => self.estimator.estimate(&request),
        };
        let at = Instant::now();
        let now = self.limiter.origin.offset(at);
        // Nobody waits for any key (one atomic load): the request is first in line whatever
        // its priority, which is then not even read.
        if self.limiter.waiting() != 0 {
            return self.call_queued(request, key, cost, at, now);
        }
        let decision = self.limiter.store.admit(key.as_ref(), &cost, None, now);
        // The common case is decided here: the quota has room and nobody waits. Then the
        // readied inner service is called at once, with nothing to carry or allocate.
        match Answer::first(decision) {
            None => self.call_admitted(request, key, cost, now),
            Some(answer) => self.call_waiting(request, key, cost, at, now, None, answer),
        }
    }
}

impl<S, K, E: Clone, St: Store> RateLimit<S, K, E, St> {
    /// Admitted: reports the admission to the request's observer, if any, and calls the
    /// readied inner service.
    #[inline]
    fn call_admitted<B>(
        &mut self,
        request: http::Request<B>,
        key: Option<RouteKey>,
        cost: Cost,
        now: Duration,
    ) -> ResponseFuture<S, B, E, St>
    where
        S: Service<http::Request<B>> + Clone,
    {
        let limiter = &self.limiter;
        if let Some(observe) = Observe::of(&request) {
            limiter.report_admission(observe, key.as_ref(), now);
        }
        let admission = self.admission(key, cost, now);
        ResponseFuture::calling(self.inner.call(request), admission)
    }

    /// What the response future keeps of an admission asked for at `now`.
    #[inline]
    fn admission(&self, key: Option<RouteKey>, cost: Cost, now: Duration) -> Admission<St, E> {
        Admission {
            limiter: Arc::clone(&self.limiter),
            key,
            cost,
            taken_at: now,
            estimator: self.estimator.clone(),
        }
    }

    /// Someone waits: takes a place behind them (by priority) and asks the store.
    #[inline(never)]
    fn call_queued<B>(
        &mut self,
        request: http::Request<B>,
        key: Option<RouteKey>,
        cost: Cost,
        at: Instant,
        now: Duration,
    ) -> ResponseFuture<S, B, E, St>
    where
        S: Service<http::Request<B>> + Clone,
    {
        let limiter = &self.limiter;
        let priority = Priority::of(&request);
        let ahead = match limiter.place(key.as_ref(), priority) {
            Place::Front => None,
            Place::Behind(ahead) => Some(ahead),
        };
        let decision = limiter
            .store
            .admit(key.as_ref(), &cost, ahead.as_ref(), now);
        match Answer::first(decision) {
            None => self.call_admitted(request, key, cost, now),
            Some(answer) => {
                self.call_waiting(request, key, cost, at, now, Some((priority, ahead)), answer)
            }
        }
    }

    /// Not admitted at once: hands the readied service and the request to the response future,
    /// which waits for admission (queued, if it must wait) and then calls it, and keeps a fresh
    /// clone for the next call. `placed` is the request's priority and what is ahead of it when
    /// someone was waiting at the call.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn call_waiting<B>(
        &mut self,
        request: http::Request<B>,
        key: Option<RouteKey>,
        cost: Cost,
        at: Instant,
        now: Duration,
        placed: Option<(Priority, Option<Cost>)>,
        mut answer: Answer<St::Future>,
    ) -> ResponseFuture<S, B, E, St>
    where
        S: Service<http::Request<B>> + Clone,
    {
        let limiter = &self.limiter;
        let (priority, ahead) = match placed {
            Some((priority, ahead)) => (priority, ahead),
            None => (Priority::of(&request), None),
        };
        let admission = self.admission(key, cost, now);
        let give_up = Deadline::sooner(Deadline::of(&request), self.max_wait, || at)
            .map(|end| limiter.origin.offset(end.instant()));
        // Take a place in the queue now, not at the first poll, so that requests called later
        // but polled sooner do not pass this one — unless it is refused on its first poll. A
        // request first in line whose answer is on its way (a remote store's round trip) is
        // not waiting for quota: it queues only if told to wait, and the requests after it
        // ask for real meanwhile (pipelined, in the order the store receives them).
        let (queues, wait) = match &answer {
            Answer::Given(Some(Ok(QuotaDecision::Wait(wait)))) => (
                give_up.is_none_or(|limit| now.saturating_add(*wait) <= limit),
                Some(*wait),
            ),
            Answer::Coming(_) => (ahead.is_some(), None),
            Answer::Given(_) => (false, None),
        };
        let mut ticket = None;
        if queues {
            match limiter.enqueue(admission.key.clone(), priority, cost) {
                Ok(queued) => ticket = Some(queued),
                // The queue is full: refused with the quota's wait; a request whose answer is
                // on its way learns it, and is refused then unless admitted.
                Err(waiting) => {
                    if let Some(wait) = wait {
                        let refused = RateLimited::queue_full(wait, waiting);
                        answer = Answer::Given(Some(Err(refused.into())));
                    }
                }
            }
        }
        if let (Some(observe), Some(wait)) = (Observe::of(&request), wait) {
            let refused = ticket.is_none();
            let key = admission.key.as_ref();
            observe.event(&if refused {
                Event::RateLimitRefused { key }
            } else {
                Event::RateLimitWait { key, wait }
            });
        }
        let clone = self.inner.clone();
        let service = mem::replace(&mut self.inner, clone);
        let waiting = Waiting {
            service,
            request,
            priority,
            give_up,
            answer: Some(answer),
            behind: ahead.is_some(),
            ticket,
            retry_at: None,
            asked_at: now,
            eta_at: now,
            epoch: 0,
            sleep: None,
        };
        ResponseFuture::waiting(waiting, admission)
    }
}

impl<S: Clone, K: Clone, E: Clone, St: Store> Clone for RateLimit<S, K, E, St> {
    /// A clone shares the quota, but not the readiness: it must be polled ready itself.
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            ready: false,
            keyer: self.keyer.clone(),
            estimator: self.estimator.clone(),
            max_wait: self.max_wait,
            limiter: Arc::new(Arc::clone(&self.limiter)),
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, E: fmt::Debug, St: Store> fmt::Debug for RateLimit<S, K, E, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("keyer", &self.keyer)
            .field("estimator", &self.estimator)
            .field("max_wait", &self.max_wait)
            .field("limiter", &self.limiter)
            .finish()
    }
}
