//! What every clone of a layer shares: the configuration, the mode, the breakers. The
//! state-change hook is kept beside it, so that plugging one in leaves the breakers alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tollgate_core::RouteKey;
use tollgate_core::clock::Origin;
use tollgate_core::keyed::{KeyStats, KeyedMap, TooManyKeys};

use crate::breaker::{Breaker, CLOSED, Change, HALF_OPEN, OPEN};
use crate::config::BreakerConfig;
use crate::handle::{BreakerState, Mode, OnStateChange, StateChange};

pub(crate) struct Shared {
    pub(crate) config: BreakerConfig,
    origin: Origin,
    mode: AtomicU8,
    pub(crate) unkeyed: Breaker,
    breakers: KeyedMap<Arc<Breaker>>,
}

impl Shared {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Shared {
            unkeyed: Breaker::new(&config),
            origin: Origin::new(),
            mode: AtomicU8::new(Mode::Normal as u8),
            breakers: KeyedMap::with_max_keys(config.max_keys),
            config,
        }
    }

    /// Nanoseconds since the origin, on tokio's clock.
    pub(crate) fn now(&self) -> u64 {
        self.origin.elapsed_nanos()
    }

    pub(crate) fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Acquire))
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }

    /// The breaker of `key`, created closed, and how many breakers were evicted to make room
    /// for it; refused when the map is at its cap and every breaker is held.
    pub(crate) fn keyed(&self, key: &RouteKey) -> Result<(Arc<Breaker>, usize), TooManyKeys> {
        let make = || Arc::new(Breaker::new(&self.config));
        self.breakers
            .with_evicting(key, make, || self.now(), |breaker| Arc::clone(breaker))
    }

    /// The breaker of `key` if it has one (`None`: the unkeyed one).
    pub(crate) fn find(&self, key: Option<&RouteKey>) -> Option<Arc<Breaker>> {
        self.breakers.get(key?)
    }

    /// Breakers held for keys.
    pub(crate) fn keys(&self) -> usize {
        self.breakers.len()
    }

    /// Breakers held for keys, and what the cap on keys has cost.
    pub(crate) fn key_stats(&self) -> KeyStats {
        self.breakers.stats()
    }

    /// Forgets every idle keyed breaker; returns how many remain.
    pub(crate) fn evict_idle(&self) -> usize {
        self.breakers.sweep(self.now())
    }
}

/// Tells `hook` of `changes` to the breaker of `key`.
pub(crate) fn announce<H: OnStateChange>(hook: &H, key: Option<&RouteKey>, changes: &[Change]) {
    for change in changes {
        hook.on_state_change(&StateChange {
            key: key.cloned(),
            from: state_of(change.from),
            to: state_of(change.to),
            open_for: change.open_for,
        });
    }
}

pub(crate) fn state_of(raw: u8) -> BreakerState {
    match raw {
        CLOSED => BreakerState::Closed,
        OPEN => BreakerState::Open,
        HALF_OPEN => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    }
}
