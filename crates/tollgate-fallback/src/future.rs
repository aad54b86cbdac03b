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
use crate::service::{Chain, Cooldown, Shared};

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
    pub struct ResponseFuture<S, ResBody>
    where
        S: Service<http::Request<BufferedBody>>,
    {
        #[pin]
        state: State<S::Future>,
        request: http::Request<BufferedBody>,
        shared: Arc<Shared<S>>,
        // The primary's clone, when it was cooling at the call and may be waited for.
        primary: Option<S>,
        // The target being tried, and where the scan goes on from.
        current: Place,
        chain: Chain,
        next: usize,
        // A target chosen and its prepared request, until it is ready.
        pending: Option<(S, http::Request<BufferedBody>)>,
        tried: Vec<(Arc<str>, Verdict)>,
        // Targets passed over while cooling down, to wait for or report once the scan ends.
        skipped: Vec<Place>,
        // The chains entered so far: each at most once.
        visited: u8,
        give_up_at: Option<u64>,
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

impl<S, ResBody> ResponseFuture<S, ResBody>
where
    S: Service<http::Request<BufferedBody>>,
{
    pub(crate) fn calling_primary(
        future: S::Future,
        request: http::Request<BufferedBody>,
        shared: Arc<Shared<S>>,
        give_up_at: Option<u64>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            request,
            shared,
            primary: None,
            current: Place::Primary,
            chain: Chain::Main,
            next: 0,
            pending: None,
            tried: Vec::new(),
            skipped: Vec::new(),
            visited: chain_bit(Chain::Main),
            give_up_at,
            _body: std::marker::PhantomData,
        }
    }

    pub(crate) fn skipping_primary(
        primary: S,
        request: http::Request<BufferedBody>,
        shared: Arc<Shared<S>>,
        give_up_at: Option<u64>,
    ) -> Self {
        ResponseFuture {
            state: State::Choosing,
            request,
            shared,
            primary: Some(primary),
            current: Place::Primary,
            chain: Chain::Main,
            next: 0,
            pending: None,
            tried: Vec::new(),
            skipped: Vec::new(),
            visited: chain_bit(Chain::Main),
            give_up_at,
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

impl<S, ResBody> Future for ResponseFuture<S, ResBody>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Output = Result<http::Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let outcome = ready!(future.poll(cx)).map_err(Into::into);
                    let shared = &**this.shared;
                    let (verdict, next) =
                        judge(shared, outcome.as_ref(), *this.chain, *this.visited);
                    let next = match next {
                        Next::Return => {
                            if let Some(report) = outcome.as_ref().ok().and_then(StreamReport::of) {
                                cool_if_it_fails(shared, *this.current, report);
                            }
                            this.state.set(State::Done);
                            return Poll::Ready(outcome);
                        }
                        next => next,
                    };
                    let name = name_of(shared, *this.current);
                    if let Some(observe) = Observe::of(this.request) {
                        observe.event(&Event::FallbackHop {
                            from: &name,
                            class: verdict.class(),
                        });
                    }
                    this.tried.push((name, verdict));
                    match next {
                        Next::MoveOn(cooldown) => {
                            if let Some(wait) = cooldown {
                                let until = shared.now().saturating_add(nanos(wait));
                                cell(shared, *this.current).extend(until);
                            }
                        }
                        Next::Switch(chain) => {
                            *this.visited |= chain_bit(chain);
                            *this.chain = chain;
                            *this.next = 0;
                        }
                        Next::Return => unreachable!("returned above"),
                    }
                    // The failed attempt's response goes now.
                    drop(outcome);
                    this.state.set(State::Choosing);
                }
                StateProj::Choosing => {
                    let shared = &**this.shared;
                    let now = shared.now();
                    let mut chosen = None;
                    // In the main chain, a primary that was cooling at the call comes first.
                    if *this.chain == Chain::Main && *this.next == 0 && this.primary.is_some() {
                        *this.next = 1;
                        if cooldown(shared, Place::Primary) <= now {
                            chosen = Some(Place::Primary);
                        } else {
                            this.skipped.push(Place::Primary);
                        }
                    }
                    if *this.chain == Chain::Main && *this.next == 0 {
                        // The primary was tried at the call.
                        *this.next = 1;
                    }
                    let offset = usize::from(*this.chain == Chain::Main);
                    let targets = shared.chain(*this.chain);
                    while chosen.is_none() && *this.next - offset < targets.len() {
                        let place = Place::In(*this.chain, *this.next - offset);
                        *this.next += 1;
                        if cooldown(shared, place) <= now {
                            chosen = Some(place);
                        } else {
                            this.skipped.push(place);
                        }
                    }
                    let place = match chosen {
                        Some(place) => place,
                        None => {
                            // The scan is over: the target passed over that is free first.
                            let earliest = this
                                .skipped
                                .iter()
                                .enumerate()
                                .map(|(i, place)| (cooldown(shared, *place), i))
                                .min();
                            match earliest {
                                Some((until, i))
                                    if this.give_up_at.is_some_and(|limit| until <= limit) =>
                                {
                                    let place = this.skipped.swap_remove(i);
                                    let sleep = tokio::time::sleep_until(
                                        shared.origin.instant_nanos(until),
                                    );
                                    this.state.set(State::Waiting { sleep, place });
                                    continue;
                                }
                                earliest => {
                                    let retry_after = earliest.map(|(until, _)| {
                                        Duration::from_nanos(until.saturating_sub(now))
                                    });
                                    let tried = std::mem::take(this.tried);
                                    this.state.set(State::Done);
                                    return Poll::Ready(Err(AllTargetsFailed::new(
                                        tried,
                                        retry_after,
                                    )
                                    .into()));
                                }
                            }
                        }
                    };
                    if let Err(error) =
                        prepare(shared, this.primary, this.request, place, this.pending)
                    {
                        let name = name_of(shared, place);
                        this.tried
                            .push((name, tollgate_core::transport_verdict(&*error)));
                        continue;
                    }
                    *this.current = place;
                    this.state.set(State::Readying);
                }
                StateProj::Waiting { sleep, place } => {
                    ready!(sleep.poll(cx));
                    let place = *place;
                    let shared = &**this.shared;
                    // Cooled down meanwhile for longer by another request: never shortened.
                    if cooldown(shared, place) > shared.now() {
                        this.skipped.push(place);
                        this.state.set(State::Choosing);
                        continue;
                    }
                    if let Err(error) =
                        prepare(shared, this.primary, this.request, place, this.pending)
                    {
                        this.tried.push((
                            name_of(shared, place),
                            tollgate_core::transport_verdict(&*error),
                        ));
                        this.state.set(State::Choosing);
                        continue;
                    }
                    *this.current = place;
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let (service, _) = this.pending.as_mut().expect("a target was chosen");
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        let error: BoxError = error.into();
                        let verdict = tollgate_core::transport_verdict(&*error);
                        this.tried
                            .push((name_of(this.shared, *this.current), verdict));
                        *this.pending = None;
                        this.state.set(State::Choosing);
                        continue;
                    }
                    let (mut service, request) = this.pending.take().expect("checked above");
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
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
            cell.extend(ended.saturating_add(nanos(wait)));
        }
    });
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
    request: &http::Request<BufferedBody>,
    place: Place,
    pending: &mut Option<(S, http::Request<BufferedBody>)>,
) -> Result<(), BoxError> {
    let prepared = match place {
        Place::Primary => (
            primary
                .clone()
                .expect("the primary is kept when it may be waited for"),
            request.clone(),
        ),
        Place::In(chain, i) => {
            let target = &shared.chain(chain)[i].0;
            (target.service().clone(), target.prepare(request)?)
        }
    };
    *pending = Some(prepared);
    Ok(())
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
            .field("tried", &self.tried.len())
            .finish_non_exhaustive()
    }
}
