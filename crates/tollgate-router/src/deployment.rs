//! [`Deployment`]: one endpoint × API key × model, with its own quota and breaker.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use tollgate_circuit_breaker::BreakerConfig;
use tollgate_core::rewrite::Rewrite;
use tollgate_providers::rewrite::SetModel;
use tollgate_ratelimit::{AnyStore, Limits, MemoryStore, Store};

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
    /// Its limits; `None`: none set (a store's own, or no quota).
    limits: Option<Limits>,
    /// Where its quota lives, when not in this process.
    store: Option<AnyStore>,
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
            limits: None,
            store: None,
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
        self.limits = Some(limits);
        self
    }

    /// Keeps this deployment's quota in `store` instead of this process — a
    /// [`RedisStore`](https://docs.rs/tollgate-redis) shared by every replica, one per
    /// deployment (under its own key prefix). The limits given to
    /// [`with_limits`](Self::with_limits) are set on the store; without them the store keeps
    /// its own. Routing reads each deployment's headroom from [`Store::outlook`]: a shared
    /// store answers it from what it last heard, so the choice is best effort across replicas
    /// while each admission stays exact.
    ///
    /// A store given to one deployment serves it in every router built from this
    /// configuration (clones share it).
    #[must_use]
    pub fn with_store<St: Store>(mut self, store: St) -> Self {
        self.store = Some(AnyStore::new(store));
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

    /// Its store, and the limits to hold it to: a fresh in-process store unless one was given.
    pub(crate) fn quota(&self) -> (AnyStore, Limits) {
        match (&self.store, &self.limits) {
            (Some(store), Some(limits)) => (store.clone(), limits.clone()),
            (Some(store), None) => (store.clone(), store.limits(None)),
            (None, limits) => {
                let limits = limits.clone().unwrap_or_else(|| Limits::new([]));
                (AnyStore::from(MemoryStore::new(limits.clone())), limits)
            }
        }
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
            .field("shared_store", &self.store.is_some())
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}
