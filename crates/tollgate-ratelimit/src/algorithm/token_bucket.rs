//! [`TokenBucket`].

use std::fmt;
use std::time::Duration;

use super::{Admission, Algorithm, Quota, mul_div_ceil, nanos};

/// A token bucket: holds up to `burst` tokens, refilled continuously at `limit` per `period`;
/// a request takes its cost out.
///
/// Tokens are counted exactly, in units of one token × one nanosecond of period, so there is no
/// rounding drift however small the rate.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::{Admission, Algorithm, Quota, TokenBucket};
///
/// // 30,000 tokens per minute: 500 per second.
/// let bucket = TokenBucket::new(Quota::per_minute(NonZeroU64::new(30_000).unwrap()));
/// let mut state = Default::default();
/// bucket.take(&mut state, 30_000, Duration::ZERO);
/// assert_eq!(bucket.wait(&state, 1_000, Duration::ZERO), Admission::After(Duration::from_secs(2)));
/// assert_eq!(bucket.wait(&state, 1_000, Duration::from_secs(2)), Admission::Now);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    quota: Quota,
}

/// The state of a [`TokenBucket`]: full until first used.
///
/// The level, in tokens × period nanoseconds (negative: debt), is kept as two 64-bit words
/// rather than an `i128`, so that the state is 24 bytes aligned to 8, not 48 aligned to 16.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenBucketState {
    /// The level's low and high words: `i128::MAX` until first used, which reads as full.
    level_lo: u64,
    level_hi: i64,
    /// When the level was counted (nanoseconds since the origin).
    at: u64,
}

impl Default for TokenBucketState {
    fn default() -> Self {
        TokenBucketState::new(i128::MAX, 0)
    }
}

impl TokenBucketState {
    #[inline]
    fn new(level: i128, at: u64) -> Self {
        TokenBucketState {
            level_lo: level as u64,
            level_hi: (level >> 64) as i64,
            at,
        }
    }

    #[inline]
    fn level(&self) -> i128 {
        (i128::from(self.level_hi) << 64) | i128::from(self.level_lo)
    }

    /// Counts `level` at `now`, never moving the count's time back.
    #[inline]
    fn set(&mut self, level: i128, now: u64) {
        *self = TokenBucketState::new(level, now.max(self.at));
    }
}

impl fmt::Debug for TokenBucketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = (self.level() != i128::MAX).then(|| (self.level(), self.at));
        f.debug_struct("TokenBucketState")
            .field("level", &level)
            .finish()
    }
}

impl TokenBucket {
    /// A bucket for `quota`.
    pub const fn new(quota: Quota) -> Self {
        TokenBucket { quota }
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// `tokens` × period nanoseconds, saturating at `i128::MAX`.
    #[inline]
    fn scale(&self, tokens: u64) -> i128 {
        wide(tokens, self.quota.period_nanos())
    }

    /// The scaled level at `now`.
    #[inline]
    fn level(&self, state: &TokenBucketState, now: u64) -> i128 {
        let full = self.scale(self.quota.burst());
        let refill = wide(now.saturating_sub(state.at), self.quota.limit());
        state.level().saturating_add(refill).min(full)
    }

    /// When a scaled `deficit` is refilled.
    fn after(&self, deficit: i128) -> Admission {
        if deficit <= 0 {
            return Admission::Now;
        }
        let deficit = u128::try_from(deficit).unwrap_or(0);
        let wait = mul_div_ceil(deficit, 1, u128::from(self.quota.limit()));
        Admission::After(Duration::from_nanos(wait))
    }

    /// Whole tokens available at `now` (zero while in debt).
    pub fn available(&self, state: &TokenBucketState, now: Duration) -> u64 {
        let level = self.level(state, nanos(now)).max(0);
        u64::try_from(level / i128::from(self.quota.period_nanos())).unwrap_or(u64::MAX)
    }
}

/// `a × b` as an `i128`, saturating: one widening multiplication, no overflow check on it.
#[inline]
fn wide(a: u64, b: u64) -> i128 {
    i128::try_from(u128::from(a) * u128::from(b)).unwrap_or(i128::MAX)
}

impl Algorithm for TokenBucket {
    type State = TokenBucketState;

    fn wait(&self, state: &TokenBucketState, cost: u64, now: Duration) -> Admission {
        if cost > self.quota.burst() {
            return Admission::Never;
        }
        let deficit = self
            .scale(cost)
            .saturating_sub(self.level(state, nanos(now)));
        self.after(deficit)
    }

    fn try_take(&self, state: &mut TokenBucketState, cost: u64, now: Duration) -> Admission {
        if cost > self.quota.burst() {
            return Admission::Never;
        }
        let now = nanos(now);
        let level = self.level(state, now);
        let cost = self.scale(cost);
        if cost <= level {
            state.set(level - cost, now);
            return Admission::Now;
        }
        self.after(cost.saturating_sub(level))
    }

    fn take(&self, state: &mut TokenBucketState, cost: u64, now: Duration) {
        let now = nanos(now);
        let level = self.level(state, now).saturating_sub(self.scale(cost));
        state.set(level, now);
    }

    fn capacity(&self) -> u64 {
        self.quota.burst()
    }

    fn available(&self, state: &TokenBucketState, now: Duration) -> u64 {
        TokenBucket::available(self, state, now)
    }

    fn give(&self, state: &mut TokenBucketState, amount: u64, _: Duration, now: Duration) {
        let now = nanos(now);
        let full = self.scale(self.quota.burst());
        let level = self
            .level(state, now)
            .saturating_add(self.scale(amount))
            .min(full);
        state.set(level, now);
    }

    fn drain(&self, state: &mut TokenBucketState, keep: u64, until: Duration, now: Duration) {
        let now = nanos(now);
        let ahead = i128::from(nanos(until).saturating_sub(now));
        let target = self
            .scale(keep)
            .saturating_sub(ahead.saturating_mul(i128::from(self.quota.limit())));
        if self.level(state, now) > target {
            state.set(target, now);
        }
    }

    fn is_fresh(&self, state: &TokenBucketState, now: Duration) -> bool {
        self.level(state, nanos(now)) >= self.scale(self.quota.burst())
    }
}
