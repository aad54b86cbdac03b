//! The state every clone of a layer shares, and the permit that holds a slot.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::Mutex;
use tollgate_core::RouteKey;

use crate::adaptive::Limit;
use crate::gate::Gate;

const SHARDS: usize = 16;
const MIN_SWEEP_LEN: usize = 64;

/// What the layer is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) limit: Limit,
    pub(crate) max_queue: u32,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) hold_until_body_end: bool,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) unkeyed: Arc<Gate>,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

struct Shard {
    gates: HashMap<RouteKey, Arc<Gate>, RandomState>,
    sweep_at_len: usize,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            unkeyed: Arc::new(Gate::new(&config.limit)),
            config,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        gates: HashMap::default(),
                        sweep_at_len: MIN_SWEEP_LEN,
                    })
                })
                .collect(),
            hasher: RandomState::default(),
        }
    }

    /// The gate of `key` (`None`: the unkeyed one), created when first needed.
    pub(crate) fn gate(&self, key: Option<&RouteKey>) -> Arc<Gate> {
        let Some(key) = key else {
            return Arc::clone(&self.unkeyed);
        };
        let mut shard = self.shards[self.hasher.hash_one(key) as usize % SHARDS].lock();
        if let Some(gate) = shard.gates.get(key) {
            return Arc::clone(gate);
        }
        if shard.gates.len() >= shard.sweep_at_len {
            shard.sweep();
        }
        let gate = Arc::new(Gate::new(&self.config.limit));
        shard.gates.insert(key.clone(), Arc::clone(&gate));
        gate
    }

    pub(crate) fn find(&self, key: &RouteKey) -> Option<Arc<Gate>> {
        self.shards[self.hasher.hash_one(key) as usize % SHARDS]
            .lock()
            .gates
            .get(key)
            .cloned()
    }

    pub(crate) fn keys(&self) -> usize {
        self.shards.iter().map(|s| s.lock().gates.len()).sum()
    }

    pub(crate) fn evict_idle(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.lock();
                shard.sweep();
                shard.gates.len()
            })
            .sum()
    }
}

impl Shard {
    fn sweep(&mut self) {
        self.gates
            .retain(|_, gate| Arc::strong_count(gate) > 1 || !gate.is_idle());
        if self.gates.len() * 4 < self.gates.capacity() {
            self.gates.shrink_to(self.gates.len() * 2);
        }
        self.sweep_at_len = (self.gates.len() * 2).max(MIN_SWEEP_LEN);
    }
}

/// A slot taken: released when dropped — on completion, on error, on drop of the future, or
/// at the end of the response body.
pub struct Permit {
    gate: Arc<Gate>,
    epoch: u32,
}

impl Permit {
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        let epoch = gate.epoch();
        Permit { gate, epoch }
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
