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
/// (Internally the unit is one token × `period / gcd(limit, period)` nanoseconds, the same
/// count divided by a constant: 50 tokens per second count in tokens × 20 ms. When a full
/// bucket in that unit fits in 63 bits — always for a burst up to 10⁵ with a period up to a
/// day, and for round quotas far beyond (10¹⁵ tokens a day) — admission runs on 64-bit
/// integers, otherwise on 128-bit ones; both give the same answers.)
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
/// The level, in the bucket's unit (negative: debt), is kept as two 64-bit words rather than
/// an `i128`, so that the state is 24 bytes aligned to 8, not 48 aligned to 16.
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

    /// The level when it fits in an `i64`; `i64::MAX` for a state never used (which reads as
    /// full whatever the bucket).
    #[inline]
    fn narrow_level(&self) -> Option<i64> {
        let low = self.level_lo as i64;
        if self.level_hi == low >> 63 {
            Some(low)
        } else if self.level() == i128::MAX {
            Some(i64::MAX)
        } else {
            None
        }
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

    /// `tokens` in the bucket's unit, saturating at `i128::MAX`.
    #[inline]
    fn scale(&self, tokens: u64) -> i128 {
        wide(tokens, self.quota.unit())
    }

    /// The scaled level at `now`.
    #[inline]
    fn level(&self, state: &TokenBucketState, now: u64) -> i128 {
        let full = self.scale(self.quota.burst());
        let refill = wide(now.saturating_sub(state.at), self.quota.rate());
        state.level().saturating_add(refill).min(full)
    }

    /// When a scaled `deficit` is refilled.
    fn after(&self, deficit: i128) -> Admission {
        if deficit <= 0 {
            return Admission::Now;
        }
        let deficit = u128::try_from(deficit).unwrap_or(0);
        let wait = mul_div_ceil(deficit, 1, u128::from(self.quota.rate()));
        Admission::After(Duration::from_nanos(wait))
    }

    /// The scaled level at `now` and a full bucket's, in 64 bits: `None` when a full bucket
    /// does not fit in an `i64` or the state's level does not (then [`level`](Self::level)
    /// counts in 128).
    #[inline]
    fn narrow(&self, state: &TokenBucketState, now: u64) -> Option<(i64, i64)> {
        let (full, overflow) = self.quota.burst().overflowing_mul(self.quota.unit());
        if overflow || full > i64::MAX as u64 {
            return None;
        }
        let full = full as i64;
        let level = state.narrow_level()?;
        if level >= full {
            return Some((full, full));
        }
        // Below full, so the room is in 1..2^64; a refill at least that large fills it.
        let room = (full as u64).wrapping_sub(level as u64);
        let refill = now
            .saturating_sub(state.at)
            .saturating_mul(self.quota.rate());
        let level = if refill >= room {
            full
        } else {
            level + refill as i64
        };
        Some((level, full))
    }

    /// When `cost` (at most a full bucket, scaled: `0..=full`) fits, from a `level` of the
    /// narrow path.
    #[inline]
    fn narrow_after(&self, cost: i64, level: i64) -> Admission {
        if cost <= level {
            return Admission::Now;
        }
        // In 1..2^64: `cost` is at most `i64::MAX`, `level` at least `i64::MIN`.
        let deficit = (cost as u64).wrapping_sub(level as u64);
        Admission::After(Duration::from_nanos(deficit.div_ceil(self.quota.rate())))
    }

    /// Whole tokens available at `now` (zero while in debt).
    pub fn available(&self, state: &TokenBucketState, now: Duration) -> u64 {
        let level = self.level(state, nanos(now)).max(0);
        u64::try_from(level / i128::from(self.quota.unit())).unwrap_or(u64::MAX)
    }

    /// [`Algorithm::try_take`] at `now` in nanoseconds since the origin.
    #[inline]
    pub(crate) fn try_take_at(
        &self,
        state: &mut TokenBucketState,
        cost: u64,
        now: u64,
    ) -> Admission {
        if cost > self.quota.burst() {
            return Admission::Never;
        }
        if let Some((level, _)) = self.narrow(state, now) {
            // `cost` is at most the burst, so it fits in the full bucket's `i64`.
            let cost = (cost * self.quota.unit()) as i64;
            let admission = self.narrow_after(cost, level);
            if admission == Admission::Now {
                state.set(i128::from(level - cost), now);
            }
            return admission;
        }
        self.try_take_wide(state, cost, now)
    }

    /// [`Algorithm::try_take`] in 128 bits, for a cost at most the burst.
    fn try_take_wide(&self, state: &mut TokenBucketState, cost: u64, now: u64) -> Admission {
        let level = self.level(state, now);
        let cost = self.scale(cost);
        if cost <= level {
            state.set(level - cost, now);
            return Admission::Now;
        }
        self.after(cost.saturating_sub(level))
    }

    /// [`Algorithm::wait`] in 128 bits, for a cost at most the burst.
    fn wait_wide(&self, state: &TokenBucketState, cost: u64, now: u64) -> Admission {
        let deficit = self.scale(cost).saturating_sub(self.level(state, now));
        self.after(deficit)
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
        let now = nanos(now);
        if let Some((level, _)) = self.narrow(state, now) {
            return self.narrow_after((cost * self.quota.unit()) as i64, level);
        }
        self.wait_wide(state, cost, now)
    }

    #[inline]
    fn try_take(&self, state: &mut TokenBucketState, cost: u64, now: Duration) -> Admission {
        self.try_take_at(state, cost, nanos(now))
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
            .saturating_sub(ahead.saturating_mul(i128::from(self.quota.rate())));
        if self.level(state, now) > target {
            state.set(target, now);
        }
    }

    fn is_fresh(&self, state: &TokenBucketState, now: Duration) -> bool {
        self.level(state, nanos(now)) >= self.scale(self.quota.burst())
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;

    use proptest::prelude::*;

    use super::*;

    /// A quota of any size: everyday ones, ones whose full bucket needs 128 bits, and ones
    /// whose full bucket lies within a few units of `i64::MAX`, where the 64-bit path must give
    /// way.
    fn quota() -> impl Strategy<Value = Quota> {
        let limit = prop_oneof![1u64..1_000, 1u64..u64::MAX];
        let period = prop_oneof![
            Just(1_000_000_000u64),
            Just(60_000_000_000),
            Just(86_400_000_000_000),
            1u64..1_000_000,
            1u64..u64::MAX,
        ];
        let burst = prop_oneof![
            (1u64..1_000).prop_map(Err),
            (1u64..u64::MAX).prop_map(Err),
            (-2i64..3).prop_map(Ok),
        ];
        (limit, period, burst).prop_map(|(limit, period, burst)| {
            let quota = Quota::new(
                NonZeroU64::new(limit).unwrap(),
                Duration::from_nanos(period),
            )
            .unwrap();
            // `Ok(d)`: the burst whose full bucket is `d` units of burst past `i64::MAX`.
            let burst = match burst {
                Ok(d) => (i64::MAX as u64 / quota.unit()).saturating_add_signed(d),
                Err(burst) => burst,
            };
            quota.with_burst(NonZeroU64::new(burst.max(1)).unwrap())
        })
    }

    /// A state with any level: in 64 bits, in 128, fresh, or near a full bucket.
    fn state(quota: Quota) -> impl Strategy<Value = TokenBucketState> {
        let full = wide(quota.burst(), quota.unit());
        let level = prop_oneof![
            any::<i64>().prop_map(i128::from),
            any::<i128>(),
            Just(i128::MAX),
            (-3i128..3).prop_map(move |d| full.saturating_add(d)),
            (0u64..=quota.burst()).prop_map(move |t| wide(t, quota.unit())),
        ];
        (level, 0u64..1 << 50).prop_map(|(level, at)| TokenBucketState::new(level, at))
    }

    fn case() -> impl Strategy<Value = (Quota, TokenBucketState, u64, u64)> {
        quota().prop_flat_map(|quota| {
            let cost = prop_oneof![0..=quota.burst(), Just(quota.burst())];
            let now = prop_oneof![0u64..1 << 50, any::<u64>()];
            (Just(quota), state(quota), cost, now)
        })
    }

    /// The token bucket as it counted before the 64-bit path: in tokens × period nanoseconds.
    struct Reference {
        quota: Quota,
        level: i128,
        at: u64,
    }

    impl Reference {
        fn scale(&self, tokens: u64) -> i128 {
            i128::from(tokens) * i128::from(self.quota.period_nanos())
        }

        fn level(&self, now: u64) -> i128 {
            let refill = i128::from(now.saturating_sub(self.at)) * i128::from(self.quota.limit());
            self.level
                .saturating_add(refill)
                .min(self.scale(self.quota.burst()))
        }

        fn after(&self, deficit: i128) -> Admission {
            if deficit <= 0 {
                return Admission::Now;
            }
            let wait = mul_div_ceil(deficit as u128, 1, u128::from(self.quota.limit()));
            Admission::After(Duration::from_nanos(wait))
        }

        fn set(&mut self, level: i128, now: u64) {
            self.level = level;
            self.at = self.at.max(now);
        }
    }

    proptest! {
        /// The 64-bit path, where it runs, decides and counts exactly as the 128-bit one.
        #[test]
        fn the_narrow_path_agrees_with_the_wide_one((quota, state, cost, now) in case()) {
            let bucket = TokenBucket::new(quota);
            let mut narrow = state;
            let mut wide = state;
            prop_assert_eq!(
                bucket.try_take_at(&mut narrow, cost, now),
                bucket.try_take_wide(&mut wide, cost, now)
            );
            prop_assert_eq!(narrow, wide);
            prop_assert_eq!(
                bucket.wait(&state, cost, Duration::from_nanos(now)),
                bucket.wait_wide(&state, cost, now)
            );
        }

        /// Counting in the reduced unit decides as counting in tokens × nanoseconds did, on
        /// any sequence of admissions, charges, refunds and drains (quotas small enough that
        /// nothing saturates).
        #[test]
        fn the_reduced_unit_counts_as_nanoseconds_did(
            limit in 1u64..1_000_000_000_000,
            period in prop_oneof![
                Just(1_000_000_000u64),
                Just(60_000_000_000),
                Just(86_400_000_000_000),
                1u64..10_000_000_000,
            ],
            burst in 1u64..1_000_000_000_000,
            steps in proptest::collection::vec((0u8..4, 0u64..1_000_000_000_000, 0u64..10_000_000_000), 1..40),
        ) {
            let quota = Quota::new(NonZeroU64::new(limit).unwrap(), Duration::from_nanos(period))
                .unwrap()
                .with_burst(NonZeroU64::new(burst).unwrap());
            let bucket = TokenBucket::new(quota);
            let mut state = TokenBucketState::default();
            let mut reference = Reference { quota, level: i128::MAX, at: 0 };
            let mut now = 0u64;
            for (op, amount, gap) in steps {
                now += gap;
                let at = Duration::from_nanos(now);
                match op {
                    0 => {
                        let cost = amount % (burst + 1);
                        let want = {
                            let level = reference.level(now);
                            let scaled = reference.scale(cost);
                            if scaled <= level {
                                reference.set(level - scaled, now);
                                Admission::Now
                            } else {
                                reference.after(scaled - level)
                            }
                        };
                        prop_assert_eq!(bucket.try_take(&mut state, cost, at), want);
                    }
                    1 => {
                        let level = reference.level(now) - reference.scale(amount);
                        reference.set(level, now);
                        bucket.take(&mut state, amount, at);
                    }
                    2 => {
                        let full = reference.scale(burst);
                        let level = (reference.level(now) + reference.scale(amount)).min(full);
                        reference.set(level, now);
                        bucket.give(&mut state, amount, at, at);
                    }
                    _ => {
                        let keep = amount % (burst + 1);
                        let until = now + gap;
                        let target = reference.scale(keep)
                            - i128::from(until - now) * i128::from(limit);
                        if reference.level(now) > target {
                            reference.set(target, now);
                        }
                        bucket.drain(&mut state, keep, Duration::from_nanos(until), at);
                    }
                }
                let cost = amount % (burst + 1);
                let want = reference.after(reference.scale(cost) - reference.level(now));
                prop_assert_eq!(bucket.wait(&state, cost, at), want);
                let available = u64::try_from(reference.level(now).max(0) / i128::from(period));
                prop_assert_eq!(Ok(bucket.available(&state, at)), available);
                prop_assert_eq!(
                    bucket.is_fresh(&state, at),
                    reference.level(now) >= reference.scale(burst)
                );
            }
        }
    }
}
