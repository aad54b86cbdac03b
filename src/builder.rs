//! [`ServiceBuilderExt`]: tollgate's layers as `tower::ServiceBuilder` methods.

/// What [`ServiceBuilderExt::route`] builds: a router over a body buffer, over `L`.
#[cfg(feature = "router")]
type Routed<L> = tower::ServiceBuilder<
    tower_layer::Stack<
        tollgate_router::RouterLayer,
        tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
    >,
>;

/// tollgate's layers as methods on [`tower::ServiceBuilder`](https://docs.rs/tower/latest/tower/struct.ServiceBuilder.html).
///
/// This trait is sealed: it is implemented for `ServiceBuilder` only.
///
/// # Examples
///
/// ```
/// use tollgate::providers::Anthropic;
/// use tollgate::ServiceBuilderExt;
/// use tower::ServiceBuilder;
///
/// let builder = ServiceBuilder::new().classify(Anthropic::new());
/// # let _ = builder;
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Adds a [`MetricsLayer`](crate::MetricsLayer) labelled `provider`. Put it first
    /// (outermost). For a [`handle`](crate::metrics::MetricsLayer::handle) on in-process
    /// figures, build the layer and pass it to `.layer(..)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().metrics("openai");
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    fn metrics(
        self,
        provider: &str,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_metrics::MetricsLayer, L>>;

    /// Adds a [`ConcurrencyLayer`](crate::ConcurrencyLayer) built from `config`, unkeyed.
    /// For keys, or a handle, build the layer and pass it to `.layer(..)`. (Not
    /// `concurrency_limit`: tower's own method would shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::ServiceBuilderExt;
    /// use tollgate::concurrency::ConcurrencyConfig;
    /// use tower::ServiceBuilder;
    ///
    /// // DeepSeek's per-account cap for its Pro model.
    /// let builder = ServiceBuilder::new().concurrency(ConcurrencyConfig::new(500));
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "concurrency")]
    #[cfg_attr(docsrs, doc(cfg(feature = "concurrency")))]
    fn concurrency(
        self,
        config: tollgate_concurrency::ConcurrencyConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_concurrency::ConcurrencyLayer, L>>;

    /// Adds a [`TimeoutLayer`](crate::TimeoutLayer) holding each attempt to `config`'s time
    /// limits. (Not `timeout`: tower's own method would shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::ServiceBuilderExt;
    /// use tollgate::timeout::TimeoutConfig;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().timeouts(TimeoutConfig::anthropic());
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "timeout")]
    #[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
    fn timeouts(
        self,
        config: tollgate_timeout::TimeoutConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_timeout::TimeoutLayer, L>>;

    /// Adds a [`FallbackLayer`](crate::FallbackLayer) built from `config` (the service below
    /// is its primary), and above it a [`BufferBodyLayer`](crate::body::BufferBodyLayer) so that
    /// requests with any body are buffered once and replayed to each target.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::fallback::{BoxTarget, FallbackConfig, SetModel, Target};
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// # fn with(mini: BoxTarget<String>) {
    /// let builder = ServiceBuilder::new()
    ///     .fallback(FallbackConfig::new([
    ///         Target::new("mini", mini).with_rewrite(SetModel::new("gpt-4o-mini")),
    ///     ]));
    /// # let _ = builder;
    /// # }
    /// ```
    #[cfg(feature = "fallback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fallback")))]
    fn fallback<S>(
        self,
        config: tollgate_fallback::FallbackConfig<S>,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_fallback::FallbackLayer<S>,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    >;

    /// Adds a [`CacheLayer`](crate::CacheLayer) built from `config`, and above it a
    /// [`BufferBodyLayer`](crate::body::BufferBodyLayer) so that requests with any body are
    /// buffered once and can be keyed. Put it under `metrics` and above everything that
    /// spends quota.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::cache::CacheConfig;
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().cache(CacheConfig::default());
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    fn cache(
        self,
        config: tollgate_cache::CacheConfig,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_cache::CacheLayer,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    >;

    /// Adds a [`RouterLayer`](crate::RouterLayer) built from `config`, over its deployments
    /// (each with its own quota and breaker, over the service below), and above it a
    /// [`BufferBodyLayer`](crate::body::BufferBodyLayer) so that requests with any body are
    /// buffered once and can go on to another deployment when a key is rejected. For another
    /// token estimator, build the layer and pass it to `.layer(..)` under a `BufferBodyLayer`.
    ///
    /// # Errors
    ///
    /// As [`RouterLayer::new`](crate::RouterLayer::new): no deployments, more than 64, or two
    /// with the same name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::router::{Deployment, RouterConfig};
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// # fn main() -> Result<(), tollgate::BoxError> {
    /// let builder = ServiceBuilder::new().route(RouterConfig::new([
    ///     Deployment::new("east").with_model("gpt-4o"),
    ///     Deployment::new("west").with_model("gpt-4o"),
    /// ]))?;
    /// # let _ = builder;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The router chooses among *equivalent* deployments; a
    /// [`FallbackLayer`](crate::FallbackLayer) above it moves to a different model or provider.
    /// Here a prompt too long for `gpt-4o` goes straight to the `gpt-4.1` deployment (1M
    /// tokens), and when every OpenAI deployment is down or out of quota the fallback sends the
    /// request to Anthropic:
    ///
    /// ```
    /// use tollgate::fallback::{FallbackConfig, Target, boxed};
    /// use tollgate::providers::rewrite::{Credentials, Endpoint, SetModel};
    /// use tollgate::router::{Deployment, RouterConfig};
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// # fn main() -> Result<(), tollgate::BoxError> {
    /// # let transport = tower::service_fn(|_req: http::Request<tollgate::body::BufferedBody>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// # });
    /// let openai = ServiceBuilder::new()
    ///     .route(RouterConfig::new([
    ///         Deployment::new("gpt-4o").with_model("gpt-4o"),   // 128K tokens
    ///         Deployment::new("gpt-4.1").with_model("gpt-4.1"), // 1M tokens
    ///     ]))?
    ///     .service(transport.clone());
    /// let anthropic = Target::new("anthropic", boxed(transport))
    ///     .with_rewrite(Endpoint::new("https://api.anthropic.com")?)
    ///     .with_rewrite(Credentials::bearer("ANTHROPIC_KEY")?)
    ///     .with_rewrite(SetModel::new("claude-sonnet-4-5"));
    /// let client = ServiceBuilder::new()
    ///     .fallback(FallbackConfig::new([anthropic]))
    ///     .service(boxed(openai));
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "router")]
    #[cfg_attr(docsrs, doc(cfg(feature = "router")))]
    fn route(
        self,
        config: tollgate_router::RouterConfig,
    ) -> Result<Routed<L>, tollgate_router::error::BuildError>;

    /// Adds a [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) with one breaker for every
    /// request, configured by `config`. For keyed breakers, a hook or a handle, build the layer
    /// and pass it to `.layer(..)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::circuit_breaker::BreakerConfig;
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().circuit_breaker(BreakerConfig::default());
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "circuit-breaker")]
    #[cfg_attr(docsrs, doc(cfg(feature = "circuit-breaker")))]
    fn circuit_breaker(
        self,
        config: tollgate_circuit_breaker::BreakerConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_circuit_breaker::CircuitBreakerLayer, L>>;

    /// Adds a [`ClassifyLayer`](crate::ClassifyLayer) with this classifier: every response gets
    /// its [`Verdict`](crate::Verdict), and transport errors are wrapped in
    /// [`Classified`](crate::Classified). Put it last (nearest the transport).
    #[cfg(feature = "providers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "providers")))]
    fn classify<C>(
        self,
        classifier: C,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_providers::ClassifyLayer<C>, L>>;

    /// Adds a [`RateLimitLayer`](crate::RateLimitLayer) built from `config` (a
    /// [`RateLimitConfig`](crate::ratelimit::RateLimitConfig), or bare
    /// [`Limits`](crate::ratelimit::Limits) that wait as long as it takes): unkeyed, one request
    /// each unless the request carries a [`Cost`](crate::Cost). For keys, token estimates or a
    /// handle, build the layer and pass it to `.layer(..)`. (Not `rate_limit`: tower's own
    /// `ServiceBuilder::rate_limit` would shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::ratelimit::presets::AnthropicModel;
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().rate_limits(AnthropicModel::Sonnet4.limits());
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "ratelimit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
    fn rate_limits(
        self,
        config: impl Into<tollgate_ratelimit::RateLimitConfig>,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_ratelimit::RateLimitLayer, L>>;

    /// Adds a [`RetryLayer`](crate::RetryLayer) with `policy`, and below it a
    /// [`BufferBodyLayer`](crate::body::BufferBodyLayer) — outermost, so that requests with any
    /// body are buffered once and replayed from memory. Responses without a verdict are judged
    /// by the generic classifier; for the OpenAI SDK's judgement as well as its policy, use
    /// `.layer(BufferBodyLayer::new()).layer(RetryLayer::openai())`. (Not `retry`: tower's own
    /// `ServiceBuilder::retry` would shadow it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate::retry::RetryPolicy;
    /// use tollgate::ServiceBuilderExt;
    /// use tower::ServiceBuilder;
    ///
    /// let builder = ServiceBuilder::new().retries(RetryPolicy::openai());
    /// # let _ = builder;
    /// ```
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    fn retries(
        self,
        policy: tollgate_retry::RetryPolicy,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_retry::RetryLayer,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    >;
}

impl<L> ServiceBuilderExt<L> for tower::ServiceBuilder<L> {
    #[cfg(feature = "metrics")]
    fn metrics(
        self,
        provider: &str,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_metrics::MetricsLayer, L>> {
        self.layer(tollgate_metrics::MetricsLayer::new(provider))
    }

    #[cfg(feature = "concurrency")]
    fn concurrency(
        self,
        config: tollgate_concurrency::ConcurrencyConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_concurrency::ConcurrencyLayer, L>> {
        self.layer(tollgate_concurrency::ConcurrencyLayer::new(config))
    }

    #[cfg(feature = "timeout")]
    fn timeouts(
        self,
        config: tollgate_timeout::TimeoutConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_timeout::TimeoutLayer, L>> {
        self.layer(tollgate_timeout::TimeoutLayer::new(config))
    }

    #[cfg(feature = "fallback")]
    fn fallback<S>(
        self,
        config: tollgate_fallback::FallbackConfig<S>,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_fallback::FallbackLayer<S>,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    > {
        self.layer(tollgate_core::body::BufferBodyLayer::new())
            .layer(tollgate_fallback::FallbackLayer::new(config))
    }

    #[cfg(feature = "cache")]
    fn cache(
        self,
        config: tollgate_cache::CacheConfig,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_cache::CacheLayer,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    > {
        self.layer(tollgate_core::body::BufferBodyLayer::new())
            .layer(tollgate_cache::CacheLayer::new(config))
    }

    #[cfg(feature = "router")]
    fn route(
        self,
        config: tollgate_router::RouterConfig,
    ) -> Result<Routed<L>, tollgate_router::error::BuildError> {
        let router = tollgate_router::RouterLayer::new(config)?;
        Ok(self
            .layer(tollgate_core::body::BufferBodyLayer::new())
            .layer(router))
    }

    #[cfg(feature = "circuit-breaker")]
    fn circuit_breaker(
        self,
        config: tollgate_circuit_breaker::BreakerConfig,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_circuit_breaker::CircuitBreakerLayer, L>>
    {
        self.layer(tollgate_circuit_breaker::CircuitBreakerLayer::new(config))
    }

    #[cfg(feature = "providers")]
    fn classify<C>(
        self,
        classifier: C,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_providers::ClassifyLayer<C>, L>> {
        self.layer(tollgate_providers::ClassifyLayer::new(classifier))
    }

    #[cfg(feature = "ratelimit")]
    fn rate_limits(
        self,
        config: impl Into<tollgate_ratelimit::RateLimitConfig>,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_ratelimit::RateLimitLayer, L>> {
        self.layer(tollgate_ratelimit::RateLimitLayer::new(config))
    }

    #[cfg(feature = "retry")]
    fn retries(
        self,
        policy: tollgate_retry::RetryPolicy,
    ) -> tower::ServiceBuilder<
        tower_layer::Stack<
            tollgate_retry::RetryLayer,
            tower_layer::Stack<tollgate_core::body::BufferBodyLayer, L>,
        >,
    > {
        self.layer(tollgate_core::body::BufferBodyLayer::new())
            .layer(tollgate_retry::RetryLayer::new(policy))
    }
}

mod sealed {
    pub trait Sealed<L> {}
    impl<L> Sealed<L> for tower::ServiceBuilder<L> {}
}
