//! [`KeyedMap`]: state per [`RouteKey`] (a breaker, a concurrency gate, a quota) that forgets
//! the keys it no longer needs.
//!
//! Keyed layers hold one piece of state per key they have seen: per model, per API key, per
//! tenant. Keys come and go, so the map must not grow without bound, and the common case (the
//! key is already there) must stay one short lock. A `KeyedMap`:
//!
//! - spreads keys over 16 shards, each a [`parking_lot::Mutex`] on its own cache lines, so keys
//!   on different threads rarely share a lock;
//! - finds an entry with one lock and one lookup, and never sweeps on a hit;
//! - before inserting a new key into a shard holding at least its sweep threshold, *sweeps* the
//!   shard: forgets every entry that is [`Idle`], gives most of the table's memory back when
//!   most keys are gone, and sets the threshold to twice what is left (never below 64). Sweeps
//!   are therefore amortised: a shard is swept again only once it has doubled;
//! - sweeps every shard on demand ([`sweep`](KeyedMap::sweep)), for a timer or a handle's
//!   `evict_idle`.
//!
//! What "idle" means is the value's: an entry is forgotten only when forgetting it loses
//! nothing that matters (a closed breaker with nothing counted, a gate with nothing in flight, a
//! quota back to full). [`Idle::Now`] is what the test needs to know, typically the time; it is
//! read lazily, only when a sweep happens, so a hit never reads a clock. An `Arc<T>` is idle
//! only when the map holds the last reference: an entry handed out and still held elsewhere
//! (by a request in flight, a permit) is never forgotten.
//!
//! # Examples
//!
//! State shared by reference, handed out as an `Arc`:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use tollgate_core::RouteKey;
//! use tollgate_core::keyed::{Idle, KeyedMap};
//!
//! #[derive(Default)]
//! struct Gate {
//!     in_flight: AtomicU32,
//! }
//!
//! impl Idle for Gate {
//!     type Now = ();
//!     fn is_idle(&self, (): ()) -> bool {
//!         self.in_flight.load(Ordering::Acquire) == 0
//!     }
//! }
//!
//! let gates: KeyedMap<Arc<Gate>> = KeyedMap::new();
//! let key = RouteKey::new("gpt-4o");
//! let gate = gates.get_or_insert_with(&key, Arc::default, || ());
//! gate.in_flight.fetch_add(1, Ordering::AcqRel);
//! assert!(Arc::ptr_eq(&gate, &gates.get(&key).unwrap()));
//! // Still held here: not forgotten.
//! assert_eq!(gates.sweep(()), 1);
//! drop(gate);
//! gates.get(&key).unwrap().in_flight.fetch_sub(1, Ordering::AcqRel);
//! assert_eq!(gates.sweep(()), 0);
//! ```
//!
//! State changed in place under the shard's lock, idle after a while:
//!
//! ```
//! use std::time::Duration;
//! use tollgate_core::RouteKey;
//! use tollgate_core::keyed::{Idle, KeyedMap};
//!
//! struct Count {
//!     calls: u64,
//!     last: Duration,
//! }
//!
//! impl Idle for Count {
//!     type Now = Duration;
//!     fn is_idle(&self, now: Duration) -> bool {
//!         now.saturating_sub(self.last) >= Duration::from_secs(60)
//!     }
//! }
//!
//! let counts = KeyedMap::new();
//! let key = RouteKey::new("tenant-1");
//! let now = Duration::from_secs(1);
//! let make = || Count { calls: 0, last: now };
//! let calls = counts.with(&key, make, || now, |count| {
//!     count.calls += 1;
//!     count.last = now;
//!     count.calls
//! });
//! assert_eq!(calls, 1);
//! assert_eq!(counts.sweep(Duration::from_secs(60)), 1);
//! assert_eq!(counts.sweep(Duration::from_secs(61)), 0);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::RouteKey;

/// How many shards keys are spread over.
const SHARDS: usize = 16;

/// Below this many keys in a shard, growth alone never triggers a sweep of it.
const MIN_SWEEP_LEN: usize = 64;

/// Whether an entry of a [`KeyedMap`] may be forgotten now.
///
/// See the [module docs](self) for examples.
pub trait Idle {
    /// What the test needs to know: the time now (as the layer counts it), or `()`. Read only
    /// when a sweep happens.
    type Now: Copy;

    /// Whether forgetting the entry at `now` loses nothing: a fresh one would behave the same.
    fn is_idle(&self, now: Self::Now) -> bool;
}

/// Idle when the map holds the last reference and the value is idle: an entry handed out and
/// still held elsewhere is in use.
impl<T: Idle + ?Sized> Idle for Arc<T> {
    type Now = T::Now;

    #[inline]
    fn is_idle(&self, now: T::Now) -> bool {
        Arc::strong_count(self) == 1 && (**self).is_idle(now)
    }
}

/// Entries of type `V` per [`RouteKey`], over 16 locked shards, forgetting [`Idle`] ones as
/// shards grow.
///
/// See the [module docs](self) for how it sweeps, and examples.
pub struct KeyedMap<V> {
    shards: Box<[Padded<V>]>,
    hasher: RandomState,
}

/// A shard alone on its cache lines, so that locking one does not slow another's.
#[repr(align(128))]
struct Padded<V> {
    shard: Mutex<Shard<V>>,
}

struct Shard<V> {
    entries: HashMap<RouteKey, V, RandomState>,
    /// The shard is swept before a new key goes in once it holds this many.
    sweep_at_len: usize,
}

impl<V> KeyedMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        KeyedMap {
            shards: (0..SHARDS)
                .map(|_| Padded {
                    shard: Mutex::new(Shard {
                        entries: HashMap::default(),
                        sweep_at_len: MIN_SWEEP_LEN,
                    }),
                })
                .collect(),
            hasher: RandomState::default(),
        }
    }

    #[inline]
    fn shard(&self, key: &RouteKey) -> &Mutex<Shard<V>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS].shard
    }

    /// A clone of the entry of `key`, if there is one (for an `Arc`, another reference).
    #[inline]
    pub fn get(&self, key: &RouteKey) -> Option<V>
    where
        V: Clone,
    {
        self.shard(key).lock().entries.get(key).cloned()
    }

    /// How many keys hold an entry.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.shard.lock().entries.len())
            .sum()
    }

    /// Whether no key holds an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Idle> KeyedMap<V> {
    /// Runs `f` on the entry of `key` under its shard's lock, first inserting `make()` if there
    /// is none; before inserting into a shard at its threshold, sweeps that shard at `now()`.
    /// `now` is called only for a sweep, `make` only for a new key.
    ///
    /// `f` runs with the shard locked: keep it short, and do not touch the map from it (the
    /// lock is not reentrant).
    ///
    /// See the [module docs](self) for an example.
    #[inline]
    pub fn with<T>(
        &self,
        key: &RouteKey,
        make: impl FnOnce() -> V,
        now: impl FnOnce() -> V::Now,
        f: impl FnOnce(&mut V) -> T,
    ) -> T {
        let mut guard = self.shard(key).lock();
        let shard = &mut *guard;
        if let Some(entry) = shard.entries.get_mut(key) {
            return f(entry);
        }
        if shard.entries.len() >= shard.sweep_at_len {
            shard.sweep(now());
        }
        f(shard.entries.entry(key.clone()).or_insert_with(make))
    }

    /// A clone of the entry of `key`, inserting `make()` first if there is none (sweeping as
    /// [`with`](Self::with) does). With `V = Arc<T>`, the shared state of the key.
    ///
    /// See the [module docs](self) for an example.
    #[inline]
    pub fn get_or_insert_with(
        &self,
        key: &RouteKey,
        make: impl FnOnce() -> V,
        now: impl FnOnce() -> V::Now,
    ) -> V
    where
        V: Clone,
    {
        self.with(key, make, now, |entry| entry.clone())
    }

    /// Sweeps every shard at `now`: forgets every idle entry (resetting each shard's threshold
    /// to twice what it keeps), and returns how many remain.
    ///
    /// See the [module docs](self) for an example.
    pub fn sweep(&self, now: V::Now) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.shard.lock();
                shard.sweep(now);
                shard.entries.len()
            })
            .sum()
    }
}

impl<V: Idle> Shard<V> {
    fn sweep(&mut self, now: V::Now) {
        self.entries.retain(|_, entry| !entry.is_idle(now));
        // Give the table's memory back too once most keys are gone.
        if self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        self.sweep_at_len = (self.entries.len() * 2).max(MIN_SWEEP_LEN);
    }
}

impl<V> Default for KeyedMap<V> {
    fn default() -> Self {
        KeyedMap::new()
    }
}

impl<V> fmt::Debug for KeyedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedMap")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::time::{self, Instant};

    use super::*;
    use crate::clock::Origin;

    /// Idle once a minute has passed since it was last used; counts the idle checks.
    struct Used {
        last: Duration,
        checks: Arc<AtomicUsize>,
    }

    impl Idle for Used {
        type Now = Duration;

        fn is_idle(&self, now: Duration) -> bool {
            self.checks.fetch_add(1, Ordering::Relaxed);
            now.saturating_sub(self.last) >= Duration::from_secs(60)
        }
    }

    /// Idle or not, whatever the time.
    struct Fixed {
        idle: bool,
    }

    impl Idle for Fixed {
        type Now = ();

        fn is_idle(&self, (): ()) -> bool {
            self.idle
        }
    }

    /// Never idle.
    const BUSY: Fixed = Fixed { idle: false };

    /// Always idle.
    fn spare() -> Fixed {
        Fixed { idle: true }
    }

    fn key(i: usize) -> RouteKey {
        RouteKey::new(format!("key-{i}"))
    }

    /// The next `n` keys from `from` on that land in shard `index`.
    fn keys_in_shard<V>(map: &KeyedMap<V>, index: usize, from: usize, n: usize) -> Vec<RouteKey> {
        (from..)
            .map(key)
            .filter(|k| std::ptr::eq(map.shard(k), &map.shards[index].shard))
            .take(n)
            .collect()
    }

    fn threshold<V>(map: &KeyedMap<V>, index: usize) -> usize {
        map.shards[index].shard.lock().sweep_at_len
    }

    fn shard_len<V>(map: &KeyedMap<V>, index: usize) -> usize {
        map.shards[index].shard.lock().entries.len()
    }

    #[test]
    fn a_hit_finds_the_same_entry_and_makes_nothing() {
        let map: KeyedMap<Arc<Fixed>> = KeyedMap::new();
        let first = map.get_or_insert_with(&key(1), || Arc::new(BUSY), || ());
        let again = map.get_or_insert_with(&key(1), || unreachable!("a hit"), || unreachable!());
        assert!(Arc::ptr_eq(&first, &again));
        assert!(map.get(&key(2)).is_none());
        assert_eq!(map.len(), 1);
        assert!(!map.is_empty());
    }

    #[test]
    fn the_threshold_doubles_with_what_a_sweep_keeps() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        let keys = keys_in_shard(&map, 3, 0, 4 * MIN_SWEEP_LEN + 1);
        let mut sweeps = 0;
        for (i, key) in keys.iter().enumerate() {
            map.with(key, || BUSY, || sweeps += 1, |_| ());
            match i + 1 {
                // Filling up to the threshold sweeps nothing.
                n if n <= MIN_SWEEP_LEN => assert_eq!(threshold(&map, 3), MIN_SWEEP_LEN),
                // The 65th key sweeps first: all 64 kept, so the next sweep waits for 128.
                n if n <= 2 * MIN_SWEEP_LEN => assert_eq!(threshold(&map, 3), 2 * MIN_SWEEP_LEN),
                n if n <= 4 * MIN_SWEEP_LEN => assert_eq!(threshold(&map, 3), 4 * MIN_SWEEP_LEN),
                _ => assert_eq!(threshold(&map, 3), 8 * MIN_SWEEP_LEN),
            }
        }
        assert_eq!(sweeps, 3);
        assert_eq!(shard_len(&map, 3), 4 * MIN_SWEEP_LEN + 1);
        // Other shards are untouched.
        assert_eq!(threshold(&map, 4), MIN_SWEEP_LEN);
    }

    #[test]
    fn a_hit_never_sweeps() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        let keys = keys_in_shard(&map, 0, 0, MIN_SWEEP_LEN + 1);
        for key in &keys[..MIN_SWEEP_LEN] {
            map.with(key, spare, || (), |_| ());
        }
        // At the threshold, hits leave every idle entry where it is...
        map.with(
            &keys[0],
            || unreachable!("a hit"),
            || unreachable!(),
            |_| (),
        );
        assert_eq!(shard_len(&map, 0), MIN_SWEEP_LEN);
        // ...and the next new key sweeps them all away before it goes in.
        map.with(&keys[MIN_SWEEP_LEN], spare, || (), |_| ());
        assert_eq!(shard_len(&map, 0), 1);
        assert_eq!(threshold(&map, 0), MIN_SWEEP_LEN);
    }

    #[test]
    fn sweeps_are_amortised() {
        let map: KeyedMap<Used> = KeyedMap::new();
        let checks = Arc::new(AtomicUsize::new(0));
        let n = 20_000;
        for i in 0..n {
            let make = || Used {
                last: Duration::ZERO,
                checks: Arc::clone(&checks),
            };
            map.with(&key(i), make, || Duration::ZERO, |_| ());
        }
        assert_eq!(map.len(), n);
        // Each sweep looks at a shard that doubled since the last: fewer than two checks a key.
        assert!(checks.load(Ordering::Relaxed) < 2 * n, "{checks:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_entries_are_forgotten_on_tokios_clock() {
        let origin = Origin::new();
        let map: KeyedMap<Used> = KeyedMap::new();
        let checks = Arc::new(AtomicUsize::new(0));
        let touch = |i: usize| {
            let now = origin.elapsed();
            let make = || Used {
                last: now,
                checks: Arc::clone(&checks),
            };
            map.with(&key(i), make, || now, |used| used.last = now);
        };
        for i in 0..1_000 {
            touch(i);
        }
        time::advance(Duration::from_secs(30)).await;
        touch(0);
        assert_eq!(
            map.sweep(origin.elapsed()),
            1_000,
            "nobody idle for a minute yet"
        );
        time::advance(Duration::from_secs(30)).await;
        // Key 0 was used 30 s ago; the others a minute ago.
        assert_eq!(map.sweep(origin.elapsed()), 1);
        assert!(map.contains(&key(0)));
        time::advance(Duration::from_secs(30)).await;
        assert_eq!(map.sweep(origin.elapsed()), 0);
        assert!(map.is_empty());
        assert_eq!(origin.offset(Instant::now()), Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn growth_forgets_idle_entries_without_a_timer() {
        let origin = Origin::new();
        let map: KeyedMap<Used> = KeyedMap::new();
        let checks = Arc::new(AtomicUsize::new(0));
        let keys = keys_in_shard(&map, 7, 0, 2 * MIN_SWEEP_LEN);
        let touch = |key: &RouteKey| {
            let now = origin.elapsed();
            let make = || Used {
                last: now,
                checks: Arc::clone(&checks),
            };
            map.with(key, make, || now, |_| ());
        };
        for key in &keys[..MIN_SWEEP_LEN] {
            touch(key);
        }
        time::advance(Duration::from_secs(60)).await;
        // The first new key at the threshold sweeps the 64 idle ones.
        touch(&keys[MIN_SWEEP_LEN]);
        assert_eq!(shard_len(&map, 7), 1);
        assert_eq!(threshold(&map, 7), MIN_SWEEP_LEN);
    }

    #[test]
    fn an_arc_held_elsewhere_is_never_idle() {
        let map: KeyedMap<Arc<Fixed>> = KeyedMap::new();
        let held = map.get_or_insert_with(&key(1), || Arc::new(spare()), || ());
        map.get_or_insert_with(&key(2), || Arc::new(spare()), || ());
        assert_eq!(map.sweep(()), 1);
        assert!(Arc::ptr_eq(&held, &map.get(&key(1)).unwrap()));
        drop(held);
        assert_eq!(map.sweep(()), 0);
    }

    #[test]
    fn a_sweep_gives_memory_back() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        for i in 0..10_000 {
            map.with(&key(i), spare, || (), |_| ());
        }
        assert_eq!(map.sweep(()), 0);
        let capacity: usize = map
            .shards
            .iter()
            .map(|s| s.shard.lock().entries.capacity())
            .sum();
        assert_eq!(capacity, 0);
    }

    #[test]
    fn is_send_sync_and_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<KeyedMap<Arc<Fixed>>>();
        assert_eq!(
            format!("{:?}", KeyedMap::<Fixed>::new()),
            "KeyedMap { keys: 0, .. }"
        );
    }

    impl<V> KeyedMap<V> {
        fn contains(&self, key: &RouteKey) -> bool {
            self.shard(key).lock().entries.contains_key(key)
        }
    }
}
