//! [`Origin`]: a layer's own time line, counted from when it was built on tokio's clock.
//!
//! Layers keep times in atomics (a breaker's open-until, a target's cooldown) or hand them to
//! algorithms that take `now` as an argument (a quota, a retry budget). Both want a number
//! rather than an [`Instant`]: the time since an origin, as a [`Duration`] or as nanoseconds
//! in a `u64`. An `Origin` is that fixed point. It converts both ways: [`elapsed`] and
//! [`offset`] from an instant to a time since the origin, [`instant`] back again.
//!
//! Every reading is on [`tokio::time::Instant`], never the standard library's, so a test on
//! tokio's paused clock (`#[tokio::test(start_paused = true)]`) steps a layer's time exactly.
//! Only the methods named `elapsed*` read the clock; the conversions are arithmetic.
//!
//! Conversions saturate rather than panic: an instant before the origin is the origin, a
//! time too large for nanoseconds in a `u64` (about 584 years) is `u64::MAX`, and an offset
//! is clamped to about 30 years before it is turned back into an instant.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tollgate_core::clock::Origin;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let origin = Origin::new();
//! tokio::time::advance(Duration::from_millis(1_500)).await;
//! assert_eq!(origin.elapsed(), Duration::from_millis(1_500));
//! assert_eq!(origin.elapsed_nanos(), 1_500_000_000);
//!
//! // A cooldown kept as nanoseconds in an atomic, and the instant to sleep until.
//! let until = origin.elapsed_nanos() + 2_000_000_000;
//! assert_eq!(origin.instant_nanos(until), origin.start() + Duration::from_millis(3_500));
//! # }
//! ```
//!
//! [`elapsed`]: Origin::elapsed
//! [`offset`]: Origin::offset
//! [`instant`]: Origin::instant

use std::time::Duration;

use tokio::time::Instant;

/// The largest offset turned back into an instant: far enough to mean never, near enough for
/// any platform's `Instant`.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A fixed instant on tokio's clock that a layer counts its time from. `Copy`: every clone of a
/// layer keeps the same one, so they all count on one time line.
///
/// See the [module docs](self) for an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(Instant);

impl Origin {
    /// An origin at the current instant of tokio's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::clock::Origin;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let origin = Origin::new();
    /// assert_eq!(origin.elapsed(), Duration::ZERO);
    /// # }
    /// ```
    #[inline]
    pub fn new() -> Self {
        Origin(Instant::now())
    }

    /// An origin at `instant`.
    #[inline]
    pub const fn at(instant: Instant) -> Self {
        Origin(instant)
    }

    /// The instant the origin stands at.
    #[inline]
    pub const fn start(self) -> Instant {
        self.0
    }

    /// The time since the origin, read from tokio's clock now.
    #[inline]
    pub fn elapsed(self) -> Duration {
        self.offset(Instant::now())
    }

    /// The time since the origin in nanoseconds, read from tokio's clock now (`u64::MAX` after
    /// about 584 years).
    #[inline]
    pub fn elapsed_nanos(self) -> u64 {
        nanos(self.elapsed())
    }

    /// `at` as the time since the origin; zero for an instant before it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::clock::Origin;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let origin = Origin::new();
    /// let later = origin.start() + Duration::from_secs(3);
    /// assert_eq!(origin.offset(later), Duration::from_secs(3));
    /// assert_eq!(Origin::at(later).offset(origin.start()), Duration::ZERO);
    /// # }
    /// ```
    #[inline]
    pub fn offset(self, at: Instant) -> Duration {
        at.saturating_duration_since(self.0)
    }

    /// `at` as nanoseconds since the origin (zero before it, `u64::MAX` past about 584 years).
    #[inline]
    pub fn offset_nanos(self, at: Instant) -> u64 {
        nanos(self.offset(at))
    }

    /// The instant `offset` after the origin, the offset clamped to about 30 years (so that a
    /// `Duration::MAX` wait is an instant that never comes, not a panic).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate_core::clock::Origin;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let origin = Origin::new();
    /// let at = origin.instant(Duration::from_secs(2));
    /// assert_eq!(origin.offset(at), Duration::from_secs(2));
    /// assert!(origin.instant(Duration::MAX) > origin.instant(Duration::from_secs(86_400 * 365)));
    /// # }
    /// ```
    #[inline]
    pub fn instant(self, offset: Duration) -> Instant {
        self.0.checked_add(offset.min(FAR)).unwrap_or(self.0)
    }

    /// The instant `nanos` nanoseconds after the origin, clamped as by [`instant`](Self::instant).
    #[inline]
    pub fn instant_nanos(self, nanos: u64) -> Instant {
        self.instant(Duration::from_nanos(nanos))
    }
}

impl Default for Origin {
    /// [`Origin::new`]: the current instant.
    fn default() -> Self {
        Origin::new()
    }
}

/// `duration` in nanoseconds, `u64::MAX` when it does not fit (past about 584 years).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::clock::nanos;
///
/// assert_eq!(nanos(Duration::from_millis(3)), 3_000_000);
/// assert_eq!(nanos(Duration::MAX), u64::MAX);
/// ```
#[inline]
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[tokio::test(start_paused = true)]
    async fn counts_on_tokios_paused_clock() {
        let origin = Origin::new();
        assert_eq!(origin.elapsed_nanos(), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(origin.elapsed(), Duration::from_secs(2));
        assert_eq!(origin.elapsed_nanos(), 2 * SECOND);
        assert_eq!(origin.offset(Instant::now()), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn converts_both_ways() {
        let origin = Origin::new();
        let at = origin.instant_nanos(5 * SECOND + 7);
        assert_eq!(at, origin.start() + Duration::from_nanos(5 * SECOND + 7));
        assert_eq!(origin.offset_nanos(at), 5 * SECOND + 7);
        assert_eq!(origin.instant(origin.offset(at)), at);
    }

    #[tokio::test(start_paused = true)]
    async fn saturates_rather_than_panics() {
        let origin = Origin::new();
        tokio::time::advance(Duration::from_secs(1)).await;
        // An instant before the origin is the origin.
        assert_eq!(Origin::new().offset(origin.start()), Duration::ZERO);
        assert_eq!(Origin::new().offset_nanos(origin.start()), 0);
        // An offset that would overflow is about 30 years away, the same for every huge one.
        assert_eq!(origin.instant(Duration::MAX), origin.start() + FAR);
        assert_eq!(origin.instant_nanos(u64::MAX), origin.start() + FAR);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn is_copy_send_and_sync() {
        fn check<T: Copy + Send + Sync + std::fmt::Debug>() {}
        check::<Origin>();
    }
}
