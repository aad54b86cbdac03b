//! [`Retry`]: the service.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::time::Instant;
use tollgate_core::{BoxError, Deadline, Sooner};
use tower_service::Service;

use crate::budget::RetryBudget;
use crate::future::ResponseFuture;
use crate::judge::{HttpJudge, Judge};
use crate::policy::RetryPolicy;
use crate::rng::{HasherRng, Rng};

/// What every clone of a [`Retry`] shares.
pub(crate) struct Shared<J, R, H> {
    pub(crate) policy: RetryPolicy,
    pub(crate) judge: J,
    /// Drawn from only when a backoff or a server delay's spread is computed; shared by every
    /// service of the layer, so that they do not draw the same jitter.
    pub(crate) rng: Arc<Mutex<R>>,
    pub(crate) hook: H,
    pub(crate) budget: Option<RetryBudget>,
}

impl<J, R: Rng, H> Shared<J, R, H> {
    pub(crate) fn draw(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_f64()
    }
}

/// Sends each request, and again while its attempts fail retryably. Built by
/// [`RetryLayer`](crate::RetryLayer).
///
/// See the [crate docs](crate) for examples.
pub struct Retry<S, J = HttpJudge, R = HasherRng, H = ()> {
    inner: S,
    shared: Arc<Shared<J, R, H>>,
}

impl<S, J, R, H> Retry<S, J, R, H> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<J, R, H>>) -> Self {
        Retry { inner, shared }
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

impl<S, Req, J, R, H> Service<Req> for Retry<S, J, R, H>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    Req: Clone,
    J: Judge<Req, S::Response>,
    R: Rng,
    H: crate::OnRetry,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, J, R, H>;

    /// Readies the inner service for the first attempt.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Sends the first attempt at once, keeping a copy of the request (as the judge keeps it:
    /// [`Judge::keep`]) and a clone of the inner service for retries.
    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let by_deadline = shared.judge.deadline(&request).map(Deadline::at);
        // The clock is read only with a total time.
        let give_up_at = Deadline::sooner(by_deadline, shared.policy.total_time, Instant::now)
            .map(Sooner::instant);
        if let Some(budget) = &shared.budget {
            budget.deposit(budget.elapsed());
        }
        let observe = shared.judge.observe(&request);
        ResponseFuture::start(&mut self.inner, request, shared, give_up_at, observe)
    }
}

impl<S: Clone, J, R, H> Clone for Retry<S, J, R, H> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, J: fmt::Debug, R, H> fmt::Debug for Retry<S, J, R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy)
            .field("judge", &self.shared.judge)
            .finish_non_exhaustive()
    }
}
