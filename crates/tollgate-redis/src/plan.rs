//! [`Plan`]: one set of [`Limits`] as the script reads them, worked out once per change of
//! limits rather than once per admission.

use std::num::NonZeroU64;

use tollgate_core::{Cost, Dimension, Window};
use tollgate_ratelimit::{AlgorithmKind, Limit, Limits, QuotaDecision, algorithm::Quota};

use crate::error::RedisConfigError;

/// Limits, and the script arguments they come to.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The configured limits (what [`Store::limits`](tollgate_ratelimit::Store::limits)
    /// answers).
    pub(crate) configured: Limits,
    /// The configured limits, then those learned from the provider's headers: what the
    /// script holds the key to.
    pub(crate) limits: Limits,
    /// Per limit: field, interval (µs per unit), burst span (µs); then the adaptive limit's
    /// values (`0`, or `1` and five numbers: see the script).
    pub(crate) args: Vec<String>,
    /// Per limit, as in `args`: µs per unit and the burst's span in µs.
    pub(crate) refill: Vec<Refill>,
}

/// How one limit refills, in µs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refill {
    pub(crate) interval: f64,
    pub(crate) span: f64,
}

impl Plan {
    /// The plan for `configured` and the limits `learned` from the provider's headers, or why
    /// the shared store cannot run them.
    pub(crate) fn new(configured: Limits, learned: &[Limit]) -> Result<Self, RedisConfigError> {
        let mut limits = Limits::new(configured.as_slice().iter().chain(learned).copied());
        if let Some(adaptive) = configured.adaptive_config() {
            limits = limits.with_adaptive(*adaptive);
        }
        let mut args = Vec::with_capacity(limits.len() * 3 + 6);
        let mut refill = Vec::with_capacity(limits.len());
        for limit in limits.as_slice() {
            let algorithm = match limit.algorithm() {
                AlgorithmKind::TokenBucket => "t",
                AlgorithmKind::Gcra => "g",
                AlgorithmKind::FixedWindow => {
                    return Err(RedisConfigError::Algorithm("fixed_window"));
                }
                AlgorithmKind::SlidingWindowLog => {
                    return Err(RedisConfigError::Algorithm("sliding_window_log"));
                }
                _ => return Err(RedisConfigError::Algorithm("sliding_window_counter")),
            };
            let quota = limit.quota();
            let period = u64::try_from(quota.period().as_micros()).unwrap_or(u64::MAX);
            // The field names the limit by what it counts, over how long, and how; a change of
            // amount keeps what was left.
            args.push(format!(
                "{}:{period}:{algorithm}",
                limit.dimension().as_str()
            ));
            // µs per unit, and the burst's span in µs (`{:e}`: every digit, as Lua reads it).
            let interval = period as f64 / quota.limit() as f64;
            let span = quota.burst() as f64 * interval;
            args.push(format!("{interval:e}"));
            args.push(format!("{span:e}"));
            refill.push(Refill { interval, span });
        }
        match configured.adaptive_config() {
            None => args.push("0".to_owned()),
            Some(adaptive) => {
                let floor = adaptive.floor.requests_per_second();
                let ceiling = adaptive
                    .ceiling
                    .map_or(0.0, |c| c.requests_per_second().max(floor));
                // The slower of the configured and the learned requests limits bounds it.
                let bound = [
                    requests_ceiling(configured.as_slice()),
                    requests_ceiling(learned),
                ]
                .into_iter()
                .flatten()
                .min_by(|a, b| a.0.total_cmp(&b.0));
                let (rate, burst) = bound.unwrap_or((0.0, 0.0));
                args.push("1".to_owned());
                for value in [
                    adaptive.initial.requests_per_second(),
                    floor,
                    ceiling,
                    rate,
                    burst,
                ] {
                    args.push(format!("{value:e}"));
                }
            }
        }
        Ok(Plan {
            configured,
            limits,
            args,
            refill,
        })
    }

    /// Whether nothing limits this key: no limit, no adaptive pace.
    pub(crate) fn is_empty(&self) -> bool {
        self.limits.is_empty() && !self.is_adaptive()
    }

    /// Whether the key learns its rate.
    pub(crate) fn is_adaptive(&self) -> bool {
        self.limits.adaptive_config().is_some()
    }

    /// `TooLarge` when `cost` exceeds what a limit can ever hold at once.
    pub(crate) fn too_large(&self, cost: &Cost) -> Option<QuotaDecision> {
        self.limits.as_slice().iter().find_map(|limit| {
            let c = cost.get(limit.dimension());
            (c > limit.capacity()).then(|| QuotaDecision::TooLarge {
                dimension: limit.dimension(),
                cost: c,
                capacity: limit.capacity(),
                period: limit.quota().period(),
            })
        })
    }

    /// The amount of `cost` on each limit, in order, as script arguments.
    pub(crate) fn costs<'a>(&'a self, cost: &'a Cost) -> impl Iterator<Item = u64> + 'a {
        self.limits
            .as_slice()
            .iter()
            .map(move |limit| cost.get(limit.dimension()))
    }

    /// The position (1-based, as the script counts) of the limit a provider's reading for
    /// `dimension` over `window` describes.
    pub(crate) fn position(&self, dimension: Dimension, window: Window) -> Option<usize> {
        self.limits.matching(dimension, window).map(|i| i + 1)
    }

    /// What to keep at the end of a pause, per limit: the first request may go.
    pub(crate) fn keep_after_pause(&self) -> impl Iterator<Item = u64> + '_ {
        self.limits
            .as_slice()
            .iter()
            .map(|limit| u64::from(limit.dimension() == Dimension::Requests))
    }
}

/// The requests limit with the shortest period, as a rate per second and a burst: the bound
/// of an adaptive limit.
fn requests_ceiling(limits: &[Limit]) -> Option<(f64, f64)> {
    limits
        .iter()
        .filter(|l| l.dimension() == Dimension::Requests)
        .min_by_key(|l| l.quota().period())
        .map(|l| {
            let quota = l.quota();
            (
                quota.limit() as f64 / quota.period().as_secs_f64(),
                l.capacity() as f64,
            )
        })
}

/// `limits` with 1/`share` of every amount and burst (at least 1): one replica's part of the
/// fleet's quota while Redis is away.
pub(crate) fn share(limits: &Limits, share: u32) -> Limits {
    let share = u64::from(share.max(1));
    let part = |n: u64| NonZeroU64::new((n / share).max(1)).unwrap_or(NonZeroU64::MIN);
    let parted = limits.as_slice().iter().map(|limit| {
        let quota = limit.quota();
        let parted = Quota::new(part(quota.limit()), quota.period())
            .map(|q| q.with_burst(part(quota.burst())))
            .unwrap_or(*quota);
        Limit::new(limit.dimension(), parted).with_algorithm(limit.algorithm())
    });
    let parted = Limits::new(parted);
    match limits.adaptive_config() {
        Some(adaptive) => parted.with_adaptive(*adaptive),
        None => parted,
    }
}
