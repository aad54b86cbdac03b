//! [`SlidingWindowLog`] and [`SlidingWindowCounter`].

use std::collections::VecDeque;
use std::time::Duration;

use super::{Admission, Algorithm, Quota, nanos};

/// An exact sliding window: at most `limit` admitted in any `period` before now, from a log of
/// every admission still inside the window.
///
/// Memory grows with the number of admissions in a period (at most `limit` entries of 16
/// bytes); prefer [`SlidingWindowCounter`] or [`Gcra`](super::Gcra) for large request counts.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::{Admission, Algorithm, Quota, SlidingWindowLog};
///
/// let log = SlidingWindowLog::new(Quota::per_minute(NonZeroU64::new(3).unwrap()));
/// let mut state = Default::default();
/// log.take(&mut state, 1, Duration::from_secs(0));
/// log.take(&mut state, 2, Duration::from_secs(30));
/// // Full until the first entry leaves the window, a minute after it came.
/// assert_eq!(log.wait(&state, 1, Duration::from_secs(40)), Admission::After(Duration::from_secs(20)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindowLog {
    quota: Quota,
}

/// The state of a [`SlidingWindowLog`]: `(when, cost)` of each admission, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlidingWindowLogState {
    entries: VecDeque<(u64, u64)>,
}

impl SlidingWindowLog {
    /// An exact sliding window for `quota` (its burst is not used).
    pub const fn new(quota: Quota) -> Self {
        SlidingWindowLog { quota }
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The entries still inside the window at `now`.
    fn live<'a>(
        &self,
        state: &'a SlidingWindowLogState,
        now: u64,
    ) -> impl Iterator<Item = &'a (u64, u64)> {
        let period = self.quota.period_nanos();
        state
            .entries
            .iter()
            .skip_while(move |(at, _)| at.saturating_add(period) <= now)
    }
}

impl Algorithm for SlidingWindowLog {
    type State = SlidingWindowLogState;

    fn wait(&self, state: &SlidingWindowLogState, cost: u64, now: Duration) -> Admission {
        let limit = self.quota.limit();
        if cost > limit {
            return Admission::Never;
        }
        let now = nanos(now);
        let used = self
            .live(state, now)
            .fold(0u64, |sum, (_, c)| sum.saturating_add(*c));
        let Some(excess) = (used.saturating_add(cost))
            .checked_sub(limit)
            .filter(|e| *e > 0)
        else {
            return Admission::Now;
        };
        let mut freed = 0u64;
        for (at, c) in self.live(state, now) {
            freed = freed.saturating_add(*c);
            if freed >= excess {
                let leaves = at.saturating_add(self.quota.period_nanos());
                return Admission::After(Duration::from_nanos(leaves - now));
            }
        }
        // Unreachable while the log holds `used`; wait a whole period to be safe.
        Admission::After(self.quota.period())
    }

    fn take(&self, state: &mut SlidingWindowLogState, cost: u64, now: Duration) {
        let now = nanos(now);
        let period = self.quota.period_nanos();
        while state
            .entries
            .front()
            .is_some_and(|(at, _)| at.saturating_add(period) <= now)
        {
            state.entries.pop_front();
        }
        if cost > 0 {
            let at = state.entries.back().map_or(now, |(last, _)| now.max(*last));
            state.entries.push_back((at, cost));
        }
    }

    fn capacity(&self) -> u64 {
        self.quota.limit()
    }

    fn available(&self, state: &SlidingWindowLogState, now: Duration) -> u64 {
        let used = self
            .live(state, nanos(now))
            .fold(0u64, |sum, (_, c)| sum.saturating_add(*c));
        self.quota.limit().saturating_sub(used)
    }

    fn give(
        &self,
        state: &mut SlidingWindowLogState,
        mut amount: u64,
        taken_at: Duration,
        now: Duration,
    ) {
        let (now, taken_at) = (nanos(now), nanos(taken_at));
        let period = self.quota.period_nanos();
        // From the refunded admission's own entry back: never from a later admission's.
        for (at, cost) in state.entries.iter_mut().rev() {
            if amount == 0 || at.saturating_add(period) <= now {
                break;
            }
            if *at > taken_at {
                continue;
            }
            let back = (*cost).min(amount);
            *cost -= back;
            amount -= back;
        }
        state.entries.retain(|(_, cost)| *cost > 0);
    }

    fn is_fresh(&self, state: &SlidingWindowLogState, now: Duration) -> bool {
        self.live(state, nanos(now)).next().is_none()
    }
}

/// The two-window approximation of a sliding window: the count of the current fixed window
/// plus the previous window's count weighted by how much of it still overlaps the sliding
/// window. Constant memory; it admits a little more or less than the exact log when traffic
/// within a window is uneven, never more than `2·limit` in a period.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::{Admission, Algorithm, Quota, SlidingWindowCounter};
///
/// let counter = SlidingWindowCounter::new(Quota::per_minute(NonZeroU64::new(100).unwrap()));
/// let mut state = Default::default();
/// counter.take(&mut state, 100, Duration::from_secs(30));
/// // 15 s into the next window, the previous one still weighs 75%: 25 fit.
/// assert_eq!(counter.wait(&state, 25, Duration::from_secs(75)), Admission::Now);
/// assert_eq!(counter.wait(&state, 26, Duration::from_secs(75)), Admission::After(Duration::from_nanos(600_000_000)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindowCounter {
    quota: Quota,
}

/// The state of a [`SlidingWindowCounter`]: the current window and the counts of it and the
/// one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingWindowCounterState {
    window: u64,
    previous: u64,
    current: u64,
}

impl SlidingWindowCounter {
    /// A sliding-window counter for `quota` (its burst is not used).
    pub const fn new(quota: Quota) -> Self {
        SlidingWindowCounter { quota }
    }

    /// The quota.
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// `(previous, current)` counts as seen from `window`.
    fn counts(state: &SlidingWindowCounterState, window: u64) -> (u64, u64) {
        if state.window >= window {
            (state.previous, state.current)
        } else if state.window + 1 == window {
            (state.current, 0)
        } else {
            (0, 0)
        }
    }

    /// The earliest offset into a window, at or after `from`, at which `previous` weighted by
    /// the rest of the window leaves `room`; `None` if not within the window.
    fn fits_from(&self, previous: u64, room: u64, from: u64) -> Option<u64> {
        let period = u128::from(self.quota.period_nanos());
        if previous == 0 {
            return Some(from);
        }
        // previous · (period − e) ≤ room · period  ⇔  e ≥ period − ⌊room · period / previous⌋
        let slack = (u128::from(room) * period) / u128::from(previous);
        let earliest = u64::try_from(period.saturating_sub(slack)).unwrap_or(u64::MAX);
        (earliest < self.quota.period_nanos()).then_some(earliest.max(from))
    }
}

impl Algorithm for SlidingWindowCounter {
    type State = SlidingWindowCounterState;

    fn wait(&self, state: &SlidingWindowCounterState, cost: u64, now: Duration) -> Admission {
        let limit = self.quota.limit();
        if cost > limit {
            return Admission::Never;
        }
        let now = nanos(now);
        let period = self.quota.period_nanos();
        let (window, offset) = (now / period, now % period);
        let (previous, current) = Self::counts(state, window);
        // In this window, as the previous one's weight decays.
        if let Some(room) = limit.checked_sub(current.saturating_add(cost)) {
            if let Some(at) = self.fits_from(previous, room, offset) {
                return if at == offset {
                    Admission::Now
                } else {
                    Admission::After(Duration::from_nanos(at - offset))
                };
            }
        }
        // In the next window, where this one becomes the previous.
        let to_next = period - offset;
        let at = self.fits_from(current, limit - cost, 0).unwrap_or(period);
        Admission::After(Duration::from_nanos(to_next.saturating_add(at)))
    }

    fn take(&self, state: &mut SlidingWindowCounterState, cost: u64, now: Duration) {
        let window = nanos(now) / self.quota.period_nanos();
        let (previous, current) = Self::counts(state, window);
        *state = SlidingWindowCounterState {
            window: window.max(state.window),
            previous,
            current: current.saturating_add(cost),
        };
    }

    fn capacity(&self) -> u64 {
        self.quota.limit()
    }

    fn available(&self, state: &SlidingWindowCounterState, now: Duration) -> u64 {
        let now = nanos(now);
        let period = self.quota.period_nanos();
        let (window, offset) = (now / period, now % period);
        let (previous, current) = Self::counts(state, window);
        let weighted =
            (u128::from(previous) * u128::from(period - offset)).div_ceil(u128::from(period));
        let used = u64::try_from(weighted)
            .unwrap_or(u64::MAX)
            .saturating_add(current);
        self.quota.limit().saturating_sub(used)
    }

    fn give(
        &self,
        state: &mut SlidingWindowCounterState,
        amount: u64,
        taken_at: Duration,
        now: Duration,
    ) {
        let period = self.quota.period_nanos();
        let window = nanos(now) / period;
        let taken = nanos(taken_at) / period;
        let (previous, current) = Self::counts(state, window);
        // From the window the refunded admission was counted in, if it is still counted.
        let (previous, current) = if taken >= window {
            (previous, current.saturating_sub(amount))
        } else if taken.saturating_add(1) == window {
            (previous.saturating_sub(amount), current)
        } else {
            (previous, current)
        };
        *state = SlidingWindowCounterState {
            window: window.max(state.window),
            previous,
            current,
        };
    }

    fn is_fresh(&self, state: &SlidingWindowCounterState, now: Duration) -> bool {
        Self::counts(state, nanos(now) / self.quota.period_nanos()) == (0, 0)
    }
}
