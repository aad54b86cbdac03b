//! [`Shared`]: the state every connection of a server reads and updates (configuration,
//! quotas, proxy limiter, counters, random draws), and the guards that count a request in
//! flight ([`InFlight`]) and hold its concurrency slot ([`Admitted`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use http::HeaderMap;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use super::request::api_key;
use crate::config::MockConfig;
use crate::faults::Rng;
use crate::proxy::ProxyLimiter;
use crate::quota::QuotaState;
use crate::stats::{Outcome, Recorder};

/// State shared by every connection.
pub(super) struct Shared {
    pub(super) config: MockConfig,
    pub(super) start: Instant,
    pub(super) wall_start: SystemTime,
    pub(super) quota: Mutex<QuotaState>,
    /// The reverse-proxy limiter, when configured.
    pub(super) proxy: Option<Mutex<ProxyLimiter>>,
    pub(super) recorder: Mutex<Recorder>,
    pub(super) rng: Mutex<Rng>,
    pub(super) manual_outage: AtomicBool,
    pub(super) in_flight: AtomicU64,
    pub(super) next_id: AtomicU64,
    pub(super) shutdown: watch::Receiver<bool>,
}

// ===== impl Shared =====

impl Shared {
    /// The state of a server starting `now` with `config`, stopping when `shutdown` says so.
    pub(super) fn new(config: MockConfig, now: Instant, shutdown: watch::Receiver<bool>) -> Self {
        Shared {
            quota: Mutex::new(QuotaState::new(
                config.flavor,
                &config.quota,
                config.credit_tokens,
                now,
            )),
            proxy: config
                .proxy_limit
                .as_ref()
                .map(|limit| Mutex::new(ProxyLimiter::new(limit, now))),
            rng: Mutex::new(Rng::new(config.seed)),
            config,
            start: now,
            wall_start: SystemTime::now(),
            recorder: Mutex::new(Recorder::default()),
            manual_outage: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            shutdown,
        }
    }

    /// The second since the start: the timeline bucket of what happens now.
    pub(super) fn second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Wall-clock time that follows tokio's (possibly paused) clock.
    pub(super) fn wall_now(&self) -> SystemTime {
        self.wall_start + self.start.elapsed()
    }

    pub(super) fn record(&self, outcome: Outcome, input: u64, output: u64) {
        self.recorder
            .lock()
            .outcome(self.second(), outcome, input, output);
    }

    /// Whether the reverse-proxy limiter refuses a request with these headers now.
    pub(super) fn proxy_refuses(&self, headers: &HeaderMap) -> bool {
        let Some(proxy) = &self.proxy else {
            return false;
        };
        let key = api_key(headers).filter(|k| !k.is_empty());
        proxy.lock().admit(key.as_deref(), Instant::now()).is_err()
    }

    /// The status of the outage on now, manual or scheduled, if one is.
    pub(super) fn outage_status(&self) -> Option<u16> {
        if self.manual_outage.load(Ordering::Relaxed) {
            return Some(self.config.flavor.outage_status());
        }
        if self.config.faults.outages.is_empty() {
            return None;
        }
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.config
            .faults
            .outages
            .iter()
            .find(|o| now_ms >= o.start_ms && now_ms - o.start_ms < o.duration_ms)
            .map(|o| {
                if o.status == 0 {
                    self.config.flavor.outage_status()
                } else {
                    o.status
                }
            })
    }
}

/// Counts a request in flight until dropped.
pub(super) struct InFlight(Arc<Shared>);

impl InFlight {
    pub(super) fn enter(shared: &Arc<Shared>) -> Self {
        let n = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rec = shared.recorder.lock();
        rec.request();
        rec.in_flight(n);
        drop(rec);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An admitted request's concurrency slot, released when dropped.
pub(super) struct Admitted(pub(super) Arc<Shared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.quota.lock().release();
    }
}
