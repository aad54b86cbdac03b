//! [`Spread`]: a random extra on top of a server-given delay, so that callers told the same
//! delay do not all come back at the same instant.

use std::time::Duration;

/// How a delay the server asked for is spread, from a draw `r` in `[0, 1)`: the server's delay
/// `d` is a **floor**, and a random extra goes **on top**, never below it.
///
/// | mode | delay |
/// |---|---|
/// | `None` | `d` |
/// | `Proportional { percent: p, max: m }` | `d + r × min(d × p %, m)` |
///
/// # Why
///
/// A rate limit answers every caller that hit it in the same window with the same
/// `retry-after`. Callers that each wait exactly that long come back in the same millisecond
/// and meet the limit again together: a herd. Backoff jitter does not help, as no backoff is
/// computed when the server gives a delay. Spreading by a share of the delay scales the window
/// the herd is spread over with the server's own idea of how long the wait is (up to 1.5 s
/// for `retry-after: 1`, 150 ms for `retry-after-ms: 100`), and the cap keeps a long wait from
/// growing by more than a few seconds. The same idea, with the same 5 s bound, is in AWS's
/// 2026 SDK retry update, which honours `x-amz-retry-after` only within `[computed backoff,
/// computed backoff + 5 s]`: the server's delay is a floor, spread by the client.
///
/// [`RetryPolicy::default`](crate::RetryPolicy) spreads by up to 50 %, at most 5 s
/// ([`Spread::default`]); [`RetryPolicy::openai`](crate::RetryPolicy::openai) waits exactly,
/// as the SDK does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_retry::Spread;
///
/// let spread = Spread::default(); // up to 50 %, at most 5 s
/// let secs = Duration::from_secs;
/// assert_eq!(spread.bound(secs(1)), Duration::from_millis(500));
/// assert_eq!(spread.bound(secs(60)), secs(5));
/// assert_eq!(spread.delay(secs(1), 0.0), secs(1)); // never below the server's delay
/// assert_eq!(spread.delay(secs(1), 0.5), Duration::from_millis(1_250));
/// assert_eq!(spread.delay(secs(60), 0.5), Duration::from_millis(62_500));
///
/// assert_eq!(Spread::None.delay(secs(1), 0.9), secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Spread {
    /// Exactly the server's delay. Every caller told "retry after 1 s" comes back at the same
    /// instant, unless something below (a `RateLimitLayer`) paces them.
    None,
    /// Up to `percent` % of the delay on top, and at most `max`.
    Proportional {
        /// The largest extra as a share of the delay, in percent (above 100 allowed).
        percent: u16,
        /// The largest extra, whatever the delay.
        max: Duration,
    },
}

impl Default for Spread {
    /// Up to 50 % of the delay, at most 5 s: `[d, d + min(d / 2, 5 s)]`.
    fn default() -> Self {
        Spread::Proportional {
            percent: 50,
            max: Duration::from_secs(5),
        }
    }
}

impl Spread {
    /// The largest extra on top of `delay`: zero for [`None`](Spread::None).
    pub fn bound(&self, delay: Duration) -> Duration {
        match *self {
            Spread::None => Duration::ZERO,
            Spread::Proportional { percent, max } => {
                // At most about 1.8e28 × 65535: no overflow in u128.
                let share = delay.as_nanos() * percent as u128 / 100;
                from_nanos(share).min(max)
            }
        }
    }

    /// The wait for a server delay `delay` and a random `draw` in `[0, 1)` (values outside are
    /// clamped; NaN counts as 0): within `[delay, delay + bound(delay)]`, saturating at
    /// [`Duration::MAX`]. A pure function.
    pub fn delay(&self, delay: Duration, draw: f64) -> Duration {
        let bound = self.bound(delay);
        if bound.is_zero() {
            return delay;
        }
        let r = if draw.is_nan() {
            0.0
        } else {
            draw.clamp(0.0, 1.0)
        };
        let bound_nanos = bound.as_nanos();
        // `as` saturates; rounding through `f64` may land a little above the bound: `min` keeps
        // it within.
        let extra = ((bound_nanos as f64 * r) as u128).min(bound_nanos);
        delay.saturating_add(from_nanos(extra))
    }
}

/// Nanoseconds as a duration, saturating at [`Duration::MAX`].
const fn from_nanos(nanos: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    let secs = nanos / PER_SEC;
    if secs > u64::MAX as u128 {
        return Duration::MAX;
    }
    Duration::new(secs as u64, (nanos % PER_SEC) as u32)
}
