//! [`Cap`]: a fixed cap, or one that adapts to the provider's signals.

use std::time::Duration;

/// How the cap on in-flight requests is set.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Cap {
    /// A fixed cap.
    Fixed(u32),
    /// Additive increase, multiplicative decrease: each success adds `1 / limit` (one per
    /// limit's worth of successes); an overload, a 429 or a timeout multiplies the limit by
    /// `backoff`. Within `[min, max]`, starting at `initial`.
    Aimd {
        /// The starting cap.
        initial: u32,
        /// The lowest cap.
        min: u32,
        /// The highest cap.
        max: u32,
        /// The factor after a drop signal, in (0, 1).
        backoff: f64,
    },
    /// Latency-based (a gradient, after Netflix's concurrency limits): the cap follows
    /// `limit × (min latency / current latency) + √limit`, smoothed, so queueing at the
    /// provider (latency above its unloaded minimum) lowers it before errors do; drop signals
    /// halve it. Within `[min, max]`, starting at `initial`.
    Gradient {
        /// The starting cap.
        initial: u32,
        /// The lowest cap.
        min: u32,
        /// The highest cap.
        max: u32,
        /// Latency at or below this is never a reason to lower the cap.
        tolerance: Duration,
    },
}

impl Cap {
    pub(crate) fn initial(&self) -> u32 {
        match *self {
            Cap::Fixed(n) => n.max(1),
            Cap::Aimd {
                initial, min, max, ..
            }
            | Cap::Gradient {
                initial, min, max, ..
            } => initial.clamp(min.max(1), max.max(min.max(1))),
        }
    }

    pub(crate) fn is_adaptive(&self) -> bool {
        !matches!(self, Cap::Fixed(_))
    }

    pub(crate) fn measures_latency(&self) -> bool {
        matches!(self, Cap::Gradient { .. })
    }
}

/// The adaptive state of one gate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Adaptive {
    /// The cap, unrounded.
    limit: f64,
    /// The lowest latency seen, an estimate of the unloaded one.
    min_latency: Option<Duration>,
    /// The recent latency, smoothed.
    latency: Option<Duration>,
}

impl Adaptive {
    pub(crate) fn new(limit: &Cap) -> Self {
        Adaptive {
            limit: f64::from(limit.initial()),
            min_latency: None,
            latency: None,
        }
    }

    /// The cap after a completed request; `dropped` when it was an overload, a 429 or a
    /// timeout.
    pub(crate) fn update(&mut self, limit: &Cap, dropped: bool, latency: Option<Duration>) -> u32 {
        let (min, max) = match *limit {
            Cap::Fixed(n) => return n.max(1),
            Cap::Aimd { min, max, .. } | Cap::Gradient { min, max, .. } => {
                let min = f64::from(min.max(1));
                (min, f64::from(max).max(min))
            }
        };
        let next = match *limit {
            Cap::Aimd { backoff, .. } => {
                if dropped {
                    let backoff = if backoff > 0.0 && backoff < 1.0 {
                        backoff
                    } else {
                        0.5
                    };
                    self.limit * backoff
                } else {
                    self.limit + 1.0 / self.limit.max(1.0)
                }
            }
            Cap::Gradient { tolerance, .. } => {
                if dropped {
                    self.limit / 2.0
                } else if let Some(sample) = latency {
                    let smoothed = match self.latency {
                        Some(previous) => previous.mul_f64(0.8) + sample.mul_f64(0.2),
                        None => sample,
                    };
                    self.latency = Some(smoothed);
                    // The unloaded minimum follows the samples down at once, and drifts up
                    // slowly (1 % a sample), so one fast outlier cannot pin the cap low.
                    let floor = match self.min_latency {
                        Some(m) if sample < m => sample,
                        Some(m) => m.mul_f64(1.01).min(sample),
                        None => sample,
                    };
                    self.min_latency = Some(floor);
                    let unloaded = floor.max(tolerance).as_secs_f64();
                    let current = smoothed.as_secs_f64().max(f64::MIN_POSITIVE);
                    let gradient = (unloaded / current).clamp(0.5, 1.0);
                    let target = self.limit * gradient + self.limit.sqrt();
                    self.limit * 0.8 + target * 0.2
                } else {
                    self.limit
                }
            }
            Cap::Fixed(_) => unreachable!("returned above"),
        };
        self.limit = if next.is_nan() {
            min
        } else {
            next.clamp(min, max)
        };
        self.limit as u32
    }
}
