//! [`BreakerConfig`]: when a breaker trips, how long it stays open, how it probes.

use std::num::NonZeroU32;
use std::time::Duration;

use tollgate_core::ClassSet;
use tollgate_core::keyed::DEFAULT_MAX_KEYS;

/// What trips a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trip {
    /// This many counted failures in a row.
    ConsecutiveFailures(NonZeroU32),
    /// Counted failures reach `percent` of the calls in `window`, once it holds `min_calls`.
    FailureRate {
        /// The share that trips, 1 to 100.
        percent: u8,
        /// Over which calls.
        window: CallWindow,
        /// Calls the window must hold before the rate counts.
        min_calls: u32,
    },
    /// Calls slower than `slower_than` reach `percent` of the calls in `window`, once it holds
    /// `min_calls` (failures or not).
    SlowCallRate {
        /// A call is slow above this.
        slower_than: Duration,
        /// The share that trips, 1 to 100.
        percent: u8,
        /// Over which calls.
        window: CallWindow,
        /// Calls the window must hold before the rate counts.
        min_calls: u32,
    },
}

/// The calls a rate is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallWindow {
    /// The last `n` calls.
    Calls(NonZeroU32),
    /// The calls of the last `period` (counted in tenths of it).
    Time(Duration),
}

/// How a breaker behaves.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_circuit_breaker::{BreakerConfig, Trip, CallWindow};
///
/// // The common pattern: 5 failures in a row, open 60 s, 3 half-open probes.
/// let default = BreakerConfig::default();
/// assert_eq!(default.open_for, Duration::from_secs(60));
///
/// // Half the calls of the last 30 s failing, once there were 20.
/// let by_rate = BreakerConfig::default().with_trip(Trip::FailureRate {
///     percent: 50,
///     window: CallWindow::Time(Duration::from_secs(30)),
///     min_calls: 20,
/// });
/// # let _ = by_rate;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// What trips it.
    pub trip: Trip,
    /// How long it stays open after its first trip.
    pub open_for: Duration,
    /// Each trip without closing in between multiplies the open period by this…
    pub open_growth: u32,
    /// …up to this.
    pub max_open_for: Duration,
    /// How many calls half-open admits at once, and how many must succeed to close.
    pub probes: NonZeroU32,
    /// Which verdict classes count as failures; the rest count as successes (the target
    /// answered).
    pub counted: ClassSet,
    /// The most keys a keyed breaker holds a breaker for (default 100,000). Beyond, a new key
    /// evicts the least recently used breakers that no request holds — losing their counts
    /// and open periods — or, when every one is held, is refused with
    /// [`TooManyKeys`](tollgate_core::keyed::TooManyKeys).
    pub max_keys: usize,
}

impl Default for BreakerConfig {
    /// 5 counted failures in a row; open 60 s, doubling on repeated trips up to 10 min; 3
    /// probes; target-health failures counted; at most 100,000 keys.
    fn default() -> Self {
        BreakerConfig {
            trip: Trip::ConsecutiveFailures(NonZeroU32::new(5).expect("not zero")),
            open_for: Duration::from_secs(60),
            open_growth: 2,
            max_open_for: Duration::from_secs(600),
            probes: NonZeroU32::new(3).expect("not zero"),
            counted: ClassSet::TARGET_HEALTH,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl BreakerConfig {
    /// Tripped by `trip`.
    #[must_use]
    pub fn with_trip(mut self, trip: Trip) -> Self {
        self.trip = trip;
        self
    }

    /// Open for `open_for` after a first trip, growing by `growth` per repeated trip up to
    /// `max`.
    #[must_use]
    pub fn with_open_for(mut self, open_for: Duration, growth: u32, max: Duration) -> Self {
        self.open_for = open_for;
        self.open_growth = growth.max(1);
        self.max_open_for = max.max(open_for);
        self
    }

    /// With `n` half-open probes.
    #[must_use]
    pub fn with_probes(mut self, n: NonZeroU32) -> Self {
        self.probes = n;
        self
    }

    /// Counting `classes` as failures.
    #[must_use]
    pub fn with_counted(mut self, classes: ClassSet) -> Self {
        self.counted = classes;
        self
    }

    /// Holding a breaker for at most `max_keys` keys (see [`max_keys`](Self::max_keys)).
    #[must_use]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The open period after `trips` earlier trips without closing.
    pub fn open_period(&self, trips: u32) -> Duration {
        let growth = u128::from(self.open_growth.max(1)).saturating_pow(trips);
        let nanos = self.open_for.as_nanos().saturating_mul(growth);
        let max = self.max_open_for.max(self.open_for);
        if nanos >= max.as_nanos() {
            max
        } else {
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        }
    }
}
