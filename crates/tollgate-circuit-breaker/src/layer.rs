//! [`CircuitBreakerLayer`]: the layer.

use std::fmt;
use std::sync::Arc;

use tollgate_core::key::Unkeyed;
use tower_layer::Layer;

use crate::config::BreakerConfig;
use crate::handle::{CircuitBreakerHandle, OnStateChange};
use crate::service::CircuitBreaker;
use crate::shared::Shared;

/// Stops calling a target that is failing, and probes it back. Clones share the breakers.
///
/// See the [crate docs](crate) for examples.
pub struct CircuitBreakerLayer<K = Unkeyed, H = ()> {
    keyer: K,
    shared: Arc<Shared<H>>,
}

impl CircuitBreakerLayer {
    /// One breaker for every request, configured by `config`.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreakerLayer {
            keyer: Unkeyed,
            shared: Arc::new(Shared::new(config, ())),
        }
    }
}

impl<K, H: OnStateChange> CircuitBreakerLayer<K, H> {
    /// One breaker per key (per target, per model): [`tollgate_core::key`]. Idle breakers are
    /// forgotten as keys come and go.
    pub fn keyed_by<K2>(self, keyer: K2) -> CircuitBreakerLayer<K2, H> {
        CircuitBreakerLayer {
            keyer,
            shared: self.shared,
        }
    }

    /// Tells `hook` of every state change. Call it before cloning the layer: it starts the
    /// breakers anew.
    pub fn on_state_change<H2: OnStateChange>(self, hook: H2) -> CircuitBreakerLayer<K, H2> {
        CircuitBreakerLayer {
            keyer: self.keyer,
            shared: Arc::new(Shared::new(self.shared.config.clone(), hook)),
        }
    }

    /// A handle on the breakers: state, manual control, mode.
    pub fn handle(&self) -> CircuitBreakerHandle<H> {
        CircuitBreakerHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, K: Clone, H> Layer<S> for CircuitBreakerLayer<K, H> {
    type Service = CircuitBreaker<S, K, H>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.keyer.clone(), Arc::clone(&self.shared))
    }
}

impl<K: Clone, H> Clone for CircuitBreakerLayer<K, H> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            keyer: self.keyer.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: fmt::Debug, H> fmt::Debug for CircuitBreakerLayer<K, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("keyer", &self.keyer)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}
