//! The state every clone of a layer shares: the store, the fair waiting queue per key, and what
//! responses teach it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use tokio::time::Instant;
use tollgate_core::clock::Origin;
use tollgate_core::keyed::KeyStats;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{
    Cost, DelaySource, Dimension, ErrorClass, Priority, RouteKey, Usage, Verdict, headers,
};

use crate::limit::Limits;
use crate::store::{Feedback, Outlook, QuotaDecision, Store};

/// A service clone's own reference to the shared [`Limiter`]: its futures count references
/// here, so clones on different threads do not contend on one reference count.
pub(crate) type Local<St> = Arc<Arc<Limiter<St>>>;

pub(crate) struct Limiter<St> {
    pub(crate) origin: Origin,
    pub(crate) store: St,
    queues: Arc<Queues>,
    /// The most waiters at once, over every key.
    max_queue: usize,
}

/// The fair waiting queues, one per key with waiters.
#[derive(Default)]
struct Queues {
    map: Mutex<HashMap<Option<RouteKey>, Queue>>,
    /// Waiters across every key; zero means no lock is needed to know a queue is empty.
    waiting: AtomicUsize,
    next_seq: AtomicU64,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<Option<RouteKey>, Queue>> {
        // Every update of the queues completes before anything that could panic.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the first waiter of `key`, telling it to ask again now.
    fn nudge(&self, key: Option<&RouteKey>) {
        if self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let waker = {
            let mut queues = self.lock();
            queues.get_mut(&key.cloned()).and_then(Queue::nudge)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn nudge_all(&self) {
        let wakers: Vec<Waker> = self.lock().values_mut().filter_map(Queue::nudge).collect();
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl Queue {
    fn nudge(&mut self) -> Option<Waker> {
        self.epoch = self.epoch.wrapping_add(1);
        self.waiters.first_mut()?.waker.take()
    }
}

/// The waiters of one key, in admission order: higher priority first, then first come.
#[derive(Default)]
struct Queue {
    waiters: Vec<Waiter>,
    /// Bumped when the first waiter should ask the store again before its planned time.
    epoch: u64,
    /// The cost of every waiter, so that an arrival of the lowest priority there (the common
    /// case) knows what is ahead of it without walking the queue.
    total: Cost,
}

struct Waiter {
    seq: u64,
    priority: Priority,
    cost: Cost,
    waker: Option<Waker>,
}

/// Where an arrival stands in its key's queue.
pub(crate) enum Place {
    /// Nobody it must let go first: it may try to be admitted.
    Front,
    /// Behind waiters that will spend this first.
    Behind(Cost),
}

impl<St: Store> Limiter<St> {
    pub(crate) fn new(store: St, max_queue: u32) -> Self {
        Limiter {
            origin: Origin::new(),
            store,
            queues: Arc::default(),
            max_queue: max_queue as usize,
        }
    }

    /// The time since this limiter was built, on tokio's clock.
    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Where an arrival with `priority` would stand in `key`'s queue now.
    pub(crate) fn place(&self, key: Option<&RouteKey>, priority: Priority) -> Place {
        if self.queues.waiting.load(Ordering::Acquire) == 0 {
            return Place::Front;
        }
        let queues = self.queues.lock();
        let Some(queue) = queues.get(&key.cloned()) else {
            return Place::Front;
        };
        match queue.waiters.last() {
            None => return Place::Front,
            Some(last) if last.priority >= priority => return Place::Behind(queue.total),
            Some(_) => {}
        }
        let mut ahead = Cost::ZERO;
        let mut any = false;
        for waiter in queue.waiters.iter().take_while(|w| w.priority >= priority) {
            any = true;
            ahead = add(&ahead, &waiter.cost);
        }
        if any {
            Place::Behind(ahead)
        } else {
            Place::Front
        }
    }

    /// Joins `key`'s queue; `Err` with how many wait when the queues are full.
    pub(crate) fn enqueue(
        &self,
        key: Option<RouteKey>,
        priority: Priority,
        cost: Cost,
    ) -> Result<Ticket, u32> {
        let waiting = self.queues.waiting.load(Ordering::Acquire);
        if waiting >= self.max_queue {
            return Err(u32::try_from(waiting).unwrap_or(u32::MAX));
        }
        let seq = self.queues.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut queues = self.queues.lock();
        let queue = queues.entry(key.clone()).or_default();
        let at = queue
            .waiters
            .iter()
            .position(|w| w.priority < priority)
            .unwrap_or(queue.waiters.len());
        queue.total = add(&queue.total, &cost);
        queue.waiters.insert(
            at,
            Waiter {
                seq,
                priority,
                cost,
                waker: None,
            },
        );
        self.queues.waiting.fetch_add(1, Ordering::AcqRel);
        drop(queues);
        Ok(Ticket {
            queues: Arc::clone(&self.queues),
            key,
            seq,
        })
    }

    /// What a response taught: the provider's remaining quota, a 429's pause, the actual usage.
    pub(crate) fn learn(&self, key: Option<&RouteKey>, lesson: Lesson<'_>) {
        let now = self.now();
        // The usage first: the provider's `remaining`, applied last, has the final word, and
        // what it already counts is not charged twice.
        if let Some(usage) = lesson.usage {
            let (refund, charge) = difference(&usage.estimated, &usage.actual);
            if refund != Cost::ZERO {
                let feedback = Feedback::Refund {
                    cost: refund,
                    taken_at: usage.taken_at,
                };
                self.store.feedback(key, &feedback, now);
            }
            if charge != Cost::ZERO {
                self.store.feedback(key, &Feedback::Charge(charge), now);
            }
        }
        if let Some(verdict) = lesson.verdict {
            for entry in verdict.rate_limits().entries() {
                if let Some(limit) = entry.reading.limit {
                    let feedback = Feedback::Limit {
                        dimension: entry.dimension,
                        window: entry.window,
                        limit,
                    };
                    self.store.feedback(key, &feedback, now);
                }
                if let Some(remaining) = entry.reading.remaining {
                    let feedback = Feedback::Remaining {
                        dimension: entry.dimension,
                        window: entry.window,
                        remaining,
                    };
                    self.store.feedback(key, &feedback, now);
                }
            }
        }
        let Some(throttle) = Throttle::of(&lesson) else {
            return self.nudge_after(key, &lesson);
        };
        // Under an adaptive limit a throttle lowers the pace, and only a limit the provider
        // says is used up pauses the key: a bare 429's delay is its own request's business.
        let adaptive = self.store.limits(key).adaptive_config().is_some();
        if adaptive {
            let feedback = Feedback::Throttled {
                taken_at: lesson.taken_at,
            };
            self.store.feedback(key, &feedback, now);
        }
        let pause = throttle.delay.filter(|_| !adaptive || throttle.exhausted);
        if let Some(delay) = pause {
            let until = now.saturating_add(delay.min(MAX_PAUSE));
            self.store.feedback(key, &Feedback::PauseUntil(until), now);
        }
        // The pace changed: the first waiter asks again.
        self.queues.nudge(key);
    }

    fn nudge_after(&self, key: Option<&RouteKey>, lesson: &Lesson<'_>) {
        // A refund may let the first waiter in sooner than it planned.
        if lesson.usage.is_some() {
            self.queues.nudge(key);
        }
    }

    /// Tells an observer how much of `key`'s limits is in use after an admission at `now`, the
    /// learned rate when it moved, and whether the quota is shared.
    pub(crate) fn report_admission(
        &self,
        observe: &Observe,
        key: Option<&RouteKey>,
        now: Duration,
    ) {
        for (dimension, used) in self.store.utilization(key, now) {
            let per_mille = (used.clamp(0.0, 1.0) * 1_000.0).round() as u16;
            observe.event(&Event::RateLimitUtilization {
                key,
                dimension,
                per_mille,
            });
        }
        if let Some(rate) = self.store.report_learned_rate(key, now) {
            observe.event(&Event::RateLearned {
                key,
                requests_per_minute: (rate * 60.0).round() as u64,
            });
        }
        self.report_sharing(observe);
        let evicted = self.store.take_evicted();
        if evicted > 0 {
            observe.event(&Event::KeysAtCap {
                layer: "ratelimit",
                evicted: u32::try_from(evicted).unwrap_or(u32::MAX),
                refused: false,
            });
        }
    }

    /// Tells an observer whether the quota is shared, if the store shares it.
    pub(crate) fn report_sharing(&self, observe: &Observe) {
        if let Some(shared) = self.store.sharing() {
            observe.event(&Event::QuotaShared { shared });
        }
    }

    /// Tells the first waiter of every key to ask again: the limits changed.
    pub(crate) fn nudge_all(&self) {
        self.queues.nudge_all();
    }

    pub(crate) fn waiting(&self) -> usize {
        self.queues.waiting.load(Ordering::Acquire)
    }
}

/// What one response says, for [`Limiter::learn`].
#[derive(Default)]
pub(crate) struct Lesson<'a> {
    pub(crate) verdict: Option<&'a Verdict>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: Option<&'a HeaderMap>,
    /// What was charged, and what the usage says it should have been.
    pub(crate) usage: Option<Reconcile>,
    /// When the request was admitted (time since the origin).
    pub(crate) taken_at: Duration,
}

/// The provider throttled a request: a 429, or an explicit overload (529, or 429 with an
/// overload body). A plain 503 is an outage, the breaker's business, not a rate.
struct Throttle {
    /// The delay it asked for, if any.
    delay: Option<Duration>,
    /// Whether its rate-limit headers say a limit is used up (or the delay is a reset time).
    exhausted: bool,
}

impl Throttle {
    fn of(lesson: &Lesson<'_>) -> Option<Throttle> {
        match (lesson.verdict, lesson.status) {
            (Some(verdict), _) => {
                let status = verdict.status().or(lesson.status).map(|s| s.as_u16());
                let throttled = match verdict.class() {
                    // A client-side quota's refusal is not the provider's word.
                    Some(ErrorClass::RateLimited) => {
                        verdict.delay_source() != DelaySource::LocalQuota
                    }
                    Some(ErrorClass::Overloaded) => matches!(status, Some(429 | 529)),
                    _ => false,
                };
                let exhausted = verdict.delay_source() == DelaySource::ResetHeader
                    || verdict
                        .rate_limits()
                        .entries()
                        .iter()
                        .any(|e| e.reading.is_exhausted());
                let delay = (verdict.class() == Some(ErrorClass::RateLimited))
                    .then(|| verdict.delay())
                    .flatten();
                throttled.then_some(Throttle { delay, exhausted })
            }
            (None, Some(StatusCode::TOO_MANY_REQUESTS)) => Some(Throttle {
                delay: lesson
                    .headers
                    .and_then(|h| headers::retry_after(h, SystemTime::now())),
                exhausted: false,
            }),
            _ => None,
        }
    }
}

/// A reported usage against its estimate.
#[derive(Clone, Copy)]
pub(crate) struct Reconcile {
    pub(crate) estimated: Cost,
    pub(crate) actual: Cost,
    /// When the request was admitted (time since the origin).
    pub(crate) taken_at: Duration,
}

/// The longest pause a 429 can impose: a day. A larger `retry-after` is a broken header, and
/// the key would otherwise stay closed for ever.
const MAX_PAUSE: Duration = Duration::from_secs(86_400);

impl<'a> Lesson<'a> {
    /// The usage a response reports: a [`Usage`] response extension, else the verdict's.
    pub(crate) fn usage_of(
        extensions: &'a http::Extensions,
        verdict: Option<&'a Verdict>,
    ) -> Option<&'a Usage> {
        extensions
            .get::<Usage>()
            .or_else(|| verdict.and_then(Verdict::usage))
    }
}

fn add(a: &Cost, b: &Cost) -> Cost {
    Dimension::ALL
        .into_iter()
        .fold(*a, |sum, d| sum.with(d, a.get(d).saturating_add(b.get(d))))
}

fn sub(a: &Cost, b: &Cost) -> Cost {
    Dimension::ALL.into_iter().fold(*a, |rest, d| {
        rest.with(d, a.get(d).saturating_sub(b.get(d)))
    })
}

/// What to give back and what to charge, per dimension, to go from `estimated` to `actual`.
fn difference(estimated: &Cost, actual: &Cost) -> (Cost, Cost) {
    Dimension::ALL
        .into_iter()
        .fold((Cost::ZERO, Cost::ZERO), |(refund, charge), d| {
            let (e, a) = (estimated.get(d), actual.get(d));
            (
                refund.with(d, e.saturating_sub(a)),
                charge.with(d, a.saturating_sub(e)),
            )
        })
}

impl<St: Store> fmt::Debug for Limiter<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

// ===== impl Ticket =====

/// A place in a key's queue. Dropping it leaves the queue and wakes whoever is first after it.
pub(crate) struct Ticket {
    queues: Arc<Queues>,
    key: Option<RouteKey>,
    seq: u64,
}

impl Ticket {
    /// Whether it is first in its queue, and the queue's nudge count; records `waker` to be
    /// told when either changes.
    pub(crate) fn turn(&self, waker: &Waker) -> (bool, u64) {
        let mut queues = self.queues.lock();
        let Some(queue) = queues.get_mut(&self.key) else {
            return (true, 0);
        };
        let Some(at) = queue.waiters.iter().position(|w| w.seq == self.seq) else {
            return (true, queue.epoch);
        };
        let slot = &mut queue.waiters[at].waker;
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        (at == 0, queue.epoch)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let waker = {
            let mut queues = self.queues.lock();
            let Some(queue) = queues.get_mut(&self.key) else {
                return;
            };
            let Some(at) = queue.waiters.iter().position(|w| w.seq == self.seq) else {
                return;
            };
            let left = queue.waiters.remove(at);
            queue.total = sub(&queue.total, &left.cost);
            self.queues.waiting.fetch_sub(1, Ordering::AcqRel);
            let next = if at == 0 {
                queue.waiters.first_mut().and_then(|w| w.waker.take())
            } else {
                None
            };
            if queue.waiters.is_empty() {
                queues.remove(&self.key);
            }
            next
        };
        // Woken outside the lock: an executor that polls inside `wake` must not deadlock.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("key", &self.key)
            .field("seq", &self.seq)
            .finish()
    }
}

// ===== impl RateLimitHandle =====

/// A side handle on a [`RateLimitLayer`](crate::RateLimitLayer)'s shared state: change limits
/// at runtime, look at keys and waiters. Cheap to clone.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use tollgate_ratelimit::{Limit, Limits, RateLimitLayer, algorithm::Quota};
///
/// const fn n(v: u64) -> NonZeroU64 { NonZeroU64::new(v).unwrap() }
///
/// let layer = RateLimitLayer::new(Limits::new([Limit::requests(Quota::per_minute(n(500)))]));
/// let handle = layer.handle();
/// // The account moved up a tier: every clone of the layer sees the new limits at once.
/// handle.set_limits(Limits::new([Limit::requests(Quota::per_minute(n(5_000)))]));
/// assert_eq!(handle.limits().as_slice()[0].quota().limit(), 5_000);
/// ```
pub struct RateLimitHandle<St: Store = crate::MemoryStore> {
    pub(crate) limiter: Arc<Limiter<St>>,
}

impl<St: Store> RateLimitHandle<St> {
    /// Replaces the limits of the unkeyed quota and of every key without limits of its own.
    /// What each key has used carries over.
    pub fn set_limits(&self, limits: Limits) {
        self.limiter.store.set_limits(None, limits);
        self.limiter.nudge_all();
    }

    /// Gives `key` limits of its own (a model with other limits than the rest).
    pub fn set_limits_for(&self, key: impl Into<RouteKey>, limits: Limits) {
        self.limiter.store.set_limits(Some(&key.into()), limits);
        self.limiter.nudge_all();
    }

    /// The limits of the unkeyed quota and of every key without limits of its own.
    pub fn limits(&self) -> Limits {
        self.limiter.store.limits(None)
    }

    /// The limits `key` is held to.
    pub fn limits_for(&self, key: impl Into<RouteKey>) -> Limits {
        self.limiter.store.limits(Some(&key.into()))
    }

    /// How many keys hold state in the store.
    pub fn keys(&self) -> usize {
        self.limiter.store.keys()
    }

    /// The keys held in this process, the cap on them, and how many were evicted at the cap
    /// ([`RateLimitConfig::max_keys`](crate::RateLimitConfig::max_keys)); `None` for a store
    /// that does not cap its keys.
    pub fn key_stats(&self) -> Option<KeyStats> {
        self.limiter.store.key_stats()
    }

    /// How many requests are waiting for admission, over every key.
    pub fn waiting(&self) -> usize {
        self.limiter.waiting()
    }

    /// What admitting `cost` for `key` would decide now, and the headroom it would leave,
    /// spending nothing; `None` when the store cannot tell. With requests of `key` already
    /// waiting, a newcomer would queue behind them: the decision is then to wait at least
    /// until they are in.
    pub fn outlook(&self, key: Option<&RouteKey>, cost: &Cost) -> Option<Outlook> {
        self.outlook_at(key, cost, Instant::now())
    }

    /// [`outlook`](Self::outlook) as of `at` (a clock read once for many handles).
    pub fn outlook_at(&self, key: Option<&RouteKey>, cost: &Cost, at: Instant) -> Option<Outlook> {
        let now = self.limiter.origin.offset(at);
        let mut outlook = self.limiter.store.outlook(key, cost, now)?;
        if let Place::Behind(ahead) = self.limiter.place(key, Priority::default()) {
            if let QuotaDecision::Admitted | QuotaDecision::Wait(_) = outlook.decision {
                let queued = self.limiter.store.admit(key, cost, Some(&ahead), now);
                if let Some(Ok(decision)) = now_or_never(queued) {
                    outlook.decision = decision;
                }
                outlook.headroom = outlook.headroom.min(0.0);
            }
        }
        Some(outlook)
    }

    /// The request rate the adaptive limit of `key` has learned, in requests per second
    /// ([`adaptive`](crate::adaptive)): the pace it holds the key to now, or the rate of the
    /// key's limits while they alone hold it. `None` without an adaptive limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_ratelimit::adaptive::Adaptive;
    /// use tollgate_ratelimit::{Limits, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
    /// // Nothing learned yet: slow start begins at the initial rate.
    /// assert_eq!(layer.handle().learned_rate(None), Some(10.0));
    /// ```
    pub fn learned_rate(&self, key: Option<&RouteKey>) -> Option<f64> {
        self.limiter.store.learned_rate(key, self.limiter.now())
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.limiter.store
    }

    /// The current time as the store sees it: time since the layer was built.
    pub fn now(&self) -> Duration {
        self.limiter.now()
    }
}

impl<St: Store> Clone for RateLimitHandle<St> {
    fn clone(&self) -> Self {
        RateLimitHandle {
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<St: Store> fmt::Debug for RateLimitHandle<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitHandle")
            .field("keys", &self.keys())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The output of `future` if it is ready at its first poll (a store that answers at once).
fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
