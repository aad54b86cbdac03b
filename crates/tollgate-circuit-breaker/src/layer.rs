//! [`CircuitBreakerLayer`]: the layer.

use std::fmt;
use std::sync::Arc;

use tollgate_core::key::Unkeyed;
use tower_layer::Layer;

use crate::config::BreakerConfig;
use crate::handle::{CircuitBreakerHandle, OnStateChange};
use crate::service::{CircuitBreaker, Local};
use crate::shared::Shared;

/// Stops calling a target that is failing, and probes it back. Clones share the breakers.
///
/// See the [crate docs](crate) for examples.
pub struct CircuitBreakerLayer<K = Unkeyed, H = ()> {
    keyer: K,
    shared: Arc<Shared>,
    hook: Arc<H>,
}

impl CircuitBreakerLayer {
    /// One breaker for every request, configured by `config`.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreakerLayer {
            keyer: Unkeyed,
            shared: Arc::new(Shared::new(config)),
            hook: Arc::new(()),
        }
    }
}

impl<K, H: OnStateChange> CircuitBreakerLayer<K, H> {
    /// The configuration every breaker of this layer follows.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// One breaker per key (per target, per model): [`tollgate_core::key`]. Idle breakers are
    /// forgotten as keys come and go.
    pub fn keyed_by<K2>(self, keyer: K2) -> CircuitBreakerLayer<K2, H> {
        CircuitBreakerLayer {
            keyer,
            shared: self.shared,
            hook: self.hook,
        }
    }

    /// Tells `hook` of every state change seen by the services this layer builds from now on,
    /// and by the handles it hands out from now on. The breakers stay the same: a clone or a
    /// handle taken before still sees them (it keeps the hook it had).
    pub fn on_state_change<H2: OnStateChange>(self, hook: H2) -> CircuitBreakerLayer<K, H2> {
        CircuitBreakerLayer {
            keyer: self.keyer,
            shared: self.shared,
            hook: Arc::new(hook),
        }
    }

    /// A handle on the breakers: state, manual control, mode.
    pub fn handle(&self) -> CircuitBreakerHandle<H> {
        CircuitBreakerHandle {
            shared: Arc::clone(&self.shared),
            hook: Arc::clone(&self.hook),
        }
    }
}

impl<S, K: Clone, H> Layer<S> for CircuitBreakerLayer<K, H> {
    type Service = CircuitBreaker<S, K, H>;

    fn layer(&self, inner: S) -> Self::Service {
        let local = Local::new(Arc::clone(&self.shared), Arc::clone(&self.hook));
        CircuitBreaker::new(inner, self.keyer.clone(), local)
    }
}

impl<K: Clone, H> Clone for CircuitBreakerLayer<K, H> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            keyer: self.keyer.clone(),
            shared: Arc::clone(&self.shared),
            hook: Arc::clone(&self.hook),
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
