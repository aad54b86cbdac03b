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
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use tollgate_core::clock::nanos;
use tollgate_core::keyed::{Idle, KeyedMap};
use tollgate_core::{BoxError, Cost, Dimension, RouteKey, Window};

use crate::limit::Limits;

mod entry;

use entry::Entry;

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

/// What admitting a cost would come to now, found without spending anything: for routers
/// that choose among several limited deployments.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlook {
    /// What admission would decide now, were nobody waiting ahead.
    pub decision: Decision,
    /// The smallest share of a limit's capacity that would be left after the cost, over the
    /// limits: 1 with nothing used and nothing asked, 0 when the cost uses the last of a limit,
    /// below 0 when it does not fit now.
    pub headroom: f64,
}

/// What the provider's response told the limiter about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feedback {
    /// The request admitted at `taken_at` used less than it was charged: give this back, per
    /// dimension (the windows only from where that admission counted).
    Refund {
        /// What to give back.
        cost: Cost,
        /// When the request was admitted (time since the layer's origin).
        taken_at: Duration,
    },
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
    /// before `until` (time since the layer's origin), then release the waiters at the
    /// limits' pace, never all at once.
    PauseUntil(Duration),
    /// The provider throttled a request admitted at `taken_at` (a 429, or an explicit
    /// overload): an adaptive limit lowers its rate, once per episode.
    Throttled {
        /// When the throttled request was admitted (time since the layer's origin).
        taken_at: Duration,
    },
    /// The provider reports a limit of `limit` on `dimension` over `window`: an adaptive limit
    /// adopts it where no limit is configured.
    Limit {
        /// The dimension.
        dimension: Dimension,
        /// The period the provider means.
        window: Window,
        /// The whole allowance per window.
        limit: u64,
    },
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

    /// What admitting `cost` for `key` at `now` would decide, and the headroom it would leave,
    /// without spending anything. A store that cannot tell cheaply answers `None`.
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        let _ = (key, cost, now);
        None
    }

    /// How much of each limit of `key` is in use at `now`, as `(dimension, used fraction)`;
    /// for observers (the metrics layer). A store that cannot tell cheaply answers nothing.
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        let _ = (key, now);
        Vec::new()
    }

    /// The request rate an adaptive limit has learned for `key` at `now`, in requests per
    /// second; `None` without an adaptive limit, or when the store cannot tell.
    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        let _ = (key, now);
        None
    }

    /// The learned rate, when it moved by 1 % or more since it was last reported here (for
    /// events); marks it reported.
    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        let _ = (key, now);
        None
    }
}

// ===== impl MemoryStore =====

/// Quota state in this process, shared by every clone of the layer that owns it.
///
/// # Memory
///
/// One entry per key that has state: the key (an `Arc<str>`, shared with the request's
/// [`RouteKey`]), a reference to its [`Limits`], and one state per limit — 48 bytes each,
/// plus 16 bytes per admission still in the window for a sliding-window log. A key is evicted
/// as soon as it is idle — every limit back to full, no pause pending — at the next sweep. Keys
/// are spread over 16 shards, each with its own lock. The first keyed admission after each
/// [`sweep_interval`](MemoryStore::with_sweep_interval) (10 s by default) sweeps every shard,
/// and a shard is also swept whenever its number of keys has doubled since its last sweep (when
/// traffic may stop altogether, call [`evict_idle`](MemoryStore::evict_idle) from a timer).
/// Forgetting an idle key loses nothing, so memory is bounded by the keys active within the
/// longest period, and a sweep that leaves most of a shard's table empty gives its memory back.
/// Under an adaptive limit a key also holds its learned pace and any limits learned from
/// headers (at most 8), and counts as idle only once it has had no request for five minutes:
/// forgetting it loses what it learned.
///
/// Measured (`tests/memory.rs`, 10,000 keys): about 300 bytes per key on three token-bucket
/// limits, about 440 under an adaptive limit, table included, besides the key's own string;
/// nothing left after eviction.
pub struct MemoryStore {
    config: RwLock<Config>,
    /// Bumped whenever the limits change, so an admission reads the configuration only then.
    version: AtomicU64,
    unkeyed: CacheLine<Mutex<Slot>>,
    /// Keyed entries, spread over shards by key so that keys on different threads rarely
    /// share a lock.
    keyed: KeyedMap<Slot>,
    sweep_interval: Duration,
    /// When (nanoseconds of `now`) every shard is next swept; claimed by one admission.
    next_sweep: AtomicU64,
}

struct Config {
    default: Limits,
    overrides: HashMap<RouteKey, Limits, RandomState>,
}

impl Config {
    fn limits(&self, key: Option<&RouteKey>) -> &Limits {
        key.and_then(|k| self.overrides.get(k))
            .unwrap_or(&self.default)
    }
}

/// A value alone on its cache lines, so that locking one shard does not slow another's.
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// An entry and the configuration version it follows.
struct Slot {
    version: u64,
    entry: Entry,
}

impl Idle for Slot {
    /// Time since the layer's origin.
    type Now = Duration;

    /// Every limit back to full, no pause pending, an adaptive pace at rest.
    fn is_idle(&self, now: Duration) -> bool {
        self.entry.is_idle(now)
    }
}

const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);

impl MemoryStore {
    /// A store holding every key to `limits`.
    pub fn new(limits: Limits) -> Self {
        let unkeyed = Slot {
            version: 0,
            entry: Entry::new(&limits, Duration::ZERO),
        };
        MemoryStore {
            config: RwLock::new(Config {
                default: limits,
                overrides: HashMap::default(),
            }),
            version: AtomicU64::new(0),
            unkeyed: CacheLine(Mutex::new(unkeyed)),
            keyed: KeyedMap::new(),
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            next_sweep: AtomicU64::new(nanos(DEFAULT_SWEEP_INTERVAL)),
        }
    }

    /// How often, at most, idle keys are looked for (10 s by default; the number of keys
    /// doubling also triggers a sweep).
    #[must_use]
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self.next_sweep = AtomicU64::new(nanos(interval));
        self
    }

    /// Forgets every idle key now, and returns how many keys remain.
    pub fn evict_idle(&self, now: Duration) -> usize {
        self.next_sweep.store(
            nanos(now.saturating_add(self.sweep_interval)),
            Ordering::Relaxed,
        );
        self.keyed.sweep(now)
    }

    /// Sweeps every shard when the interval has passed; one caller does it.
    fn sweep_if_due(&self, now: Duration) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        let now_nanos = nanos(now);
        if now_nanos < due {
            return;
        }
        let next = nanos(now.saturating_add(self.sweep_interval));
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.keyed.sweep(now);
        }
    }

    fn config(&self) -> RwLockReadGuard<'_, Config> {
        self.config.read()
    }

    /// Runs `f` on the entry for `key` at `now`: created fresh, or carried over to the current
    /// limits.
    fn with_entry<T>(
        &self,
        key: Option<&RouteKey>,
        now: Duration,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> T {
        let version = self.version.load(Ordering::Acquire);
        let follow = |slot: &mut Slot| {
            if slot.version != version {
                slot.entry.follow(self.config().limits(key), now);
                slot.version = version;
            }
        };
        let Some(key) = key else {
            let mut slot = lock(&self.unkeyed);
            follow(&mut slot);
            return f(&mut slot.entry);
        };
        self.sweep_if_due(now);
        let make = || Slot {
            version,
            entry: Entry::new(self.config().limits(Some(key)), now),
        };
        self.keyed.with(
            key,
            make,
            || now,
            |slot| {
                follow(slot);
                f(&mut slot.entry)
            },
        )
    }
}

/// Locks are held for a few arithmetic steps: `parking_lot`'s spin-then-park suits them far
/// better under contention than a futex-only lock. Nothing panics while one is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock()
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.config();
        f.debug_struct("MemoryStore")
            .field("limits", &config.default)
            .field("overrides", &config.overrides.len())
            .field("keys", &self.keys())
            .finish()
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
        ready(Ok(
            self.with_entry(key, now, |entry| entry.admit(cost, ahead, now))
        ))
    }

    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        self.with_entry(key, now, |entry| entry.apply(feedback, now));
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        let mut config = self.config.write();
        match key {
            Some(key) => {
                config.overrides.insert(key.clone(), limits);
            }
            None => config.default = limits,
        }
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.config().limits(key).clone()
    }

    fn keys(&self) -> usize {
        self.keyed.len()
    }

    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        self.with_entry(key, now, |entry| entry.utilization(now))
    }

    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        Some(self.with_entry(key, now, |entry| entry.outlook(cost, now)))
    }

    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.with_entry(key, now, |entry| entry.learned_rate(now))
    }

    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.with_entry(key, now, |entry| entry.report_rate(now))
    }
}
