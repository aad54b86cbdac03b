//! The reverse-proxy limiter: a leaky bucket per API key, as GCRA (virtual scheduling), with a
//! share of the rate taken by another tenant.
//!
//! Times are nanoseconds since the server started, read from tokio's clock by the server and
//! passed in, so a paused clock gives exact results.
//!
//! **GCRA.** With the emission interval `T = 1 / rate` and the burst `b`, each key keeps a
//! theoretical arrival time `tat`. A request at `now` is admitted iff `tat <= now + b·T`, and
//! then `tat = max(tat, now) + T_eff`; a refusal changes nothing. So `b + 1` requests pass back
//! to back, then one every `T`.
//!
//! **Shared quota.** Another tenant taking a share `f` of the rate is modelled by
//! `T_eff = T / (1 − f)`: each of the client's requests also pays for the `f / (1 − f)` requests
//! the other tenant sends meanwhile, i.e. the other tenant's requests spread evenly between the
//! client's. The burst tolerance stays `b·T`: the other tenant eats into the burst too.
//!
//! **Memory.** Keys are stored as 64-bit hashes (random per server, so distinct keys share a
//! bucket only with probability about 2⁻⁶⁴), never as the header text. A key whose `tat` has
//! passed behaves exactly like an unknown key, so such keys are swept whenever the table has
//! doubled since the last sweep. At most [`MAX_KEYS`] keys are tracked at once; while the table
//! is full of live keys, a request with a new key is refused (never over-admitted), and the table
//! is swept again at most once a second.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use tokio::time::Instant;

use crate::config::ProxyLimit;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MS: u128 = 1_000_000;
/// The most keys tracked at once (about 3 MiB of table).
pub(crate) const MAX_KEYS: usize = 1 << 16;
/// No sweep below this many keys.
const MIN_SWEEP_LEN: usize = 1024;
/// While the table is full of live keys, sweep at most this often.
const FULL_SWEEP_PERIOD_NS: u128 = NANOS_PER_SEC;

/// The GCRA rule, without state: an emission interval and a burst tolerance, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// `T = 1 / rate`.
    interval_ns: u128,
    /// `b·T`: how far the theoretical arrival time may run ahead of `now`.
    tolerance_ns: u128,
}

impl Gcra {
    /// `rate_per_second` (at least 1; `1 / rate` is floored to whole nanoseconds, at least 1)
    /// with `burst` extra requests back to back.
    pub(crate) fn new(rate_per_second: u64, burst: u64) -> Self {
        let interval_ns = (NANOS_PER_SEC / u128::from(rate_per_second.max(1))).max(1);
        Gcra {
            interval_ns,
            tolerance_ns: interval_ns * u128::from(burst),
        }
    }

    /// `T_eff = T / (1 − share)`, rounded to the nearest nanosecond; `share` is clamped to
    /// `[0, 0.99]`.
    pub(crate) fn step_ns(&self, share: f64) -> u128 {
        let share = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, ProxyLimit::MAX_TENANT_SHARE)
        };
        if share == 0.0 {
            return self.interval_ns;
        }
        // `interval_ns` is at most 10⁹ and the quotient at most 10¹¹: both exact in an f64.
        (self.interval_ns as f64 / (1.0 - share)).round() as u128
    }

    /// The new theoretical arrival time if a request at `now` is admitted, `None` if it is
    /// refused. `tat` is 0 for a key never seen.
    pub(crate) fn admit(&self, tat: u128, now: u128, step_ns: u128) -> Option<u128> {
        (tat <= now + self.tolerance_ns).then(|| tat.max(now) + step_ns)
    }
}

/// Another tenant's share over time: the configured schedule, and the last runtime change;
/// whichever took effect last wins.
#[derive(Debug)]
struct TenantShares {
    /// `(from, share)`, in increasing order of `from` (validated by the config).
    schedule: Vec<(u128, f64)>,
    /// `(when, share)` of the last [`ProxyLimiter::set_tenant_share`].
    manual: Option<(u128, f64)>,
}

impl TenantShares {
    fn at(&self, now: u128) -> f64 {
        let scheduled = self
            .schedule
            .iter()
            .rev()
            .find(|(from, _)| *from <= now)
            .copied();
        match (scheduled, self.manual) {
            (Some((from, share)), Some((set_at, _))) if from > set_at => share,
            (_, Some((_, share))) | (Some((_, share)), None) => share,
            (None, None) => 0.0,
        }
    }
}

/// Why the proxy refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyRefusal {
    /// The key's bucket is full: `tat > now + b·T`.
    OverRate,
    /// A new key while [`MAX_KEYS`] live keys are tracked.
    TooManyKeys,
}

/// Theoretical arrival times by hashed key, swept of drained keys.
#[derive(Debug)]
struct KeyTable {
    hasher: RandomState,
    tats: HashMap<u64, u128>,
    /// Sweep once the table holds this many keys.
    sweep_at_len: usize,
    last_sweep: u128,
}

impl KeyTable {
    fn new() -> Self {
        KeyTable {
            hasher: RandomState::new(),
            tats: HashMap::new(),
            sweep_at_len: MIN_SWEEP_LEN,
            last_sweep: 0,
        }
    }

    fn id(&self, key: Option<&str>) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The key's `tat`: 0 if unknown, `None` if unknown and the table is full.
    fn tat(&mut self, id: u64, now: u128) -> Option<u128> {
        if let Some(tat) = self.tats.get(&id) {
            return Some(*tat);
        }
        self.sweep_if_due(now);
        (self.tats.len() < MAX_KEYS).then_some(0)
    }

    /// Drops the keys whose `tat` has passed (they behave as unknown keys), once the table has
    /// doubled since the last sweep, or at most once a second while it is full.
    fn sweep_if_due(&mut self, now: u128) {
        let len = self.tats.len();
        let full = len >= MAX_KEYS;
        if len < self.sweep_at_len || (full && now < self.last_sweep + FULL_SWEEP_PERIOD_NS) {
            return;
        }
        self.tats.retain(|_, tat| *tat > now);
        self.sweep_at_len = (self.tats.len() * 2).clamp(MIN_SWEEP_LEN, MAX_KEYS);
        self.last_sweep = now;
    }
}

/// One server's reverse-proxy limiter.
#[derive(Debug)]
pub(crate) struct ProxyLimiter {
    start: Instant,
    gcra: Gcra,
    shares: TenantShares,
    keys: KeyTable,
}

impl ProxyLimiter {
    /// A limiter whose schedule counts from `start` (the server's start).
    pub(crate) fn new(limit: &ProxyLimit, start: Instant) -> Self {
        let schedule = limit
            .tenant_schedule
            .iter()
            .map(|t| (u128::from(t.from_ms) * NANOS_PER_MS, t.share))
            .collect();
        ProxyLimiter {
            start,
            gcra: Gcra::new(limit.rate_per_second, limit.burst),
            shares: TenantShares {
                schedule,
                manual: None,
            },
            keys: KeyTable::new(),
        }
    }

    fn since_start(&self, now: Instant) -> u128 {
        now.saturating_duration_since(self.start).as_nanos()
    }

    /// Admits a request with `key` (`None`: no key) at `now`, or refuses it without changing
    /// anything.
    pub(crate) fn admit(&mut self, key: Option<&str>, now: Instant) -> Result<(), ProxyRefusal> {
        let now = self.since_start(now);
        let id = self.keys.id(key);
        let tat = self.keys.tat(id, now).ok_or(ProxyRefusal::TooManyKeys)?;
        let step = self.gcra.step_ns(self.shares.at(now));
        let next = self
            .gcra
            .admit(tat, now, step)
            .ok_or(ProxyRefusal::OverRate)?;
        self.keys.tats.insert(id, next);
        Ok(())
    }

    /// Another tenant takes `share` of the rate from `now` (until a later schedule entry); the
    /// caller has validated it.
    pub(crate) fn set_tenant_share(&mut self, share: f64, now: Instant) {
        self.shares.manual = Some((self.since_start(now), share));
    }

    /// The share in effect at `now`.
    pub(crate) fn tenant_share(&self, now: Instant) -> f64 {
        self.shares.at(self.since_start(now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: u128 = NANOS_PER_MS;

    /// Admits `n` requests at `now`, returning how many passed and the final `tat`.
    fn burst(gcra: &Gcra, mut tat: u128, now: u128, n: usize) -> (usize, u128) {
        let mut passed = 0;
        for _ in 0..n {
            if let Some(next) = gcra.admit(tat, now, gcra.step_ns(0.0)) {
                tat = next;
                passed += 1;
            }
        }
        (passed, tat)
    }

    #[test]
    fn burst_plus_one_then_one_per_interval() {
        let gcra = Gcra::new(10, 3);
        let (passed, tat) = burst(&gcra, 0, 0, 10);
        assert_eq!((passed, tat), (4, 400 * MS));
        let step = gcra.step_ns(0.0);
        assert_eq!(gcra.admit(tat, 100 * MS - 1, step), None);
        assert_eq!(gcra.admit(tat, 100 * MS, step), Some(500 * MS));
    }

    #[test]
    fn burst_zero_needs_a_full_interval() {
        let gcra = Gcra::new(10, 0);
        let tat = gcra.admit(0, 0, gcra.step_ns(0.0)).unwrap();
        assert_eq!(gcra.admit(tat, 99 * MS, gcra.step_ns(0.0)), None);
        assert_eq!(gcra.admit(tat, 100 * MS, gcra.step_ns(0.0)), Some(200 * MS));
    }

    #[test]
    fn tenant_share_stretches_the_step() {
        let gcra = Gcra::new(10, 0);
        assert_eq!(gcra.step_ns(0.5), 200 * MS);
        assert_eq!(gcra.step_ns(0.75), 400 * MS);
        assert_eq!(gcra.step_ns(0.99), 10_000 * MS);
        assert_eq!(gcra.step_ns(f64::NAN), 100 * MS);
        assert_eq!(gcra.step_ns(2.0), 10_000 * MS);
        assert_eq!(Gcra::new(u64::MAX, 0).step_ns(0.0), 1);
    }

    #[test]
    fn the_last_change_wins() {
        let mut shares = TenantShares {
            schedule: vec![(1_000 * MS, 0.5), (3_000 * MS, 0.0)],
            manual: None,
        };
        assert_eq!(shares.at(0), 0.0);
        assert_eq!(shares.at(1_000 * MS), 0.5);
        shares.manual = Some((2_000 * MS, 0.25));
        assert_eq!(shares.at(2_000 * MS), 0.25);
        assert_eq!(shares.at(3_000 * MS), 0.0);
        shares.manual = Some((3_000 * MS, 0.75));
        assert_eq!(shares.at(4_000 * MS), 0.75);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_separate_and_refusals_change_nothing() {
        let start = Instant::now();
        let mut limiter = ProxyLimiter::new(&ProxyLimit::per_second(1), start);
        assert_eq!(limiter.admit(Some("a"), start), Ok(()));
        assert_eq!(limiter.admit(Some("a"), start), Err(ProxyRefusal::OverRate));
        assert_eq!(limiter.admit(Some("b"), start), Ok(()));
        assert_eq!(limiter.admit(None, start), Ok(()));
        assert_eq!(limiter.admit(None, start), Err(ProxyRefusal::OverRate));
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.admit(Some("a"), later), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn drained_keys_are_swept_and_the_table_is_bounded() {
        let start = Instant::now();
        let mut limiter = ProxyLimiter::new(&ProxyLimit::per_second(1), start);
        for i in 0..MAX_KEYS {
            assert_eq!(limiter.admit(Some(&i.to_string()), start), Ok(()));
        }
        assert_eq!(
            limiter.admit(Some("one more"), start),
            Err(ProxyRefusal::TooManyKeys)
        );
        assert_eq!(limiter.keys.tats.len(), MAX_KEYS);
        // One second later every bucket has drained: the next new key sweeps them all.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.admit(Some("one more"), later), Ok(()));
        assert_eq!(limiter.keys.tats.len(), 1);
        assert_eq!(limiter.keys.sweep_at_len, MIN_SWEEP_LEN);
    }
}
