//! [`Deployment`]: one endpoint × API key × model, with its own quota and breaker.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use tollgate_circuit_breaker::BreakerConfig;
use tollgate_core::rewrite::Rewrite;
use tollgate_providers::rewrite::SetModel;
use tollgate_ratelimit::Limits;

/// One of the equivalent places a request can go: an endpoint, an API key and a model, each
/// with its own rate limit ([`RateLimitLayer`](tollgate_ratelimit::RateLimitLayer)) and circuit
/// breaker ([`CircuitBreakerLayer`](tollgate_circuit_breaker::CircuitBreakerLayer)), which the
/// router builds over the shared transport.
///
/// The request is rewritten for the deployment before its breaker and quota see it: the
/// rewriters of `tollgate-providers` ([`Endpoint`](tollgate_providers::rewrite::Endpoint),
/// [`Credentials`](tollgate_providers::rewrite::Credentials), [`SetModel`]) or any [`Rewrite`].
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use tollgate_providers::rewrite::{Credentials, Endpoint};
/// use tollgate_ratelimit::{Limit, Limits, algorithm::Quota};
/// use tollgate_router::Deployment;
///
/// # fn main() -> Result<(), tollgate_core::BoxError> {
/// let rpm = |n| Limits::new([Limit::requests(Quota::per_minute(NonZeroU64::new(n).unwrap()))]);
/// let eu = Deployment::new("azure-eu")
///     .with_rewrite(Endpoint::new("https://eu.example.openai.azure.com/openai/deployments/gpt-4o")?)
///     .with_rewrite(Credentials::header("api-key", "AZURE_EU_KEY")?)
///     .with_model("gpt-4o")
///     .with_limits(rpm(500));
/// # let _ = eu;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Deployment {
    pub(crate) name: Arc<str>,
    pub(crate) model: Option<Arc<str>>,
    pub(crate) context_window: Option<u64>,
    pub(crate) rewrites: Vec<Arc<dyn Rewrite>>,
    pub(crate) limits: Limits,
    pub(crate) breaker: BreakerConfig,
    pub(crate) weight: NonZeroU32,
}

impl Deployment {
    /// A deployment named `name` (in events, metrics and errors; never a key), with no
    /// quota, the default breaker and weight 1.
    pub fn new(name: &str) -> Self {
        Deployment {
            name: Arc::from(name),
            model: None,
            context_window: None,
            rewrites: Vec::new(),
            limits: Limits::new([]),
            breaker: BreakerConfig::default(),
            weight: NonZeroU32::MIN,
        }
    }

    /// Rewrites each request for this deployment (after the rewriters given before).
    #[must_use]
    pub fn with_rewrite(mut self, rewrite: impl Rewrite) -> Self {
        self.rewrites.push(Arc::new(rewrite));
        self
    }

    /// Serves `model`: the request body's `model` is set to it, and its context window is
    /// looked up in the router's [`ContextWindows`](crate::ContextWindows).
    #[must_use]
    pub fn with_model(mut self, model: &str) -> Self {
        self.model = Some(Arc::from(model));
        self.with_rewrite(SetModel::new(model))
    }

    /// This deployment's context window, in tokens, instead of the table's.
    #[must_use]
    pub fn with_context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// This deployment's quota (its account's or key's limits).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// This deployment's circuit breaker.
    #[must_use]
    pub fn with_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Its share under [`Strategy::Weighted`](crate::Strategy::Weighted) (1 by default).
    #[must_use]
    pub fn with_weight(mut self, weight: NonZeroU32) -> Self {
        self.weight = weight;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployment")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("context_window", &self.context_window)
            .field("rewrites", &self.rewrites.len())
            .field("limits", &self.limits)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
