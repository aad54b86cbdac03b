//! The per-request observer the layer attaches: it counts what the layers below report, and
//! records and traces each event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tollgate_core::observe::{Event, Observer};

use crate::handles::HandleCache;
use crate::labels::Labels;
use crate::snapshot::Stats;

/// One logical request's events.
pub(crate) struct RequestObserver {
    pub(crate) labels: Labels,
    pub(crate) stats: Option<Arc<Stats>>,
    pub(crate) cache: Arc<HandleCache>,
    pub(crate) retries: AtomicU32,
    pub(crate) retry_delay_nanos: AtomicU64,
    pub(crate) hops: AtomicU32,
}

impl RequestObserver {
    pub(crate) fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    pub(crate) fn retry_delay(&self) -> Duration {
        Duration::from_nanos(self.retry_delay_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn hops(&self) -> u32 {
        self.hops.load(Ordering::Relaxed)
    }
}

impl Observer for RequestObserver {
    fn observe(&self, event: &Event<'_>) {
        let provider = self.labels.provider.clone();
        let route = self.labels.route.clone();
        match *event {
            Event::RetryScheduled {
                attempt,
                class,
                delay,
                source,
            } => {
                self.retries.fetch_add(1, Ordering::Relaxed);
                let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
                let _ = self.retry_delay_nanos.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |total| Some(total.saturating_add(nanos)),
                );
                let class = class.map_or("none", |c| c.as_str());
                metrics::counter!("tollgate_retries_total",
                    "provider" => provider.clone(), "route" => route.clone(),
                    "class" => class, "delay_source" => source.as_str())
                .increment(1);
                metrics::histogram!("tollgate_retry_delay_seconds",
                    "provider" => provider, "route" => route, "delay_source" => source.as_str())
                .record(delay.as_secs_f64());
                tracing::debug!(
                    attempt,
                    class,
                    delay_ms = delay.as_millis() as u64,
                    delay_source = source.as_str(),
                    "retry scheduled"
                );
            }
            Event::RetriesExhausted { attempts, class } => {
                let class = class.map_or("none", |c| c.as_str());
                metrics::counter!("tollgate_retries_exhausted_total",
                    "provider" => provider, "route" => route, "class" => class)
                .increment(1);
                tracing::debug!(attempts, class, "retries exhausted");
            }
            Event::RateLimitWait { wait, .. } => {
                metrics::histogram!("tollgate_ratelimit_wait_seconds",
                    "provider" => provider, "route" => route)
                .record(wait.as_secs_f64());
                tracing::debug!(wait_ms = wait.as_millis() as u64, "waiting for quota");
            }
            Event::RateLimitRefused { .. } => {
                metrics::counter!("tollgate_ratelimit_refused_total",
                    "provider" => provider, "route" => route)
                .increment(1);
                tracing::debug!("refused by the rate limit");
            }
            Event::BreakerTransition { from, to, .. } => {
                metrics::counter!("tollgate_breaker_transitions_total",
                    "provider" => provider, "route" => route, "from" => from, "to" => to)
                .increment(1);
                if to == "open" {
                    if let Some(stats) = &self.stats {
                        stats.breaker_opened();
                    }
                }
                tracing::info!(from, to, "circuit breaker changed state");
            }
            Event::BreakerRefused { .. } => {
                metrics::counter!("tollgate_breaker_refused_total",
                    "provider" => provider, "route" => route)
                .increment(1);
                tracing::debug!("refused by an open circuit");
            }
            Event::FallbackHop { from, class } => {
                self.hops.fetch_add(1, Ordering::Relaxed);
                let class = class.map_or("none", |c| c.as_str());
                // Target names are configuration, never request data.
                metrics::counter!("tollgate_fallback_hops_total",
                    "provider" => provider, "route" => route,
                    "from" => from.to_owned(), "class" => class)
                .increment(1);
                tracing::info!(from, class, "fallback moved on");
            }
            Event::RateLimitUtilization {
                dimension,
                per_mille,
                ..
            } => {
                if let Some(stats) = &self.stats {
                    stats.limiter_utilization(dimension, f64::from(per_mille) / 1_000.0);
                }
            }
            Event::RateLearned {
                requests_per_minute,
                ..
            } => {
                let per_second = requests_per_minute as f64 / 60.0;
                metrics::gauge!("tollgate_ratelimit_learned_rate",
                    "provider" => provider, "route" => route)
                .set(per_second);
                if let Some(stats) = &self.stats {
                    stats.learned_rate(requests_per_minute);
                }
                tracing::debug!(requests_per_minute, "learned rate changed");
            }
            Event::QuotaShared { shared } => {
                metrics::gauge!("tollgate_ratelimit_quota_shared", "provider" => provider)
                    .set(if shared { 1.0 } else { 0.0 });
                if let Some(stats) = &self.stats {
                    stats.quota_shared(shared);
                }
            }
            Event::Routed { deployment } => {
                metrics::counter!("tollgate_router_requests_total",
                    "provider" => provider, "deployment" => deployment.to_owned())
                .increment(1);
            }
            Event::DeploymentEjected {
                deployment,
                class,
                duration,
            } => {
                metrics::counter!("tollgate_router_ejections_total",
                    "provider" => provider, "deployment" => deployment.to_owned(),
                    "class" => class.as_str())
                .increment(1);
                tracing::warn!(
                    deployment,
                    class = class.as_str(),
                    seconds = duration.as_secs(),
                    "deployment taken out of rotation"
                );
            }
            Event::CacheLookup { hit, coalesced } => {
                let outcome = match (hit, coalesced) {
                    (true, _) => "hit",
                    (false, true) => "coalesced",
                    (false, false) => "miss",
                };
                metrics::counter!("tollgate_cache_requests_total",
                    "provider" => provider, "route" => route, "outcome" => outcome)
                .increment(1);
                tracing::trace!(outcome, "cache lookup");
                if let Some(stats) = &self.stats {
                    stats.cache_lookup(hit, coalesced);
                }
            }
            Event::KeysAtCap {
                layer,
                evicted,
                refused,
            } => {
                if evicted > 0 {
                    metrics::counter!("tollgate_keys_evicted_total",
                        "provider" => provider.clone(), "route" => route.clone(), "layer" => layer)
                    .increment(u64::from(evicted));
                }
                if refused {
                    metrics::counter!("tollgate_keys_refused_total",
                        "provider" => provider, "route" => route, "layer" => layer)
                    .increment(1);
                }
                tracing::warn!(layer, evicted, refused, "keyed state at its cap on keys");
            }
            Event::ConcurrencyWait { .. } => {
                metrics::counter!("tollgate_concurrency_waits_total",
                    "provider" => provider, "route" => route)
                .increment(1);
                tracing::debug!("waiting for a concurrency slot");
            }
            _ => {}
        }
    }
}
