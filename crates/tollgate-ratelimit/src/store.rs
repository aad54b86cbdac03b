//! [`Store`]: where quota state lives. [`MemoryStore`] keeps it in this process.
//!
//! The layer decides *who* may try next (its fair waiting queue is local); the store decides
//! *whether* a cost fits, and spends it, all or nothing and atomically. That split is the seam
//! for a shared store: a Redis store runs [`Store::admit`] as one script, one round trip per
//! admission, so a fleet of gateways draws from one provider account. Feedback
//! ([`Store::feedback`]) is fire-and-forget: a remote store may apply it in the background.
//!
//! `now` is the time since the layer's origin, read from tokio's clock by the layer; a store
//! never reads a clock of its own, so tests on a paused clock are exact. (A store shared between
//! processes must translate it to a clock they share.)

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tollgate_core::{BoxError, Cost, Dimension, RouteKey, Window};

use crate::algorithm::Admission;
use crate::limit::{LimitState, Limits};

/// What a store answers to an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Admitted: the cost is spent on every limit.
    Admitted,
    /// Not now: nothing was spent; try again after this long.
    Wait(Duration),
    /// Never: the cost on `dimension` exceeds what `limit` can ever hold at once.
    TooLarge {
        /// The dimension.
        dimension: Dimension,
        /// The cost asked for.
        cost: u64,
        /// The most that limit admits at once.
        capacity: u64,
        /// The limit's period.
        period: Duration,
    },
}

/// What the provider's response told the limiter about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feedback {
    /// The request used less than it was charged: give this back, per dimension.
    Refund(Cost),
    /// The request used more than it was charged: spend this too, per dimension (it may put
    /// the quota into debt, which later admissions wait out).
    Charge(Cost),
    /// The provider says only `remaining` is left on `dimension` over `window`: never believe
    /// in more.
    Remaining {
        /// The dimension.
        dimension: Dimension,
        /// The period the provider means.
        window: Window,
        /// What it says is left.
        remaining: u64,
    },
    /// The provider asked every caller of this key to wait (a 429 with a delay): admit nothing
    /// before `until` (time since the layer's origin).
    PauseUntil(Duration),
}

/// Quota state behind [`RateLimitLayer`](crate::RateLimitLayer): per key, the [`Limits`] and
/// how much of each has been used.
///
/// Implement it to keep state elsewhere (a later `tollgate-redis` does). `None` as a key is the
/// one unkeyed quota. Every method takes `now` from the layer.
pub trait Store: Send + Sync + 'static {
    /// The answer to [`admit`](Store::admit). [`MemoryStore`] answers at once (`Ready`).
    type Future: Future<Output = Result<Decision, BoxError>> + Send + Unpin + 'static;

    /// Admits `cost` for `key` against every limit, all or nothing.
    ///
    /// With `ahead: Some(..)` the caller is queued behind waiters that will spend `ahead` first:
    /// spend nothing, and answer how long until `ahead + cost` could have been admitted
    /// ([`Decision::Wait`], or [`Decision::Admitted`] only when no limit applies).
    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future;

    /// Applies what a response said.
    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration);

    /// Replaces the limits of `key` (`None`: the unkeyed quota and every key without limits of
    /// its own). What each key has used carries over.
    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits);

    /// The limits `key` is held to.
    fn limits(&self, key: Option<&RouteKey>) -> Limits;

    /// How many keys hold state.
    fn keys(&self) -> usize;
}

// ===== impl MemoryStore =====

/// Quota state in this process, shared by every clone of the layer that owns it.
///
/// # Memory
///
/// One entry per key that has state: the key (an `Arc<str>`, shared with the request's
/// [`RouteKey`]), a reference to its [`Limits`], and one state per limit — 24 to 40 bytes each,
/// plus 16 bytes per admission still in the window for a sliding-window log. A key is evicted
/// as soon as it is idle — every limit back to full, no pause pending — at the next sweep: one
/// runs at most every [`sweep_interval`](MemoryStore::with_sweep_interval) (10 s by default) of
/// admissions, and whenever the number of keys has doubled since the last. Forgetting an idle
/// key loses nothing, so memory is bounded by the keys active within the longest period. The
/// crate's `tests/memory.rs` measures the bytes per key; the crate README lists the figures.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

struct Inner {
    default: Limits,
    overrides: HashMap<RouteKey, Limits>,
    unkeyed: Entry,
    keyed: HashMap<RouteKey, Entry>,
    sweep_interval: Duration,
    next_sweep: Duration,
    sweep_at_len: usize,
}

struct Entry {
    limits: Limits,
    states: Box<[LimitState]>,
    paused_until: Duration,
}

/// Below this many keys, growth alone never triggers a sweep.
const MIN_SWEEP_LEN: usize = 1024;

impl MemoryStore {
    /// A store holding every key to `limits`.
    pub fn new(limits: Limits) -> Self {
        let unkeyed = Entry::new(&limits);
        MemoryStore {
            inner: Mutex::new(Inner {
                default: limits,
                overrides: HashMap::new(),
                unkeyed,
                keyed: HashMap::new(),
                sweep_interval: Duration::from_secs(10),
                next_sweep: Duration::from_secs(10),
                sweep_at_len: MIN_SWEEP_LEN,
            }),
        }
    }

    /// How often, at most, idle keys are looked for (10 s by default; the number of keys
    /// doubling also triggers a sweep).
    #[must_use]
    pub fn with_sweep_interval(self, interval: Duration) -> Self {
        {
            let mut inner = self.lock();
            inner.sweep_interval = interval;
            inner.next_sweep = interval;
        }
        self
    }

    /// Forgets every idle key now, and returns how many keys remain.
    pub fn evict_idle(&self, now: Duration) -> usize {
        let mut inner = self.lock();
        inner.sweep(now);
        inner.keyed.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent even if a panic interrupted an update: every update is a
        // plain assignment of computed values.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("limits", &inner.default)
            .field("overrides", &inner.overrides.len())
            .field("keys", &inner.keyed.len())
            .finish()
    }
}

impl Inner {
    fn limits(&self, key: Option<&RouteKey>) -> &Limits {
        key.and_then(|k| self.overrides.get(k))
            .unwrap_or(&self.default)
    }

    /// The entry for `key`, created fresh, or carried over to the current limits.
    fn entry(&mut self, key: Option<&RouteKey>, now: Duration) -> &mut Entry {
        if let Some(key) = key {
            if now >= self.next_sweep || self.keyed.len() >= self.sweep_at_len {
                self.sweep(now);
            }
            if !self.keyed.contains_key(key) {
                let entry = Entry::new(self.limits(Some(key)));
                self.keyed.insert(key.clone(), entry);
            }
        }
        let limits = match key {
            Some(k) => self.overrides.get(k).unwrap_or(&self.default),
            None => &self.default,
        };
        let entry = match key {
            Some(k) => self.keyed.get_mut(k).expect("inserted above"),
            None => &mut self.unkeyed,
        };
        entry.follow(limits, now);
        entry
    }

    fn sweep(&mut self, now: Duration) {
        self.keyed.retain(|_, entry| !entry.is_idle(now));
        // Give the table's memory back too once most keys are gone.
        if self.keyed.len() * 4 < self.keyed.capacity() {
            self.keyed.shrink_to(self.keyed.len() * 2);
        }
        self.next_sweep = now.saturating_add(self.sweep_interval);
        self.sweep_at_len = (self.keyed.len() * 2).max(MIN_SWEEP_LEN);
    }
}

impl Entry {
    fn new(limits: &Limits) -> Self {
        Entry {
            limits: limits.clone(),
            states: limits.as_slice().iter().map(|l| l.fresh_state()).collect(),
            paused_until: Duration::ZERO,
        }
    }

    /// Moves to new limits. A limit whose dimension, period and algorithm are unchanged keeps
    /// its state; one whose rate or algorithm changed starts from what the old one had used.
    fn follow(&mut self, limits: &Limits, now: Duration) {
        if self.limits.generation() == limits.generation() {
            return;
        }
        let old = std::mem::replace(&mut self.limits, limits.clone());
        let mut old_states = std::mem::take(&mut self.states).into_vec();
        self.states = limits
            .as_slice()
            .iter()
            .map(|new| {
                let same_period = old.as_slice().iter().position(|o| {
                    o.dimension() == new.dimension() && o.quota().period() == new.quota().period()
                });
                let Some(i) = same_period else {
                    return new.fresh_state();
                };
                let before = &old.as_slice()[i];
                if before == new {
                    return std::mem::replace(&mut old_states[i], before.fresh_state());
                }
                let used = before
                    .capacity()
                    .saturating_sub(before.available(&old_states[i], now));
                let mut state = new.fresh_state();
                new.take(&mut state, used, now);
                state
            })
            .collect();
    }

    fn is_idle(&self, now: Duration) -> bool {
        self.paused_until <= now
            && self
                .limits
                .as_slice()
                .iter()
                .zip(self.states.iter())
                .all(|(l, s)| l.is_fresh(s, now))
    }
}

impl Store for MemoryStore {
    type Future = Ready<Result<Decision, BoxError>>;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future {
        let mut inner = self.lock();
        ready(Ok(inner.entry(key, now).admit(cost, ahead, now)))
    }

    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        self.lock().entry(key, now).apply(feedback, now);
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        let mut inner = self.lock();
        match key {
            Some(key) => {
                inner.overrides.insert(key.clone(), limits);
            }
            None => inner.default = limits,
        }
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.lock().limits(key).clone()
    }

    fn keys(&self) -> usize {
        self.lock().keyed.len()
    }
}

impl Entry {
    fn admit(&mut self, cost: &Cost, ahead: Option<&Cost>, now: Duration) -> Decision {
        let limits = &self.limits;
        let mut wait = self.paused_until.saturating_sub(now);
        for (limit, state) in limits.as_slice().iter().zip(self.states.iter()) {
            let c = cost.get(limit.dimension());
            if c > limit.capacity() {
                return Decision::TooLarge {
                    dimension: limit.dimension(),
                    cost: c,
                    capacity: limit.capacity(),
                    period: limit.quota().period(),
                };
            }
            let this = match ahead {
                Some(ahead) => {
                    limit.eta(state, ahead.get(limit.dimension()).saturating_add(c), now)
                }
                None => match limit.wait(state, c, now) {
                    Admission::Now => Duration::ZERO,
                    Admission::After(d) => d,
                    Admission::Never => unreachable!("checked against the capacity above"),
                },
            };
            wait = wait.max(this);
        }
        if !wait.is_zero() || (ahead.is_some() && !limits.is_empty()) {
            // A queued caller is never admitted here; it waits at least for its turn.
            return Decision::Wait(wait.max(Duration::from_nanos(1)));
        }
        for (limit, state) in limits.as_slice().iter().zip(self.states.iter_mut()) {
            limit.take(state, cost.get(limit.dimension()), now);
        }
        Decision::Admitted
    }

    fn apply(&mut self, feedback: &Feedback, now: Duration) {
        let limits = &self.limits;
        let pairs = limits.as_slice().iter().zip(self.states.iter_mut());
        match feedback {
            Feedback::Refund(cost) => {
                for (limit, state) in pairs {
                    limit.give(state, cost.get(limit.dimension()), now);
                }
            }
            Feedback::Charge(cost) => {
                for (limit, state) in pairs {
                    limit.take(state, cost.get(limit.dimension()), now);
                }
            }
            Feedback::Remaining {
                dimension,
                window,
                remaining,
            } => {
                if let Some(i) = limits.matching(*dimension, *window) {
                    let limit = &limits.as_slice()[i];
                    let state = &mut self.states[i];
                    let excess = limit.available(state, now).saturating_sub(*remaining);
                    if excess > 0 {
                        limit.take(state, excess, now);
                    }
                }
            }
            Feedback::PauseUntil(until) => {
                self.paused_until = self.paused_until.max(*until);
            }
        }
    }
}
