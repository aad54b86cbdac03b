//! The state every clone of a cache shares: the bounded store, and the leaders in flight.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};
use moka::policy::EvictionPolicy;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tollgate_core::body::BufferedBody;

use crate::body::CacheBody;
use crate::key::{self, Hashers, Key};
use crate::policy::{CACHE_HEADER, CacheConfig, CacheRequest, CacheStatus};

type FastState = foldhash::fast::RandomState;

/// The weight unit of one entry: with it, one weigher bounds both the count and the bytes.
const UNIT: u64 = 1024;

/// A response stored whole: status, end-to-end headers, body.
pub(crate) struct Stored {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    stored_at: Instant,
    /// Whether the request body was deterministic (`"temperature": 0`).
    deterministic: bool,
    /// Bytes held by the status, headers and body.
    bytes: usize,
}

impl Stored {
    pub(crate) fn new(
        parts: &http::response::Parts,
        body: Bytes,
        deterministic: bool,
        now: Instant,
    ) -> Self {
        let mut headers = HeaderMap::with_capacity(parts.headers.len());
        let mut bytes = 128 + body.len();
        // Headers that `connection` names are hop-by-hop too (RFC 9110, section 7.6.1).
        let nominated: Vec<HeaderName> = parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::try_from(token.trim()).ok())
            .collect();
        for (name, value) in &parts.headers {
            if is_hop_by_hop(name) || *name == CACHE_HEADER || nominated.contains(name) {
                continue;
            }
            bytes += name.as_str().len() + value.len() + 32;
            headers.append(name.clone(), value.clone());
        }
        Stored {
            status: parts.status,
            version: parts.version,
            headers,
            body,
            stored_at: now,
            deterministic,
            bytes,
        }
    }

    /// The response for a hit or a coalesced request.
    pub(crate) fn response<B>(&self, status: CacheStatus) -> http::Response<CacheBody<B>> {
        let mut response = http::Response::new(CacheBody::stored(self.body.clone()));
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers.clone();
        mark(&mut response, status);
        response
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("status", &self.status)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Puts the header and the extension on a cacheable request's response.
pub(crate) fn mark<B>(response: &mut http::Response<B>, status: CacheStatus) {
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static(status.as_str()));
    response.extensions_mut().insert(status);
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::UPGRADE
        || *name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// What the store holds under a key: a response, or — under a raw body that differs from its
/// normalised form — the normalised key.
#[derive(Clone)]
pub(crate) enum Slot {
    Entry(Arc<Stored>),
    Alias { key: Arc<Key>, deterministic: bool },
}

/// What a leader hands its followers.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The response, read whole.
    Stored(Arc<Stored>),
    /// Not storable (an error, a failure status, too large): each follower goes upstream itself.
    Failed,
}

/// Whether and how a request may use the cache.
pub(crate) enum Decision<B> {
    /// Not cacheable.
    Pass,
    /// Answered from the cache.
    Hit(http::Response<CacheBody<B>>),
    /// Missed on the raw body: `key` is the normalised key; `alias` the raw key, to record
    /// when the normalised key is found.
    Miss(Miss),
}

pub(crate) struct Miss {
    pub(crate) key: Arc<Key>,
    pub(crate) alias: Option<Arc<Key>>,
    pub(crate) deterministic: bool,
}

/// One request's turn at a missing key.
pub(crate) enum Join {
    Hit(Arc<Stored>),
    Lead(LeaderGuard),
    Follow(oneshot::Receiver<Outcome>),
}

type Waiters = Vec<oneshot::Sender<Outcome>>;

pub(crate) struct Shared {
    pub(crate) config: CacheConfig,
    hashers: Hashers,
    store: moka::sync::Cache<Arc<Key>, Slot, FastState>,
    inflight: Mutex<HashMap<Arc<Key>, Waiters, FastState>>,
}

impl Shared {
    pub(crate) fn new(config: CacheConfig) -> Self {
        // Capacity N·K and weight max(ceil(bytes·N·K / B), K): Σ weight ≤ N·K bounds both the
        // count (each weighs at least K) and the bytes (Σ bytes·N·K/B ≤ N·K). K shrinks for
        // huge N so that every weight fits a u32.
        let n = config.max_entries.get().min(u64::from(u32::MAX));
        let k = (u64::from(u32::MAX) / n).clamp(1, UNIT);
        let b = config.max_bytes.get();
        let weigher = move |key: &Arc<Key>, slot: &Slot| -> u32 {
            weight(entry_bytes(key, slot) as u64, n, k, b)
        };
        let mut builder = moka::sync::Cache::builder()
            .max_capacity(n * k)
            .weigher(weigher)
            // Predictable eviction: the least recently used goes first, and a new entry is
            // always admitted (TinyLFU may refuse one).
            .eviction_policy(EvictionPolicy::lru());
        if !config.ttl.is_zero() {
            // A backstop for memory on the real clock; freshness is judged on tokio's clock at
            // lookup. moka refuses more than 1000 years.
            let backstop = config.ttl.min(Duration::from_secs(100 * 365 * 86_400));
            builder = builder.time_to_live(backstop);
        }
        Shared {
            config,
            hashers: Hashers::new(),
            store: builder.build_with_hasher(FastState::default()),
            inflight: Mutex::new(HashMap::with_hasher(FastState::default())),
        }
    }

    /// Decides whether `request` is cacheable (removing the opt-in header), and looks it up.
    pub(crate) fn lookup<B>(&self, request: &mut http::Request<BufferedBody>) -> Decision<B> {
        let header = request.headers_mut().remove(&self.config.opt_in_header);
        let opted = match request.extensions().get::<CacheRequest>() {
            Some(CacheRequest::Bypass) => return Decision::Pass,
            Some(CacheRequest::Use) => true,
            None => false,
        };
        let opted = match header.as_ref().map(HeaderValue::as_bytes) {
            Some(v) if v.eq_ignore_ascii_case(b"off") => return Decision::Pass,
            Some(v) => opted || v.eq_ignore_ascii_case(b"on"),
            None => opted,
        };
        if !opted && !self.config.deterministic {
            return Decision::Pass;
        }
        let allowed = |deterministic: bool| opted || (self.config.deterministic && deterministic);
        let identity = if self.config.shared_across_callers {
            0
        } else {
            self.hashers
                .identity(request, &self.config.identity_headers)
        };
        let identity = identity
            ^ self
                .hashers
                .variant(request, &self.config.variant_headers)
                .rotate_left(1);
        let raw = self.hashers.key(
            request.method(),
            request.uri(),
            identity,
            request.body().bytes().clone(),
        );
        let now = Instant::now();
        // Fast path: a byte-identical request needs no parsing.
        let (key, alias, deterministic) = match self.store.get(&raw) {
            Some(Slot::Entry(stored)) => {
                if !allowed(stored.deterministic) {
                    return Decision::Pass;
                }
                if self.fresh(&stored, now) {
                    return Decision::Hit(stored.response(CacheStatus::Hit));
                }
                (Arc::new(raw), None, stored.deterministic)
            }
            Some(Slot::Alias { key, deterministic }) => {
                if !allowed(deterministic) {
                    return Decision::Pass;
                }
                (key, None, deterministic)
            }
            None => {
                let parsed = key::parse(&raw.body);
                if !allowed(parsed.deterministic) {
                    return Decision::Pass;
                }
                if parsed.normalised == raw.body {
                    (Arc::new(raw), None, parsed.deterministic)
                } else {
                    let key = Arc::new(raw.with_body(&self.hashers, parsed.normalised));
                    (key, Some(Arc::new(raw)), parsed.deterministic)
                }
            }
        };
        Decision::Miss(Miss {
            key,
            alias,
            deterministic,
        })
    }

    /// After a miss on the raw body: becomes the leader for the normalised key, or follows the
    /// one in flight; a leader looks the normalised key up first (a request written
    /// differently may have stored it, or a leader may have finished since the lookup).
    pub(crate) fn claim(self: &Arc<Self>, miss: &Miss) -> Join {
        let join = self.join(&miss.key);
        if let Join::Lead(_) = join {
            if let Some(stored) = self.get_fresh(&miss.key, Instant::now()) {
                // Dropping the guard sends any follower that joined meanwhile to look again.
                drop(join);
                self.record_alias(miss);
                return Join::Hit(stored);
            }
        }
        join
    }

    fn fresh(&self, stored: &Stored, now: Instant) -> bool {
        now.saturating_duration_since(stored.stored_at) < self.config.ttl
    }

    /// The fresh entry under `key`, if any.
    pub(crate) fn get_fresh(&self, key: &Key, now: Instant) -> Option<Arc<Stored>> {
        match self.store.get(key) {
            Some(Slot::Entry(stored)) if self.fresh(&stored, now) => Some(stored),
            _ => None,
        }
    }

    fn record_alias(&self, miss: &Miss) {
        if let Some(alias) = &miss.alias {
            let slot = Slot::Alias {
                key: Arc::clone(&miss.key),
                deterministic: miss.deterministic,
            };
            if self.fits(alias, &slot) {
                self.store.insert(Arc::clone(alias), slot);
            }
        }
    }

    fn fits(&self, key: &Arc<Key>, slot: &Slot) -> bool {
        entry_bytes(key, slot) as u64 <= self.config.max_bytes.get()
    }

    /// Stores `stored` under the miss's (normalised) key. The raw body's alias is recorded
    /// only when a request finds the entry through it: most entries are never asked for again,
    /// and a miss then pays for one insertion, not two. Entries larger than the whole byte
    /// bound are not stored.
    pub(crate) fn store(&self, miss: &Miss, stored: Arc<Stored>) {
        let slot = Slot::Entry(stored);
        if self.fits(&miss.key, &slot) {
            self.store.insert(Arc::clone(&miss.key), slot);
        }
    }

    fn join(self: &Arc<Self>, key: &Arc<Key>) -> Join {
        let mut inflight = self.inflight.lock();
        if let Some(waiters) = inflight.get_mut(key) {
            // Followers that were dropped leave a closed sender behind: prune them now and
            // then, so that a leader that never finishes cannot gather them without bound.
            if waiters.len() >= 64 && waiters.len().is_power_of_two() {
                waiters.retain(|tx| !tx.is_closed());
            }
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            return Join::Follow(rx);
        }
        inflight.insert(Arc::clone(key), Vec::new());
        drop(inflight);
        Join::Lead(LeaderGuard {
            shared: Arc::clone(self),
            key: Arc::clone(key),
            done: false,
        })
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.store.entry_count()
    }

    pub(crate) fn run_pending_tasks(&self) {
        self.store.run_pending_tasks();
    }

    pub(crate) fn invalidate_all(&self) {
        self.store.invalidate_all();
    }

    /// Bytes held: an upper bound, from the weights.
    pub(crate) fn weighted_bytes(&self) -> u64 {
        let n = self.config.max_entries.get().min(u64::from(u32::MAX));
        let k = (u64::from(u32::MAX) / n).clamp(1, UNIT);
        let total = u128::from(self.store.weighted_size())
            * u128::from(self.config.max_bytes.get())
            / u128::from(n * k);
        u64::try_from(total).unwrap_or(u64::MAX)
    }
}

fn entry_bytes(key: &Key, slot: &Slot) -> usize {
    key.weight()
        + match slot {
            Slot::Entry(stored) => stored.bytes,
            Slot::Alias { .. } => 16,
        }
}

/// `max(ceil(bytes·n·k / b), k)`, at most `u32::MAX`.
fn weight(bytes: u64, n: u64, k: u64, b: u64) -> u32 {
    let scaled = (u128::from(bytes) * u128::from(n) * u128::from(k)).div_ceil(u128::from(b));
    u32::try_from(scaled.max(u128::from(k))).unwrap_or(u32::MAX)
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("entries", &self.store.entry_count())
            .finish_non_exhaustive()
    }
}

/// The leader's claim on a key: finishing or dropping it releases the followers.
pub(crate) struct LeaderGuard {
    shared: Arc<Shared>,
    key: Arc<Key>,
    done: bool,
}

impl LeaderGuard {
    fn take(&mut self) -> Waiters {
        self.done = true;
        self.shared
            .inflight
            .lock()
            .remove(&self.key)
            .unwrap_or_default()
    }

    /// Hands `outcome` to every follower.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        for waiter in self.take() {
            let _ = waiter.send(outcome.clone());
        }
    }
}

impl Drop for LeaderGuard {
    /// Dropped unfinished (the leader's future was dropped): the followers' channels close and
    /// each looks again, one becoming the next leader.
    fn drop(&mut self) {
        if !self.done {
            drop(self.take());
        }
    }
}

impl fmt::Debug for LeaderGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderGuard").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::weight;

    #[test]
    fn weights_bound_count_and_bytes() {
        // 10 entries, 1000 bytes: capacity 10 240.
        let (n, k, b) = (10, 1024, 1000);
        assert_eq!(weight(1, n, k, b), 1024); // at least one entry's share
        assert_eq!(weight(100, n, k, b), 1024); // exactly one share
        assert_eq!(weight(101, n, k, b), 1035); // ceil(101·10·1024 / 1000)
        assert_eq!(weight(1000, n, k, b), 10_240); // the whole capacity
        assert_eq!(weight(u64::MAX, n, k, b), u32::MAX);
    }
}
