//! Ready stacks: every layer in the documented order for provider presets, built in code
//! ([`StackBuilder`]) or from a TOML configuration ([`StackConfig`]).
//!
//! # Overview
//!
//! A [`Provider`] is one account and model: its [`ProviderKind`] (OpenAI, Azure OpenAI,
//! Anthropic, DeepSeek, Gemini, Groq, Mistral, OpenRouter or any OpenAI-compatible server),
//! base URL, API key (or several), model, limits, retry policy, circuit breaker and
//! concurrency cap. A
//! [`StackBuilder`] puts a primary provider, fallbacks and a context-window chain together,
//! as the [`ordering`](crate::ordering) page says, outermost first:
//!
//! ```text
//! MetricsLayer                 (optional) one logical request
//! CacheLayer                   (optional) identical requests answered without a provider
//! FallbackLayer                primary, then fallbacks; context-window chain
//!   ── per provider ──
//!   rewrites                   endpoint, credentials, model for this provider
//!   RetryLayer                 the provider's RetryPolicy
//!   CircuitBreakerLayer        (unless turned off)
//!   RateLimitLayer             its limits as ceilings, or the rate learned; keyed by model,
//!                              tokens estimated as OpenAI counts
//!   ConcurrencyLayer           (optional) max_in_flight
//!   TimeoutLayer               the kind's time limits per attempt (unless turned off)
//!   ClassifyLayer              the kind's classifier
//! transport                    your HTTP client, cloned once per provider
//! ```
//!
//! A provider with several API keys ([`Provider::with_api_keys`]) spreads its requests over them:
//! its rewrites leave the credentials to a `RouterLayer` under its `RetryLayer`, which puts
//! each key behind its own `CircuitBreakerLayer` and `RateLimitLayer` (the provider's limits,
//! for each key) and passes over a key that is rejected or out of quota; see
//! [Several API keys](Provider#several-api-keys).
//!
//! An optional cache ([`StackBuilder::with_cache`], or `[stack.cache]` in a configuration) sits
//! above everything that spends quota: a second identical request that opted in
//! (`x-tollgate-cache: on`) is answered from it, without reaching any provider; see
//! [`tollgate::cache`](crate::cache) for what is cached and how requests opt in.
//!
//! Each provider's quota lives in this process. Several replicas of a service, each with its
//! own stack, would each spend the whole of it: with the `redis` feature,
//! `StackBuilder::with_shared_quota` (or `[store] kind = "redis"` in a configuration) keeps
//! every provider's quota in Redis instead, one quota per provider shared by every replica.
//!
//! The result is a [`Stack`]: a cloneable `Send + Sync` service from
//! `http::Request<BufferedBody>` to `http::Response<StackBody>`, to share between tasks.
//!
//! # Requests
//!
//! Every request is an OpenAI chat completion: `POST /v1/chat/completions` with a JSON body
//! ([`BufferedBody`](crate::body::BufferedBody) converts from `String`, `Vec<u8>`, `Bytes` and
//! `&'static str`). Each provider's stack rewrites it for that provider, the primary's too:
//!
//! - the scheme, authority and path prefix to the provider's base URL
//!   ([`Endpoint`](crate::providers::rewrite::Endpoint)) — a base URL without a path keeps
//!   `/v1/chat/completions`, one with a path replaces the `/v1` (see [`Provider`]);
//! - the credentials to the provider's key
//!   ([`Credentials`](crate::providers::rewrite::Credentials)): `authorization: Bearer <key>`,
//!   or `api-key: <key>` for Azure OpenAI — with several keys, to the one the router chose;
//! - the body's `model` to the provider's ([`SetModel`](crate::providers::rewrite::SetModel)).
//!
//! Anthropic is reached through its OpenAI-compatible endpoint
//! (`https://api.anthropic.com/v1/chat/completions`, Bearer key), and Gemini through its own
//! (`…/v1beta/openai/chat/completions`); their responses are judged by the
//! [`Anthropic`](crate::providers::Anthropic) and [`Gemini`](crate::providers::Gemini)
//! classifiers. Requests for Anthropic's native Messages API need a stack built by hand.
//!
//! # Example
//!
//! OpenAI Tier 3 first, Anthropic when OpenAI is overloaded or down, a larger-context model
//! for prompts too long for the first, every request recorded:
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tollgate::body::BufferedBody;
//! use tollgate::metrics::MetricsLayer;
//! use tollgate::ratelimit::presets::{AnthropicModel, OpenAiTier};
//! use tollgate::stack::{Provider, Stack, StackBuilder};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate::BoxError> {
//! // Stands in for an HTTP client: OpenAI is overloaded, everything else answers with the
//! // request it got.
//! let transport = tower::service_fn(|request: Request<BufferedBody>| async move {
//!     let response = if request.uri().host() == Some("api.openai.com") {
//!         let body = r#"{"error":{"message":"overloaded","type":"server_error","code":"server_is_overloaded"}}"#;
//!         Response::builder().status(503).body(Full::new(Bytes::from(body)))
//!     } else {
//!         let seen = format!("{} {}", request.uri(), String::from_utf8_lossy(request.body().bytes()));
//!         Response::builder().body(Full::new(Bytes::from(seen)))
//!     };
//!     Ok::<_, Infallible>(response.unwrap())
//! });
//! # let openai_key = "sk-openai".to_owned();
//! # let anthropic_key = "sk-ant".to_owned();
//!
//! let metrics = MetricsLayer::new("chat");
//! let handle = metrics.handle();
//! let stack: Stack = StackBuilder::new(
//!     Provider::openai(OpenAiTier::Tier3)
//!         .with_model("gpt-4o")
//!         .with_api_key(openai_key.clone()),
//! )
//! .with_fallback(
//!     Provider::anthropic(AnthropicModel::Sonnet4)
//!         .with_model("claude-sonnet-4-5")
//!         .with_api_key(anthropic_key),
//! )
//! .with_context_window_fallback(
//!     Provider::openai(OpenAiTier::Tier3)
//!         .with_model("gpt-4.1")
//!         .with_api_key(openai_key),
//! )
//! .with_metrics(metrics)
//! .build(transport)?;
//!
//! # tokio::time::pause(); // the retries of the overloaded primary take no real time
//! let request = Request::post("/v1/chat/completions")
//!     .body(BufferedBody::from(r#"{"model":"gpt-4o","messages":[]}"#))?;
//! let response = stack.clone().oneshot(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(
//!     body,
//!     r#"https://api.anthropic.com/v1/chat/completions {"model":"claude-sonnet-4-5","messages":[]}"#
//! );
//! assert_eq!(handle.snapshot().requests, 1);
//! # Ok(())
//! # }
//! ```
//!
//! The same stack from a configuration, the keys read from environment variables when it is
//! built (here from a closure standing in for them):
//!
//! ```
//! use std::convert::Infallible;
//! use tollgate::body::BufferedBody;
//! use tollgate::stack::StackConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = StackConfig::from_toml(r#"
//!     [[providers]]
//!     name = "openai"
//!     kind = "openai"
//!     api_key_env = "OPENAI_API_KEY"
//!     model = "gpt-4o"
//!     limits = { preset = "openai-tier-3" }
//!
//!     [[providers]]
//!     name = "anthropic"
//!     kind = "anthropic"
//!     api_key_env = "ANTHROPIC_API_KEY"
//!     model = "claude-sonnet-4-5"
//!     limits = { preset = "anthropic-sonnet-4" }
//!
//!     [stack]
//!     primary = "openai"
//!     fallback = ["anthropic"]
//! "#)?;
//! # let transport = tower::service_fn(|_: http::Request<BufferedBody>| async {
//! #     Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! # });
//! let env = |name: &str| Some(format!("key-from-{name}"));
//! let stack = config.to_builder_with_env(env)?.build(transport)?;
//! assert_eq!(stack.fallback(), ["anthropic"]);
//!
//! // Errors name the field, and never quote a key.
//! let error = StackConfig::from_toml(r#"
//!     [[providers]]
//!     name = "openai"
//!     kind = "openai"
//!     limits = { requests_per_minute = 0 }
//!     [stack]
//!     primary = "openai"
//! "#).unwrap_err();
//! assert_eq!(error.to_string(), "providers[0].limits.requests_per_minute: must be greater than 0");
//! # Ok(())
//! # }
//! ```
//!
//! [`StackConfig::build`] reads the process environment; [`StackConfig::from_file`] reads a
//! file. The repository's `examples/stack.toml` is a complete, commented sample.
//!
//! # Keys
//!
//! An API key given to [`Provider::with_api_key`] or [`Provider::with_api_keys`] (or read from
//! `api_key_env` or `api_key_envs`) is sent as a sensitive header value and never appears in
//! the `Debug` output of [`Provider`], [`StackBuilder`], [`StackConfig`] or [`Stack`], nor in
//! a [`StackError`] or [`ConfigError`]; the router names each key by its place,
//! `<provider>/key-<i>`. A configuration file cannot hold a key: an `api_key` field is
//! refused.
//!
//! A base URL is shown, in `Debug` output and errors, only through
//! [`redact::url`](crate::redact::url): its user info, every query value and its fragment
//! replaced by `<redacted>`. A [`ConfigError`] quotes no value that may be a secret (see its
//! docs), and a Redis URL is never shown.
//!
//! # Cost
//!
//! A ready stack erases its types once: it boxes its response future once per request (the
//! providers' stacks, the fallback and the metrics inside it are not erased), and each
//! response body once (twice with timeouts, which want an `Unpin` body; three times under a
//! concurrency cap); a cache boxes each response body (a hit's too) once more — a few
//! allocations against a call that takes seconds. For a stack without them, compose the
//! layers yourself with [`ServiceBuilderExt`](crate::ServiceBuilderExt).

mod builder;
mod config;
mod error;
pub mod future;
mod model_key;
mod provider;
mod service;

pub use builder::StackBuilder;
pub use config::{ConfigError, StackConfig};
pub use error::{RewriteFailed, StackError, UnknownModel};
pub use provider::{
    AZURE_API_VERSION, DEFAULT_MAX_QUEUE, DEFAULT_MAX_WAIT, Provider, ProviderKind, UnknownKind,
    UnknownModels,
};
pub use service::{Stack, StackBody, Transport};
