//! [`TokenBucket`].

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBucketState {
    /// Tokens × period nanoseconds (negative: debt), and when they were counted.
    level: Option<(i128, u64)>,
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

    fn scale(&self, tokens: u64) -> i128 {
        i128::from(tokens).saturating_mul(i128::from(self.quota.period_nanos()))
    }

    /// The scaled level at `now`.
    fn level(&self, state: &TokenBucketState, now: u64) -> i128 {
        let full = self.scale(self.quota.burst());
        match state.level {
            None => full,
            Some((level, at)) => {
                let elapsed = i128::from(now.saturating_sub(at));
                level
                    .saturating_add(elapsed.saturating_mul(i128::from(self.quota.limit())))
                    .min(full)
            }
        }
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
            state.level = Some((level - cost, now.max(state.level.map_or(0, |(_, at)| at))));
            return Admission::Now;
        }
        self.after(cost.saturating_sub(level))
    }

    fn take(&self, state: &mut TokenBucketState, cost: u64, now: Duration) {
        let now = nanos(now);
        let level = self.level(state, now).saturating_sub(self.scale(cost));
        state.level = Some((level, now.max(state.level.map_or(0, |(_, at)| at))));
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
        state.level = Some((level, now.max(state.level.map_or(0, |(_, at)| at))));
    }

    fn drain(&self, state: &mut TokenBucketState, keep: u64, until: Duration, now: Duration) {
        let now = nanos(now);
        let ahead = i128::from(nanos(until).saturating_sub(now));
        let target = self
            .scale(keep)
            .saturating_sub(ahead.saturating_mul(i128::from(self.quota.limit())));
        if self.level(state, now) > target {
            state.level = Some((target, now.max(state.level.map_or(0, |(_, at)| at))));
        }
    }

    fn is_fresh(&self, state: &TokenBucketState, now: Duration) -> bool {
        self.level(state, nanos(now)) >= self.scale(self.quota.burst())
    }
}
