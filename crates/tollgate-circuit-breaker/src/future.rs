//! [`ResponseFuture`]: the call, and the count of its outcome.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{BoxError, ErrorClass, RouteKey, StreamOutcome, StreamReport, Verdict};

use crate::breaker::{Breaker, CLOSED, OPEN, Pass};
use crate::config::Trip;
use crate::handle::OnStateChange;
use crate::service::Local;

pin_project! {
    /// The response future of [`CircuitBreaker`](crate::CircuitBreaker).
    ///
    /// # Cancellation
    ///
    /// Dropped before the inner future completes, nothing is counted; a half-open probe gives
    /// its slot back, so the next call can probe.
    ///
    /// # Streams
    ///
    /// A successful response whose stream is followed (it carries a
    /// [`StreamReport`](tollgate_core::StreamReport), as `ClassifyLayer` gives every event
    /// stream) is counted when its stream ends, not at its head: a stream that fails half-way
    /// (an error event, a truncation, a cut connection, an idle time limit) counts as a
    /// failure of its class. A stream the caller abandons counts as nothing, like a dropped
    /// call. A slow call is still judged by the time to the response's head.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, H> {
        #[pin]
        kind: Kind<F>,
        guard: Option<Guard<H>>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Calling { #[pin] future: F },
        Refused { error: Option<BoxError> },
    }
}

/// An admitted call's claim on its breaker: records the outcome, or gives a probe slot back.
pub(crate) struct Guard<H> {
    local: Arc<Local<H>>,
    keyed: Option<Arc<Breaker>>,
    key: Option<RouteKey>,
    pass: Pass,
    started: Option<Instant>,
    observe: Option<Observe>,
    done: bool,
}

impl<H> Guard<H> {
    pub(crate) fn new(
        local: Arc<Local<H>>,
        keyed: Option<Arc<Breaker>>,
        key: Option<RouteKey>,
        pass: Pass,
        started: Option<Instant>,
        observe: Option<Observe>,
    ) -> Self {
        Guard {
            local,
            keyed,
            key,
            pass,
            started,
            observe,
            done: false,
        }
    }

    fn breaker(&self) -> &Breaker {
        self.keyed.as_deref().unwrap_or(&self.local.shared.unkeyed)
    }
}

impl<H: OnStateChange> Guard<H> {
    /// Whether the call was slow, counted to now.
    fn slow(&self) -> bool {
        match (self.local.shared.config.trip, self.started) {
            (Trip::SlowCallRate { slower_than, .. }, Some(started)) => {
                started.elapsed() > slower_than
            }
            _ => false,
        }
    }

    #[inline]
    fn record(&mut self, class: Option<ErrorClass>, slow: bool) {
        self.done = true;
        let shared = &*self.local.shared;
        let failed = class.is_some_and(|c| shared.config.counted.contains(c));
        if !failed && !slow && self.pass == Pass::Normal {
            if let Trip::ConsecutiveFailures(_) = shared.config.trip {
                // The common success while closed: nothing to change but a failure streak.
                self.breaker().clear_streak();
                return;
            }
        }
        self.record_slow(failed, slow);
    }

    #[inline(never)]
    fn record_slow(&mut self, failed: bool, slow: bool) {
        let shared = &*self.local.shared;
        let mut changes = Vec::new();
        self.breaker().record(
            &shared.config,
            self.pass,
            failed,
            slow,
            &|| shared.now(),
            &mut changes,
        );
        if !changes.is_empty() {
            self.local.announce(self.key.as_ref(), &changes);
            if let Some(observe) = &self.observe {
                for change in &changes {
                    observe.event(&Event::BreakerTransition {
                        key: self.key.as_ref(),
                        from: state_name(change.from),
                        to: state_name(change.to),
                    });
                }
            }
        }
    }
}

impl<H> Drop for Guard<H> {
    fn drop(&mut self) {
        if let (false, Pass::Probe(period)) = (self.done, self.pass) {
            self.breaker().release_probe(period);
        }
    }
}

impl<F, H> ResponseFuture<F, H> {
    pub(crate) fn calling(future: F, guard: Option<Guard<H>>) -> Self {
        ResponseFuture {
            kind: Kind::Calling { future },
            guard,
        }
    }

    pub(crate) fn refused(error: impl Into<BoxError>) -> Self {
        ResponseFuture {
            kind: Kind::Refused {
                error: Some(error.into()),
            },
            guard: None,
        }
    }
}

impl<F, H, ResBody, E> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<BoxError>,
    H: OnStateChange + Send + Sync + 'static,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Refused { error } => Poll::Ready(Err(refusal(error))),
            KindProj::Calling { future } => {
                let outcome = ready!(future.poll(cx)).map_err(Into::into);
                Guard::count(this.guard, &outcome);
                Poll::Ready(outcome)
            }
        }
    }
}

impl<H: OnStateChange + Send + Sync + 'static> Guard<H> {
    /// Counts `outcome` (or, for a stream, its end) against the breaker; counted in place in
    /// the common case, so that the guard is not moved.
    #[inline]
    fn count<ResBody>(
        slot: &mut Option<Self>,
        outcome: &Result<http::Response<ResBody>, BoxError>,
    ) {
        let Some(guard) = slot.as_mut().filter(|guard| !guard.done) else {
            return;
        };
        let Some(class) = judge(outcome) else {
            // Refused below without being sent (a spent quota, a full cap): says nothing of
            // the target; counted as nothing, like a cancelled call.
            *slot = None;
            return;
        };
        let slow = guard.slow();
        match outcome.as_ref().ok().and_then(StreamReport::of) {
            // A stream that may yet fail: counted when it ends.
            Some(report) if class.is_none() => {
                if let Some(guard) = slot.take() {
                    guard.count_at_end(report, slow);
                }
            }
            _ => guard.record(class, slow),
        }
    }

    /// Counts a followed stream when it ends.
    #[inline(never)]
    fn count_at_end(mut self, report: &StreamReport, slow: bool) {
        report.on_end(move |end| match end.outcome {
            StreamOutcome::Failed(class) => self.record(Some(class), slow),
            // Abandoned: dropped like a cancelled call.
            StreamOutcome::Abandoned => drop(self),
            _ => self.record(None, slow),
        });
    }
}

/// The refusal a refused future answers with, once.
#[cold]
#[inline(never)]
fn refusal(error: &mut Option<BoxError>) -> BoxError {
    error
        .take()
        .expect("ResponseFuture polled after completion")
}

/// The class of `outcome` (`None`: a success), or `None` for a local refusal — what
/// [`Verdict::of_outcome`] says, without building a verdict for the common success that
/// carries none.
#[inline]
fn judge<ResBody>(
    outcome: &Result<http::Response<ResBody>, BoxError>,
) -> Option<Option<ErrorClass>> {
    let verdict = match outcome {
        Ok(response) => match Verdict::of_response(response) {
            Some(verdict) if verdict.is_success() => return Some(None),
            Some(verdict) => return (!verdict.is_local_refusal()).then(|| verdict.class()),
            None if response.status().as_u16() < 400 => return Some(None),
            None => Verdict::of_outcome(Ok(response)),
        },
        Err(error) => Verdict::of_outcome::<ResBody>(Err(&**error)),
    };
    (!verdict.is_local_refusal()).then(|| verdict.class())
}

fn state_name(raw: u8) -> &'static str {
    match raw {
        CLOSED => "closed",
        OPEN => "open",
        _ => "half_open",
    }
}

impl<F, H> fmt::Debug for ResponseFuture<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
