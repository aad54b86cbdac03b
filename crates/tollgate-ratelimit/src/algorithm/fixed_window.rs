//! [`FixedWindow`].

use std::time::Duration;

use super::{Admission, Algorithm, Quota, nanos};

/// A fixed window: at most `limit` per window `[k·period, (k+1)·period)` of time since the
/// origin; the count starts again at each window. Simple and cheap, but a burst at the end of
/// one window and another at the start of the next admit up to `2·limit` within one period.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::{Admission, Algorithm, FixedWindow, Quota};
///
/// let window = FixedWindow::new(Quota::per_minute(NonZeroU64::new(100).unwrap()));
/// let mut state = Default::default();
/// window.take(&mut state, 100, Duration::from_secs(45));
/// assert_eq!(window.wait(&state, 1, Duration::from_secs(45)), Admission::After(Duration::from_secs(15)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    quota: Quota,
}

/// The state of a [`FixedWindow`]: the current window and what it has admitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindowState {
    window: u64,
    count: u64,
}

impl FixedWindow {
    /// A fixed window for `quota` (its burst is not used).
    pub const fn new(quota: Quota) -> Self {
        FixedWindow { quota }
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    fn count(&self, state: &FixedWindowState, window: u64) -> u64 {
        // A window after `window` means the clock went back: keep counting in it.
        if state.window >= window {
            state.count
        } else {
            0
        }
    }
}

impl Algorithm for FixedWindow {
    type State = FixedWindowState;

    fn wait(&self, state: &FixedWindowState, cost: u64, now: Duration) -> Admission {
        if cost > self.quota.limit() {
            return Admission::Never;
        }
        let now = nanos(now);
        let period = self.quota.period_nanos();
        let window = now / period;
        if self.count(state, window).saturating_add(cost) <= self.quota.limit() {
            return Admission::Now;
        }
        let next = window.saturating_add(1).saturating_mul(period);
        Admission::After(Duration::from_nanos(next - now))
    }

    fn take(&self, state: &mut FixedWindowState, cost: u64, now: Duration) {
        let window = nanos(now) / self.quota.period_nanos();
        if window > state.window {
            *state = FixedWindowState { window, count: 0 };
        }
        state.count = state.count.saturating_add(cost);
    }

    fn capacity(&self) -> u64 {
        self.quota.limit()
    }

    fn available(&self, state: &FixedWindowState, now: Duration) -> u64 {
        let window = nanos(now) / self.quota.period_nanos();
        self.quota.limit().saturating_sub(self.count(state, window))
    }

    fn give(&self, state: &mut FixedWindowState, amount: u64, taken_at: Duration, now: Duration) {
        let period = self.quota.period_nanos();
        let window = nanos(now) / period;
        // Only a refund for this window's own admissions frees room in it.
        if state.window >= window && nanos(taken_at) / period >= state.window {
            state.count = state.count.saturating_sub(amount);
        }
    }

    fn is_fresh(&self, state: &FixedWindowState, now: Duration) -> bool {
        self.count(state, nanos(now) / self.quota.period_nanos()) == 0
    }
}
