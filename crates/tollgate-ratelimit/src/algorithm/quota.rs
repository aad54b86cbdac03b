//! [`Quota`]: how much, per how long, with what burst.

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

/// A quota: `limit` units (requests or tokens) per `period`, with bursts of up to `burst` units.
///
/// Built by `const fn`s from a [`NonZeroU64`] and a period, so a zero quota cannot be written;
/// the only fallible constructor, [`Quota::new`], rejects a zero or absurd period.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_ratelimit::algorithm::Quota;
///
/// // OpenAI Tier 3 on gpt-4o: 10M tokens per minute, bursts of the whole minute's allowance.
/// let tpm = Quota::per_minute(NonZeroU64::new(10_000_000).unwrap());
/// assert_eq!(tpm.burst(), 10_000_000);
///
/// // 500 requests per minute, at most 50 at once.
/// let rpm = Quota::per_minute(NonZeroU64::new(500).unwrap()).with_burst(NonZeroU64::new(50).unwrap());
/// assert_eq!((rpm.limit(), rpm.burst(), rpm.period()), (500, 50, Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: NonZeroU64,
    period_nanos: u64,
    burst: NonZeroU64,
    /// `period_nanos` and `limit` divided by their greatest common divisor: the token bucket
    /// counts in units of one token × `unit` nanoseconds of period, refilled by `rate` units a
    /// nanosecond — exactly what it would count in token × nanoseconds, in numbers small
    /// enough for 64-bit arithmetic on everyday quotas. Derived from the three above.
    unit: u64,
    rate: u64,
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("limit", &self.limit)
            .field("period_nanos", &self.period_nanos)
            .field("burst", &self.burst)
            .finish()
    }
}

/// The greatest common divisor of `a` and `b` (`b` when `a` is zero).
const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while a != 0 {
        let r = b % a;
        b = a;
        a = r;
    }
    b
}

/// A [`Quota::new`] period that is zero or longer than about 584 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPeriod {
    period: Duration,
}

impl InvalidPeriod {
    pub(crate) const fn new(period: Duration) -> Self {
        InvalidPeriod { period }
    }

    /// The period that was given.
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl fmt::Display for InvalidPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid quota period {:?}: must be more than zero and at most u64::MAX nanoseconds",
            self.period
        )
    }
}

impl std::error::Error for InvalidPeriod {}

impl Quota {
    /// `limit` units per `period`, burst `limit`.
    ///
    /// # Errors
    ///
    /// [`InvalidPeriod`] when `period` is zero or does not fit in `u64` nanoseconds.
    pub const fn new(limit: NonZeroU64, period: Duration) -> Result<Self, InvalidPeriod> {
        let nanos = period.as_nanos();
        if nanos == 0 || nanos > u64::MAX as u128 {
            return Err(InvalidPeriod { period });
        }
        Ok(Quota::from_parts(limit, nanos as u64))
    }

    /// `limit` per `period_nanos` (not zero), burst `limit`.
    const fn from_parts(limit: NonZeroU64, period_nanos: u64) -> Self {
        let divisor = gcd(limit.get(), period_nanos);
        Quota {
            limit,
            period_nanos,
            burst: limit,
            unit: period_nanos / divisor,
            rate: limit.get() / divisor,
        }
    }

    /// `limit` per second.
    pub const fn per_second(limit: NonZeroU64) -> Self {
        Quota::from_parts(limit, 1_000_000_000)
    }

    /// `limit` per minute.
    pub const fn per_minute(limit: NonZeroU64) -> Self {
        Quota::from_parts(limit, 60_000_000_000)
    }

    /// `limit` per day.
    pub const fn per_day(limit: NonZeroU64) -> Self {
        Quota::from_parts(limit, 86_400_000_000_000)
    }

    /// Allows bursts of up to `burst` units (the capacity of a token bucket, the tolerance of
    /// GCRA). Window algorithms admit at most `limit` per window and ignore it.
    #[must_use]
    pub const fn with_burst(mut self, burst: NonZeroU64) -> Self {
        self.burst = burst;
        self
    }

    /// Units per period.
    pub const fn limit(&self) -> u64 {
        self.limit.get()
    }

    /// The period.
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos)
    }

    /// The burst.
    pub const fn burst(&self) -> u64 {
        self.burst.get()
    }

    pub(crate) const fn period_nanos(&self) -> u64 {
        self.period_nanos
    }

    /// The period's nanoseconds in the token bucket's unit: `period_nanos / gcd(limit,
    /// period_nanos)`.
    pub(crate) const fn unit(&self) -> u64 {
        self.unit
    }

    /// The limit in the token bucket's unit: `limit / gcd(limit, period_nanos)`, the units
    /// refilled per nanosecond.
    pub(crate) const fn rate(&self) -> u64 {
        self.rate
    }
}
