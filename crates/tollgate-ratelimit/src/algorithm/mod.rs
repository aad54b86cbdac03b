//! The admission algorithms, pure: each is a function of its state, a cost and `now`.
//!
//! An algorithm never reads a clock. `now` is the time since an origin the caller picks (the
//! layer uses the tokio instant it was built at), so the same code runs under tokio's paused
//! clock, in property tests, and against a shared store.
//!
//! Every algorithm answers two questions, so several quotas can admit a request all or nothing:
//! [`Algorithm::wait`] — how long until this cost fits, without changing anything (or
//! [`Admission::Never`] when it cannot ever fit) — and [`Algorithm::take`], which spends it.
//! [`Algorithm::give`] refunds what a request was charged beyond its actual use, and
//! [`Algorithm::available`] with [`Algorithm::take`] lowers a quota to what the provider reports.
//!
//! | algorithm | admits | state |
//! |---|---|---|
//! | [`TokenBucket`] | up to `burst` at once, refilled continuously at `limit / period` | tokens and the time they were counted |
//! | [`Gcra`] | the same as a token bucket, as a single theoretical arrival time | one integer |
//! | [`FixedWindow`] | up to `limit` per calendar window of `period` | the window and its count |
//! | [`SlidingWindowLog`] | up to `limit` in any `period` before now, exactly | one entry per admission |
//! | [`SlidingWindowCounter`] | up to about `limit` in any `period`: the previous window weighted by its overlap | two counts |
//!
//! # Examples
//!
//! ```
//! use std::num::NonZeroU64;
//! use std::time::Duration;
//! use tollgate_ratelimit::algorithm::{Admission, Algorithm, Gcra, Quota};
//!
//! let gcra = Gcra::new(Quota::per_second(NonZeroU64::new(10).unwrap()));
//! let mut state = Default::default();
//! let now = Duration::ZERO;
//! assert_eq!(gcra.wait(&state, 10, now), Admission::Now);
//! gcra.take(&mut state, 10, now);
//! // The burst is spent: one more unit comes after a tenth of a second.
//! assert_eq!(gcra.wait(&state, 1, now), Admission::After(Duration::from_millis(100)));
//! // More than the burst can never be admitted.
//! assert_eq!(gcra.wait(&state, 11, now), Admission::Never);
//! ```

mod fixed_window;
mod gcra;
mod quota;
mod sliding_window;
mod token_bucket;

use std::time::Duration;

pub(crate) use tollgate_core::clock::nanos;

pub use fixed_window::{FixedWindow, FixedWindowState};
pub use gcra::{Gcra, GcraState};
pub use quota::{InvalidPeriod, Quota};
pub use sliding_window::{
    SlidingWindowCounter, SlidingWindowCounterState, SlidingWindowLog, SlidingWindowLogState,
};
pub use token_bucket::{TokenBucket, TokenBucketState};

/// When a cost can be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Now.
    Now,
    /// After this long, if nothing else is admitted first.
    After(Duration),
    /// Never: the cost is larger than the quota can ever hold at once.
    Never,
}

/// An admission algorithm over its own state.
pub trait Algorithm {
    /// The state of one quota (one key).
    type State: Default;

    /// When `cost` fits, without changing `state`.
    fn wait(&self, state: &Self::State, cost: u64, now: Duration) -> Admission;

    /// Spends `cost`. Call it only when [`wait`](Self::wait) said [`Admission::Now`] for the
    /// same `now`; otherwise the state goes into debt, which later admissions repay.
    fn take(&self, state: &mut Self::State, cost: u64, now: Duration);

    /// Spends `cost` if it fits now, and says so; otherwise changes nothing and says when it
    /// would fit. The same as [`wait`](Self::wait), then [`take`](Self::take) on
    /// [`Admission::Now`], in one step where the algorithm can.
    fn try_take(&self, state: &mut Self::State, cost: u64, now: Duration) -> Admission {
        let admission = self.wait(state, cost, now);
        if admission == Admission::Now {
            self.take(state, cost, now);
        }
        admission
    }

    /// The largest cost it can ever admit at once.
    fn capacity(&self) -> u64;

    /// How much could be admitted at `now` (zero while in debt).
    fn available(&self, state: &Self::State, now: Duration) -> u64;

    /// Gives back up to `amount` of what was taken at `taken_at` (a refund), never beyond a
    /// fresh state. The windows give back only from the window, or the log entries, that
    /// `taken_at` counted in — a refund never frees room another admission took; the bucket
    /// and GCRA give back at once.
    fn give(&self, state: &mut Self::State, amount: u64, taken_at: Duration, now: Duration);

    /// Leaves at most `keep` available at `until`, so that from then on the limit refills at
    /// its own pace: after a pause, waiters leave one after another, not all at once. The
    /// bucket and GCRA do it exactly; the windows, which refill by the window, do nothing.
    fn drain(&self, state: &mut Self::State, keep: u64, until: Duration, now: Duration) {
        let _ = (state, keep, until, now);
    }

    /// Whether `state` is, at `now`, as good as a fresh one: nothing taken is still counted, so
    /// forgetting it loses nothing.
    fn is_fresh(&self, state: &Self::State, now: Duration) -> bool;
}

/// `a * b / c`, rounded up, in 128 bits, saturating at `u64::MAX`.
pub(crate) fn mul_div_ceil(a: u128, b: u128, c: u128) -> u64 {
    let n = a.saturating_mul(b);
    u64::try_from(n.div_ceil(c)).unwrap_or(u64::MAX)
}
