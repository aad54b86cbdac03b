//! [`ResponseFuture`]: the primary, then each target the verdicts lead to.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tollgate_core::body::BufferedBody;
use tollgate_core::clock::nanos;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{BoxError, ErrorClass, StreamOutcome, StreamReport, Verdict};
use tower_service::Service;

use crate::error::AllTargetsFailed;
use crate::kept::Kept;
use crate::service::{Cause, Chain, Cooldown, Shared};

/// A target's place: the primary, or a position in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Primary,
    In(Chain, usize),
}

pin_project! {
    /// The response future of [`Fallback`](crate::Fallback).
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the attempt in flight, or the wait for a cooling target; no other
    /// target is tried.
    #[must_use = "futures do nothing unless polled"]
    #[project = ResponseFutureProj]
    pub struct ResponseFuture<S, ResBody>
    where
        S: Service<http::Request<BufferedBody>>,
    {
        #[pin]
        state: State<S::Future>,
        // The request, for the targets after the first.
        request: Kept,
        shared: Arc<Shared<S>>,
        // The target being tried.
        current: Place,
        give_up_at: Option<u64>,
        // What only the targets after the first need: allocated at the first failure (or at
        // the call, when the primary is cooling), so that a first target's success carries,
        // moves and drops none of it.
        later: Option<Box<Later<S>>>,
        _body: std::marker::PhantomData<fn() -> ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Choosing,
        Readying,
        Waiting { #[pin] sleep: Sleep, place: Place },
        Done,
    }
}

/// The scan's state after the first target: where it goes on from, what was tried and passed
/// over.
struct Later<S> {
    // The primary's clone, when it was cooling at the call and may be waited for.
    primary: Option<S>,
    // Where the scan goes on from.
    chain: Chain,
    next: usize,
    // A target chosen and its prepared request, until it is ready.
    pending: Option<(S, http::Request<BufferedBody>)>,
    tried: Vec<(Arc<str>, Verdict)>,
    // Targets passed over while cooling down, to wait for or report once the scan ends.
    skipped: Vec<Place>,
    // The chains entered so far: each at most once.
    visited: u8,
}

impl<S> Later<S> {
    fn new(primary: Option<S>) -> Box<Self> {
        Box::new(Later {
            primary,
            chain: Chain::Main,
            next: 0,
            pending: None,
            tried: Vec::new(),
            skipped: Vec::new(),
            visited: chain_bit(Chain::Main),
        })
    }
}

impl<S, ResBody> ResponseFuture<S, ResBody>
where
    S: Service<http::Request<BufferedBody>>,
{
    /// Keeps a copy of `request` and sends the request itself to `primary`: one struct
    /// literal, so that the copy is written in place rather than moved into the future.
    #[inline]
    pub(crate) fn calling_primary(
        primary: &mut S,
        request: http::Request<BufferedBody>,
        shared: Arc<Shared<S>>,
        give_up_at: Option<u64>,
    ) -> Self {
        ResponseFuture {
            request: Kept::copy(&request),
            state: State::Calling {
                future: primary.call(request),
            },
            shared,
            current: Place::Primary,
            give_up_at,
            later: None,
            _body: std::marker::PhantomData,
        }
    }

    pub(crate) fn skipping_primary(
        primary: S,
        request: Kept,
        shared: Arc<Shared<S>>,
        give_up_at: Option<u64>,
    ) -> Self {
        ResponseFuture {
            state: State::Choosing,
            request,
            shared,
            current: Place::Primary,
            give_up_at,
            later: Some(Later::new(Some(primary))),
            _body: std::marker::PhantomData,
        }
    }
}

/// What an attempt's outcome means for the fallback.
enum Next {
    /// Hand it back.
    Return,
    /// Try the next target; cool this one down for the delay, if any.
    MoveOn(Option<Duration>),
    /// Go to another chain.
    Switch(Chain),
}

/// Where choosing a target leads.
enum Choice {
    /// A target is chosen and its request prepared: ready it.
    Chosen,
    /// Every target left is cooling down: wait for the one free first, `place`.
    Wait {
        until: tokio::time::Instant,
        place: Place,
    },
    /// Nothing left to try.
    Exhausted(BoxError),
}

impl<S, ResBody> Future for ResponseFuture<S, ResBody>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    /// The state diagram: calling → done (handed back); calling → choosing → readying →
    /// calling the next target; choosing → waiting for a cooling one → readying (or choosing
    /// again); choosing → done (every target failed).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let outcome = ready!(future.poll(cx)).map_err(Into::into);
                    // The common case, a success, needs no verdict built nor judged.
                    if succeeded(&outcome) {
                        this.hand_back(&outcome);
                        this.state.set(State::Done);
                        return Poll::Ready(outcome);
                    }
                    let (chain, visited) = this
                        .later
                        .as_deref()
                        .map_or((Chain::Main, chain_bit(Chain::Main)), |later| {
                            (later.chain, later.visited)
                        });
                    let (verdict, next) = judge(this.shared, outcome.as_ref(), chain, visited);
                    if let Next::Return = next {
                        this.hand_back(&outcome);
                        this.state.set(State::Done);
                        return Poll::Ready(outcome);
                    }
                    this.leave(verdict, next);
                    // The failed attempt's response goes now.
                    drop(outcome);
                    this.state.set(State::Choosing);
                }
                StateProj::Choosing => match this.choose() {
                    Choice::Chosen => this.state.set(State::Readying),
                    Choice::Wait { until, place } => this.state.set(State::Waiting {
                        sleep: tokio::time::sleep_until(until),
                        place,
                    }),
                    Choice::Exhausted(error) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    }
                },
                StateProj::Waiting { sleep, place } => {
                    ready!(sleep.poll(cx));
                    let place = *place;
                    match this.take_cooled(place) {
                        true => this.state.set(State::Readying),
                        false => this.state.set(State::Choosing),
                    }
                }
                StateProj::Readying => match ready!(this.call_chosen(cx)) {
                    Some(future) => this.state.set(State::Calling { future }),
                    None => this.state.set(State::Choosing),
                },
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<S, ResBody> ResponseFutureProj<'_, S, ResBody>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    /// Calling, handed back: a stream that fails half-way will still cool its target down.
    fn hand_back(&self, outcome: &Result<http::Response<ResBody>, BoxError>) {
        if let Some(report) = outcome.as_ref().ok().and_then(StreamReport::of) {
            cool_if_it_fails(self.shared, *self.current, report);
        }
    }

    /// Calling, failed: records the hop, cools the target down or enters another chain.
    #[inline(never)]
    fn leave(&mut self, verdict: Verdict, next: Next) {
        let shared = &**self.shared;
        let name = name_of(shared, *self.current);
        if let Some(observe) = self.request.extensions().get::<Observe>() {
            observe.event(&Event::FallbackHop {
                from: &name,
                class: verdict.class(),
            });
        }
        let cause = verdict.class().map(|class| Cause {
            class,
            local: verdict.is_local_refusal(),
        });
        let later = self.later.get_or_insert_with(|| Later::new(None));
        later.tried.push((name, verdict));
        match (next, cause) {
            (Next::MoveOn(Some(wait)), Some(cause)) => {
                let until = shared.now().saturating_add(nanos(wait));
                cell(shared, *self.current).extend(until, cause);
            }
            (Next::Switch(chain), _) => {
                later.visited |= chain_bit(chain);
                later.chain = chain;
                later.next = 0;
            }
            _ => {}
        }
    }

    /// Choosing: the next target of the chain that is not cooling down, its request prepared;
    /// once the scan is over, the target passed over that is free first, if the request's
    /// deadline allows the wait.
    fn choose(&mut self) -> Choice {
        loop {
            let now = self.shared.now();
            let Some(place) = self.scan(now) else {
                return self.after_scan(now);
            };
            let shared = &**self.shared;
            let later = later(self.later);
            match prepare(
                shared,
                &later.primary,
                self.request,
                place,
                &mut later.pending,
            ) {
                Ok(()) => {
                    *self.current = place;
                    return Choice::Chosen;
                }
                Err(error) => {
                    let name = name_of(shared, place);
                    later
                        .tried
                        .push((name, tollgate_core::transport_verdict(&*error)));
                }
            }
        }
    }

    /// The next place of the chain that is not cooling down; those that are, are kept aside.
    fn scan(&mut self, now: u64) -> Option<Place> {
        let shared = &**self.shared;
        let later = later(self.later);
        // In the main chain, a primary that was cooling at the call comes first.
        if later.chain == Chain::Main && later.next == 0 && later.primary.is_some() {
            later.next = 1;
            if cooldown(shared, Place::Primary) <= now {
                return Some(Place::Primary);
            }
            later.skipped.push(Place::Primary);
        }
        if later.chain == Chain::Main && later.next == 0 {
            // The primary was tried at the call.
            later.next = 1;
        }
        let offset = usize::from(later.chain == Chain::Main);
        let targets = shared.chain(later.chain);
        while later.next - offset < targets.len() {
            let place = Place::In(later.chain, later.next - offset);
            later.next += 1;
            if cooldown(shared, place) <= now {
                return Some(place);
            }
            later.skipped.push(place);
        }
        None
    }

    /// The scan is over: wait for the target passed over that is free first, or give up.
    fn after_scan(&mut self, now: u64) -> Choice {
        let shared = &**self.shared;
        let later = later(self.later);
        let earliest = later
            .skipped
            .iter()
            .enumerate()
            .map(|(i, place)| (cooldown(shared, *place), i))
            .min();
        match earliest {
            Some((until, i)) if self.give_up_at.is_some_and(|limit| until <= limit) => {
                let place = later.skipped.swap_remove(i);
                let until = shared.origin.instant_nanos(until);
                Choice::Wait { until, place }
            }
            earliest => {
                let retry_after =
                    earliest.map(|(until, _)| Duration::from_nanos(until.saturating_sub(now)));
                let tried = std::mem::take(&mut later.tried);
                let skipped = later
                    .skipped
                    .iter()
                    .map(|place| {
                        (
                            name_of(shared, *place),
                            skipped_verdict(shared, *place, now),
                        )
                    })
                    .collect();
                Choice::Exhausted(AllTargetsFailed::new(tried, skipped, retry_after).into())
            }
        }
    }

    /// Waiting, over: prepares `place` unless another request cooled it down for longer
    /// meanwhile (never shortened) or its request cannot be prepared. `false`: choose again.
    fn take_cooled(&mut self, place: Place) -> bool {
        let shared = &**self.shared;
        let later = later(self.later);
        if cooldown(shared, place) > shared.now() {
            later.skipped.push(place);
            return false;
        }
        if let Err(error) = prepare(
            shared,
            &later.primary,
            self.request,
            place,
            &mut later.pending,
        ) {
            let verdict = tollgate_core::transport_verdict(&*error);
            later.tried.push((name_of(shared, place), verdict));
            return false;
        }
        *self.current = place;
        true
    }

    /// Readying: the chosen target's call once it is ready; `None` if it failed to get ready
    /// (recorded, to choose again).
    fn call_chosen(&mut self, cx: &mut Context<'_>) -> Poll<Option<S::Future>> {
        let later = later(self.later);
        let (service, _) = later.pending.as_mut().expect("a target was chosen");
        if let Err(error) = ready!(service.poll_ready(cx)) {
            let error: BoxError = error.into();
            let verdict = tollgate_core::transport_verdict(&*error);
            later
                .tried
                .push((name_of(self.shared, *self.current), verdict));
            later.pending = None;
            return Poll::Ready(None);
        }
        let (mut service, request) = later.pending.take().expect("checked above");
        Poll::Ready(Some(service.call(request)))
    }
}

/// The scan's state: there from the first failure on (or from the call, when the primary was
/// cooling), which is before any state but calling the first target.
fn later<S>(later: &mut Option<Box<Later<S>>>) -> &mut Later<S> {
    later
        .as_deref_mut()
        .expect("set before the first target is left")
}

fn chain_bit(chain: Chain) -> u8 {
    match chain {
        Chain::Main => 1,
        Chain::ContextWindow => 2,
        Chain::ContentPolicy => 4,
    }
}

/// A streamed answer handed back may still fail half-way; nothing can be re-sent then (the
/// zero-chunk rule), but a failure the policy moves on from cools `place` down, as if it had
/// failed before its first byte, so the next requests go elsewhere first.
fn cool_if_it_fails<S>(shared: &Shared<S>, place: Place, report: &StreamReport) {
    let cell = Arc::clone(cell(shared, place));
    let (policy, origin) = (Arc::clone(&shared.policy), shared.origin);
    report.on_end(move |end| {
        let StreamOutcome::Failed(class) = end.outcome else {
            return;
        };
        if let (true, Some(wait)) = (policy.move_on.contains(class), policy.cooldown_for(class)) {
            let ended = origin.offset_nanos(end.ended_at);
            let cause = Cause {
                class,
                local: false,
            };
            cell.extend(ended.saturating_add(nanos(wait)), cause);
        }
    });
}

/// Why `place` was passed over, as a verdict: the class of the failure that cooled it down
/// (refused locally when a layer of this process refused it: an open breaker, a local quota),
/// and how long it still cools down as its wait.
fn skipped_verdict<S>(shared: &Shared<S>, place: Place, now: u64) -> Verdict {
    let (until, cause) = cell(shared, place).read();
    // Every cooldown is set with its cause; an unknown one is an overload.
    let cause = cause.unwrap_or(Cause {
        class: ErrorClass::Overloaded,
        local: false,
    });
    let verdict =
        Verdict::failure(cause.class).with_wait(Duration::from_nanos(until.saturating_sub(now)));
    if cause.local {
        verdict.refused_locally()
    } else {
        verdict
    }
}

/// The cooldown of `place`.
fn cell<S>(shared: &Shared<S>, place: Place) -> &Arc<Cooldown> {
    match place {
        Place::Primary => &shared.primary,
        Place::In(chain, i) => &shared.chain(chain)[i].1,
    }
}

/// Until when `place` cools down (nanoseconds since the origin).
fn cooldown<S>(shared: &Shared<S>, place: Place) -> u64 {
    cell(shared, place).until()
}

fn name_of<S>(shared: &Shared<S>, place: Place) -> Arc<str> {
    match place {
        Place::Primary => Arc::clone(&shared.primary_name),
        Place::In(chain, i) => Arc::clone(shared.chain(chain)[i].0.name_arc()),
    }
}

/// Clones the service and prepares the request for `place`.
fn prepare<S: Clone>(
    shared: &Shared<S>,
    primary: &Option<S>,
    request: &Kept,
    place: Place,
    pending: &mut Option<(S, http::Request<BufferedBody>)>,
) -> Result<(), BoxError> {
    let prepared = match place {
        Place::Primary => (
            primary
                .clone()
                .expect("the primary is kept when it may be waited for"),
            request.replay(),
        ),
        Place::In(chain, i) => {
            let target = &shared.chain(chain)[i].0;
            (target.service().clone(), target.prepare(request.replay())?)
        }
    };
    *pending = Some(prepared);
    Ok(())
}

/// Whether `outcome` is a success, which [`judge`] hands back whatever the chain: its attached
/// verdict says so, or, with none, its status is below 400 (as `Verdict::of_outcome` reads it).
#[inline]
fn succeeded<B>(outcome: &Result<http::Response<B>, BoxError>) -> bool {
    match outcome {
        Ok(response) => match Verdict::of_response(response) {
            Some(verdict) => verdict.is_success(),
            None => response.status().as_u16() < 400,
        },
        Err(_) => false,
    }
}

/// The verdict on an outcome, and what it means here. Every layer's refusal carries its
/// verdict (an open breaker: an overload, elsewhere, for the time it stays open; a local
/// quota: a rate limit for as long as it says; a retry layer that gave up: the last attempt's,
/// with the wait it did not take), so one rule reads them all.
fn judge<S, B>(
    shared: &Shared<S>,
    outcome: Result<&http::Response<B>, &BoxError>,
    chain: Chain,
    visited: u8,
) -> (Verdict, Next) {
    let verdict = Verdict::of_outcome(outcome.map_err(|error| &**error as _));
    let Some(class) = verdict.class() else {
        return (verdict, Next::Return);
    };
    next_step(shared, verdict, class, chain, visited)
}

/// Where a failure of class `class` goes next.
fn next_step<S>(
    shared: &Shared<S>,
    verdict: Verdict,
    class: ErrorClass,
    chain: Chain,
    visited: u8,
) -> (Verdict, Next) {
    let policy = &shared.policy;
    let cooldown = verdict.delay().or_else(|| policy.cooldown_for(class));
    // A typed failure goes to its own chain, entered once; inside it, to the next target.
    let typed = match class {
        ErrorClass::ContextWindowExceeded => Some((Chain::ContextWindow, &shared.context_window)),
        ErrorClass::ContentPolicy => Some((Chain::ContentPolicy, &shared.content_policy)),
        _ => None,
    };
    if let Some((target, targets)) = typed {
        let next = if chain == target {
            Next::MoveOn(None)
        } else if visited & chain_bit(target) == 0 && !targets.is_empty() {
            Next::Switch(target)
        } else {
            Next::Return
        };
        return (verdict, next);
    }
    let next = match class {
        // An open breaker in front of the target: it will not be sent there, whatever the set.
        ErrorClass::Overloaded if verdict.is_local_refusal() => Next::MoveOn(cooldown),
        ErrorClass::RateLimited => match verdict.delay() {
            Some(wait) if wait > policy.rate_limit_threshold => Next::MoveOn(Some(wait)),
            _ if policy.move_on.contains(class) => Next::MoveOn(cooldown),
            _ => Next::Return,
        },
        _ if policy.move_on.contains(class) => Next::MoveOn(cooldown),
        _ => Next::Return,
    };
    (verdict, next)
}

impl<S, ResBody> fmt::Debug for ResponseFuture<S, ResBody>
where
    S: Service<http::Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("current", &self.current)
            .field(
                "tried",
                &self.later.as_ref().map_or(0, |later| later.tried.len()),
            )
            .finish_non_exhaustive()
    }
}
