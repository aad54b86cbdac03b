//! [`ResponseFuture`]: waits for a slot, calls, and holds the slot as configured.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tollgate_core::{BoxError, ErrorClass, Verdict, transport_verdict};
use tower_service::Service;

use crate::body::PermitBody;
use crate::config::ConcurrencyConfig;
use crate::error::{DEFAULT_RETRY_HINT, Saturated};
use crate::gate::{Gate, Waiter};
use crate::shared::Permit;

pin_project! {
    /// The response future of [`ConcurrencyLimit`](crate::ConcurrencyLimit).
    ///
    /// # Cancellation
    ///
    /// Dropped while waiting, it leaves the queue (a slot granted meanwhile goes to the next
    /// waiter). Dropped after taking a slot, it gives the slot back.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, B>
    where
        S: Service<http::Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        waiting: Option<Box<Waiting<S, B>>>,
        permit: Option<Permit>,
        // The configuration it needs, copied: no shared reference on the common path (the
        // cap is the permit's gate's).
        hold_until_body_end: bool,
        started: Option<Instant>,
        refused: Option<BoxError>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Waiting,
        Calling { #[pin] future: F },
        Done,
    }
}

/// A request waiting for a slot.
pub(crate) struct Waiting<S, B> {
    gate: Option<Arc<Gate>>,
    service: Option<S>,
    request: Option<http::Request<B>>,
    waiter: Arc<Waiter>,
    give_up_at: Option<Instant>,
    /// The limit's own maximum wait, for the hint of a refusal.
    max_wait: Option<Duration>,
    since: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set once the waiter holds a slot or has left the queue.
    settled: bool,
}

impl<S, B> Waiting<S, B> {
    pub(crate) fn new(
        gate: Arc<Gate>,
        service: S,
        request: http::Request<B>,
        waiter: Arc<Waiter>,
        give_up_at: Option<Instant>,
        max_wait: Option<Duration>,
        since: Instant,
    ) -> Self {
        Waiting {
            gate: Some(gate),
            service: Some(service),
            request: Some(request),
            waiter,
            give_up_at,
            max_wait,
            since,
            sleep: None,
            settled: false,
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<http::Request<B>>,
{
    #[inline]
    pub(crate) fn calling(
        future: S::Future,
        permit: Permit,
        hold_until_body_end: bool,
        started: Option<Instant>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            waiting: None,
            permit: Some(permit),
            hold_until_body_end,
            started,
            refused: None,
        }
    }

    pub(crate) fn waiting(waiting: Waiting<S, B>, config: &ConcurrencyConfig) -> Self {
        ResponseFuture {
            state: State::Waiting,
            waiting: Some(Box::new(waiting)),
            permit: None,
            hold_until_body_end: config.hold_until_body_end,
            started: None,
            refused: None,
        }
    }

    pub(crate) fn refused(error: impl Into<BoxError>, config: &ConcurrencyConfig) -> Self {
        ResponseFuture {
            state: State::Done,
            waiting: None,
            permit: None,
            hold_until_body_end: config.hold_until_body_end,
            started: None,
            refused: Some(error.into()),
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<http::Response<PermitBody<ResBody>>, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Waiting => {
                    let state = this.state.as_mut();
                    if let Some(error) = ready!(poll_waiting(
                        state,
                        this.waiting,
                        this.permit,
                        this.started,
                        cx
                    )) {
                        return Poll::Ready(Err(error));
                    }
                }
                StateProj::Calling { future } => {
                    let outcome = ready!(future.poll(cx));
                    this.state.set(State::Done);
                    let permit = this.permit.take();
                    return Poll::Ready(match outcome {
                        Ok(response) => {
                            if let Some(permit) = permit.as_ref().filter(|p| p.adaptive()) {
                                record_response(permit, &response, *this.started);
                            }
                            let permit = permit.filter(|_| *this.hold_until_body_end);
                            Ok(response.map(|body| PermitBody::new(body, permit)))
                        }
                        Err(error) => Err(record_error(permit, error.into())),
                    });
                }
                StateProj::Done => return Poll::Ready(Err(refusal(this.refused))),
            }
        }
    }
}

/// The waiting state: when granted a slot, calls the inner service and moves to calling
/// (`Ready(None)`); out of time, leaves the queue and fails (`Ready(Some(error))`).
#[inline(never)]
fn poll_waiting<S, B>(
    mut state: Pin<&mut State<S::Future>>,
    slot: &mut Option<Box<Waiting<S, B>>>,
    permit: &mut Option<Permit>,
    started: &mut Option<Instant>,
    cx: &mut Context<'_>,
) -> Poll<Option<BoxError>>
where
    S: Service<http::Request<B>>,
{
    let waiting = slot.as_deref_mut().expect("waiting");
    let gate = Arc::clone(waiting.gate.as_ref().expect("held while waiting"));
    if gate.poll_grant(&waiting.waiter, cx.waker()) {
        waiting.settled = true;
        let mut service = waiting.service.take().expect("called once");
        let request = waiting.request.take().expect("called once");
        *slot = None;
        if gate.cap().measures_latency() {
            *started = Some(Instant::now());
        }
        *permit = Some(Permit::new(gate));
        let future = service.call(request);
        state.set(State::Calling { future });
        return Poll::Ready(None);
    }
    let Some(limit) = waiting.give_up_at else {
        return Poll::Pending;
    };
    let sleep = waiting
        .sleep
        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(limit)));
    ready!(sleep.as_mut().poll(cx));
    // Out of time: leave the queue (a slot granted just now is given back).
    waiting.settled = true;
    gate.abandon(&waiting.waiter);
    let waited = Some(waiting.since.elapsed());
    let hint = retry_hint(&gate, waiting.max_wait);
    state.set(State::Done);
    *slot = None;
    let error = Saturated::new(gate.limit(), gate.waiting(), waited, hint);
    Poll::Ready(Some(error.into()))
}

/// Records a response for an adaptive cap.
#[inline(never)]
fn record_response<ResBody>(
    permit: &Permit,
    response: &http::Response<ResBody>,
    started: Option<Instant>,
) {
    let class = Verdict::of_response(response).and_then(Verdict::class);
    let class = class.or_else(|| status_class(response.status()));
    // Only a success's latency says how loaded the provider is.
    let latency = started
        .map(|started| started.elapsed())
        .filter(|_| class.is_none());
    permit.record(drops(class), latency);
}

/// Records an error for an adaptive cap, and frees the slot.
#[inline(never)]
fn record_error(permit: Option<Permit>, error: BoxError) -> BoxError {
    if let Some(permit) = permit.as_ref().filter(|p| p.adaptive()) {
        let class = transport_verdict(&*error).class();
        permit.record(drops(class), None);
    }
    drop(permit);
    error
}

/// The refusal a refused future answers with, once.
#[cold]
#[inline(never)]
fn refusal(error: &mut Option<BoxError>) -> BoxError {
    error
        .take()
        .expect("ResponseFuture polled after completion")
}

/// When a refused request may try again: see [`Saturated::retry_after`].
pub(crate) fn retry_hint(gate: &Gate, max_wait: Option<Duration>) -> Duration {
    gate.latency()
        .or(max_wait.filter(|wait| !wait.is_zero()))
        .unwrap_or(DEFAULT_RETRY_HINT)
}

/// The signals that lower an adaptive cap: overloads, rate limits, timeouts.
fn drops(class: Option<ErrorClass>) -> bool {
    matches!(
        class,
        Some(ErrorClass::Overloaded | ErrorClass::RateLimited | ErrorClass::Timeout)
    )
}

fn status_class(status: http::StatusCode) -> Option<ErrorClass> {
    match status.as_u16() {
        429 => Some(ErrorClass::RateLimited),
        503 | 529 => Some(ErrorClass::Overloaded),
        408 | 504 => Some(ErrorClass::Timeout),
        _ => None,
    }
}

impl<S, B> Drop for Waiting<S, B> {
    fn drop(&mut self) {
        if !self.settled {
            // Dropped while queued, or granted but never called: the slot goes on.
            self.waiter_abandon();
        }
    }
}

impl<S, B> Waiting<S, B> {
    fn waiter_abandon(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.abandon(&self.waiter);
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<http::Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("waiting", &self.waiting.is_some())
            .field("holds_permit", &self.permit.is_some())
            .finish_non_exhaustive()
    }
}
