//! [`ResponseFuture`]: waits for admission, then calls the inner service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tollgate_core::keyed::TooManyKeys;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::timer::poll_sleep;
use tollgate_core::{BoxError, Cost, Priority, RouteKey, StreamReport, Verdict};
use tower_service::Service;

use crate::error::{CostTooLarge, RateLimited};
use crate::estimate::Estimator;
use crate::limiter::{Lesson, Local, Reconcile, Ticket};
use crate::store::{QuotaDecision, Store};

pin_project! {
    /// The response future of [`RateLimit`](crate::RateLimit): waits for admission, calls the
    /// inner service, and reports what the response said back to the limiter.
    ///
    /// # Cancellation
    ///
    /// Dropped while waiting, it leaves the queue (the next waiter is woken) and nothing is
    /// spent; the request and the readied inner service are dropped with it. Dropped after
    /// admission (in `call` when the quota had room and nobody waited, or later), while the
    /// inner future runs, the request's cost stays spent: the provider may already count it.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, B, E, St>
    where
        S: Service<http::Request<B>>,
        St: Store,
    {
        #[pin]
        phase: Phase<S::Future>,
        limiting: Limiting<S, B, E, St>,
    }
}

pin_project! {
    #[project = PhaseProj]
    enum Phase<F> {
        // Not admitted yet: see `waiting`.
        Admitting,
        Calling {
            #[pin]
            future: F,
        },
        Done,
    }
}

/// What the phases share: the request's cost and key with the limiter, and, until admitted, what
/// waiting needs.
struct Limiting<S, B, E, St: Store> {
    // Everything waiting needs, boxed, so that the common path (admitted in `call`)
    // neither allocates nor carries it.
    waiting: Option<Box<Waiting<S, B, St>>>,
    limiter: Local<St>,
    key: Option<RouteKey>,
    cost: Cost,
    // When it was admitted (time since the limiter's origin), for refunds.
    taken_at: Duration,
    estimator: E,
}

/// Where polling a phase leads: the next phase, or the future's output.
enum Step<S: Service<http::Request<B>>, B> {
    Next(Phase<S::Future>),
    Done(Result<S::Response, BoxError>),
}

/// A request that was not admitted in `call`, until it is.
pub(crate) struct Waiting<S, B, St: Store> {
    pub(crate) service: S,
    pub(crate) request: http::Request<B>,
    pub(crate) priority: Priority,
    /// The latest time (since the limiter's origin) by which admission must happen.
    pub(crate) give_up: Option<Duration>,
    /// The store's answer being awaited, if any.
    pub(crate) answer: Option<Answer<St::Future>>,
    /// Whether that answer is an estimate for a place behind other waiters.
    pub(crate) behind: bool,
    /// The place in the key's queue, once queued.
    pub(crate) ticket: Option<Ticket>,
    /// When to ask the store again, once first in the queue.
    pub(crate) retry_at: Option<Duration>,
    /// When the store was last asked: its answer's wait counts from then, so that the store's
    /// own round trip is not counted against the request's patience.
    pub(crate) asked_at: Duration,
    /// When admission was last expected.
    pub(crate) eta_at: Duration,
    /// The queue's nudge count when `retry_at` was set: a nudge means ask again now.
    pub(crate) epoch: u64,
    pub(crate) sleep: Option<Pin<Box<Sleep>>>,
}

/// A store's answer, still to come or already given.
pub(crate) enum Answer<D> {
    Coming(D),
    Given(Option<Result<QuotaDecision, BoxError>>),
}

impl<D> Answer<D>
where
    D: Future<Output = Result<QuotaDecision, BoxError>> + Unpin,
{
    /// Polls a store's `decision` once, with no waker: `None` when it admits at once (the
    /// common case, decided with nothing to carry), else the answer given or still coming.
    #[inline]
    pub(crate) fn first(mut decision: D) -> Option<Self> {
        match Pin::new(&mut decision).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(QuotaDecision::Admitted)) => None,
            Poll::Ready(answer) => Some(Answer::Given(Some(answer))),
            Poll::Pending => Some(Answer::Coming(decision)),
        }
    }
}

impl<D> Future for Answer<D>
where
    D: Future<Output = Result<QuotaDecision, BoxError>> + Unpin,
{
    type Output = Result<QuotaDecision, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Coming(decision) => Pin::new(decision).poll(cx),
            Answer::Given(answer) => Poll::Ready(answer.take().expect("an answer is taken once")),
        }
    }
}

/// What every phase of the future needs to know about its request.
pub(crate) struct Admission<St, E> {
    pub(crate) limiter: Local<St>,
    pub(crate) key: Option<RouteKey>,
    pub(crate) cost: Cost,
    /// When it was admitted, or asked first.
    pub(crate) taken_at: Duration,
    pub(crate) estimator: E,
}

impl<S, B, E, St> ResponseFuture<S, B, E, St>
where
    S: Service<http::Request<B>>,
    St: Store,
{
    /// Admitted already: calling.
    pub(crate) fn calling(future: S::Future, admission: Admission<St, E>) -> Self {
        ResponseFuture::with(Phase::Calling { future }, None, admission)
    }

    /// Not admitted yet.
    pub(crate) fn waiting(waiting: Waiting<S, B, St>, admission: Admission<St, E>) -> Self {
        ResponseFuture::with(Phase::Admitting, Some(Box::new(waiting)), admission)
    }

    fn with(
        phase: Phase<S::Future>,
        waiting: Option<Box<Waiting<S, B, St>>>,
        admission: Admission<St, E>,
    ) -> Self {
        let Admission {
            limiter,
            key,
            cost,
            taken_at,
            estimator,
        } = admission;
        ResponseFuture {
            phase,
            limiting: Limiting {
                waiting,
                limiter,
                key,
                cost,
                taken_at,
                estimator,
            },
        }
    }
}

impl<S, B, E, St, ResBody> Future for ResponseFuture<S, B, E, St>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    E: Estimator<B> + Clone + Send + 'static,
    St: Store,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    /// The common case inline: admitted in `call`, the inner future answers, and a plain
    /// response (no extensions, not a 429) teaches nothing. Everything else (admission still to
    /// come, a response to learn from, an error) is out of line, so that this stays small
    /// enough to inline and the response is not copied through calls.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let PhaseProj::Calling { future } = this.phase.as_mut().project() else {
            return poll_general(this.phase, this.limiting, cx);
        };
        let result = ready!(future.poll(cx));
        this.phase.set(Phase::Done);
        Poll::Ready(match result {
            Ok(response) => {
                if !response.extensions().is_empty()
                    || response.status() == http::StatusCode::TOO_MANY_REQUESTS
                {
                    this.limiting.learn_from_response(&response);
                }
                Ok(response)
            }
            Err(error) => Err(this.limiting.learn_from_error(error.into())),
        })
    }
}

/// Every phase, in turn, until the future's output: admission still to come.
#[inline(never)]
fn poll_general<S, B, E, St, ResBody>(
    mut phase: Pin<&mut Phase<S::Future>>,
    limiting: &mut Limiting<S, B, E, St>,
    cx: &mut Context<'_>,
) -> Poll<Result<http::Response<ResBody>, BoxError>>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    E: Estimator<B> + Clone + Send + 'static,
    St: Store,
{
    loop {
        let step = match phase.as_mut().project() {
            PhaseProj::Admitting => limiting.poll_admitting(cx),
            PhaseProj::Calling { future } => limiting.poll_calling(future, cx),
            PhaseProj::Done => panic!("ResponseFuture polled after completion"),
        };
        match ready!(step) {
            Step::Next(next) => phase.set(next),
            Step::Done(output) => {
                phase.set(Phase::Done);
                return Poll::Ready(output);
            }
        }
    }
}

impl<S, B, E, St, ResBody> Limiting<S, B, E, St>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    E: Estimator<B> + Clone + Send + 'static,
    St: Store,
{
    /// Admitting: waits for the store's answer, the request's turn in the queue, or the time to
    /// ask again.
    fn poll_admitting(&mut self, cx: &mut Context<'_>) -> Poll<Step<S, B>> {
        loop {
            let waiting = self
                .waiting
                .as_deref_mut()
                .expect("a request being admitted is waiting");
            if let Some(answer) = &mut waiting.answer {
                let answer = ready!(Pin::new(answer).poll(cx));
                waiting.answer = None;
                match self.answered(answer) {
                    Some(step) => return Poll::Ready(step),
                    None => continue,
                }
            }
            // Queued: first for the turn, then until `retry_at` (unless nudged sooner).
            let now = self.limiter.now();
            let (first, epoch) = match &waiting.ticket {
                Some(ticket) => ticket.turn(cx.waker()),
                None => (true, waiting.epoch),
            };
            if first {
                let planned = waiting.retry_at.filter(|at| *at > now);
                if let (Some(at), true) = (planned, epoch == waiting.epoch) {
                    ready!(poll_sleep(
                        &mut waiting.sleep,
                        self.limiter.origin.instant(at),
                        cx
                    ));
                    continue;
                }
                waiting.epoch = epoch;
                waiting.asked_at = now;
                let decision = self
                    .limiter
                    .store
                    .admit(self.key.as_ref(), &self.cost, None, now);
                waiting.answer = Some(Answer::Coming(decision));
                waiting.behind = false;
                continue;
            }
            // Not its turn: woken when it is, or gives up at its deadline.
            let Some(limit) = waiting.give_up else {
                return Poll::Pending;
            };
            if now < limit {
                ready!(poll_sleep(
                    &mut waiting.sleep,
                    self.limiter.origin.instant(limit),
                    cx
                ));
            }
            let retry_after = waiting
                .eta_at
                .saturating_sub(now)
                .max(Duration::from_nanos(1));
            self.waiting = None;
            return Poll::Ready(Step::Done(Err(RateLimited::new(retry_after).into())));
        }
    }

    /// What the store's answer leads to: a refusal, the call once admitted, or nothing yet (to
    /// wait, queued, until it is time to ask again).
    fn answered(&mut self, answer: Result<QuotaDecision, BoxError>) -> Option<Step<S, B>> {
        let waiting = self
            .waiting
            .as_deref_mut()
            .expect("a request being admitted is waiting");
        match answer {
            Err(error) => {
                // A store that cannot answer may say why: its quota is not shared now.
                if let Some(observe) = Observe::of(&waiting.request)
                    && !error.is::<RateLimited>()
                {
                    self.limiter.report_sharing(observe);
                    if error.is::<TooManyKeys>() {
                        observe.event(&Event::KeysAtCap {
                            layer: "ratelimit",
                            evicted: 0,
                            refused: true,
                        });
                    }
                }
                self.waiting = None;
                Some(Step::Done(Err(error)))
            }
            Ok(QuotaDecision::TooLarge {
                dimension,
                cost,
                capacity,
                period,
            }) => {
                self.waiting = None;
                let error = CostTooLarge::new(dimension, cost, capacity, period);
                Some(Step::Done(Err(error.into())))
            }
            Ok(QuotaDecision::Admitted) => {
                // Leaving the queue wakes the next waiter; the call happens in this same poll, so
                // nothing can cancel between grant and call.
                let Waiting {
                    mut service,
                    request,
                    ..
                } = *self.waiting.take().expect("checked above");
                let now = self.limiter.now();
                self.taken_at = now;
                if let Some(observe) = Observe::of(&request) {
                    self.limiter
                        .report_admission(observe, self.key.as_ref(), now);
                }
                let future = service.call(request);
                Some(Step::Next(Phase::Calling { future }))
            }
            Ok(QuotaDecision::Wait(wait)) => {
                // The wait counts from the question: the answer's round trip is the store's
                // business (bounded by its own timeout), not a wait for quota.
                let at = waiting.asked_at.saturating_add(wait);
                if waiting.give_up.is_some_and(|limit| at > limit) {
                    self.waiting = None;
                    return Some(Step::Done(Err(RateLimited::new(wait).into())));
                }
                if waiting.ticket.is_none() {
                    match self
                        .limiter
                        .enqueue(self.key.clone(), waiting.priority, self.cost)
                    {
                        Ok(ticket) => waiting.ticket = Some(ticket),
                        Err(waiting) => {
                            self.waiting = None;
                            let refused = RateLimited::queue_full(wait, waiting);
                            return Some(Step::Done(Err(refused.into())));
                        }
                    }
                }
                waiting.retry_at = (!waiting.behind).then_some(at);
                waiting.eta_at = at;
                None
            }
        }
    }

    /// Calling: waits for the inner service's response, then tells the limiter what it said.
    fn poll_calling(
        &mut self,
        future: Pin<&mut S::Future>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S, B>> {
        let result = ready!(future.poll(cx));
        Poll::Ready(Step::Done(match result {
            Ok(response) => {
                self.learn_from_response(&response);
                Ok(response)
            }
            Err(error) => Err(self.learn_from_error(error.into())),
        }))
    }

    /// Tells the limiter what a response said: its verdict's rate-limit readings, its usage
    /// (now, or at a stream's end), a 429.
    #[inline(never)]
    fn learn_from_response(&self, response: &http::Response<ResBody>) {
        let verdict = Verdict::of_response(response);
        let usage = Lesson::usage_of(response.extensions(), verdict).map(|usage| Reconcile {
            estimated: self.cost,
            actual: self.estimator.actual(usage, &self.cost),
            taken_at: self.taken_at,
        });
        if usage.is_none() {
            if let Some(report) = StreamReport::of(response) {
                self.reconcile_at_end(report);
            }
        }
        let status = response.status();
        // Nothing to learn from a plain success: no clock read, no lock.
        if verdict.is_some() || usage.is_some() || status == http::StatusCode::TOO_MANY_REQUESTS {
            let lesson = Lesson {
                verdict,
                status: Some(status),
                headers: Some(response.headers()),
                usage,
                taken_at: self.taken_at,
            };
            self.limiter.learn(self.key.as_ref(), lesson);
        }
    }

    /// Tells the limiter what an error's verdict said, and hands the error back.
    #[inline(never)]
    fn learn_from_error(&self, error: BoxError) -> BoxError {
        if let Some(verdict) = Verdict::of_error(&*error) {
            let lesson = Lesson {
                verdict: Some(verdict),
                taken_at: self.taken_at,
                ..Lesson::default()
            };
            self.limiter.learn(self.key.as_ref(), lesson);
        }
        error
    }

    /// A streamed answer reports its usage at its end: reconcile the estimate then.
    fn reconcile_at_end(&self, report: &StreamReport) {
        let limiter = Arc::clone(&self.limiter);
        let (key, estimated, taken_at) = (self.key.clone(), self.cost, self.taken_at);
        let estimator = self.estimator.clone();
        report.on_end(move |end| {
            let Some(usage) = &end.usage else { return };
            let lesson = Lesson {
                usage: Some(Reconcile {
                    estimated,
                    actual: estimator.actual(usage, &estimated),
                    taken_at,
                }),
                taken_at,
                ..Lesson::default()
            };
            limiter.learn(key.as_ref(), lesson);
        });
    }
}

impl<S, B, E, St> fmt::Debug for ResponseFuture<S, B, E, St>
where
    S: Service<http::Request<B>>,
    St: Store,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("key", &self.limiting.key)
            .field("cost", &self.limiting.cost)
            .field("waiting", &self.limiting.waiting.is_some())
            .finish_non_exhaustive()
    }
}
