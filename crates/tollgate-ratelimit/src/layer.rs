//! [`RateLimitLayer`]: the layer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use crate::estimate::PerRequest;
use crate::key::Unkeyed;
use crate::limit::Limits;
use crate::limiter::{Limiter, RateLimitHandle};
use crate::service::RateLimit;
use crate::store::{MemoryStore, Store};

/// Applies client-side quotas: every request is admitted against its key's [`Limits`], all
/// dimensions at once, before it is sent. Clones share one quota.
///
/// See the [crate docs](crate) for examples.
pub struct RateLimitLayer<K = Unkeyed, E = PerRequest, St: Store = MemoryStore> {
    keyer: K,
    estimator: E,
    max_wait: Option<Duration>,
    limiter: Arc<Limiter<St>>,
}

impl RateLimitLayer {
    /// Holds every request to `limits`, in memory, unkeyed, one request each (set an
    /// [`estimator`](Self::with_estimator) to count tokens), waiting as long as it takes.
    pub fn new(limits: Limits) -> Self {
        RateLimitLayer::from_store(MemoryStore::new(limits))
    }
}

impl<St: Store> RateLimitLayer<Unkeyed, PerRequest, St> {
    /// Keeps quota state, and the limits, in `store`.
    pub fn from_store(store: St) -> Self {
        RateLimitLayer {
            keyer: Unkeyed,
            estimator: PerRequest,
            max_wait: None,
            limiter: Arc::new(Limiter::new(store)),
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
            max_wait: self.max_wait,
            limiter: self.limiter,
        }
    }

    /// Estimates the cost of requests without a [`Cost`](tollgate_core::Cost) extension with
    /// `estimator` ([`estimate`](crate::estimate)).
    pub fn with_estimator<E2>(self, estimator: E2) -> RateLimitLayer<K, E2, St> {
        RateLimitLayer {
            keyer: self.keyer,
            estimator,
            max_wait: self.max_wait,
            limiter: self.limiter,
        }
    }

    /// Refuses, with [`RateLimited`](crate::error::RateLimited), a request that would wait
    /// longer than `max_wait` (its deadline, when sooner, counts too).
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Never waits: a request that does not fit now is refused at once with
    /// [`RateLimited`](crate::error::RateLimited) and its `retry_after`.
    #[must_use]
    pub fn reject_only(self) -> Self {
        self.with_max_wait(Duration::ZERO)
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
            self.max_wait,
            Arc::clone(&self.limiter),
        )
    }
}

impl<K: Clone, E: Clone, St: Store> Clone for RateLimitLayer<K, E, St> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            keyer: self.keyer.clone(),
            estimator: self.estimator.clone(),
            max_wait: self.max_wait,
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<K: fmt::Debug, E: fmt::Debug, St: Store> fmt::Debug for RateLimitLayer<K, E, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("keyer", &self.keyer)
            .field("estimator", &self.estimator)
            .field("max_wait", &self.max_wait)
            .field("limiter", &self.limiter)
            .finish()
    }
}
