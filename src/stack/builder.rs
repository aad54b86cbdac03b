//! [`StackBuilder`]: providers in, a [`Stack`] out, every layer in the documented order.

use std::fmt;

use tollgate_cache::CacheLayer;
use tollgate_circuit_breaker::CircuitBreakerLayer;
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tollgate_fallback::{FallbackConfig, FallbackLayer, FallbackPolicy, Target};
use tollgate_metrics::MetricsLayer;
use tollgate_providers::ClassifyLayer;
use tollgate_ratelimit::{Limits, OpenAiChat, RateLimitConfig, RateLimitLayer};
#[cfg(feature = "redis")]
use tollgate_redis::{RedisConfig, RedisStore};
use tollgate_retry::RetryLayer;
use tollgate_router::{Deployment, RouterConfig, RouterLayer};
use tollgate_timeout::TimeoutLayer;
use tower::Layer;

use super::error::StackError;
use super::provider::Provider;
use super::service::{
    BoxBodies, Description, Either, Erased, Rewritten, Stack, StackBody, Transport,
};

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
/// Each provider's quota lives in its own memory, in this process; with the `redis` feature,
/// `with_shared_quota` keeps it in Redis instead, shared by every replica built with the same
/// configuration.
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
    quotas: Quotas,
}

/// Where the providers' quotas live: each in its own memory or, with the `redis` feature and
/// a [shared quota](StackBuilder::with_shared_quota), in Redis.
#[derive(Clone, Default)]
struct Quotas {
    #[cfg(feature = "redis")]
    shared: Option<RedisConfig>,
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
            quotas: Quotas::default(),
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

    /// Keeps every provider's quota in the Redis `config` names, so that several replicas of a
    /// service — each building this stack — share each provider's quota instead of each
    /// believing it owns the whole of it.
    ///
    /// Each provider stack with a rate limit gets its own
    /// [`RedisStore`](crate::ratelimit::redis::RedisStore), built with the provider's limits
    /// and `config`, its [`prefix`](RedisConfig::prefix) extended by the provider's
    /// [`label`](Provider::label): `<prefix>:<label>` (`tollgate:openai/gpt-4o`; `%`, `:`,
    /// `{`, `}` and whitespace in the label are written `%XX`). So two providers of one stack
    /// never share a quota, and two processes whose stacks have the same providers and the
    /// same `config` share every one. Requests still wait in each replica's own queue; see
    /// [`tollgate::ratelimit::redis`](crate::ratelimit::redis) for what is shared, and what
    /// happens while Redis cannot be reached (by default each replica admits
    /// 1/[`replicas`](RedisConfig::replicas) of the limits).
    ///
    /// [`build`](Self::build) connects to Redis in the background: it does not wait for Redis,
    /// and an unreachable Redis is not an error. A provider without a rate limit
    /// ([`Provider::without_rate_limit`]) has nothing to share.
    ///
    /// # Several API keys
    ///
    /// A provider with [several keys](Provider::with_api_keys) keeps each key's quota in a
    /// store of its own, prefixed `<prefix>:<label>:key-<i>` (the key's place in the list:
    /// replicas must list the keys in the same order). Each replica's router picks a key by
    /// the headroom it last heard from Redis; every admission is still decided by Redis.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// use std::time::Duration;
    ///
    /// use tollgate::ratelimit::algorithm::Quota;
    /// use tollgate::ratelimit::redis::{RedisConfig, Unavailable};
    /// use tollgate::ratelimit::{Limit, Limits};
    /// use tollgate::stack::{Provider, Stack, StackBuilder, StackError, Transport};
    ///
    /// /// This replica's stack: one of `replicas` sharing the Redis at `url`.
    /// fn stack(url: String, replicas: u32, transport: impl Transport) -> Result<Stack, StackError> {
    ///     let rpm = Limits::new([Limit::requests(Quota::per_minute(NonZeroU64::new(500).unwrap()))]);
    ///     let quota = RedisConfig::new(url) // may hold a password: it is never shown
    ///         .with_prefix("chat-gateway")
    ///         .with_replicas(replicas) // while Redis is away, each admits 1/replicas
    ///         .with_timeout(Duration::from_millis(50))
    ///         .with_unavailable(Unavailable::LocalShare);
    ///     StackBuilder::new(
    ///         Provider::openai_compatible("https://llm.example.com")
    ///             .with_name("llm")
    ///             .with_limits(rpm)
    ///             .without_adaptive(),
    ///     )
    ///     .with_shared_quota(quota) // the quota lives in Redis, under `chat-gateway:llm`
    ///     .build(transport) // on a tokio runtime: the store connects in the background
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), StackError> {
    /// # let transport = tower::service_fn(|_: http::Request<tollgate::body::BufferedBody>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// # });
    /// // In production, read from the environment. Nothing listens here: an unreachable Redis
    /// // is not an error (each replica admits its share until Redis answers).
    /// let url = "redis://127.0.0.1:1/".to_owned();
    /// let stack = stack(url, 3, transport)?;
    /// assert_eq!(stack.primary(), "llm");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Built outside a tokio runtime, or with a configuration the store refuses, the stack
    /// fails with an error naming the provider, never the URL:
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// use tollgate::ratelimit::redis::RedisConfig;
    /// use tollgate::ratelimit::redis::error::RedisConfigError;
    /// use tollgate::ratelimit::presets::OpenAiTier;
    /// use tollgate::stack::{Provider, StackBuilder, StackError};
    /// # let transport = tower::service_fn(|_: http::Request<tollgate::body::BufferedBody>| async {
    /// #     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// # });
    ///
    /// let error = StackBuilder::new(Provider::openai(OpenAiTier::Tier1).without_adaptive())
    ///     .with_shared_quota(RedisConfig::new("redis://:s3cret@redis.internal:6379/"))
    ///     .build(transport) // no tokio runtime here
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error,
    ///     StackError::SharedQuota { provider: "openai".into(), error: RedisConfigError::NoRuntime }
    /// );
    /// assert!(!error.to_string().contains("s3cret"));
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn with_shared_quota(mut self, config: RedisConfig) -> Self {
        self.quotas.shared = Some(config);
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
    /// providers sharing a name; with a shared quota (`with_shared_quota`, the `redis`
    /// feature), when a provider's quota cannot be kept in Redis (`StackError::SharedQuota`,
    /// which includes building outside a tokio runtime).
    pub fn build<T: Transport>(self, transport: T) -> Result<Stack, StackError> {
        // One stack per distinct provider, shared by every chain it appears in.
        let mut built: Vec<(Provider, _)> = Vec::new();
        let mut stack_for = |provider: &Provider| -> Result<(String, _), StackError> {
            let label = provider.label();
            if let Some((existing, service)) = built.iter().find(|(p, _)| p.label() == label) {
                if existing != provider {
                    return Err(StackError::ConflictingProviders { name: label });
                }
                return Ok((label, Clone::clone(service)));
            }
            let service = provider_stack(provider, &self.quotas, transport.clone())?;
            built.push((provider.clone(), Clone::clone(&service)));
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

        let names = |chain: &[(String, _)]| chain.iter().map(|(name, _)| name.clone()).collect();
        let description = Description {
            primary: primary_name.clone(),
            fallback: names(&fallback),
            context_window: names(&context_window),
            metrics: self.metrics.is_some(),
            cache: self.cache.as_ref().map(CacheLayer::handle),
        };
        let targets = |chain: Vec<(String, _)>| {
            chain
                .into_iter()
                .map(|(name, service)| Target::new(name, service))
                .collect::<Vec<_>>()
        };
        let service = if fallback.is_empty() && context_window.is_empty() {
            outermost(self.cache, self.metrics, primary)
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

/// One provider's stack: rewrites, retry, breaker, rate limit (its quota where `quotas` says),
/// concurrency, classify, transport; with several keys, a router over them in place of the
/// breaker and rate limit. One type whatever the provider's options (they are chosen by
/// `Either`s), so that the providers' stacks need no erasing: the [`Stack`] boxes its future
/// once, for all of them.
fn provider_stack<T: Transport>(
    provider: &Provider,
    quotas: &Quotas,
    transport: T,
) -> Result<impl Transport<Body = StackBody> + use<T>, StackError> {
    let rewrites = provider.rewrites()?;
    let keys = provider.key_credentials()?;
    // The body is boxed once, as the stack answers with a `StackBody`, which is also the
    // `Unpin` body the timeouts want.
    let classified = BoxBodies(ClassifyLayer::new(provider.kind().classifier()).layer(transport));
    // Time limits per attempt, below the concurrency cap (a wait for a slot is not the
    // provider being slow).
    let timed = match provider.timeout_config() {
        Some(config) => Either::Left(BoxBodies(TimeoutLayer::new(*config).layer(classified))),
        None => Either::Right(classified),
    };
    let wire = match provider.max_in_flight_limit() {
        Some(max) => {
            let config = ConcurrencyConfig::new(max)
                .with_max_wait(provider.max_wait())
                .with_max_queue(provider.max_queue());
            Either::Left(BoxBodies(ConcurrencyLayer::new(config).layer(timed)))
        }
        None => Either::Right(timed),
    };
    let inner = if keys.is_empty() {
        Either::Right(with_breaker(provider, limited(provider, quotas, wire)?))
    } else {
        Either::Left(with_router(provider, keys, quotas, wire)?)
    };
    Ok(Rewritten::new(rewrites, inner))
}

/// `wire` under the provider's rate limit (its quota where `quotas` says), if it has limits.
fn limited<W>(
    provider: &Provider,
    quotas: &Quotas,
    wire: W,
) -> Result<impl Transport<Body = StackBody> + use<W>, StackError>
where
    W: Transport<Body = StackBody>,
{
    let Some(limits) = provider.effective_limits() else {
        return Ok(Either::Right(wire));
    };
    let config = RateLimitConfig::new(limits.clone())
        .with_max_wait(provider.max_wait())
        .with_max_queue(provider.max_queue());
    #[cfg(feature = "redis")]
    let limited = match &quotas.shared {
        Some(shared) => {
            let store = shared_store(provider, None, shared, limits)?;
            let layer = RateLimitLayer::from_store(store, config)
                .keyed_by(provider.model_key())
                .with_estimator(OpenAiChat::new());
            Either::Left(layer.layer(wire))
        }
        None => {
            let layer = RateLimitLayer::new(config)
                .keyed_by(provider.model_key())
                .with_estimator(OpenAiChat::new());
            Either::Right(layer.layer(wire))
        }
    };
    #[cfg(not(feature = "redis"))]
    let limited = {
        let _ = (quotas, limits);
        let layer = RateLimitLayer::new(config)
            .keyed_by(provider.model_key())
            .with_estimator(OpenAiChat::new());
        layer.layer(wire)
    };
    Ok(Either::Left(limited))
}

/// The Redis store holding `provider`'s quota (or its API key's, `key` by place in its list)
/// to `limits`: `config`, its prefix extended by the provider's label (and `key-<i>`).
#[cfg(feature = "redis")]
fn shared_store(
    provider: &Provider,
    key: Option<usize>,
    config: &RedisConfig,
    limits: Limits,
) -> Result<RedisStore, StackError> {
    let label = provider.label();
    let mut prefix = format!("{}:{}", config.prefix, key_part(&label));
    if let Some(i) = key {
        prefix.push_str(&format!(":key-{i}"));
    }
    RedisStore::new(config.clone().with_prefix(prefix), limits).map_err(|error| {
        StackError::SharedQuota {
            provider: label,
            error,
        }
    })
}

/// `label` as a part of a Redis key: `%`, `:`, `{`, `}`, whitespace and control characters
/// written `%XX` (each UTF-8 byte), so that no two labels give the same part and a label
/// cannot end the prefix (`:`) or open a hash tag (`{`).
#[cfg(feature = "redis")]
fn key_part(label: &str) -> String {
    let mut part = String::with_capacity(label.len());
    for c in label.chars() {
        if matches!(c, '%' | ':' | '{' | '}') || c.is_whitespace() || c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                part.push_str(&format!("%{byte:02X}"));
            }
        } else {
            part.push(c);
        }
    }
    part
}

/// `wire` under a router over the provider's keys — one deployment each, with the key's
/// credentials, the provider's limits (each key's quota where `quotas` says) and breaker — and
/// retries. Without a
/// breaker, each key gets the default one: the router passes over a failing key by its
/// breaker.
fn with_router<S>(
    provider: &Provider,
    keys: Vec<tollgate_providers::rewrite::Credentials>,
    quotas: &Quotas,
    wire: S,
) -> Result<impl Transport<Body = StackBody> + use<S>, StackError>
where
    S: Transport<Body = StackBody>,
{
    let label = provider.label();
    let limits = provider.effective_limits();
    let breaker = provider.breaker_config().cloned().unwrap_or_default();
    let mut deployments = Vec::with_capacity(keys.len());
    for (i, credentials) in keys.into_iter().enumerate() {
        let deployment = Deployment::new(&format!("{label}/key-{i}"))
            .with_rewrite(credentials)
            .with_limits(limits.clone().unwrap_or_else(|| Limits::new([])))
            .with_breaker(breaker.clone());
        #[cfg(feature = "redis")]
        let deployment = match (&quotas.shared, &limits) {
            (Some(config), Some(limits)) => {
                let store = shared_store(provider, Some(i), config, limits.clone())?;
                deployment.with_store(store)
            }
            _ => deployment,
        };
        deployments.push(deployment);
    }
    #[cfg(not(feature = "redis"))]
    let _ = quotas;
    let config = RouterConfig::new(deployments)
        .with_strategy(provider.routing_strategy())
        .with_max_wait(provider.max_wait())
        .with_max_queue(provider.max_queue());
    let router = RouterLayer::new(config)
        .map_err(|error| StackError::Router {
            provider: label,
            error,
        })?
        .with_estimator(OpenAiChat::new());
    let retry = RetryLayer::new(provider.retry_policy().clone());
    Ok(retry.layer(router.layer(wire)))
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

/// `inner` under the provider's breaker (unless turned off) and retries.
fn with_breaker<S>(provider: &Provider, inner: S) -> impl Transport<Body = StackBody> + use<S>
where
    S: Transport<Body = StackBody>,
{
    let retry = RetryLayer::new(provider.retry_policy().clone());
    let inner = match provider.breaker_config() {
        Some(config) => Either::Left(CircuitBreakerLayer::new(config.clone()).layer(inner)),
        None => Either::Right(inner),
    };
    retry.layer(inner)
}

impl fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("StackBuilder");
        f.field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .field("context_window", &self.context_window)
            .field("metrics", &self.metrics)
            .field("cache", &self.cache)
            .field("policy", &self.policy);
        // The configuration's Debug hides the URL.
        #[cfg(feature = "redis")]
        f.field("shared_quota", &self.quotas.shared);
        f.finish()
    }
}
