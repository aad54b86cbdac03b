//! [`Snapshot`]: the in-process figures, and the [`Alert`]s they raise.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate_core::{Dimension, ErrorClass, Usage, Verdict};

/// What one logical request came to, for the in-process figures.
pub(crate) struct Outcome<'a> {
    pub(crate) class: Option<ErrorClass>,
    pub(crate) status: Option<u16>,
    pub(crate) latency: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_delay: Duration,
    pub(crate) hops: u32,
    pub(crate) verdict: Option<&'a Verdict>,
}

pub(crate) struct Stats {
    started: Instant,
    counts: Mutex<Counts>,
}

struct Counts {
    requests: u64,
    successes: u64,
    rate_limited: u64,
    server_errors: u64,
    context_window: u64,
    retries: u64,
    retried_requests: u64,
    retried_successes: u64,
    retry_delay: Duration,
    hops: u64,
    input_tokens: u64,
    output_tokens: u64,
    breaker_opens: VecDeque<Instant>,
    breaker_opens_total: u64,
    /// Cache lookups: hits, coalesced, misses.
    cache: [u64; 3],
    utilization: [Option<f64>; 4],
    limiter_utilization: [Option<f64>; 4],
    learned_rate: Option<u64>,
    quota_shared: Option<bool>,
    latency: Histogram<u64>,
    first_token: Histogram<u64>,
}

impl Counts {
    /// Tokens reported by the provider: saturate rather than trust.
    fn add_tokens(&mut self, usage: &Usage) {
        self.input_tokens = self
            .input_tokens
            .saturating_add(usage.input_tokens.unwrap_or(0));
        self.output_tokens = self
            .output_tokens
            .saturating_add(usage.output_tokens.unwrap_or(0));
    }
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats {
            started: Instant::now(),
            counts: Mutex::new(Counts {
                requests: 0,
                successes: 0,
                rate_limited: 0,
                server_errors: 0,
                context_window: 0,
                retries: 0,
                retried_requests: 0,
                retried_successes: 0,
                retry_delay: Duration::ZERO,
                hops: 0,
                input_tokens: 0,
                output_tokens: 0,
                breaker_opens: VecDeque::new(),
                breaker_opens_total: 0,
                cache: [0; 3],
                utilization: [None; 4],
                limiter_utilization: [None; 4],
                learned_rate: None,
                quota_shared: None,
                // Microseconds, up to an hour, three significant figures.
                latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("valid histogram bounds"),
                first_token: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("valid histogram bounds"),
            }),
        }
    }

    pub(crate) fn record(&self, outcome: &Outcome<'_>) {
        let mut counts = self.counts.lock();
        counts.requests += 1;
        let success = outcome.class.is_none();
        counts.successes += u64::from(success);
        counts.rate_limited += u64::from(
            outcome.class == Some(ErrorClass::RateLimited) || outcome.status == Some(429),
        );
        counts.server_errors += u64::from(outcome.status.is_some_and(|s| s >= 500));
        counts.context_window +=
            u64::from(outcome.class == Some(ErrorClass::ContextWindowExceeded));
        counts.retries = counts.retries.saturating_add(u64::from(outcome.retries));
        if outcome.retries > 0 {
            counts.retried_requests += 1;
            counts.retried_successes += u64::from(success);
        }
        counts.retry_delay = counts.retry_delay.saturating_add(outcome.retry_delay);
        counts.hops = counts.hops.saturating_add(u64::from(outcome.hops));
        let micros = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
        counts.latency.saturating_record(micros.max(1));
        if let Some(verdict) = outcome.verdict {
            if let Some(usage) = verdict.usage() {
                counts.add_tokens(usage);
            }
            for entry in verdict.rate_limits().entries() {
                let (Some(limit), Some(remaining)) = (entry.reading.limit, entry.reading.remaining)
                else {
                    continue;
                };
                if limit > 0 {
                    // The latest reading, not the highest ever.
                    let used = 1.0 - remaining.min(limit) as f64 / limit as f64;
                    counts.utilization[entry.dimension.index()] = Some(used);
                }
            }
        }
    }

    /// A stream's time to its first token.
    pub(crate) fn first_token(&self, after: Duration) {
        let micros = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
        self.counts
            .lock()
            .first_token
            .saturating_record(micros.max(1));
    }

    /// The local rate limiter's latest utilization of `dimension`.
    pub(crate) fn limiter_utilization(&self, dimension: Dimension, used: f64) {
        self.counts.lock().limiter_utilization[dimension.index()] = Some(used);
    }

    /// The tokens a streamed answer reported at its end.
    pub(crate) fn tokens(&self, usage: &Usage) {
        self.counts.lock().add_tokens(usage);
    }

    /// The adaptive rate limit's latest learned rate, in requests per minute.
    pub(crate) fn learned_rate(&self, requests_per_minute: u64) {
        self.counts.lock().learned_rate = Some(requests_per_minute);
    }

    /// Whether the rate limiter's quota is shared with other processes, as of the latest
    /// admission.
    pub(crate) fn quota_shared(&self, shared: bool) {
        self.counts.lock().quota_shared = Some(shared);
    }

    /// A cacheable request was answered from the cache (`hit`), by another caller's upstream
    /// call (`coalesced`), or went upstream itself.
    pub(crate) fn cache_lookup(&self, hit: bool, coalesced: bool) {
        let index = match (hit, coalesced) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        };
        let mut counts = self.counts.lock();
        counts.cache[index] = counts.cache[index].saturating_add(1);
    }

    pub(crate) fn breaker_opened(&self) {
        let now = Instant::now();
        let mut counts = self.counts.lock();
        counts.breaker_opens_total += 1;
        counts.breaker_opens.push_back(now);
        while counts
            .breaker_opens
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) > Duration::from_secs(3_600))
        {
            counts.breaker_opens.pop_front();
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let counts = self.counts.lock();
        let opens_last_hour = counts
            .breaker_opens
            .iter()
            .filter(|at| now.saturating_duration_since(**at) <= Duration::from_secs(3_600))
            .count() as u64;
        let quantile = |histogram: &Histogram<u64>, q: f64| {
            (!histogram.is_empty()).then(|| Duration::from_micros(histogram.value_at_quantile(q)))
        };
        Snapshot {
            elapsed: now.saturating_duration_since(self.started),
            requests: counts.requests,
            successes: counts.successes,
            rate_limited: counts.rate_limited,
            server_errors: counts.server_errors,
            context_window_errors: counts.context_window,
            retries: counts.retries,
            retried_requests: counts.retried_requests,
            retried_successes: counts.retried_successes,
            retry_delay: counts.retry_delay,
            fallback_hops: counts.hops,
            input_tokens: counts.input_tokens,
            output_tokens: counts.output_tokens,
            breaker_opens: counts.breaker_opens_total,
            cache_hits: counts.cache[0],
            cache_coalesced: counts.cache[1],
            cache_misses: counts.cache[2],
            breaker_opens_last_hour: opens_last_hour,
            utilization: counts.utilization,
            limiter_utilization: counts.limiter_utilization,
            learned_rate_per_minute: counts.learned_rate,
            quota_shared: counts.quota_shared,
            p50: quantile(&counts.latency, 0.5),
            p90: quantile(&counts.latency, 0.9),
            p99: quantile(&counts.latency, 0.99),
            first_token_p50: quantile(&counts.first_token, 0.5),
            first_token_p99: quantile(&counts.first_token, 0.99),
        }
    }
}

/// The figures a [`MetricsHandle`](crate::MetricsHandle) reports, since the layer was made.
///
/// Latencies are of whole logical requests, retries and fallback hops included; a streamed
/// answer's runs to the end of its stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Time since the layer was made.
    pub elapsed: Duration,
    /// Logical requests completed.
    pub requests: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Ended in a rate limit (a 429 or a `RateLimited` verdict).
    pub rate_limited: u64,
    /// Ended in a 5xx status.
    pub server_errors: u64,
    /// Ended in a context-window error.
    pub context_window_errors: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Requests retried at least once.
    pub retried_requests: u64,
    /// Of which finally succeeded.
    pub retried_successes: u64,
    /// Time spent waiting between attempts, in all.
    pub retry_delay: Duration,
    /// Moves from one fallback target to the next.
    pub fallback_hops: u64,
    /// Input tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
    /// Circuit breakers that opened.
    pub breaker_opens: u64,
    /// Cacheable requests answered from the cache (`CacheLayer`).
    pub cache_hits: u64,
    /// Cacheable requests answered by an identical request's upstream call.
    pub cache_coalesced: u64,
    /// Cacheable requests that went upstream.
    pub cache_misses: u64,
    /// Of which in the last hour.
    pub breaker_opens_last_hour: u64,
    /// The provider's quota used, per [`Dimension`] (index with `Dimension::index`), from the
    /// latest rate-limit headers: `1 − remaining / limit`.
    pub utilization: [Option<f64>; 4],
    /// The local rate limiter's quota used, per [`Dimension`], after the latest admission (the
    /// highest over its limits of that dimension, as `RateLimitLayer` reports it).
    pub limiter_utilization: [Option<f64>; 4],
    /// The request rate the local rate limiter's adaptive limit learned, in requests per
    /// minute, as of its latest change (`RateLimitLayer` with an adaptive limit); also the
    /// gauge `tollgate_ratelimit_learned_rate`, in requests per second.
    pub learned_rate_per_minute: Option<u64>,
    /// Whether the rate limiter's quota is shared with other processes, as of the latest
    /// admission: `Some(true)` while a shared store (`RedisStore`) answers, `Some(false)` while
    /// it cannot reach Redis and applies its fallback, `None` for an in-process store; also
    /// the gauge `tollgate_ratelimit_quota_shared` (1 or 0).
    pub quota_shared: Option<bool>,
    /// Median latency.
    pub p50: Option<Duration>,
    /// 90th percentile latency.
    pub p90: Option<Duration>,
    /// 99th percentile latency.
    pub p99: Option<Duration>,
    /// Median time to first token of streamed answers: from the request to its first event
    /// carrying data.
    pub first_token_p50: Option<Duration>,
    /// 99th percentile time to first token of streamed answers.
    pub first_token_p99: Option<Duration>,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Snapshot {
    /// Successes over requests.
    pub fn success_rate(&self) -> Option<f64> {
        ratio(self.successes, self.requests)
    }

    /// Rate-limited requests over requests (healthy below 1 %).
    pub fn rate_limit_rate(&self) -> Option<f64> {
        ratio(self.rate_limited, self.requests)
    }

    /// 5xx over requests.
    pub fn server_error_rate(&self) -> Option<f64> {
        ratio(self.server_errors, self.requests)
    }

    /// Retried requests that finally succeeded, over retried requests.
    pub fn retry_success_rate(&self) -> Option<f64> {
        ratio(self.retried_successes, self.retried_requests)
    }

    /// The mean wait per retry.
    pub fn mean_retry_delay(&self) -> Option<Duration> {
        (self.retries > 0)
            .then(|| self.retry_delay / u32::try_from(self.retries).unwrap_or(u32::MAX))
    }

    /// Successful requests per second since the layer was made.
    pub fn throughput(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        (secs > 0.0).then(|| self.successes as f64 / secs)
    }

    /// The highest quota utilization over the dimensions reported, by the provider or the
    /// local limiter.
    pub fn utilization_max(&self) -> Option<f64> {
        self.utilization
            .iter()
            .chain(self.limiter_utilization.iter())
            .flatten()
            .copied()
            .reduce(f64::max)
    }

    /// The quota utilization of `dimension`.
    pub fn utilization(&self, dimension: Dimension) -> Option<f64> {
        self.utilization[dimension.index()]
    }

    /// The alerts these figures raise, by the thresholds of PROVIDERS.md §9: utilization above
    /// 70 % / 90 %, 429 rate above 2 % / 10 %, p99 latency above 5 s / 15 s, 5xx rate above
    /// 1 % / 5 %, breaker opens any / more than 3 in an hour (warning / critical).
    pub fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut check = |signal: Signal, value: Option<f64>, warning: f64, critical: f64| {
            let Some(value) = value else { return };
            let level = if value > critical {
                Level::Critical
            } else if value > warning {
                Level::Warning
            } else {
                return;
            };
            alerts.push(Alert {
                signal,
                level,
                value,
            });
        };
        check(Signal::Utilization, self.utilization_max(), 0.70, 0.90);
        check(Signal::RateLimitRate, self.rate_limit_rate(), 0.02, 0.10);
        check(
            Signal::P99Latency,
            self.p99.map(|d| d.as_secs_f64()),
            5.0,
            15.0,
        );
        check(
            Signal::ServerErrorRate,
            self.server_error_rate(),
            0.01,
            0.05,
        );
        let opens = self.breaker_opens_last_hour as f64;
        check(Signal::BreakerOpens, Some(opens), 0.0, 3.0);
        // Not shared: a warning (each replica holds its share; the fleet stays near the quota).
        let unshared = self.quota_shared.map(|shared| f64::from(u8::from(!shared)));
        check(Signal::QuotaNotShared, unshared, 0.0, 1.0);
        alerts
    }
}

/// A signal an [`Alert`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// The provider's quota used (a fraction).
    Utilization,
    /// The share of requests rate-limited.
    RateLimitRate,
    /// The 99th percentile latency, in seconds.
    P99Latency,
    /// The share of requests ending in a 5xx.
    ServerErrorRate,
    /// Circuit breakers opened in the last hour.
    BreakerOpens,
    /// The rate limiter's shared quota cannot be reached (1): each replica falls back on its
    /// own policy. A warning only.
    QuotaNotShared,
}

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// Above the warning threshold.
    Warning,
    /// Above the critical threshold.
    Critical,
}

/// A threshold crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Alert {
    /// What.
    pub signal: Signal,
    /// How bad.
    pub level: Level,
    /// The value that crossed it.
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Snapshot {
        Snapshot {
            elapsed: Duration::from_secs(60),
            requests: 1_000,
            successes: 1_000,
            rate_limited: 0,
            server_errors: 0,
            context_window_errors: 0,
            retries: 0,
            retried_requests: 0,
            retried_successes: 0,
            retry_delay: Duration::ZERO,
            fallback_hops: 0,
            input_tokens: 0,
            output_tokens: 0,
            breaker_opens: 0,
            breaker_opens_last_hour: 0,
            cache_hits: 0,
            cache_coalesced: 0,
            cache_misses: 0,
            utilization: [None; 4],
            limiter_utilization: [None; 4],
            learned_rate_per_minute: None,
            quota_shared: None,
            p50: Some(Duration::from_millis(300)),
            p90: Some(Duration::from_millis(800)),
            p99: Some(Duration::from_secs(1)),
            first_token_p50: None,
            first_token_p99: None,
        }
    }

    fn levels(snapshot: &Snapshot, signal: Signal) -> Option<Level> {
        snapshot
            .alerts()
            .into_iter()
            .find(|a| a.signal == signal)
            .map(|a| a.level)
    }

    #[test]
    fn each_threshold_raises_its_alert() {
        assert!(quiet().alerts().is_empty());
        type Raise = fn(&mut Snapshot, bool);
        let cases: [(Signal, Raise); 5] = [
            (Signal::Utilization, |s, critical| {
                s.utilization[0] = Some(if critical { 0.91 } else { 0.71 })
            }),
            (Signal::RateLimitRate, |s, critical| {
                s.rate_limited = if critical { 101 } else { 21 }
            }),
            (Signal::P99Latency, |s, critical| {
                s.p99 = Some(Duration::from_secs(if critical { 16 } else { 6 }))
            }),
            (Signal::ServerErrorRate, |s, critical| {
                s.server_errors = if critical { 51 } else { 11 }
            }),
            (Signal::BreakerOpens, |s, critical| {
                s.breaker_opens_last_hour = if critical { 4 } else { 1 }
            }),
        ];
        for (signal, set) in cases {
            for (critical, level) in [(false, Level::Warning), (true, Level::Critical)] {
                let mut snapshot = quiet();
                set(&mut snapshot, critical);
                assert_eq!(levels(&snapshot, signal), Some(level), "{signal:?}");
                assert_eq!(snapshot.alerts().len(), 1, "{signal:?}");
            }
        }
        // At the thresholds themselves, not yet.
        let mut snapshot = quiet();
        snapshot.utilization[1] = Some(0.70);
        snapshot.rate_limited = 20;
        snapshot.server_errors = 10;
        snapshot.p99 = Some(Duration::from_secs(5));
        assert!(snapshot.alerts().is_empty());
    }

    #[test]
    fn a_quota_that_cannot_be_shared_is_a_warning() {
        let mut snapshot = quiet();
        snapshot.quota_shared = Some(true);
        assert!(snapshot.alerts().is_empty());
        snapshot.quota_shared = Some(false);
        assert_eq!(
            levels(&snapshot, Signal::QuotaNotShared),
            Some(Level::Warning)
        );
    }
}
