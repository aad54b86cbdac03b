//! The adaptive limit: a request rate learned from the provider's answers, for when nobody
//! knows the quota.
//!
//! Most users do not know their real quota: organisation quotas are shared with other
//! applications, keys are shared, limits differ per model and change, and proxies add limits of
//! their own. An [`Adaptive`] limit ([`Limits::adaptive`](crate::Limits::adaptive), or
//! [`Limits::with_adaptive`](crate::Limits::with_adaptive) on configured limits) paces each
//! key's requests at a rate it learns:
//!
//! - **Slow start.** With nothing known it starts at [`Adaptive::initial`] (10 requests/s) and
//!   doubles every second while no throttle comes back — never more than twice the rate
//!   actually sent — so a burst of a hundred callers at t = 0 is not a hundred 429s.
//! - **Multiplicative decrease, once per episode.** A 429 (class `RateLimited`) or an explicit
//!   overload (`Overloaded` with status 429 or 529) lowers the rate to 0.85 × the rate at which
//!   the throttled request was admitted (never above the rate actually sent). Every throttle of
//!   a request admitted *before* that decrease belongs to the same episode: fifty concurrent
//!   429s from one burst are one decrease, not fifty.
//! - **Cubic increase.** Success raises the rate again along CUBIC's curve (TCP CUBIC, and the
//!   AWS SDKs' adaptive retry mode): back to the rate that drew the throttle after a recovery
//!   time `K`, flat around it, then probing above it ever faster. `K` is at least 4 s and at
//!   least the time 60 requests take at that rate (at most 60 s), so the rate spends most of
//!   its time just under the limit and a probe that overshoots costs one or two 429s every few
//!   seconds, whatever the scale: 1 request/s or 1,000. Why cubic and not additive: an additive
//!   step is either too slow at high rates or too coarse at low ones, and spends as long far
//!   below the limit as near it; the cubic's plateau keeps it near the last good rate.
//! - **Header jump.** A response that reports its limit (`x-ratelimit-limit-requests`,
//!   `anthropic-ratelimit-requests-limit`, `RateLimit-Policy`, …) installs that limit, for
//!   requests *and* tokens, as a learned limit of the key: no more searching. A learned limit
//!   behaves like a configured one (below).
//! - **A configured quota is a ceiling, not a promise.** On configured (or learned) limits the
//!   adaptive pacing stays off until the provider throttles a request the local accounting
//!   admitted; then it paces from a little below the rate that drew it and climbs back, and
//!   turns off again once it is back at the configured rate. It never raises a limit.
//!
//! A bare 429 (no rate-limit headers saying a limit is used up) does not pause the key under
//! an adaptive limit: its `retry-after` is the throttled request's own business (the retry
//! layer above waits it, and the retried request comes back through this pacing), and the
//! decrease slows everyone else. A 429 whose headers say a limit is used up still pauses the
//! key until its delay, and the waiters then leave at the learned pace, one at a time.
//!
//! Why these rules, from the references: the AWS SDKs' adaptive retry mode is a token bucket
//! whose fill rate follows CUBIC, turned on at the first throttle — here the bucket is the
//! pace, on from the start (slow start instead of an unpaced first burst, which against an
//! unknown limit is the loss you can avoid), decreased by 0.85 rather than 0.7 (a rate limit,
//! unlike a congested link, does not fall when it refuses: a gentler step loses less) and with
//! a recovery time scaled to the rate. Google's SRE client-side throttling refuses requests
//! locally in proportion to recent refusals: it protects an overloaded backend, but a caller
//! of a rate-limited API wants its requests delayed, not dropped, so it is not used here
//! (the circuit breaker covers a backend that is down).
//!
//! The learned rate is observable: [`RateLimitHandle::learned_rate`](crate::RateLimitHandle::learned_rate),
//! an [`Event::RateLearned`](tollgate_core::observe::Event::RateLearned) when it moves by 1 %
//! or more (the metrics layer keeps it as a gauge).
//!
//! # Examples
//!
//! ```
//! use std::num::NonZeroU64;
//! use tollgate_ratelimit::adaptive::{Adaptive, Rate};
//! use tollgate_ratelimit::{Limit, Limits, RateLimitLayer, algorithm::Quota};
//!
//! const fn n(v: u64) -> NonZeroU64 { NonZeroU64::new(v).unwrap() }
//!
//! // Nothing known: learn the rate, from 10 requests/s, never below 1 per 10 s.
//! let learning = RateLimitLayer::new(Limits::adaptive(Adaptive::default()));
//!
//! // Start at 2 requests/s, stay between 1 and 100 per second.
//! let bounded = Adaptive::default()
//!     .with_initial(Rate::per_second(n(2)))
//!     .with_floor(Rate::per_second(n(1)))
//!     .with_ceiling(Rate::per_second(n(100)));
//! assert_eq!(bounded.initial.requests_per_second(), 2.0);
//!
//! // A configured quota as a ceiling: stray 429s lower the pace a little, never the limit.
//! let ceiling = Limits::new([Limit::requests(Quota::per_minute(n(600)))])
//!     .with_adaptive(Adaptive::default());
//! assert!(ceiling.adaptive_config().is_some());
//! ```

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use crate::algorithm::InvalidPeriod;

/// A rate of requests: `count` per `period`.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::adaptive::Rate;
///
/// let rpm = Rate::per_minute(NonZeroU64::new(90).unwrap());
/// assert_eq!(rpm.requests_per_second(), 1.5);
/// let slow = Rate::new(NonZeroU64::MIN, Duration::from_secs(10)).unwrap();
/// assert_eq!(slow.requests_per_second(), 0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    /// `count` requests per `period`.
    ///
    /// # Errors
    ///
    /// [`InvalidPeriod`] when `period` is zero or does not fit in `u64` nanoseconds.
    pub fn new(count: NonZeroU64, period: Duration) -> Result<Self, InvalidPeriod> {
        let nanos = period.as_nanos();
        if nanos == 0 || nanos > u128::from(u64::MAX) {
            return Err(InvalidPeriod::new(period));
        }
        Ok(Rate {
            per_second: count.get() as f64 / period.as_secs_f64(),
        })
    }

    /// `count` requests per second.
    pub const fn per_second(count: NonZeroU64) -> Self {
        Rate {
            per_second: count.get() as f64,
        }
    }

    /// `count` requests per minute.
    pub const fn per_minute(count: NonZeroU64) -> Self {
        Rate {
            per_second: count.get() as f64 / 60.0,
        }
    }

    /// Requests per second.
    pub const fn requests_per_second(&self) -> f64 {
        self.per_second
    }

    pub(crate) const fn from_per_second(per_second: f64) -> Self {
        Rate { per_second }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} requests/s", self.per_second)
    }
}

/// The configuration of an adaptive limit; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Adaptive {
    /// Where slow start begins when nothing is known: 10 requests/s by default.
    pub initial: Rate,
    /// The learned rate never goes below this: 1 request per 10 s by default.
    pub floor: Rate,
    /// The learned rate never goes above this, if set (configured limits are ceilings too).
    /// None by default.
    pub ceiling: Option<Rate>,
}

impl Adaptive {
    /// The defaults: start at 10 requests/s, floor 1 per 10 s, no ceiling of its own.
    pub const fn new() -> Self {
        Adaptive {
            initial: Rate::from_per_second(10.0),
            floor: Rate::from_per_second(0.1),
            ceiling: None,
        }
    }

    /// Starts slow start from `initial`.
    #[must_use]
    pub const fn with_initial(mut self, initial: Rate) -> Self {
        self.initial = initial;
        self
    }

    /// Never goes below `floor`.
    #[must_use]
    pub const fn with_floor(mut self, floor: Rate) -> Self {
        self.floor = floor;
        self
    }

    /// Never goes above `ceiling`.
    #[must_use]
    pub const fn with_ceiling(mut self, ceiling: Rate) -> Self {
        self.ceiling = Some(ceiling);
        self
    }

    /// The floor and ceiling in requests per second, ordered (a ceiling below the floor is
    /// raised to it).
    fn bounds(&self) -> (f64, f64) {
        let floor = self.floor.per_second;
        let ceiling = self
            .ceiling
            .map_or(f64::INFINITY, |c| c.per_second.max(floor));
        (floor, ceiling)
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive::new()
    }
}

// ===== the learning rule =====

/// The multiplicative decrease: a throttle sets the rate to this share of the rate that drew it.
const DECREASE: f64 = 0.85;
/// The shortest cubic recovery time `K`.
const MIN_RECOVERY: f64 = 4.0;
/// The longest cubic recovery time `K`.
const MAX_RECOVERY: f64 = 60.0;
/// `K` is at least the time this many requests take at the rate that drew the throttle.
const RECOVERY_REQUESTS: f64 = 60.0;
/// The send rate is measured over buckets of this many seconds...
const BUCKET: f64 = 0.5;
/// ... smoothed with this weight on the newest bucket (the AWS SDKs' figures).
const SMOOTHING: f64 = 0.8;
/// The rate sent just now is measured over this many admissions.
const RECENT: usize = 8;
/// A key whose rate was learned is forgotten after this long without a request.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(300);
/// A change of the learned rate is reported when it moves by this share.
const REPORT_CHANGE: f64 = 0.01;

/// The requests limit that bounds an adaptive limit: its rate per second and its burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ceiling {
    pub(crate) rate: f64,
    pub(crate) burst: f64,
}

impl Ceiling {
    /// The lower of two ceilings.
    pub(crate) fn min(a: Option<Ceiling>, b: Option<Ceiling>) -> Option<Ceiling> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.rate < a.rate { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// What [`AdaptiveState::check`] found: the wait, and the pace (`None`: the limits alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub(crate) wait: Duration,
    rate: Option<f64>,
}

/// Where the rate is on its curve.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Held by configured or learned limits only, until a throttle.
    AtCeiling,
    /// Doubling every second from `initial`, since `since` (seconds since the origin).
    SlowStart { since: f64 },
    /// After a throttle at `since`: `w_max` is the rate that drew it, `k` the recovery time.
    Cubic { since: f64, w_max: f64, k: f64 },
}

/// The learned pace of one key.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveState {
    config: Adaptive,
    phase: Phase,
    /// The requests limit that bounds it (configured or learned from headers).
    limit_ceiling: Option<Ceiling>,
    /// The theoretical arrival time of the next request at the pace (seconds since the
    /// origin): GCRA, with the ceiling's burst as tolerance (none without a ceiling).
    next_at: f64,
    /// When the last decrease happened: throttles of requests admitted before it are part of
    /// its episode.
    decreased_at: Option<Duration>,
    /// The start of the current measurement bucket and the admissions counted in it.
    bucket_start: f64,
    bucket_count: u32,
    /// The smoothed send rate of the closed buckets, per second.
    measured: f64,
    /// The times of the last few admissions (a ring), for the rate sent just now.
    recent: [f64; RECENT],
    /// How many admissions `recent` has seen (the next slot is this modulo its length).
    recent_count: u64,
    /// Whether the last admission went at its slot in the pace: callers were waiting for it,
    /// so the pace is the rate sent.
    saturated: bool,
    /// The last admission (for forgetting idle keys).
    last_admitted: Duration,
    /// The rate last reported to observers.
    reported: f64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

impl AdaptiveState {
    /// A fresh state at `now`; `limit_ceiling` is the requests limit of the key's limits.
    pub(crate) fn new(config: Adaptive, limit_ceiling: Option<Ceiling>, now: Duration) -> Self {
        let phase = if limit_ceiling.is_some() {
            Phase::AtCeiling
        } else {
            Phase::SlowStart { since: secs(now) }
        };
        AdaptiveState {
            config,
            phase,
            limit_ceiling,
            next_at: 0.0,
            decreased_at: None,
            bucket_start: secs(now),
            bucket_count: 0,
            measured: 0.0,
            recent: [0.0; RECENT],
            recent_count: 0,
            saturated: false,
            last_admitted: now,
            reported: 0.0,
        }
    }

    /// Follows new limits: a new configuration, or a new ceiling from them.
    pub(crate) fn follow(&mut self, config: Adaptive, limit_ceiling: Option<Ceiling>) {
        self.config = config;
        self.set_limit_ceiling(limit_ceiling);
    }

    /// The key's limits now bound the rate at `limit_ceiling`: a limit reported by the
    /// provider is a jump, not a search.
    pub(crate) fn set_limit_ceiling(&mut self, limit_ceiling: Option<Ceiling>) {
        self.limit_ceiling = limit_ceiling;
        match (limit_ceiling, self.phase) {
            (Some(_), Phase::SlowStart { .. }) => self.phase = Phase::AtCeiling,
            (None, Phase::AtCeiling) => {
                self.phase = Phase::SlowStart {
                    since: self.bucket_start,
                };
            }
            _ => {}
        }
    }

    /// The smoothed send rate at `now`, closing the buckets that ended.
    fn measure(&mut self, now: f64) -> f64 {
        let elapsed = now - self.bucket_start;
        if elapsed >= BUCKET {
            let buckets = (elapsed / BUCKET).floor();
            let sample = f64::from(self.bucket_count) / BUCKET;
            self.measured = SMOOTHING * sample + (1.0 - SMOOTHING) * self.measured;
            // Every further bucket that ended was empty.
            let empty = (buckets - 1.0).min(64.0);
            self.measured *= (1.0 - SMOOTHING).powf(empty);
            self.bucket_start += buckets * BUCKET;
            self.bucket_count = 0;
        }
        self.measured
    }

    /// The rate the curve allows at `now`, within the floor, the configured ceiling and twice
    /// the rate actually sent (or the rate known to work); `None` while the key's limits alone
    /// hold it.
    fn rate(&self, now: f64) -> Option<f64> {
        let (floor, ceiling) = self.config.bounds();
        let initial = self.config.initial.per_second;
        // Never more than twice the rate sent — but the rate known to work after a throttle,
        // or the initial one, is always allowed. Under a ceiling, the limits bound the climb.
        let mut supported = match self.limit_ceiling {
            Some(_) => f64::INFINITY,
            None => (2.0 * self.measured).max(initial),
        };
        let curve = match self.phase {
            Phase::AtCeiling => return None,
            // The curve is never below `initial`: not worth computing when the caps are lower.
            Phase::SlowStart { .. } if supported.min(ceiling) <= initial => initial,
            Phase::SlowStart { since } => initial * ((now - since).clamp(0.0, 60.0)).exp2(),
            Phase::Cubic { since, w_max, k } => {
                supported = supported.max(DECREASE * w_max);
                let c = w_max * (1.0 - DECREASE) / (k * k * k);
                let t = (now - since).max(0.0) - k;
                w_max + c * t * t * t
            }
        };
        let sent = supported;
        let rate = curve.min(sent).min(ceiling).max(floor);
        match self.limit_ceiling {
            Some(limit) if rate >= limit.rate => None,
            _ => Some(rate),
        }
    }

    /// The rate in force at `now` for observers: the pace, or the limits' rate when they
    /// alone hold it.
    pub(crate) fn learned(&self, now: Duration) -> f64 {
        let now = secs(now);
        self.rate(now)
            .or(self.limit_ceiling.map(|c| c.rate))
            .unwrap_or(self.config.initial.per_second)
    }

    /// How far ahead of now the next arrival time may be: the ceiling's burst, at `rate`.
    fn tolerance(&self, rate: f64) -> f64 {
        match self.limit_ceiling {
            Some(c) if c.burst > 1.0 => (c.burst - 1.0) / rate,
            _ => 0.0,
        }
    }

    /// How long until one more request may go (zero: now).
    pub(crate) fn wait(&self, now: Duration) -> Duration {
        self.check(now).wait
    }

    /// How long until one more request may go, and the pace that says so, for
    /// [`admit`](Self::admit) at the same `now`.
    pub(crate) fn check(&self, now: Duration) -> Pace {
        let now_s = secs(now);
        let rate = self.rate(now_s);
        let wait = match rate {
            Some(rate) => {
                let at = self.next_at.max(now_s) - self.tolerance(rate);
                if at > now_s {
                    duration(at - now_s)
                } else {
                    Duration::ZERO
                }
            }
            None => Duration::ZERO,
        };
        Pace { wait, rate }
    }

    /// How long until `ahead` more requests, and then one, may go.
    pub(crate) fn eta(&self, ahead: u64, now: Duration) -> Duration {
        let now_s = secs(now);
        let Some(rate) = self.rate(now_s) else {
            return Duration::ZERO;
        };
        let at = self.next_at.max(now_s) + ahead as f64 / rate - self.tolerance(rate);
        duration(at - now_s)
    }

    /// Counts an admission at `now`, at the `pace` [`check`](Self::check) found then (call
    /// only when it said no wait).
    pub(crate) fn admit(&mut self, now: Duration, pace: &Pace) {
        let now_s = secs(now);
        let bucket = self.bucket_start;
        self.measure(now_s);
        // Closing a measurement bucket may move the cap: ask again only then.
        let rate = if self.bucket_start == bucket {
            pace.rate
        } else {
            self.rate(now_s)
        };
        self.bucket_count = self.bucket_count.saturating_add(1);
        self.recent[(self.recent_count % RECENT as u64) as usize] = now_s;
        self.recent_count += 1;
        self.last_admitted = now;
        self.saturated = false;
        if let Some(rate) = rate {
            let interval = 1.0 / rate;
            // A request admitted a little late keeps the schedule (timers fire late by a
            // millisecond or so); one after an idle spell starts it afresh.
            let slack = interval * 0.1;
            self.saturated = self.next_at - self.tolerance(rate) >= now_s - slack;
            let on_schedule = self.next_at >= now_s - slack;
            self.next_at = if on_schedule { self.next_at } else { now_s } + interval;
        }
    }

    /// A request admitted at `taken_at` was throttled, seen at `now`. Returns whether the rate
    /// was lowered (a new episode).
    pub(crate) fn throttled(&mut self, taken_at: Duration, now: Duration) -> bool {
        if self.decreased_at.is_some_and(|at| taken_at < at) {
            return false;
        }
        let now_s = secs(now);
        // The rate that drew the throttle: the pace when the request went — what was sent,
        // while callers waited for their slots — never above what was actually sent otherwise,
        // smoothed or just now.
        let measured = self.measure(now_s);
        let paced = self
            .rate(secs(taken_at))
            .or(self.limit_ceiling.map(|c| c.rate))
            .unwrap_or(f64::INFINITY);
        let sent = if self.saturated && paced.is_finite() {
            paced
        } else {
            measured.max(self.recent_rate())
        };
        let (floor, _) = self.config.bounds();
        let w_max = paced.min(sent).max(floor);
        let k = (RECOVERY_REQUESTS / w_max).clamp(MIN_RECOVERY, MAX_RECOVERY);
        self.phase = Phase::Cubic {
            since: now_s,
            w_max,
            k,
        };
        self.decreased_at = Some(now);
        // Without a ceiling, the next request goes one interval of the new pace from now: no
        // herd. Under a ceiling, its burst still holds (a stray 429 is no herd of our own).
        if let (Some(rate), None) = (self.rate(now_s), self.limit_ceiling) {
            self.next_at = self.next_at.max(now_s + 1.0 / rate);
        }
        true
    }

    /// The rate of the last few admissions, per second (unbounded with fewer than two: too
    /// few to tell).
    fn recent_rate(&self) -> f64 {
        let n = self.recent_count.min(RECENT as u64) as usize;
        if n < 2 {
            return f64::INFINITY;
        }
        let newest = self.recent[((self.recent_count - 1) % RECENT as u64) as usize];
        let oldest = self.recent[((self.recent_count - n as u64) % RECENT as u64) as usize];
        let span = newest - oldest;
        if span > 0.0 {
            (n - 1) as f64 / span
        } else {
            f64::INFINITY
        }
    }

    /// Nothing may be admitted before `until`; then one at a time at the pace.
    pub(crate) fn pause_until(&mut self, until: Duration) {
        self.next_at = self.next_at.max(secs(until));
    }

    /// The learned rate when it moved by 1 % or more since last reported, and marks it
    /// reported.
    pub(crate) fn report(&mut self, now: Duration) -> Option<f64> {
        let rate = self.learned(now);
        let moved = (rate - self.reported).abs() > self.reported * REPORT_CHANGE;
        moved.then(|| {
            self.reported = rate;
            rate
        })
    }

    /// Whether forgetting it loses nothing worth keeping: no request for a while and none
    /// scheduled.
    pub(crate) fn is_idle(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_admitted) >= FORGET_AFTER && self.next_at <= secs(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    /// Admits as fast as the pace allows from `from` for `len` seconds; the count.
    fn saturate(state: &mut AdaptiveState, from: f64, len: f64) -> u32 {
        let mut now = from;
        let mut count = 0;
        while now < from + len {
            let pace = state.check(s(now));
            if pace.wait.is_zero() {
                state.admit(s(now), &pace);
                count += 1;
            } else {
                now += pace.wait.as_secs_f64();
            }
        }
        count
    }

    #[test]
    fn slow_start_doubles_every_second() {
        let mut state = AdaptiveState::new(Adaptive::default(), None, Duration::ZERO);
        assert_eq!(state.learned(Duration::ZERO), 10.0);
        // The first half second at 10/s: nothing was sent before it.
        assert_eq!(saturate(&mut state, 0.0, 0.5), 5);
        // Then twice the rate sent, along 10 × 2^t.
        saturate(&mut state, 0.5, 2.5);
        let rate = state.learned(s(3.0));
        assert!((50.0..=80.0).contains(&rate), "{rate}");
    }

    #[test]
    fn one_decrease_per_episode() {
        let mut state = AdaptiveState::new(Adaptive::default(), None, Duration::ZERO);
        saturate(&mut state, 0.0, 3.0);
        let before = state.learned(s(3.0));
        assert!(state.throttled(s(2.9), s(3.0)));
        let after = state.learned(s(3.0));
        assert!(after <= before * DECREASE + 1e-9, "{before} -> {after}");
        // Requests admitted before the decrease are the same episode.
        assert!(!state.throttled(s(2.95), s(3.01)));
        assert!(!state.throttled(s(2.99), s(3.05)));
        assert_eq!(state.learned(s(3.0)), after);
        // One admitted after it is a new one.
        assert!(state.throttled(s(3.1), s(3.2)));
    }

    #[test]
    fn cubic_returns_to_the_rate_that_drew_the_throttle_after_k() {
        let mut state = AdaptiveState::new(Adaptive::default(), None, Duration::ZERO);
        saturate(&mut state, 0.0, 10.0);
        state.throttled(s(10.0), s(10.0));
        let Phase::Cubic { w_max, k, .. } = state.phase else {
            panic!("not cubic")
        };
        saturate(&mut state, 10.0, k);
        let back = state.learned(s(10.0 + k));
        assert!((back - w_max).abs() < w_max * 0.01, "{back} vs {w_max}");
    }

    #[test]
    fn floor_and_ceiling_hold() {
        let config = Adaptive::default()
            .with_floor(Rate::per_second(NonZeroU64::new(5).unwrap()))
            .with_ceiling(Rate::per_second(NonZeroU64::new(30).unwrap()));
        let mut state = AdaptiveState::new(config, None, Duration::ZERO);
        saturate(&mut state, 0.0, 10.0);
        assert_eq!(state.learned(s(10.0)), 30.0);
        // A throttle every second: each one a new episode, down to the floor, no further.
        for i in 0..60 {
            let at = 10.0 + f64::from(i);
            saturate(&mut state, at, 0.5);
            state.throttled(s(at + 0.5), s(at + 0.5));
        }
        assert_eq!(state.learned(s(70.0)), 5.0);
    }

    #[test]
    fn a_limit_ceiling_turns_the_pace_off_until_a_throttle() {
        let ceiling = Ceiling {
            rate: 20.0,
            burst: 1.0,
        };
        let mut state = AdaptiveState::new(Adaptive::default(), Some(ceiling), Duration::ZERO);
        for i in 0..20 {
            let now = s(f64::from(i) * 0.05);
            let pace = state.check(now);
            assert_eq!(pace.wait, Duration::ZERO, "no pace at the ceiling");
            state.admit(now, &pace);
        }
        assert!(state.throttled(s(0.96), s(1.0)));
        // 0.85 × the rate sent just now (20/s).
        let learned = state.learned(s(1.0));
        assert!((learned - DECREASE * 20.0).abs() < 1e-9, "{learned}");
        // Paced from then on: one request per 1/17 s.
        let pace = state.check(s(1.0));
        state.admit(s(1.0), &pace);
        let wait = state.wait(s(1.0)).as_secs_f64();
        assert!((wait - 1.0 / learned).abs() < 1e-6, "{wait}");
    }
}
