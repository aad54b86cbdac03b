//! The seeded RNG, latency sampling and fault draws.

use std::time::Duration;

use crate::config::{Faults, Latency, StreamFaults};

/// SplitMix64: tiny, fast, and good enough for fault injection.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn next_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// z for the 99th percentile of the standard normal.
const Z99: f64 = 2.326_347_874_040_840_8;

/// Samples a latency.
pub(crate) fn sample_latency(latency: &Latency, rng: &mut Rng) -> Duration {
    let ms = match *latency {
        Latency::Fixed { ms } => ms as f64,
        Latency::Uniform { min_ms, max_ms } => {
            let span = max_ms.saturating_sub(min_ms) as f64;
            (min_ms as f64 + rng.next_f64() * (span + 1.0)).min(max_ms as f64)
        }
        Latency::LogNormal { median_ms, p99_ms } => {
            let median = (median_ms.max(1)) as f64;
            let p99 = (p99_ms.max(median_ms).max(1)) as f64;
            let sigma = (p99.ln() - median.ln()) / Z99;
            let v = (median.ln() + sigma * rng.next_normal()).exp();
            v.min(p99 * 10.0)
        }
    };
    if ms.is_finite() && ms > 0.0 {
        Duration::from_micros((ms * 1000.0) as u64)
    } else {
        Duration::ZERO
    }
}

/// What the fault draw decided for one admitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Reset,
    Hang,
    Status(u16),
}

/// One draw per request: reset, hang, then the error statuses in ascending order, cumulatively.
pub(crate) fn draw_fault(faults: &Faults, rng: &mut Rng) -> Option<Fault> {
    if faults.reset_rate <= 0.0 && faults.hang_rate <= 0.0 && faults.error_rates.is_empty() {
        return None;
    }
    let u = rng.next_f64();
    let mut acc = faults.reset_rate;
    if u < acc {
        return Some(Fault::Reset);
    }
    acc += faults.hang_rate;
    if u < acc {
        return Some(Fault::Hang);
    }
    for (&status, &p) in &faults.error_rates {
        acc += p;
        if u < acc {
            return Some(Fault::Status(status));
        }
    }
    None
}

/// How a faulted stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Nothing more, never an end.
    Stall,
    /// The mid-stream error event, then a clean end without the terminal event.
    Error,
    /// The connection is closed abruptly.
    Cut,
}

/// What the stream-fault draws decided for one streamed answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamPlan {
    /// Extra wait before the first event.
    pub(crate) first_token_delay: Duration,
    /// The fault and the number of events sent before it.
    pub(crate) end: Option<(StreamEnd, u64)>,
}

/// Up to two draws per streamed answer: the first-token delay (if configured), then stall,
/// error or cut cumulatively (if any is configured).
pub(crate) fn draw_stream_faults(faults: &StreamFaults, rng: &mut Rng) -> StreamPlan {
    let mut plan = StreamPlan::default();
    if let Some(d) = &faults.first_token_delay {
        if rng.next_f64() < d.rate {
            plan.first_token_delay = d.delay();
        }
    }
    let ends = [
        (StreamEnd::Stall, faults.stall),
        (StreamEnd::Error, faults.error),
        (StreamEnd::Cut, faults.cut),
    ];
    if ends.iter().any(|(_, f)| f.is_some()) {
        let u = rng.next_f64();
        let mut acc = 0.0;
        for (end, fault) in ends {
            let Some(fault) = fault else { continue };
            acc += fault.rate;
            if u < acc {
                plan.end = Some((end, fault.after));
                break;
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_in_bounds_and_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let l = Latency::Uniform {
            min_ms: 10,
            max_ms: 20,
        };
        for _ in 0..1000 {
            let d = sample_latency(&l, &mut a);
            assert_eq!(d, sample_latency(&l, &mut b));
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
    }

    #[test]
    fn lognormal_median_roughly_right() {
        let mut rng = Rng::new(1);
        let l = Latency::LogNormal {
            median_ms: 100,
            p99_ms: 1000,
        };
        let mut v: Vec<_> = (0..10_001)
            .map(|_| sample_latency(&l, &mut rng).as_millis())
            .collect();
        v.sort_unstable();
        let median = v[5000];
        let p99 = v[9900];
        assert!((85..=115).contains(&median), "{median}");
        assert!((800..=1250).contains(&p99), "{p99}");
    }

    #[test]
    fn rates_zero_and_one() {
        let mut rng = Rng::new(3);
        let mut f = Faults::default();
        assert_eq!(draw_fault(&f, &mut rng), None);
        f.error_rates.insert(503, 1.0);
        for _ in 0..100 {
            assert_eq!(draw_fault(&f, &mut rng), Some(Fault::Status(503)));
        }
        f.error_rates.insert(503, 0.0);
        for _ in 0..100 {
            assert_eq!(draw_fault(&f, &mut rng), None);
        }
    }

    #[test]
    fn stream_draws() {
        use crate::config::{FirstTokenDelay, StreamFault};
        let mut rng = Rng::new(5);
        assert_eq!(
            draw_stream_faults(&StreamFaults::default(), &mut rng),
            StreamPlan::default()
        );
        // Nothing configured: the RNG is untouched.
        assert_eq!(rng.next_u64(), Rng::new(5).next_u64());
        let f = StreamFaults {
            first_token_delay: Some(FirstTokenDelay::new(Duration::from_millis(7))),
            error: Some(StreamFault::after(2).with_rate(0.0)),
            cut: Some(StreamFault::after(3)),
            ..StreamFaults::default()
        };
        for _ in 0..100 {
            assert_eq!(
                draw_stream_faults(&f, &mut rng),
                StreamPlan {
                    first_token_delay: Duration::from_millis(7),
                    end: Some((StreamEnd::Cut, 3)),
                }
            );
        }
        let f = StreamFaults {
            stall: Some(StreamFault::after(1).with_rate(0.5)),
            error: Some(StreamFault::after(2).with_rate(0.25)),
            ..StreamFaults::default()
        };
        let mut counts = [0; 3];
        for _ in 0..10_000 {
            match draw_stream_faults(&f, &mut rng).end {
                Some((StreamEnd::Stall, 1)) => counts[0] += 1,
                Some((StreamEnd::Error, 2)) => counts[1] += 1,
                None => counts[2] += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((4700..5300).contains(&counts[0]), "{counts:?}");
        assert!((2300..2700).contains(&counts[1]), "{counts:?}");
    }
}
