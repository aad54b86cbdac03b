//! What every clone of a layer shares: the configuration, the mode, the breakers.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate_core::RouteKey;

use crate::breaker::{Breaker, CLOSED, Change, HALF_OPEN, OPEN};
use crate::config::BreakerConfig;
use crate::handle::{BreakerState, Mode, OnStateChange, StateChange};

const SHARDS: usize = 16;
const MIN_SWEEP_LEN: usize = 64;

pub(crate) struct Shared<H> {
    pub(crate) config: BreakerConfig,
    origin: Instant,
    mode: AtomicU8,
    pub(crate) unkeyed: Breaker,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    pub(crate) hook: H,
}

struct Shard {
    breakers: HashMap<RouteKey, Arc<Breaker>, RandomState>,
    sweep_at_len: usize,
}

impl<H: OnStateChange> Shared<H> {
    pub(crate) fn new(config: BreakerConfig, hook: H) -> Self {
        Shared {
            unkeyed: Breaker::new(&config),
            config,
            origin: Instant::now(),
            mode: AtomicU8::new(Mode::Normal as u8),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        breakers: HashMap::default(),
                        sweep_at_len: MIN_SWEEP_LEN,
                    })
                })
                .collect(),
            hasher: RandomState::default(),
            hook,
        }
    }

    /// Nanoseconds since the origin, on tokio's clock.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.origin)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }

    pub(crate) fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Acquire))
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }

    /// The breaker of `key`, created closed.
    pub(crate) fn keyed(&self, key: &RouteKey) -> Arc<Breaker> {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut shard = shard.lock();
        if let Some(breaker) = shard.breakers.get(key) {
            return Arc::clone(breaker);
        }
        if shard.breakers.len() >= shard.sweep_at_len {
            shard.sweep(self.now());
        }
        let breaker = Arc::new(Breaker::new(&self.config));
        shard.breakers.insert(key.clone(), Arc::clone(&breaker));
        breaker
    }

    /// The breaker of `key` if it has one (`None`: the unkeyed one).
    pub(crate) fn find(&self, key: Option<&RouteKey>) -> Option<Arc<Breaker>> {
        let key = key?;
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        shard.lock().breakers.get(key).cloned()
    }

    /// Breakers held for keys.
    pub(crate) fn keys(&self) -> usize {
        self.shards.iter().map(|s| s.lock().breakers.len()).sum()
    }

    /// Forgets every idle keyed breaker; returns how many remain.
    pub(crate) fn evict_idle(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock();
                shard.sweep(self.now());
                shard.breakers.len()
            })
            .sum()
    }

    /// Tells the hook of `changes` to the breaker of `key`.
    pub(crate) fn announce(&self, key: Option<&RouteKey>, changes: &[Change]) {
        for change in changes {
            self.hook.on_state_change(&StateChange {
                key: key.cloned(),
                from: state_of(change.from),
                to: state_of(change.to),
                open_for: change.open_for,
            });
        }
    }

    pub(crate) fn since_origin(&self, nanos: u64) -> Duration {
        Duration::from_nanos(nanos)
    }
}

impl Shard {
    fn sweep(&mut self, now: u64) {
        self.breakers
            .retain(|_, breaker| Arc::strong_count(breaker) > 1 || !breaker.is_idle(now));
        if self.breakers.len() * 4 < self.breakers.capacity() {
            self.breakers.shrink_to(self.breakers.len() * 2);
        }
        self.sweep_at_len = (self.breakers.len() * 2).max(MIN_SWEEP_LEN);
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
