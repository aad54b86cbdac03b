//! [`RouterLayer`]: the layer.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use tollgate_circuit_breaker::CircuitBreakerLayer;
use tollgate_ratelimit::{OpenAiChat, RateLimitConfig, RateLimitLayer};
use tower_layer::Layer;

use crate::config::RouterConfig;
use crate::error::BuildError;
use crate::service::{Router, Shared, Slot};

/// Spreads requests over equivalent deployments — API keys, accounts, regions of one model —
/// each behind its own [`RateLimitLayer`] and [`CircuitBreakerLayer`] over the inner service
/// (the transport, usually under a `ClassifyLayer`).
///
/// The service it makes and that service's clones share every deployment's quota, breaker,
/// rotation and latency figures.
///
/// See the [crate docs](crate) for examples.
#[derive(Clone)]
pub struct RouterLayer<E = OpenAiChat> {
    config: RouterConfig,
    estimator: E,
}

impl RouterLayer {
    /// Routes over `config`'s deployments, estimating token costs for OpenAI-compatible chat
    /// bodies ([`OpenAiChat`]).
    ///
    /// # Errors
    ///
    /// No deployments, more than 64, or two with the same name.
    pub fn new(config: RouterConfig) -> Result<Self, BuildError> {
        let deployments = &config.deployments;
        if deployments.is_empty() {
            return Err(BuildError::NoDeployments);
        }
        if deployments.len() > 64 {
            return Err(BuildError::TooManyDeployments(deployments.len()));
        }
        let mut names = HashSet::new();
        for deployment in deployments {
            if !names.insert(Arc::clone(&deployment.name)) {
                return Err(BuildError::DuplicateName(deployment.name.to_string()));
            }
        }
        Ok(RouterLayer {
            config,
            estimator: OpenAiChat::new(),
        })
    }
}

impl<E> RouterLayer<E> {
    /// Estimates each request's cost — for the quotas and the context-window check — with
    /// `estimator` (a request's own `Cost` extension comes first). The context-window check
    /// counts the input and the output the body asks for once (`max_completion_tokens`, else
    /// `max_tokens`, else `max_output_tokens`), even when the estimate charges it `n` times or
    /// not at all: the larger of the token estimate less the output of the `n - 1` other
    /// completions, and the input tokens plus the output asked for.
    pub fn with_estimator<E2>(self, estimator: E2) -> RouterLayer<E2> {
        RouterLayer {
            config: self.config,
            estimator,
        }
    }

    /// What the layer was built with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }
}

impl<S: Clone, E: Clone> Layer<S> for RouterLayer<E> {
    type Service = Router<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        let mut slots = Vec::with_capacity(self.config.deployments.len());
        let mut services = Vec::with_capacity(self.config.deployments.len());
        for deployment in &self.config.deployments {
            let (store, limits) = deployment.quota();
            let quota = RateLimitLayer::from_store(
                store,
                RateLimitConfig::new(limits)
                    .with_max_wait(self.config.max_wait)
                    .with_max_queue(self.config.max_queue),
            );
            let breaker = CircuitBreakerLayer::new(deployment.breaker.clone());
            let window = deployment.context_window.or_else(|| {
                deployment
                    .model
                    .as_deref()
                    .and_then(|model| self.config.context_windows.lookup(model))
            });
            slots.push(Slot::new(
                deployment,
                window,
                quota.handle(),
                breaker.handle(),
            ));
            services.push(breaker.layer(quota.layer(inner.clone())));
        }
        let shared = Shared::new(
            slots,
            self.config.strategy,
            self.estimator.clone(),
            self.config.eject_for,
            self.config.max_wait,
            self.config.max_queue,
        );
        Router::new(services, shared)
    }
}

impl<E> fmt::Debug for RouterLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
