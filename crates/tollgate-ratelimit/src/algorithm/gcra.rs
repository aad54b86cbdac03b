//! [`Gcra`].

use std::time::Duration;

use super::{Admission, Algorithm, Quota, mul_div_ceil, nanos};

/// The generic cell rate algorithm: a token bucket kept as one number, the theoretical arrival
/// time (TAT) of the next unit. A cost `c` is admitted when `max(TAT, now) + c·T` is no further
/// ahead of `now` than the burst tolerance `burst·T`, where `T = period / limit`.
///
/// Time is counted in units of `1 / limit` nanoseconds, so `T` is exact for any rate.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::{Admission, Algorithm, Gcra, Quota};
///
/// // 3 requests per second, one at a time.
/// let quota = Quota::per_second(NonZeroU64::new(3).unwrap()).with_burst(NonZeroU64::MIN);
/// let gcra = Gcra::new(quota);
/// let mut state = Default::default();
/// gcra.take(&mut state, 1, Duration::ZERO);
/// assert_eq!(gcra.wait(&state, 1, Duration::ZERO), Admission::After(Duration::from_nanos(333_333_334)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    quota: Quota,
}

/// The state of a [`Gcra`]: the theoretical arrival time, in `1 / limit` nanoseconds.
///
/// Kept as two 64-bit words rather than a `u128`, so that the state is aligned to 8, not 16
/// (a key's states pack without padding).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct GcraState {
    tat_lo: u64,
    tat_hi: u64,
}

impl GcraState {
    #[inline]
    fn tat(&self) -> u128 {
        (u128::from(self.tat_hi) << 64) | u128::from(self.tat_lo)
    }

    #[inline]
    fn set_tat(&mut self, tat: u128) {
        self.tat_lo = tat as u64;
        self.tat_hi = (tat >> 64) as u64;
    }
}

impl std::fmt::Debug for GcraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcraState")
            .field("tat", &self.tat())
            .finish()
    }
}

impl Gcra {
    /// GCRA for `quota`.
    pub const fn new(quota: Quota) -> Self {
        Gcra { quota }
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    fn scaled_now(&self, now: Duration) -> u128 {
        u128::from(nanos(now)) * u128::from(self.quota.limit())
    }

    fn next_tat(&self, state: &GcraState, cost: u64, now: u128) -> u128 {
        state
            .tat()
            .max(now)
            .saturating_add(u128::from(cost) * u128::from(self.quota.period_nanos()))
    }
}

impl Algorithm for Gcra {
    type State = GcraState;

    fn wait(&self, state: &GcraState, cost: u64, now: Duration) -> Admission {
        if cost > self.quota.burst() {
            return Admission::Never;
        }
        let now = self.scaled_now(now);
        let tolerance = u128::from(self.quota.burst()) * u128::from(self.quota.period_nanos());
        let ahead = self.next_tat(state, cost, now) - now;
        if ahead <= tolerance {
            return Admission::Now;
        }
        let wait = mul_div_ceil(ahead - tolerance, 1, u128::from(self.quota.limit()));
        Admission::After(Duration::from_nanos(wait))
    }

    fn take(&self, state: &mut GcraState, cost: u64, now: Duration) {
        let tat = self.next_tat(state, cost, self.scaled_now(now));
        state.set_tat(tat);
    }

    fn capacity(&self) -> u64 {
        self.quota.burst()
    }

    fn available(&self, state: &GcraState, now: Duration) -> u64 {
        let now = self.scaled_now(now);
        let tolerance = u128::from(self.quota.burst()) * u128::from(self.quota.period_nanos());
        let ahead = state.tat().saturating_sub(now);
        let room = tolerance.saturating_sub(ahead) / u128::from(self.quota.period_nanos());
        u64::try_from(room).unwrap_or(u64::MAX)
    }

    fn give(&self, state: &mut GcraState, amount: u64, _: Duration, now: Duration) {
        let now = self.scaled_now(now);
        if state.tat() > now {
            let back = u128::from(amount) * u128::from(self.quota.period_nanos());
            state.set_tat(state.tat().saturating_sub(back).max(now));
        }
    }

    fn drain(&self, state: &mut GcraState, keep: u64, until: Duration, _: Duration) {
        let empty_at = self.scaled_now(until).saturating_add(
            u128::from(self.quota.burst().saturating_sub(keep))
                * u128::from(self.quota.period_nanos()),
        );
        state.set_tat(state.tat().max(empty_at));
    }

    fn is_fresh(&self, state: &GcraState, now: Duration) -> bool {
        state.tat() <= self.scaled_now(now)
    }
}
