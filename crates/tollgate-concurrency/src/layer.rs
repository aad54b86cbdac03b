//! [`ConcurrencyLayer`]: the layer, and [`ConcurrencyHandle`].

use std::fmt;
use std::sync::Arc;

use tollgate_core::RouteKey;
use tollgate_core::key::Unkeyed;
use tollgate_core::keyed::KeyStats;
use tower_layer::Layer;

use crate::config::ConcurrencyConfig;
use crate::service::ConcurrencyLimit;
use crate::shared::Shared;

/// Caps the requests in flight, per key, with a fair bounded queue and a fixed or adaptive
/// cap. Clones share the slots.
///
/// See the [crate docs](crate) for examples.
pub struct ConcurrencyLayer<K = Unkeyed> {
    keyer: K,
    shared: Arc<Shared>,
}

impl ConcurrencyLayer {
    /// Caps the requests in flight as `config` says, unkeyed.
    pub fn new(config: ConcurrencyConfig) -> Self {
        ConcurrencyLayer {
            keyer: Unkeyed,
            shared: Arc::new(Shared::new(config)),
        }
    }
}

impl<K> ConcurrencyLayer<K> {
    /// One cap per key (per account, per model): [`tollgate_core::key`]. The layer's slots and
    /// handles carry over.
    pub fn keyed_by<K2>(self, keyer: K2) -> ConcurrencyLayer<K2> {
        ConcurrencyLayer {
            keyer,
            shared: self.shared,
        }
    }

    /// What the layer was built with.
    pub fn config(&self) -> &ConcurrencyConfig {
        &self.shared.config
    }

    /// A handle on the slots.
    pub fn handle(&self) -> ConcurrencyHandle {
        ConcurrencyHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, K: Clone> Layer<S> for ConcurrencyLayer<K> {
    type Service = ConcurrencyLimit<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit::new(inner, self.keyer.clone(), Arc::clone(&self.shared))
    }
}

impl<K: Clone> Clone for ConcurrencyLayer<K> {
    fn clone(&self) -> Self {
        ConcurrencyLayer {
            keyer: self.keyer.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for ConcurrencyLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLayer")
            .field("keyer", &self.keyer)
            .field("config", &self.shared.config)
            .finish()
    }
}

/// A side handle on a layer's slots: in flight, waiting, the current cap. Cheap to clone.
#[derive(Clone)]
pub struct ConcurrencyHandle {
    shared: Arc<Shared>,
}

impl ConcurrencyHandle {
    /// Requests in flight for `key` (`None`: the unkeyed slots).
    pub fn in_flight(&self, key: Option<&str>) -> u32 {
        self.with(key, |gate| gate.in_flight())
    }

    /// Requests waiting for `key`.
    pub fn waiting(&self, key: Option<&str>) -> u32 {
        self.with(key, |gate| gate.waiting())
    }

    /// The current cap for `key` (adaptive caps move).
    pub fn limit(&self, key: Option<&str>) -> u32 {
        self.with(key, |gate| gate.limit())
    }

    /// How many keys hold slots.
    pub fn keys(&self) -> usize {
        self.shared.keys()
    }

    /// How many keys hold slots, the cap ([`ConcurrencyConfig::max_keys`]), and how many gates
    /// were evicted and new keys refused at the cap.
    pub fn key_stats(&self) -> KeyStats {
        self.shared.key_stats()
    }

    /// Forgets every idle key (nothing in flight or waiting; an adaptive cap starts again) and
    /// returns how many remain.
    pub fn evict_idle(&self) -> usize {
        self.shared.evict_idle()
    }

    fn with(&self, key: Option<&str>, f: impl Fn(&crate::gate::Gate) -> u32) -> u32 {
        match key {
            None => f(&self.shared.unkeyed),
            Some(key) => match self.shared.find(&RouteKey::from(key)) {
                Some(gate) => f(&gate),
                None => f(&crate::gate::Gate::new(&self.shared.config.cap)),
            },
        }
    }
}

impl fmt::Debug for ConcurrencyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyHandle").finish_non_exhaustive()
    }
}
