//! The state every clone of a layer shares, and the permit that holds a slot.

use std::fmt;
use std::sync::Arc;

use tollgate_core::RouteKey;
use tollgate_core::keyed::{KeyStats, KeyedMap, TooManyKeys};

use crate::config::ConcurrencyConfig;
use crate::gate::Gate;

pub(crate) struct Shared {
    pub(crate) config: ConcurrencyConfig,
    pub(crate) unkeyed: Arc<Gate>,
    gates: KeyedMap<Arc<Gate>>,
}

impl Shared {
    pub(crate) fn new(config: ConcurrencyConfig) -> Self {
        Shared {
            unkeyed: Arc::new(Gate::new(&config.cap)),
            gates: KeyedMap::with_max_keys(config.max_keys),
            config,
        }
    }

    /// The gate of `key` (`None`: the unkeyed one), created when first needed, and how many
    /// gates were evicted to make room for it; refused when the map is at its cap and every
    /// gate is busy.
    pub(crate) fn gate(&self, key: Option<&RouteKey>) -> Result<(Arc<Gate>, usize), TooManyKeys> {
        let Some(key) = key else {
            return Ok((Arc::clone(&self.unkeyed), 0));
        };
        let make = || Arc::new(Gate::new(&self.config.cap));
        self.gates
            .with_evicting(key, make, || (), |gate| Arc::clone(gate))
    }

    pub(crate) fn find(&self, key: &RouteKey) -> Option<Arc<Gate>> {
        self.gates.get(key)
    }

    pub(crate) fn keys(&self) -> usize {
        self.gates.len()
    }

    pub(crate) fn key_stats(&self) -> KeyStats {
        self.gates.stats()
    }

    pub(crate) fn evict_idle(&self) -> usize {
        self.gates.sweep(())
    }
}

/// A slot taken: released when dropped — on completion, on error, on drop of the future, or
/// at the end of the response body.
pub struct Permit {
    gate: Arc<Gate>,
    epoch: u32,
}

impl Permit {
    #[inline]
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        let epoch = gate.epoch();
        Permit { gate, epoch }
    }

    /// Whether its gate's cap adapts to outcomes.
    pub(crate) fn adaptive(&self) -> bool {
        self.gate.cap().is_adaptive()
    }

    /// Records its request's outcome for an adaptive cap: see [`Gate::record`].
    #[inline(never)]
    pub(crate) fn record(&self, dropped: bool, latency: Option<std::time::Duration>) {
        self.gate
            .record(self.gate.cap(), dropped, latency, self.epoch);
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.gate.release();
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}
