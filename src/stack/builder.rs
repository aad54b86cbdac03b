//! [`StackBuilder`]: providers in, a [`Stack`] out, every layer in the documented order.

use std::fmt;

use tollgate_cache::CacheLayer;
use tollgate_circuit_breaker::CircuitBreakerLayer;
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tollgate_fallback::{FallbackConfig, FallbackLayer, FallbackPolicy, Target};
use tollgate_metrics::MetricsLayer;
use tollgate_providers::ClassifyLayer;
use tollgate_ratelimit::{ByModel, Limits, OpenAiChat, RateLimitLayer};
use tollgate_retry::RetryLayer;
use tollgate_router::{Deployment, RouterConfig, RouterLayer};
use tollgate_timeout::TimeoutLayer;
use tower::Layer;

use super::error::StackError;
use super::provider::Provider;
use super::service::{Description, Erased, Stack, StackBody, Transport};

/// Builds a [`Stack`]: a primary [`Provider`], fallbacks, a context-window chain, and
/// optionally a [`MetricsLayer`] outermost and a [`CacheLayer`] under it.
///
/// Each provider gets its own stack, outermost first: its request rewrites (endpoint,
/// credentials, model), `RetryLayer`, `CircuitBreakerLayer`, `RateLimitLayer` (keyed by
/// model, estimating tokens as OpenAI counts them), `ConcurrencyLayer`, `ClassifyLayer` (the
/// kind's classifier), and the transport. A `FallbackLayer` over them tries the primary, then
/// the [fallbacks](Self::with_fallback) in order, and sends a prompt too long for the context
/// window to the [context-window chain](Self::with_context_window_fallback). Without fallbacks or
/// context-window chain there is no `FallbackLayer`: the primary's own errors come out.
///
/// A [cache](Self::with_cache) sits above the `FallbackLayer` (or the primary's stack), under the
/// `MetricsLayer`: a hit spends no provider's quota, and is still counted as a request.
///
/// A provider with several [API keys](Provider::with_api_keys) has a `RouterLayer` in place of its
/// breaker and rate limit: one deployment per key, each with the key's credentials, its own
/// breaker and its own copy of the provider's limits (see
/// [Several API keys](Provider#several-api-keys)).
///
/// Providers with the same [`label`](Provider::label) share one stack — one quota, one
/// breaker — and must be equal.
///
/// See the [module docs](super) for examples.
#[derive(Clone)]
pub struct StackBuilder {
    primary: Provider,
    fallback: Vec<Provider>,
    context_window: Vec<Provider>,
    metrics: Option<MetricsLayer>,
    cache: Option<CacheLayer>,
    policy: Option<FallbackPolicy>,
}

impl StackBuilder {
    /// A stack sending every request to `primary`.
    pub fn new(primary: Provider) -> Self {
        StackBuilder {
            primary,
            fallback: Vec::new(),
            context_window: Vec::new(),
            metrics: None,
            cache: None,
            policy: None,
        }
    }

    /// Falls back to `provider` after the primary and the earlier fallbacks, when the
    /// [`FallbackPolicy`] says to move on: overloaded, down, out of quota, rejected key, open
    /// circuit, or a rate limit asking for a long wait.
    #[must_use]
    pub fn with_fallback(mut self, provider: Provider) -> Self {
        self.fallback.push(provider);
        self
    }

    /// After a context-window failure (`context_length_exceeded`), tries `provider` — a model
    /// with a larger context — after the earlier ones of this chain.
    #[must_use]
    pub fn with_context_window_fallback(mut self, provider: Provider) -> Self {
        self.context_window.push(provider);
        self
    }

    /// Records every request with `layer`, outermost: one logical request, with the retries,
    /// waits and hops the layers below report.
    #[must_use]
    pub fn with_metrics(mut self, layer: MetricsLayer) -> Self {
        self.metrics = Some(layer);
        self
    }

    /// Answers identical requests from `layer`'s cache, above the fallback and every provider's
    /// stack and under the [metrics](Self::with_metrics): a hit or a coalesced request reaches no
    /// provider and spends no quota.
    ///
    /// It takes the layer rather than a [`CacheConfig`](crate::cache::CacheConfig) so that you
    /// can keep its [`handle`](CacheLayer::handle) (the store's size, `clear`); the built
    /// stack's [`Stack::cache`] gives it too. Build the layer once per stack: clones of a
    /// layer share one store, so two stacks given clones of one layer would answer each
    /// other's requests.
    ///
    /// Which requests are cached is the cache's policy: by default only those that opt in,
    /// with the header `x-tollgate-cache: on` ([`CACHE_HEADER`](crate::cache::CACHE_HEADER),
    /// removed before the request goes on) or the
    /// [`CacheRequest::Use`](crate::cache::CacheRequest) extension. Responses carry a
    /// [`CacheStatus`](crate::cache::CacheStatus) extension, and a cacheable request's the
    /// header `x-tollgate-cache: hit`, `coalesced` or `miss`.
    ///
    /// The cache sees requests as the caller sent them, before each provider's rewrites: its
    /// key is the caller's body (and model), and the caller's identity is that of the
    /// request's own `authorization`-like headers and
    /// [`CacheIdentity`](crate::cache::CacheIdentity) extension, not the provider keys the
    /// stack adds below it. Requests without either share one identity: give each tenant a
    /// `CacheIdentity` when their answers must not be shared.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http::{Request, Response};
    /// use http_body_util::Full;
    /// use tollgate::body::BufferedBody;
    /// use tollgate::cache::{CacheConfig, CacheLayer, CacheStatus};
    /// use tollgate::ratelimit::presets::OpenAiTier;
    /// use tollgate::stack::{Provider, StackBuilder};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tollgate::BoxError> {
    /// // Stands in for an HTTP client, counting the requests that reach it.
    /// let sent = Arc::new(AtomicUsize::new(0));
    /// let transport = tower::service_fn({
    ///     let sent = Arc::clone(&sent);
    ///     move |_: Request<BufferedBody>| {
    ///         sent.fetch_add(1, Ordering::Relaxed);
    ///         async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("{}")))) }
    ///     }
    /// });
    /// let cache = CacheLayer::new(CacheConfig::default().with_ttl(Duration::from_secs(600)));
    /// let stack = StackBuilder::new(Provider::openai(OpenAiTier::Tier1).with_api_key("sk-openai"))
    ///     .with_cache(cache)
    ///     .build(transport)?;
    ///
    /// let request = || {
    ///     Request::post("/v1/chat/completions")
    ///         .header("x-tollgate-cache", "on")
    ///         .body(BufferedBody::from(r#"{"model":"gpt-4o","messages":[]}"#))
    /// };
    /// let first = stack.clone().oneshot(request()?).await?;
    /// assert_eq!(CacheStatus::of(&first), Some(CacheStatus::Miss));
    /// let second = stack.clone().oneshot(request()?).await?;
    /// assert_eq!(second.headers()["x-tollgate-cache"], "hit");
    /// assert_eq!(sent.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_cache(mut self, layer: CacheLayer) -> Self {
        self.cache = Some(layer);
        self
    }

    /// Moves on to the next provider as `policy` says ([`FallbackPolicy::default`] otherwise).
    #[must_use]
    pub fn with_fallback_policy(mut self, policy: FallbackPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Builds the stack over `transport`, cloned once per provider.
    ///
    /// `transport` is any HTTP client as a `tower::Service` ([`Transport`]): a hyper-util
    /// legacy `Client`, a reqwest adapter, a `tower::service_fn` in tests. It receives each
    /// request with the provider's absolute URI, credentials and model.
    ///
    /// # Errors
    ///
    /// [`StackError`] when a provider cannot be reached as configured: no or an invalid base
    /// URL, an invalid API key, more than 64 keys, a zero concurrency cap, or two different
    /// providers sharing a name.
    pub fn build<T: Transport>(self, transport: T) -> Result<Stack, StackError> {
        // One stack per distinct provider, shared by every chain it appears in.
        let mut built: Vec<(Provider, Erased)> = Vec::new();
        let mut stack_for = |provider: &Provider| -> Result<(String, Erased), StackError> {
            let label = provider.label();
            if let Some((existing, service)) = built.iter().find(|(p, _)| p.label() == label) {
                if existing != provider {
                    return Err(StackError::ConflictingProviders { name: label });
                }
                return Ok((label, service.clone()));
            }
            let service = provider_stack(provider, transport.clone())?;
            built.push((provider.clone(), service.clone()));
            Ok((label, service))
        };
        let (primary_name, primary) = stack_for(&self.primary)?;
        let mut chain = |providers: &[Provider]| {
            providers
                .iter()
                .map(&mut stack_for)
                .collect::<Result<Vec<_>, _>>()
        };
        let fallback = chain(&self.fallback)?;
        let context_window = chain(&self.context_window)?;

        let names =
            |chain: &[(String, Erased)]| chain.iter().map(|(name, _)| name.clone()).collect();
        let description = Description {
            primary: primary_name.clone(),
            fallback: names(&fallback),
            context_window: names(&context_window),
            metrics: self.metrics.is_some(),
            cache: self.cache.as_ref().map(CacheLayer::handle),
        };
        let targets = |chain: Vec<(String, Erased)>| {
            chain
                .into_iter()
                .map(|(name, service)| Target::new(name, service))
                .collect::<Vec<_>>()
        };
        let service = if fallback.is_empty() && context_window.is_empty() {
            if self.cache.is_none() && self.metrics.is_none() {
                primary
            } else {
                outermost(self.cache, self.metrics, primary)
            }
        } else {
            let mut config = FallbackConfig::new(targets(fallback))
                .with_context_window_targets(targets(context_window))
                .with_primary_name(&primary_name);
            if let Some(policy) = self.policy {
                config.policy = policy;
            }
            let layer = FallbackLayer::new(config);
            outermost(self.cache, self.metrics, layer.layer(primary))
        };
        Ok(Stack::new(service, description))
    }
}

/// One provider's stack: rewrites, retry, breaker, rate limit, concurrency, classify,
/// transport; with several keys, a router over them in place of the breaker and rate limit.
fn provider_stack<T: Transport>(provider: &Provider, transport: T) -> Result<Erased, StackError> {
    let rewrites = provider.rewrites()?;
    let keys = provider.key_credentials()?;
    let classified = ClassifyLayer::new(provider.kind().classifier()).layer(transport);
    // Time limits per attempt, below the concurrency cap (a wait for a slot is not the
    // provider being slow); the body is boxed first, as they want an `Unpin` one.
    let timed = match provider.timeout_config() {
        Some(config) => {
            Erased::boxing_body(TimeoutLayer::new(*config).layer(Erased::boxing_body(classified)))
        }
        None => Erased::boxing_body(classified),
    };
    let wire = match provider.max_in_flight_limit() {
        Some(max) => {
            Erased::boxing_body(ConcurrencyLayer::new(ConcurrencyConfig::new(max)).layer(timed))
        }
        None => timed,
    };
    if !keys.is_empty() {
        return with_router(provider, rewrites, keys, wire);
    }
    Ok(match provider.effective_limits() {
        Some(limits) => {
            let layer = RateLimitLayer::new(limits)
                .keyed_by(ByModel)
                .with_estimator(OpenAiChat::new());
            with_breaker(provider, rewrites, layer.layer(wire))
        }
        None => with_breaker(provider, rewrites, wire),
    })
}

/// `wire` under a router over the provider's keys — one deployment each, with the key's
/// credentials, the provider's limits and breaker — and retries, rewriting each request for
/// the provider (endpoint, model) first. Without a breaker, each key gets the default one: the
/// router passes over a failing key by its breaker.
fn with_router(
    provider: &Provider,
    rewrites: super::provider::Rewrites,
    keys: Vec<tollgate_providers::rewrite::Credentials>,
    wire: Erased,
) -> Result<Erased, StackError> {
    let label = provider.label();
    let limits = provider
        .effective_limits()
        .unwrap_or_else(|| Limits::new([]));
    let breaker = provider.breaker_config().cloned().unwrap_or_default();
    let deployments = keys.into_iter().enumerate().map(|(i, credentials)| {
        Deployment::new(&format!("{label}/key-{i}"))
            .with_rewrite(credentials)
            .with_limits(limits.clone())
            .with_breaker(breaker.clone())
    });
    let config = RouterConfig::new(deployments).with_strategy(provider.routing_strategy());
    let router = RouterLayer::new(config)
        .map_err(|error| StackError::Router {
            provider: label,
            error,
        })?
        .with_estimator(OpenAiChat::new());
    let retry = RetryLayer::new(provider.retry_policy().clone());
    Ok(Erased::rewriting(rewrites, retry.layer(router.layer(wire))))
}

/// `service` under `cache` if any, under `metrics` if any, erased once: metrics → cache →
/// `service`.
fn outermost<S>(cache: Option<CacheLayer>, metrics: Option<MetricsLayer>, service: S) -> Erased
where
    S: Transport<Body = StackBody>,
{
    match (cache, metrics) {
        (Some(cache), Some(metrics)) => Erased::boxing_body(metrics.layer(cache.layer(service))),
        (Some(cache), None) => Erased::boxing_body(cache.layer(service)),
        (None, Some(metrics)) => Erased::new(metrics.layer(service)),
        (None, None) => Erased::new(service),
    }
}

/// `inner` under the provider's breaker (unless turned off) and retries, rewriting each
/// request for the provider first.
fn with_breaker<S>(provider: &Provider, rewrites: super::provider::Rewrites, inner: S) -> Erased
where
    S: Transport<Body = StackBody>,
{
    let retry = RetryLayer::new(provider.retry_policy().clone());
    match provider.breaker_config() {
        Some(config) => {
            let breaker = CircuitBreakerLayer::new(config.clone()).layer(inner);
            Erased::rewriting(rewrites, retry.layer(breaker))
        }
        None => Erased::rewriting(rewrites, retry.layer(inner)),
    }
}

impl fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackBuilder")
            .field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .field("context_window", &self.context_window)
            .field("metrics", &self.metrics)
            .field("cache", &self.cache)
            .field("policy", &self.policy)
            .finish()
    }
}
