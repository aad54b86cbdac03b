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
//!   `evict_idle`;
//! - holds at most [`max_keys`](KeyedMap::with_max_keys) keys (100,000 by default), however many
//!   distinct keys callers send. A new key arriving at the cap first sweeps its shard; if that
//!   frees nothing, the map *evicts* the least recently used eighth of the shard's entries that
//!   are not in use (an `Arc` held elsewhere, by a request in flight or a permit, is in use),
//!   losing their state — a quota's count, a breaker's failures — as if they had been idle;
//!   when every entry is in use, the new key is refused with [`TooManyKeys`] and nothing is
//!   inserted. The map counts both ([`stats`](KeyedMap::stats)); the layers report them.
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
//! let gate = gates.get_or_insert_with(&key, Arc::default, || ()).unwrap();
//! gate.in_flight.fetch_add(1, Ordering::AcqRel);
//! assert!(Arc::ptr_eq(&gate, &gates.get(&key).unwrap()));
//! // Still held here: not forgotten.
//! assert_eq!(gates.sweep(()), 1);
//! drop(gate);
//! gates.get(&key).unwrap().in_flight.fetch_sub(1, Ordering::AcqRel);
//! assert_eq!(gates.sweep(()), 0);
//! ```
//!
//! A cap on live keys: beyond it, the least recently used entry not in use makes room, and a
//! new key is refused only when every entry is in use:
//!
//! ```
//! use std::sync::Arc;
//! use tollgate_core::RouteKey;
//! use tollgate_core::keyed::{Idle, KeyedMap, TooManyKeys};
//!
//! struct Count(u32);
//!
//! impl Idle for Count {
//!     type Now = ();
//!     fn is_idle(&self, (): ()) -> bool {
//!         self.0 == 0
//!     }
//! }
//!
//! let counts: KeyedMap<Arc<Count>> = KeyedMap::with_max_keys(2);
//! let make = || Arc::new(Count(1));
//! let a = counts.get_or_insert_with(&RouteKey::new("a"), make, || ())?;
//! let _b = counts.get_or_insert_with(&RouteKey::new("b"), make, || ())?;
//! // Both are held: a third key has no room.
//! let refused = counts.get_or_insert_with(&RouteKey::new("c"), make, || ());
//! assert_eq!(refused.err(), Some(TooManyKeys::new(2)));
//! // Once `a` is no longer held, it is the one to go.
//! drop(a);
//! counts.get_or_insert_with(&RouteKey::new("c"), make, || ())?;
//! assert!(counts.get(&RouteKey::new("a")).is_none());
//! let stats = counts.stats();
//! assert_eq!((stats.keys, stats.evicted, stats.refused), (2, 1, 1));
//! # Ok::<(), TooManyKeys>(())
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
//! assert_eq!(calls, Ok(1));
//! assert_eq!(counts.sweep(Duration::from_secs(60)), 1);
//! assert_eq!(counts.sweep(Duration::from_secs(61)), 0);
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::{ErrorClass, Judged, RouteKey, Verdict};

/// How many shards keys are spread over, at most.
const SHARDS: usize = 16;

/// A shard's share of the cap is at least this many keys (a small cap means fewer shards), so
/// that an uneven spread of keys over shards does not evict long before the map is full.
const MIN_SHARD_KEYS: usize = 256;

/// Below this many keys in a shard, growth alone never triggers a sweep of it.
const MIN_SWEEP_LEN: usize = 64;

/// How many keys a [`KeyedMap`] holds at most unless told otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Whether an entry of a [`KeyedMap`] may be forgotten now.
///
/// See the [module docs](self) for examples.
pub trait Idle {
    /// What the test needs to know: the time now (as the layer counts it), or `()`. Read only
    /// when a sweep happens.
    type Now: Copy;

    /// Whether forgetting the entry at `now` loses nothing: a fresh one would behave the same.
    fn is_idle(&self, now: Self::Now) -> bool;

    /// Whether the entry is in use, so that even a full map must keep it: held by a request
    /// in flight, say. Entries not in use may be evicted, least recently used first, when the
    /// map is at its cap. By default, never.
    #[inline]
    fn in_use(&self) -> bool {
        false
    }
}

/// Idle when the map holds the last reference and the value is idle: an entry handed out and
/// still held elsewhere is in use.
impl<T: Idle + ?Sized> Idle for Arc<T> {
    type Now = T::Now;

    #[inline]
    fn is_idle(&self, now: T::Now) -> bool {
        Arc::strong_count(self) == 1 && (**self).is_idle(now)
    }

    /// In use while held elsewhere, or when the value says so.
    #[inline]
    fn in_use(&self) -> bool {
        Arc::strong_count(self) > 1 || (**self).in_use()
    }
}

/// A new key was refused: the map holds its maximum of keys and every one of them is in use.
///
/// Its [`source`](Error::source) is its verdict, which every layer reads with
/// [`Verdict::of_error`]: an overload, refused locally (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyKeys {
    max_keys: usize,
    verdict: Judged,
}

impl TooManyKeys {
    /// The refusal of a map holding at most `max_keys`.
    pub fn new(max_keys: usize) -> Self {
        let verdict = Verdict::failure(ErrorClass::Overloaded).refused_locally();
        TooManyKeys {
            max_keys,
            verdict: Judged::new(verdict),
        }
    }

    /// The cap that was reached.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The verdict: an overload, refused locally.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }
}

impl fmt::Display for TooManyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many keys: all {} are in use, no room for another",
            self.max_keys
        )
    }
}

impl Error for TooManyKeys {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.verdict)
    }
}

/// What a [`KeyedMap`] holds and has had to do at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KeyStats {
    /// Keys held now.
    pub keys: usize,
    /// The cap.
    pub max_keys: usize,
    /// Entries evicted to make room at the cap, in all (idle entries forgotten by a sweep are
    /// not counted: they lost nothing).
    pub evicted: u64,
    /// New keys refused at the cap because every entry was in use, in all.
    pub refused: u64,
}

/// Entries of type `V` per [`RouteKey`], over up to 16 locked shards, forgetting [`Idle`] ones
/// as shards grow, holding at most a fixed number of keys.
///
/// See the [module docs](self) for how it sweeps and evicts, and examples.
pub struct KeyedMap<V> {
    shards: Box<[Padded<V>]>,
    max_keys: usize,
    /// Each shard's share of `max_keys`.
    shard_max: usize,
    evicted: AtomicU64,
    refused: AtomicU64,
}

/// A shard alone on its cache lines, so that locking one does not slow another's.
#[repr(align(128))]
struct Padded<V> {
    shard: Mutex<Shard<V>>,
}

struct Shard<V> {
    entries: HashMap<Stored, Slot<V>, BuildHasherDefault<Prehashed>>,
    /// The shard is swept before a new key goes in once it holds this many.
    sweep_at_len: usize,
    /// Bumped on every use of an entry: the stamp of the most recent.
    clock: u64,
}

/// An entry and when it was last used (its shard's clock then).
struct Slot<V> {
    value: V,
    used: u64,
}

impl<V> KeyedMap<V> {
    /// An empty map holding at most [`DEFAULT_MAX_KEYS`].
    pub fn new() -> Self {
        KeyedMap::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// An empty map holding at most `max_keys` keys (at least 1). Keys are spread over up to
    /// 16 shards, each holding its share: evictions may begin a little before the map as a
    /// whole is full when keys spread unevenly.
    pub fn with_max_keys(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = (max_keys / MIN_SHARD_KEYS).clamp(1, SHARDS);
        KeyedMap {
            shards: (0..shards)
                .map(|_| Padded {
                    shard: Mutex::new(Shard {
                        entries: HashMap::default(),
                        sweep_at_len: MIN_SWEEP_LEN,
                        clock: 0,
                    }),
                })
                .collect(),
            max_keys,
            shard_max: max_keys / shards,
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The shard of `key`.
    #[cfg(test)]
    fn shard(&self, key: &RouteKey) -> &Mutex<Shard<V>> {
        self.shard_of(hash(key))
    }

    /// The shard of a key hashed to `hash`: chosen by bits 32 to 55, which the shard's table
    /// uses neither for its bucket (the low bits, below 2³² buckets) nor for its tag (the top
    /// seven), so that the keys of one shard still spread over its whole table. Scaled by a
    /// multiplication, not a division (the shard count need not be a power of two).
    #[inline]
    fn shard_of(&self, hash: u64) -> &Mutex<Shard<V>> {
        let bits = (hash >> 32) & 0x00ff_ffff;
        let index = ((bits * self.shards.len() as u64) >> 24) as usize;
        &self.shards[index].shard
    }

    /// A clone of the entry of `key`, if there is one (for an `Arc`, another reference).
    /// Looking does not count as a use.
    #[inline]
    pub fn get(&self, key: &RouteKey) -> Option<V>
    where
        V: Clone,
    {
        let hash = hash(key);
        self.shard_of(hash)
            .lock()
            .entries
            .get::<dyn Key>(&Probe::new(hash, key))
            .map(|slot| slot.value.clone())
    }

    /// The most keys the map holds.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The keys held now, and what the cap has cost so far.
    pub fn stats(&self) -> KeyStats {
        KeyStats {
            keys: self.len(),
            max_keys: self.max_keys,
            evicted: self.evicted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
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
    /// is none; before inserting into a shard at its threshold, sweeps that shard at `now()`;
    /// at the shard's share of the cap, evicts entries not in use, or refuses the key with
    /// [`TooManyKeys`] (and runs neither `make` nor `f`). `now` is called only for a sweep,
    /// `make` only for a new key.
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
    ) -> Result<T, TooManyKeys> {
        self.with_evicting(key, make, now, f)
            .map(|(value, _)| value)
    }

    /// [`with`](Self::with), also telling how many entries were evicted to make room for
    /// `key` (0 unless it was new and the map at its cap): for a layer that reports evictions.
    #[inline]
    pub fn with_evicting<T>(
        &self,
        key: &RouteKey,
        make: impl FnOnce() -> V,
        now: impl FnOnce() -> V::Now,
        f: impl FnOnce(&mut V) -> T,
    ) -> Result<(T, usize), TooManyKeys> {
        // The key is hashed once, for its shard and its place in the shard's table.
        let hash = hash(key);
        let mut guard = self.shard_of(hash).lock();
        let shard = &mut *guard;
        shard.clock += 1;
        let used = shard.clock;
        if let Some(slot) = shard.entries.get_mut::<dyn Key>(&Probe::new(hash, key)) {
            slot.used = used;
            return Ok((f(&mut slot.value), 0));
        }
        let mut evicted = 0;
        let len = shard.entries.len();
        if len >= shard.sweep_at_len || len >= self.shard_max {
            shard.sweep(now());
            if shard.entries.len() >= self.shard_max {
                evicted = shard.evict(self.shard_max);
                self.evicted.fetch_add(evicted as u64, Ordering::Relaxed);
                if shard.entries.len() >= self.shard_max {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(TooManyKeys::new(self.max_keys));
                }
            }
        }
        let slot = shard
            .entries
            .entry(Stored(key.clone()))
            .or_insert_with(|| Slot {
                value: make(),
                used,
            });
        Ok((f(&mut slot.value), evicted))
    }

    /// A clone of the entry of `key`, inserting `make()` first if there is none (sweeping,
    /// evicting or refusing as [`with`](Self::with) does). With `V = Arc<T>`, the shared state
    /// of the key.
    ///
    /// See the [module docs](self) for an example.
    #[inline]
    pub fn get_or_insert_with(
        &self,
        key: &RouteKey,
        make: impl FnOnce() -> V,
        now: impl FnOnce() -> V::Now,
    ) -> Result<V, TooManyKeys>
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
        self.entries.retain(|_, slot| !slot.value.is_idle(now));
        // Give the table's memory back too once most keys are gone.
        if self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        self.sweep_at_len = (self.entries.len() * 2).max(MIN_SWEEP_LEN);
    }

    /// Evicts the least recently used eighth (at least one) of the `max` entries a full shard
    /// holds, among those not in use; returns how many went. An eighth at a time keeps a flood
    /// of new keys at a few entries looked at per key.
    #[cold]
    fn evict(&mut self, max: usize) -> usize {
        let mut stamps: Vec<u64> = self
            .entries
            .values()
            .filter(|slot| !slot.value.in_use())
            .map(|slot| slot.used)
            .collect();
        if stamps.is_empty() {
            return 0;
        }
        let n = (max / 8).clamp(1, stamps.len());
        let (_, &mut newest_evicted, _) = stamps.select_nth_unstable(n - 1);
        let before = self.entries.len();
        self.entries
            .retain(|_, slot| slot.used > newest_evicted || slot.value.in_use());
        before - self.entries.len()
    }
}

// ===== hashing once =====
//
// A hit hashes its key once: the hash picks the shard, then goes into the shard's table with
// the key, so that the table does not hash the string again. Without `hashbrown`'s `HashTable`
// (not a dependency here) and with the standard map's raw-entry API unstable, the table is a
// `HashMap` whose hasher passes a precomputed hash through: a stored key hashes its string
// (when the table grows), a lookup hands over the hash it already has, through `Borrow` of a
// trait object (`dyn Key`) that both implement. Both hash with the one process-wide seed.

/// The seed every map hashes keys with: random per process.
fn seed() -> &'static RandomState {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    SEED.get_or_init(RandomState::default)
}

/// The hash of `key`, for its shard and its place in the shard's table.
#[inline]
fn hash(key: &RouteKey) -> u64 {
    seed().hash_one(key)
}

/// A key in a shard's table (no bigger than the key: the hash is not stored).
struct Stored(RouteKey);

/// A key as the table compares and hashes it: stored, or looked up with its hash.
trait Key {
    fn key(&self) -> &RouteKey;
    fn hash(&self) -> u64;
}

impl Key for Stored {
    #[inline]
    fn key(&self) -> &RouteKey {
        &self.0
    }

    #[inline]
    fn hash(&self) -> u64 {
        hash(&self.0)
    }
}

/// A key being looked up, with the hash already computed.
struct Probe<'a> {
    key: &'a RouteKey,
    hash: u64,
}

impl<'a> Probe<'a> {
    /// What a lookup hands the table.
    #[inline]
    fn new(hash: u64, key: &'a RouteKey) -> Probe<'a> {
        Probe { key, hash }
    }
}

impl Key for Probe<'_> {
    #[inline]
    fn key(&self) -> &RouteKey {
        self.key
    }

    #[inline]
    fn hash(&self) -> u64 {
        self.hash
    }
}

impl<'a> Borrow<dyn Key + 'a> for Stored {
    #[inline]
    fn borrow(&self) -> &(dyn Key + 'a) {
        self
    }
}

impl Hash for dyn Key + '_ {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(Key::hash(self));
    }
}

impl PartialEq for dyn Key + '_ {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn Key + '_ {}

impl Hash for Stored {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(hash(&self.0));
    }
}

impl PartialEq for Stored {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Stored {}

/// A shard table's hasher: the hash it is given is the hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    /// Never called: keys hand over one `u64`. Mixes the bytes in all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
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
            .field("max_keys", &self.max_keys)
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
    #[derive(Clone)]
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
        let first = map
            .get_or_insert_with(&key(1), || Arc::new(BUSY), || ())
            .unwrap();
        let again = map
            .get_or_insert_with(&key(1), || unreachable!("a hit"), || unreachable!())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(map.get(&key(2)).is_none());
        assert_eq!(map.len(), 1);
        assert!(!map.is_empty());
    }

    #[test]
    fn every_key_is_found_again_once_the_tables_have_grown() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        for i in 0..5_000 {
            map.with(&key(i), || BUSY, || (), |_| ()).unwrap();
        }
        for i in 0..5_000 {
            map.with(&key(i), || unreachable!("a hit"), || unreachable!(), |_| ())
                .unwrap();
            assert!(map.get(&key(i)).is_some());
        }
        assert!(map.get(&key(5_000)).is_none());
        // Every shard holds some: the hash's shard bits spread keys over all of them.
        assert!((0..SHARDS).all(|index| shard_len(&map, index) > 200));
        assert_eq!(map.len(), 5_000);
    }

    #[test]
    fn the_threshold_doubles_with_what_a_sweep_keeps() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        let keys = keys_in_shard(&map, 3, 0, 4 * MIN_SWEEP_LEN + 1);
        let mut sweeps = 0;
        for (i, key) in keys.iter().enumerate() {
            map.with(key, || BUSY, || sweeps += 1, |_| ()).unwrap();
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
            map.with(key, spare, || (), |_| ()).unwrap();
        }
        // At the threshold, hits leave every idle entry where it is...
        map.with(
            &keys[0],
            || unreachable!("a hit"),
            || unreachable!(),
            |_| (),
        )
        .unwrap();
        assert_eq!(shard_len(&map, 0), MIN_SWEEP_LEN);
        // ...and the next new key sweeps them all away before it goes in.
        map.with(&keys[MIN_SWEEP_LEN], spare, || (), |_| ())
            .unwrap();
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
            map.with(&key(i), make, || Duration::ZERO, |_| ()).unwrap();
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
            map.with(&key(i), make, || now, |used| used.last = now)
                .unwrap();
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
            map.with(key, make, || now, |_| ()).unwrap();
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
        let held = map
            .get_or_insert_with(&key(1), || Arc::new(spare()), || ())
            .unwrap();
        map.get_or_insert_with(&key(2), || Arc::new(spare()), || ())
            .unwrap();
        assert_eq!(map.sweep(()), 1);
        assert!(Arc::ptr_eq(&held, &map.get(&key(1)).unwrap()));
        drop(held);
        assert_eq!(map.sweep(()), 0);
    }

    #[test]
    fn a_sweep_gives_memory_back() {
        let map: KeyedMap<Fixed> = KeyedMap::new();
        for i in 0..10_000 {
            map.with(&key(i), spare, || (), |_| ()).unwrap();
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
    fn at_the_cap_the_least_recently_used_go_first() {
        let map: KeyedMap<Fixed> = KeyedMap::with_max_keys(16);
        assert_eq!(map.shards.len(), 1);
        for i in 0..16 {
            map.with(&key(i), || BUSY, || (), |_| ()).unwrap();
        }
        // A hit makes key 0 the most recently used.
        map.with(&key(0), || unreachable!(), || (), |_| ()).unwrap();
        let (_, evicted) = map.with_evicting(&key(16), || BUSY, || (), |_| ()).unwrap();
        // An eighth of 16: the two least recently used, keys 1 and 2.
        assert_eq!(evicted, 2);
        assert!(map.contains(&key(0)));
        assert!(!map.contains(&key(1)));
        assert!(!map.contains(&key(2)));
        assert!(map.contains(&key(3)));
        assert!(map.contains(&key(16)));
        assert_eq!(
            map.stats(),
            KeyStats {
                keys: 15,
                max_keys: 16,
                evicted: 2,
                refused: 0
            }
        );
        // A mere look is not a use.
        assert!(map.get(&key(3)).is_some());
        map.with(&key(17), || BUSY, || (), |_| ()).unwrap();
        let (_, evicted) = map.with_evicting(&key(18), || BUSY, || (), |_| ()).unwrap();
        assert_eq!(evicted, 2);
        assert!(!map.contains(&key(3)));
        assert!(!map.contains(&key(4)));
    }

    #[test]
    fn idle_entries_make_room_before_any_eviction() {
        let map: KeyedMap<Fixed> = KeyedMap::with_max_keys(8);
        for i in 0..4 {
            map.with(&key(i), || BUSY, || (), |_| ()).unwrap();
        }
        for i in 4..8 {
            map.with(&key(i), spare, || (), |_| ()).unwrap();
        }
        let (_, evicted) = map.with_evicting(&key(8), spare, || (), |_| ()).unwrap();
        assert_eq!(evicted, 0);
        assert_eq!(map.len(), 5);
        assert!((0..4).all(|i| map.contains(&key(i))));
        assert_eq!(map.stats().evicted, 0);
    }

    #[test]
    fn entries_in_use_are_never_evicted_and_a_full_map_refuses() {
        let map: KeyedMap<Arc<Fixed>> = KeyedMap::with_max_keys(4);
        let mut held: Vec<_> = (0..4)
            .map(|i| {
                map.get_or_insert_with(&key(i), || Arc::new(BUSY), || ())
                    .unwrap()
            })
            .collect();
        let refused = map.with(
            &key(4),
            || unreachable!("refused"),
            || (),
            |_| unreachable!(),
        );
        assert_eq!(refused, Err(TooManyKeys::new(4)));
        let refused = refused.unwrap_err();
        assert_eq!(refused.max_keys(), 4);
        let error: crate::BoxError = refused.into();
        let verdict = Verdict::of_error(&*error).unwrap();
        assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
        assert!(verdict.is_local_refusal());
        assert_eq!(map.stats().refused, 1);
        assert_eq!(map.len(), 4);
        // One let go: it is the one evicted, whatever its age.
        held.truncate(2);
        let kept = map.get(&key(0)).unwrap();
        assert_eq!(Arc::strong_count(&kept), 3);
        let (_, evicted) = map
            .with_evicting(&key(4), || Arc::new(BUSY), || (), |_| ())
            .unwrap();
        assert_eq!(evicted, 1);
        assert!(map.contains(&key(0)) && map.contains(&key(1)) && map.contains(&key(3)));
        assert!(!map.contains(&key(2)));
        assert_eq!(map.len(), 4);
        assert_eq!(
            TooManyKeys::new(4).to_string(),
            "too many keys: all 4 are in use, no room for another"
        );
    }

    #[test]
    fn a_flood_of_new_keys_stays_under_the_cap_at_a_bounded_cost() {
        let map: KeyedMap<Used> = KeyedMap::with_max_keys(1_000);
        let checks = Arc::new(AtomicUsize::new(0));
        let n = 100_000;
        let mut most = 0;
        for i in 0..n {
            let make = || Used {
                last: Duration::ZERO,
                checks: Arc::clone(&checks),
            };
            map.with(&key(i), make, || Duration::ZERO, |_| ()).unwrap();
            most = most.max(map.len());
        }
        assert!(most <= 1_000, "{most}");
        let stats = map.stats();
        assert_eq!(stats.evicted as usize, n - stats.keys);
        assert_eq!(stats.refused, 0);
        // Each eviction round looks at a full shard and frees an eighth of it: a few idle
        // checks per key, not a shard's worth.
        assert!(checks.load(Ordering::Relaxed) < 20 * n, "{checks:?}");
    }

    #[test]
    fn small_caps_use_fewer_shards() {
        assert_eq!(KeyedMap::<Fixed>::with_max_keys(0).max_keys(), 1);
        assert_eq!(KeyedMap::<Fixed>::with_max_keys(255).shards.len(), 1);
        assert_eq!(KeyedMap::<Fixed>::with_max_keys(1_000).shards.len(), 3);
        assert_eq!(KeyedMap::<Fixed>::new().shards.len(), SHARDS);
        assert_eq!(KeyedMap::<Fixed>::with_max_keys(1_000).shard_max, 333);
    }

    #[test]
    fn is_send_sync_and_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<KeyedMap<Arc<Fixed>>>();
        assert_eq!(
            format!("{:?}", KeyedMap::<Fixed>::new()),
            "KeyedMap { keys: 0, max_keys: 100000, .. }"
        );
    }

    impl<V> KeyedMap<V> {
        fn contains(&self, key: &RouteKey) -> bool {
            let hash = hash(key);
            self.shard_of(hash)
                .lock()
                .entries
                .contains_key::<dyn Key>(&Probe::new(hash, key))
        }
    }
}
