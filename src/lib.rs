//! Composable [`tower`] layers for calling rate-limited HTTP APIs — OpenAI, Anthropic, Gemini,
//! DeepSeek and every OpenAI-compatible endpoint — without breaking.
//!
//! # Overview
//!
//! Every AI API rate-limits its callers, and the same status code means different things at
//! different providers: a 429 may be a rate limit (wait and retry) or an exhausted quota (retrying
//! is useless); a 529 is an overload; a 400 may mean the prompt is too long for the model.
//! tollgate turns each response into one [`Verdict`] — an [`ErrorClass`], [`RetryAdvice`], the
//! server's requested delay and its [`DelaySource`], the provider's rate-limit headers as a
//! [`RateLimitSnapshot`], and the reported [`Usage`] — and its layers act on that verdict.
//!
//! This release holds the foundation — the verdict vocabulary ([`Verdict`], [`Classify`]),
//! the [`headers`] parsers, per-request hints ([`Cost`], [`Priority`], [`RouteKey`],
//! [`Deadline`]), request [`body`] buffering, the provider classifiers in [`providers`], and
//! `ClassifyLayer`, which runs a classifier once per response, nearest the wire — and the first
//! layers on it:
//!
//! - `RateLimitLayer` ([`ratelimit`]): client-side quotas that count requests and tokens the
//!   way providers do, per model or API key, kept in sync with the provider's headers;
//! - `RetryLayer` ([`retry`]): retries that do what the provider asks;
//! - `CircuitBreakerLayer` ([`circuit_breaker`]): stop calling a provider that is down;
//! - `FallbackLayer` ([`fallback`]): move on to the next provider or model;
//! - `RouterLayer` ([`router`]): spread load over several API keys or deployments of one
//!   model, each with its own quota and breaker, and route by context window before sending;
//! - `ConcurrencyLayer` ([`concurrency`]): cap the requests in flight, with a fair queue and
//!   adaptive caps;
//! - `MetricsLayer` ([`metrics`]): what every request came to, through the `metrics` facade,
//!   `tracing` and an in-process snapshot with alerts;
//! - `CacheLayer` ([`cache`]): identical requests answered from a bounded cache, concurrent
//!   ones coalesced into one upstream call;
//! - `TimeoutLayer` ([`timeout`]): time limits per attempt — to the response head, to the first
//!   token, between chunks, in total — each a `Timeout` verdict;
//! - ready stacks ([`stack`]): every layer in the documented order for provider presets, built
//!   in code or from a TOML file.
//!
//! `tollgate-mock`, a mock provider server, backs the
//! end-to-end tests and `examples/demo.rs`.
//!
//! # Example
//!
//! Wrap any `tower::Service<http::Request<B>>` — a reqwest or hyper-util client — and every
//! response carries its verdict:
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tollgate::providers::OpenAi;
//! use tollgate::{ErrorClass, RetryAdvice, ServiceBuilderExt, Verdict};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate::BoxError> {
//! // Stands in for an HTTP client: answers like OpenAI when the account is out of credit.
//! let transport = tower::service_fn(|_req: Request<Full<Bytes>>| async {
//!     let body = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
//!     Response::builder()
//!         .status(StatusCode::TOO_MANY_REQUESTS)
//!         .body(Full::new(Bytes::from(body)))
//! });
//!
//! let client = ServiceBuilder::new().classify(OpenAi::new()).service(transport);
//! let response = client.oneshot(Request::new(Full::new(Bytes::new()))).await?;
//!
//! let verdict = Verdict::of_response(&response).unwrap();
//! assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted)); // a 429, but not a rate limit
//! assert_eq!(verdict.advice(), RetryAdvice::Elsewhere); // retrying this key will not help
//! # Ok(())
//! # }
//! ```
//!
//! Retries as the OpenAI SDK makes them, above quotas from a provider preset, both kept in
//! sync by the verdicts `ClassifyLayer` attaches:
//!
//! ```
//! use tollgate::providers::OpenAi;
//! use tollgate::ratelimit::presets::OpenAiTier;
//! use tollgate::ratelimit::{ByModel, OpenAiChat, RateLimitLayer};
//! use tollgate::ServiceBuilderExt;
//! use tower::ServiceBuilder;
//!
//! # let transport = tower::service_fn(|_req: http::Request<tollgate::body::BufferedBody>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! let client = ServiceBuilder::new()
//!     .retries(tollgate::retry::RetryPolicy::openai())
//!     .layer(
//!         RateLimitLayer::new(OpenAiTier::Tier3.limits())
//!             .keyed_by(ByModel)
//!             .with_estimator(OpenAiChat::new()),
//!     )
//!     .classify(OpenAi::new())
//!     .service(transport);
//! # let _ = client;
//! ```
//!
//! # Layer ordering
//!
//! See [`ordering`] for where each layer belongs in a stack, and why.
//!
//! # Feature flags
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `full` | Every layer and the provider classifiers | yes |
//! | `providers` | Provider classifiers ([`providers`]), `ClassifyLayer` and [`ServiceBuilderExt::classify`] | yes (via `full`) |
//! | `ratelimit` | `RateLimitLayer` ([`ratelimit`]) and [`ServiceBuilderExt::rate_limits`] | yes (via `full`) |
//! | `retry` | `RetryLayer` ([`retry`]) and [`ServiceBuilderExt::retries`] | yes (via `full`) |
//! | `circuit-breaker` | `CircuitBreakerLayer` ([`circuit_breaker`]) and [`ServiceBuilderExt::circuit_breaker`] | yes (via `full`) |
//! | `fallback` | `FallbackLayer` ([`fallback`]) and [`ServiceBuilderExt::fallback`] | yes (via `full`) |
//! | `concurrency` | `ConcurrencyLayer` ([`concurrency`]) and [`ServiceBuilderExt::concurrency`] | yes (via `full`) |
//! | `metrics` | `MetricsLayer` ([`metrics`]) and [`ServiceBuilderExt::metrics`] | yes (via `full`) |
//! | `router` | `RouterLayer` ([`router`]) and [`ServiceBuilderExt::route`] | yes (via `full`) |
//! | `cache` | `CacheLayer` ([`cache`]) and [`ServiceBuilderExt::cache`] | yes (via `full`) |
//! | `timeout` | `TimeoutLayer` ([`timeout`]) and [`ServiceBuilderExt::timeouts`] | yes (via `full`) |
//! | `stack` | Ready stacks for provider presets, built in code or from TOML ([`stack`]); every layer above, `serde` and `toml` | yes (via `full`) |
//!
//! The core vocabulary ([`Verdict`], [`headers`], [`body`], …) is always available.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

#[doc(inline)]
pub use tollgate_core::{
    BoxError, Classified, Classify, ClassifyFn, Cost, Deadline, DelaySource, Dimension, ErrorClass,
    Judged, LimitEntry, LimitReading, Priority, RateLimitSnapshot, ResponseView, RetryAdvice,
    RouteKey, Usage, Verdict, Window, classify_fn, transport_verdict,
};

#[doc(inline)]
pub use tollgate_core::{body, headers, redact};

/// Provider classifiers and `ClassifyLayer` (from `tollgate-providers`).
#[cfg(feature = "providers")]
#[cfg_attr(docsrs, doc(cfg(feature = "providers")))]
pub mod providers {
    #[doc(inline)]
    pub use tollgate_providers::*;
}

#[cfg(feature = "providers")]
#[cfg_attr(docsrs, doc(cfg(feature = "providers")))]
#[doc(inline)]
pub use tollgate_providers::ClassifyLayer;

/// Client-side quotas: `RateLimitLayer` (from `tollgate-ratelimit`).
#[cfg(feature = "ratelimit")]
#[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
pub mod ratelimit {
    #[doc(inline)]
    pub use tollgate_ratelimit::*;

    /// Quotas kept in Redis, shared by several replicas: `RedisStore` (from `tollgate-redis`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub mod redis {
        #[doc(inline)]
        pub use tollgate_redis::*;
    }
}

#[cfg(feature = "ratelimit")]
#[cfg_attr(docsrs, doc(cfg(feature = "ratelimit")))]
#[doc(inline)]
pub use tollgate_ratelimit::RateLimitLayer;

/// Retries that do what the provider asks: `RetryLayer` (from `tollgate-retry`).
#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
pub mod retry {
    #[doc(inline)]
    pub use tollgate_retry::*;
}

#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
#[doc(inline)]
pub use tollgate_retry::RetryLayer;

/// Stop calling a provider that is down, and probe it back: `CircuitBreakerLayer` (from
/// `tollgate-circuit-breaker`).
#[cfg(feature = "circuit-breaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "circuit-breaker")))]
pub mod circuit_breaker {
    #[doc(inline)]
    pub use tollgate_circuit_breaker::*;
}

#[cfg(feature = "circuit-breaker")]
#[cfg_attr(docsrs, doc(cfg(feature = "circuit-breaker")))]
#[doc(inline)]
pub use tollgate_circuit_breaker::CircuitBreakerLayer;

/// Move to the next provider or model: `FallbackLayer` (from `tollgate-fallback`).
#[cfg(feature = "fallback")]
#[cfg_attr(docsrs, doc(cfg(feature = "fallback")))]
pub mod fallback {
    #[doc(inline)]
    pub use tollgate_fallback::*;
}

#[cfg(feature = "fallback")]
#[cfg_attr(docsrs, doc(cfg(feature = "fallback")))]
#[doc(inline)]
pub use tollgate_fallback::FallbackLayer;

/// Identical requests answered once: `CacheLayer` (from `tollgate-cache`).
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub mod cache {
    #[doc(inline)]
    pub use tollgate_cache::*;
}

#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
#[doc(inline)]
pub use tollgate_cache::CacheLayer;

/// Spread load over API keys and deployments, and route by context window: `RouterLayer`
/// (from `tollgate-router`).
#[cfg(feature = "router")]
#[cfg_attr(docsrs, doc(cfg(feature = "router")))]
pub mod router {
    #[doc(inline)]
    pub use tollgate_router::*;
}

#[cfg(feature = "router")]
#[cfg_attr(docsrs, doc(cfg(feature = "router")))]
#[doc(inline)]
pub use tollgate_router::RouterLayer;

/// Cap the requests in flight: `ConcurrencyLayer` (from `tollgate-concurrency`).
#[cfg(feature = "concurrency")]
#[cfg_attr(docsrs, doc(cfg(feature = "concurrency")))]
pub mod concurrency {
    #[doc(inline)]
    pub use tollgate_concurrency::*;
}

#[cfg(feature = "concurrency")]
#[cfg_attr(docsrs, doc(cfg(feature = "concurrency")))]
#[doc(inline)]
pub use tollgate_concurrency::ConcurrencyLayer;

/// Time limits per attempt — to the response head, to the first token, between chunks, in
/// total: `TimeoutLayer` (from `tollgate-timeout`).
#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
pub mod timeout {
    #[doc(inline)]
    pub use tollgate_timeout::*;
}

#[cfg(feature = "timeout")]
#[cfg_attr(docsrs, doc(cfg(feature = "timeout")))]
#[doc(inline)]
pub use tollgate_timeout::TimeoutLayer;

/// What every request came to: `MetricsLayer` (from `tollgate-metrics`).
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics {
    #[doc(inline)]
    pub use tollgate_metrics::*;
}

#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
#[doc(inline)]
pub use tollgate_metrics::MetricsLayer;

#[cfg(feature = "stack")]
#[cfg_attr(docsrs, doc(cfg(feature = "stack")))]
pub mod stack;

#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod transport;

mod builder;
pub use builder::ServiceBuilderExt;

#[doc = include_str!("docs/ordering.md")]
pub mod ordering {}

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
