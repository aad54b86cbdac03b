//! [`Backoff`] and [`Jitter`]: how long to wait before a retry when the server did not say.

use std::num::NonZeroU32;
use std::time::Duration;

/// How a backoff delay is randomised, from a draw `r` in `[0, 1)`; `d` is the exponential
/// delay `min(base × factor^n, max)`.
///
/// | mode | delay |
/// |---|---|
/// | `None` | `d` |
/// | `Full` | `r × d` |
/// | `Equal` | `d / 2 + r × d / 2` |
/// | `Decorrelated` | `min(max, base + r × (3 × previous − base))`, `previous` the last delay (at least `base`) |
/// | `Proportional { percent: p }` | `d × (1 − p% + 2 × p% × r)`: within ±p% of `d` |
/// | `Between { low, high }` | `d × (low% + (high − low)% × r)`; the official SDKs use 75–100 |
///
/// Every result is then kept within the policy's minimum delay and the backoff's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness.
    None,
    /// Anywhere from zero to the delay.
    Full,
    /// Half the delay, plus up to the other half.
    Equal,
    /// AWS's decorrelated jitter: up to three times the previous delay.
    Decorrelated,
    /// Within ± `percent` of the delay.
    Proportional {
        /// The spread, 0 to 100.
        percent: u8,
    },
    /// Between `low` and `high` percent of the delay.
    Between {
        /// The lowest factor, in percent.
        low: u16,
        /// The highest factor, in percent.
        high: u16,
    },
}

/// Exponential backoff: `base × factor^n`, at most `max`, randomised by a [`Jitter`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_retry::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(500), Duration::from_secs(8))
///     .with_jitter(Jitter::None);
/// let delays: Vec<_> = (0..6).map(|n| backoff.delay(n, Duration::ZERO, 0.0)).collect();
/// let ms = Duration::from_millis;
/// assert_eq!(delays, [ms(500), ms(1_000), ms(2_000), ms(4_000), ms(8_000), ms(8_000)]);
///
/// // The official SDKs' jitter: 75% to 100% of the delay.
/// let sdk = backoff.with_jitter(Jitter::Between { low: 75, high: 100 });
/// assert_eq!(sdk.delay(1, Duration::ZERO, 0.0), ms(750));
/// assert_eq!(sdk.delay(1, Duration::ZERO, 0.5), ms(875));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: Duration,
    factor: NonZeroU32,
    max: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Doubling from `base`, at most `max`, with [`Jitter::Full`]. A `max` below `base` is
    /// raised to `base`.
    pub const fn exponential(base: Duration, max: Duration) -> Self {
        let max = if max.as_nanos() < base.as_nanos() {
            base
        } else {
            max
        };
        Backoff {
            base,
            factor: NonZeroU32::new(2).expect("2 is not zero"),
            max,
            jitter: Jitter::Full,
        }
    }

    /// Multiplies by `factor` each retry instead of 2.
    #[must_use]
    pub const fn with_factor(mut self, factor: NonZeroU32) -> Self {
        self.factor = factor;
        self
    }

    /// Randomises with `jitter`.
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The first delay, before jitter.
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The multiplier.
    pub const fn factor(&self) -> u32 {
        self.factor.get()
    }

    /// The longest delay.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The jitter.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The delay before retry `retry` (0 for the first), given the previous delay (for
    /// [`Jitter::Decorrelated`]) and a random `draw` in `[0, 1)` (values outside are clamped;
    /// NaN counts as 0). Never more than [`max`](Self::max); a pure function.
    pub fn delay(&self, retry: u32, previous: Duration, draw: f64) -> Duration {
        let r = if draw.is_nan() {
            0.0
        } else {
            draw.clamp(0.0, 1.0)
        };
        let max = self.max.as_nanos() as f64;
        let base = self.base.as_nanos() as f64;
        let growth = f64::from(self.factor.get()).powi(i32::try_from(retry).unwrap_or(i32::MAX));
        // 0 × ∞ is NaN (and `NaN.min(max)` is `max`): a zero base stays zero however far it
        // grows.
        let grown = base * growth;
        let d = if grown.is_nan() { 0.0 } else { grown.min(max) };
        let jittered = match self.jitter {
            Jitter::None => d,
            Jitter::Full => r * d,
            Jitter::Equal => d / 2.0 + r * d / 2.0,
            Jitter::Decorrelated => {
                let previous = (previous.as_nanos() as f64).max(base);
                base + r * (3.0 * previous - base)
            }
            Jitter::Proportional { percent } => {
                let p = f64::from(percent.min(100)) / 100.0;
                d * (1.0 - p + 2.0 * p * r)
            }
            Jitter::Between { low, high } => {
                let (low, high) = (f64::from(low.min(high)), f64::from(low.max(high)));
                d * (low + (high - low) * r) / 100.0
            }
        };
        // `as` saturates and maps NaN to zero: no input panics. Rounding through `f64` may land
        // a little above `max`: the final `min` keeps it below.
        Duration::from_nanos(jittered.clamp(0.0, max) as u64).min(self.max)
    }
}
