//! [`RateLimitLayer`]: the layer.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::config::RateLimitConfig;
use crate::estimate::PerRequest;
use crate::key::Unkeyed;
use crate::limiter::{Limiter, RateLimitHandle};
use crate::service::RateLimit;
use crate::store::{MemoryStore, Store};

/// Applies client-side quotas: every request is admitted against its key's
/// [`Limits`](crate::Limits), all dimensions at once, before it is sent. Clones share one quota.
///
/// See the [crate docs](crate) for examples.
pub struct RateLimitLayer<K = Unkeyed, E = PerRequest, St: Store = MemoryStore> {
    keyer: K,
    estimator: E,
    config: Arc<RateLimitConfig>,
    limiter: Arc<Limiter<St>>,
}

impl RateLimitLayer {
    /// Holds every request to `config`'s limits, in memory, unkeyed, one request each (set an
    /// [`estimator`](Self::with_estimator) to count tokens). A bare [`Limits`](crate::Limits) waits
    /// as long as it takes.
    pub fn new(config: impl Into<RateLimitConfig>) -> Self {
        let config = config.into();
        let store = MemoryStore::new(config.limits.clone()).with_max_keys(config.max_keys);
        RateLimitLayer::build(store, config)
    }
}

impl<St: Store> RateLimitLayer<Unkeyed, PerRequest, St> {
    /// Keeps quota state in `store`, which takes `config`'s limits as its unkeyed ones (limits
    /// it holds for single keys stay).
    pub fn from_store(store: St, config: impl Into<RateLimitConfig>) -> Self {
        let config = config.into();
        store.set_limits(None, config.limits.clone());
        RateLimitLayer::build(store, config)
    }

    fn build(store: St, config: RateLimitConfig) -> Self {
        let limiter = Arc::new(Limiter::new(store, config.max_queue));
        RateLimitLayer {
            keyer: Unkeyed,
            estimator: PerRequest,
            config: Arc::new(config),
            limiter,
        }
    }
}

impl<K, E, St: Store> RateLimitLayer<K, E, St> {
    /// Takes each request's quota key with `keyer`: per model, API key or tenant
    /// ([`key`](crate::key)).
    pub fn keyed_by<K2>(self, keyer: K2) -> RateLimitLayer<K2, E, St> {
        RateLimitLayer {
            keyer,
            estimator: self.estimator,
            config: self.config,
            limiter: self.limiter,
        }
    }

    /// Estimates the cost of requests without a [`Cost`](tollgate_core::Cost) extension with
    /// `estimator` ([`estimate`](crate::estimate)).
    pub fn with_estimator<E2>(self, estimator: E2) -> RateLimitLayer<K, E2, St> {
        RateLimitLayer {
            keyer: self.keyer,
            estimator,
            config: self.config,
            limiter: self.limiter,
        }
    }

    /// What the layer was built with. Limits changed at runtime through the
    /// [`handle`](Self::handle) are read there.
    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// A handle on the shared state: change limits at runtime, count keys and waiters.
    pub fn handle(&self) -> RateLimitHandle<St> {
        RateLimitHandle {
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<S, K: Clone, E: Clone, St: Store> Layer<S> for RateLimitLayer<K, E, St> {
    type Service = RateLimit<S, K, E, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(
            inner,
            self.keyer.clone(),
            self.estimator.clone(),
            self.config.max_wait,
            Arc::clone(&self.limiter),
        )
    }
}

impl<K: Clone, E: Clone, St: Store> Clone for RateLimitLayer<K, E, St> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            keyer: self.keyer.clone(),
            estimator: self.estimator.clone(),
            config: Arc::clone(&self.config),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<K: fmt::Debug, E: fmt::Debug, St: Store> fmt::Debug for RateLimitLayer<K, E, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("keyer", &self.keyer)
            .field("estimator", &self.estimator)
            .field("max_wait", &self.config.max_wait)
            .field("limiter", &self.limiter)
            .finish()
    }
}
