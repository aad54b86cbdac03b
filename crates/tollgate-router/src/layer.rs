//! [`RouterLayer`]: the layer.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_circuit_breaker::CircuitBreakerLayer;
use tollgate_ratelimit::{OpenAiChat, RateLimitConfig, RateLimitLayer};
use tower_layer::Layer;

use crate::context::ContextWindows;
use crate::deployment::Deployment;
use crate::error::BuildError;
use crate::service::{Router, Shared, Slot};
use crate::strategy::Strategy;

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
    deployments: Vec<Deployment>,
    strategy: Strategy,
    windows: ContextWindows,
    estimator: E,
    eject_for: Duration,
    max_wait: Duration,
}

/// How long a deployment whose key was rejected stays out of rotation by default.
const DEFAULT_EJECT_FOR: Duration = Duration::from_secs(300);

/// How long a request may wait for a deployment by default, without a deadline of its own.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

impl RouterLayer {
    /// Routes over `deployments` round-robin, with the default context windows, token
    /// estimates for OpenAI-compatible chat bodies ([`OpenAiChat`]), deployments taken out of
    /// rotation for 5 minutes when their key is rejected, and waits of at most 60 s.
    ///
    /// # Errors
    ///
    /// No deployments, more than 64, or two with the same name.
    pub fn new(deployments: impl IntoIterator<Item = Deployment>) -> Result<Self, BuildError> {
        let deployments: Vec<Deployment> = deployments.into_iter().collect();
        if deployments.is_empty() {
            return Err(BuildError::NoDeployments);
        }
        if deployments.len() > 64 {
            return Err(BuildError::TooManyDeployments(deployments.len()));
        }
        let mut names = HashSet::new();
        for deployment in &deployments {
            if !names.insert(Arc::clone(&deployment.name)) {
                return Err(BuildError::DuplicateName(deployment.name.to_string()));
            }
        }
        Ok(RouterLayer {
            deployments,
            strategy: Strategy::default(),
            windows: ContextWindows::default(),
            estimator: OpenAiChat::new(),
            eject_for: DEFAULT_EJECT_FOR,
            max_wait: DEFAULT_MAX_WAIT,
        })
    }
}

impl<E> RouterLayer<E> {
    /// Chooses among the deployments that can take a request as `strategy` says.
    #[must_use]
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Looks up each deployment's model in `windows` (a deployment's own
    /// [`context_window`](Deployment::context_window) comes first).
    #[must_use]
    pub fn with_context_windows(mut self, windows: ContextWindows) -> Self {
        self.windows = windows;
        self
    }

    /// Estimates each request's cost — for the quotas and the context-window check — with
    /// `estimator` (a request's own `Cost` extension comes first). The context-window check
    /// counts the input and the output the body asks for once (`max_completion_tokens`, else
    /// `max_tokens`, else `max_output_tokens`), even when the estimate charges it `n` times or
    /// not at all: the larger of the token estimate less the output of the `n - 1` other
    /// completions, and the input tokens plus the output asked for.
    pub fn with_estimator<E2>(self, estimator: E2) -> RouterLayer<E2> {
        RouterLayer {
            deployments: self.deployments,
            strategy: self.strategy,
            windows: self.windows,
            estimator,
            eject_for: self.eject_for,
            max_wait: self.max_wait,
        }
    }

    /// How long a deployment stays out of rotation after its key is rejected (`Unauthorized`,
    /// `PermissionDenied`) or its quota reported spent (`QuotaExhausted`).
    #[must_use]
    pub fn eject_for(mut self, duration: Duration) -> Self {
        self.eject_for = duration;
        self
    }

    /// How long a request without a [`Deadline`](tollgate_core::Deadline) may wait for a
    /// deployment (for one out of rotation or open to come back, or in a quota's queue) before
    /// it fails with [`NoDeployment`](crate::error::NoDeployment). A deadline, when sooner,
    /// counts instead.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl<S: Clone, E: Clone> Layer<S> for RouterLayer<E> {
    type Service = Router<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        let mut slots = Vec::with_capacity(self.deployments.len());
        let mut services = Vec::with_capacity(self.deployments.len());
        for deployment in &self.deployments {
            let quota = RateLimitLayer::new(
                RateLimitConfig::new(deployment.limits.clone()).with_max_wait(self.max_wait),
            );
            let breaker = CircuitBreakerLayer::new(deployment.breaker.clone());
            let window = deployment.context_window.or_else(|| {
                deployment
                    .model
                    .as_deref()
                    .and_then(|model| self.windows.lookup(model))
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
            self.strategy,
            self.estimator.clone(),
            self.eject_for,
            self.max_wait,
        );
        Router::new(services, shared)
    }
}

impl<E> fmt::Debug for RouterLayer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterLayer")
            .field("deployments", &self.deployments)
            .field("strategy", &self.strategy)
            .field("eject_for", &self.eject_for)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}
