//! [`MemoryStore`]: quota state in this process, sharded by key, idle keys swept away.

use std::collections::HashMap;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use tollgate_core::clock::nanos;
use tollgate_core::keyed::{Idle, KeyStats, KeyedMap, TooManyKeys};
use tollgate_core::{BoxError, Cost, Dimension, RouteKey};

use super::entry::Entry;
use super::{Feedback, Outlook, QuotaDecision, Store};
use crate::limit::Limits;

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
/// At most [`max_keys`](MemoryStore::with_max_keys) keys (100,000 by default) hold state, however
/// many distinct keys requests bring: a new key arriving at the cap first forgets idle keys,
/// then evicts the least recently used ones — losing what they had used of their quota, as if
/// they had been idle. A request is never refused for want of room. Evictions are counted
/// ([`key_stats`](Store::key_stats)) and reported to the request's observer (the metrics
/// layer's `tollgate_keys_evicted_total`).
///
/// Measured (`tests/memory.rs`, 10,000 keys): about 316 bytes per key on three token-bucket
/// limits, 220 on one, about 452 under an adaptive limit, table included, besides the key's own string;
/// nothing left after eviction.
pub struct MemoryStore {
    config: RwLock<Config>,
    /// Bumped whenever the limits change, so an admission reads the configuration only then.
    version: AtomicU64,
    unkeyed: CacheLine<Mutex<Slot>>,
    /// Keyed entries, spread over shards by key so that keys on different threads rarely
    /// share a lock.
    keyed: KeyedMap<Box<Slot>>,
    sweep_interval: Duration,
    /// When (nanoseconds of `now`) every shard is next swept; claimed by one admission.
    next_sweep: AtomicU64,
    /// Keys evicted at the cap and not yet reported to an observer.
    unreported_evictions: AtomicU64,
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

/// A keyed entry is boxed: the map's table, which keeps about a third of its room empty,
/// then holds a pointer per key rather than the whole entry.
impl Idle for Box<Slot> {
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
            unreported_evictions: AtomicU64::new(0),
        }
    }

    /// Holds state for at most `max_keys` keys (default 100,000); see [Memory](#memory) for
    /// what happens beyond.
    #[must_use]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.keyed = KeyedMap::with_max_keys(max_keys);
        self
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

    /// Moves `slot` to the limits of configuration `version`.
    #[cold]
    #[inline(never)]
    fn follow(&self, slot: &mut Slot, key: Option<&RouteKey>, version: u64, now: Duration) {
        slot.entry.follow(self.config().limits(key), now);
        slot.version = version;
    }

    fn config(&self) -> RwLockReadGuard<'_, Config> {
        self.config.read()
    }

    /// Runs `f` on the entry for `key` at `now`: created fresh, or carried over to the current
    /// limits. A new key at the cap evicts others; `None` only when it is refused, which never
    /// happens (no entry is ever in use).
    #[inline]
    fn with_entry<T>(
        &self,
        key: Option<&RouteKey>,
        now: Duration,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let version = self.version.load(Ordering::Acquire);
        let follow = |slot: &mut Slot| {
            if slot.version != version {
                self.follow(slot, key, version, now);
            }
        };
        let Some(key) = key else {
            let mut slot = lock(&self.unkeyed);
            follow(&mut slot);
            return Some(f(&mut slot.entry));
        };
        self.sweep_if_due(now);
        let make = || {
            Box::new(Slot {
                version,
                entry: Entry::new(self.config().limits(Some(key)), now),
            })
        };
        let found = self.keyed.with_evicting(
            key,
            make,
            || now,
            |slot| {
                follow(slot);
                f(&mut slot.entry)
            },
        );
        match found {
            Ok((value, 0)) => Some(value),
            Ok((value, evicted)) => {
                self.unreported_evictions
                    .fetch_add(evicted as u64, Ordering::Relaxed);
                Some(value)
            }
            Err(_) => None,
        }
    }
}

impl MemoryStore {
    /// [`Store::admit`] without a key: the one entry's lock and the admission, nothing to
    /// look up or sweep.
    #[inline]
    fn admit_unkeyed(&self, cost: &Cost, ahead: Option<&Cost>, now: Duration) -> QuotaDecision {
        let version = self.version.load(Ordering::Acquire);
        let mut slot = lock(&self.unkeyed);
        if slot.version != version {
            self.follow(&mut slot, None, version, now);
        }
        slot.entry.admit(cost, ahead, now)
    }

    /// [`Store::admit`] for `key`.
    #[inline(never)]
    fn admit_keyed(
        &self,
        key: &RouteKey,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Result<QuotaDecision, BoxError> {
        match self.with_entry(Some(key), now, |entry| entry.admit(cost, ahead, now)) {
            Some(decision) => Ok(decision),
            None => Err(TooManyKeys::new(self.keyed.max_keys()).into()),
        }
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
    type Future = Ready<Result<QuotaDecision, BoxError>>;

    #[inline]
    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future {
        let Some(key) = key else {
            return ready(Ok(self.admit_unkeyed(cost, ahead, now)));
        };
        ready(self.admit_keyed(key, cost, ahead, now))
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
            .unwrap_or_default()
    }

    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        self.with_entry(key, now, |entry| entry.outlook(cost, now))
    }

    fn learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.with_entry(key, now, |entry| entry.learned_rate(now))
            .flatten()
    }

    fn report_learned_rate(&self, key: Option<&RouteKey>, now: Duration) -> Option<f64> {
        self.with_entry(key, now, |entry| entry.report_rate(now))
            .flatten()
    }

    fn key_stats(&self) -> Option<KeyStats> {
        Some(self.keyed.stats())
    }

    #[inline]
    fn take_evicted(&self) -> u64 {
        if self.unreported_evictions.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.unreported_evictions.swap(0, Ordering::Relaxed)
    }
}
