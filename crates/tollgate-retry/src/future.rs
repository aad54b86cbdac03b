//! [`ResponseFuture`]: attempts, waits, and attempts again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{BoxError, ErrorClass, Verdict};
use tower_service::Service;

use crate::error::RetriesExhausted;
use crate::events::{OnRetry, RetryEvent};
use crate::judge::{Judge, Kept};
use crate::policy::{Decision, GaveUp};
use crate::rng::Rng;
use crate::service::Shared;

pin_project! {
    /// The response future of [`Retry`](crate::Retry).
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the attempt in flight or the wait; no further attempt is made.
    #[must_use = "futures do nothing unless polled"]
    #[project = ResponseFutureProj]
    pub struct ResponseFuture<S, Req, J, R, H>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        // The request, for the next attempt.
        request: Kept<Req>,
        shared: Arc<Shared<J, R, H>>,
        // Attempts made so far, and how many of the retries followed an overload.
        attempts: u32,
        overloaded: u32,
        previous: Duration,
        give_up_at: Option<Instant>,
        observe: Option<Observe>,
        // The current attempt's span, inside the request's.
        span: tracing::Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling {
            #[pin]
            future: F,
        },
        Waiting {
            #[pin]
            sleep: Sleep,
        },
        Readying,
        Done,
    }
}

impl<S, Req, J, R, H> ResponseFuture<S, Req, J, R, H>
where
    S: Service<Req> + Clone,
    Req: Clone,
    J: Judge<Req, S::Response>,
{
    /// Sends the first attempt of `request` to `service` (readied), keeping a copy of the
    /// request and a clone of the service for retries.
    ///
    /// The future is written as one struct literal, the copy first (field initializers run in
    /// order, before `request` moves into the first attempt): each part is built where it
    /// stays, not built aside and moved in.
    #[inline(always)]
    pub(crate) fn start(
        service: &mut S,
        mut request: Req,
        shared: &Arc<Shared<J, R, H>>,
        give_up_at: Option<Instant>,
        observe: Option<Observe>,
    ) -> Self {
        ResponseFuture {
            request: shared.judge.keep(&mut request),
            state: State::Calling {
                future: service.call(request),
            },
            service: service.clone(),
            shared: Arc::clone(shared),
            attempts: 1,
            overloaded: 0,
            previous: Duration::ZERO,
            give_up_at,
            observe,
            span: attempt_span(1),
        }
    }
}

impl<S, Req, J, R, H> Future for ResponseFuture<S, Req, J, R, H>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    Req: Clone,
    J: Judge<Req, S::Response>,
    R: Rng,
    H: OnRetry,
{
    type Output = Result<S::Response, BoxError>;

    /// The state diagram: calling → (success, or given up) done; calling → waiting → readying
    /// → calling for a retry.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let outcome = {
                        let _entered = this.span.enter();
                        ready!(future.poll(cx)).map_err(Into::into)
                    };
                    let verdict = this.judge(&outcome);
                    // The common case returns here, the outcome moved once; a failure is
                    // handled out of line.
                    if verdict.is_success() {
                        this.state.set(State::Done);
                        return Poll::Ready(outcome);
                    }
                    match this.after_failure(verdict, outcome) {
                        AfterAttempt::Wait(delay) => this.state.set(State::Waiting {
                            sleep: tokio::time::sleep(delay),
                        }),
                        AfterAttempt::Finish(output) => {
                            this.state.set(State::Done);
                            return Poll::Ready(output);
                        }
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => match ready!(this.next_attempt(cx)) {
                    Ok(future) => this.state.set(State::Calling { future }),
                    Err(error) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    }
                },
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// What follows an attempt: a wait before the next one, or the future's output.
enum AfterAttempt<T> {
    Wait(Duration),
    Finish(Result<T, BoxError>),
}

impl<S, Req, J, R, H> ResponseFutureProj<'_, S, Req, J, R, H>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    Req: Clone,
    J: Judge<Req, S::Response>,
    R: Rng,
    H: OnRetry,
{
    /// Calling, done: the judge's verdict on the attempt's outcome, recorded on its span.
    fn judge(&mut self, outcome: &Result<S::Response, BoxError>) -> Verdict {
        let verdict = self.shared.judge.judge(outcome.as_ref());
        // A disabled span (no subscriber wants it) records nothing: skip looking up its fields.
        if !self.span.is_disabled() {
            self.span
                .record("outcome", verdict.class().map_or("success", |c| c.as_str()));
            if let Some(status) = verdict.status() {
                self.span.record("status", status.as_u16());
            }
        }
        verdict
    }

    /// Calling, failed: a retry after a delay, unless the policy, the deadline or the retry
    /// budget says to give up (the outcome, or [`RetriesExhausted`]). Told to the hook and the
    /// request's observer.
    #[inline(never)]
    fn after_failure(
        &mut self,
        verdict: Verdict,
        outcome: Result<S::Response, BoxError>,
    ) -> AfterAttempt<S::Response> {
        let shared = &**self.shared;
        let attempts = *self.attempts;
        let (verdict, decision) = self.decide(verdict, outcome.is_err());
        match decision {
            Decision::Retry { delay, source } => {
                shared.hook.on_retry(&RetryEvent::Scheduled {
                    attempt: attempts,
                    class: verdict.class(),
                    status: verdict.status(),
                    delay,
                    source,
                });
                if let Some(observe) = self.observe {
                    observe.event(&Event::RetryScheduled {
                        attempt: attempts,
                        class: verdict.class(),
                        delay,
                        source,
                    });
                }
                if verdict.class() == Some(ErrorClass::Overloaded) {
                    *self.overloaded += 1;
                }
                *self.previous = delay;
                // This attempt's response (and its body) goes now, not after the wait.
                drop(outcome);
                AfterAttempt::Wait(delay)
            }
            Decision::GiveUp(reason) => {
                shared.hook.on_retry(&RetryEvent::GaveUp {
                    attempts,
                    class: verdict.class(),
                    reason,
                });
                if let Some(observe) = self.observe {
                    observe.event(&Event::RetriesExhausted {
                        attempts,
                        class: verdict.class(),
                    });
                }
                AfterAttempt::Finish(Err(exhausted(attempts, reason, verdict, outcome)))
            }
            // Not retryable: the outcome as it is; `Decision` is non-exhaustive.
            _ => AfterAttempt::Finish(outcome),
        }
    }

    /// The policy's decision on a failed attempt, given up early for the request's deadline or
    /// the retry budget. Returns the verdict the decision was made on.
    fn decide(&self, verdict: Verdict, failed: bool) -> (Verdict, Decision) {
        let shared = &**self.shared;
        let policy = &shared.policy;
        let verdict = if policy.retry_unrecognized_errors
            && failed
            && verdict.class() == Some(ErrorClass::Unknown)
            && verdict.advice() == tollgate_core::RetryAdvice::Never
        {
            Verdict::failure(ErrorClass::Connect)
        } else {
            verdict
        };
        let decision = policy.decide_with(
            *self.attempts - 1,
            *self.overloaded,
            &verdict,
            *self.previous,
            || shared.draw(),
        );
        let decision = match decision {
            Decision::Retry { delay, source } => {
                let now = Instant::now();
                if self
                    .give_up_at
                    .is_some_and(|at| now.checked_add(delay).is_none_or(|end| end > at))
                {
                    Decision::GiveUp(GaveUp::Deadline { wait: delay })
                } else if shared
                    .budget
                    .as_ref()
                    .is_some_and(|b| !b.withdraw(b.elapsed()))
                {
                    Decision::GiveUp(GaveUp::Budget)
                } else {
                    Decision::Retry { delay, source }
                }
            }
            other => other,
        };
        (verdict, decision)
    }

    /// Readying: waits for the service to be ready, then makes the next attempt.
    fn next_attempt(&mut self, cx: &mut Context<'_>) -> Poll<Result<S::Future, BoxError>> {
        ready!(self.service.poll_ready(cx)).map_err(Into::into)?;
        *self.attempts += 1;
        *self.span = attempt_span(*self.attempts);
        let _entered = self.span.enter();
        let request = self.shared.judge.replay(self.request);
        Poll::Ready(Ok(self.service.call(request)))
    }
}

/// A span for attempt `attempt`, with the request span's fields for its own outcome.
fn attempt_span(attempt: u32) -> tracing::Span {
    tracing::debug_span!(
        "tollgate.attempt",
        attempt,
        outcome = tracing::field::Empty,
        status = tracing::field::Empty,
    )
}

fn exhausted<Res: Send + 'static>(
    attempts: u32,
    reason: GaveUp,
    verdict: Verdict,
    outcome: Result<Res, BoxError>,
) -> BoxError {
    let error = match outcome {
        Ok(response) => RetriesExhausted::response(attempts, reason, verdict, response),
        Err(error) => RetriesExhausted::error(attempts, reason, verdict, error),
    };
    error.into()
}

impl<S, Req, J, R, H> fmt::Debug for ResponseFuture<S, Req, J, R, H>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("give_up_at", &self.give_up_at)
            .finish_non_exhaustive()
    }
}
