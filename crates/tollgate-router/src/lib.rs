//! `RouterLayer`: spread load over several API keys or deployments of one model — each with
//! its own quota and circuit breaker — and route by context window before sending.
//!
//! The common production pattern: several API keys, or deployments of one model on different
//! accounts or regions, each with its own rate limits. [`RouterLayer`] sends each request to a
//! [`Deployment`] that can take it *now*, so the aggregate throughput is the sum of the
//! quotas, and none of them has to answer 429:
//!
//! - each deployment is an endpoint × API key × model — the request is rewritten for it with
//!   the rewriters of `tollgate-providers` ([`Endpoint`](tollgate_providers::rewrite::Endpoint),
//!   [`Credentials`](tollgate_providers::rewrite::Credentials),
//!   [`SetModel`](tollgate_providers::rewrite::SetModel))
//!   — behind its own `CircuitBreakerLayer` and `RateLimitLayer`, built over the inner service
//!   (the transport, under `ClassifyLayer`): composed from those layers, not re-implemented;
//! - a [`Strategy`] chooses among the deployments that can take the request now: round-robin,
//!   weighted, least-loaded (the most headroom left in its quota after this request's cost) or
//!   latency-aware (power of two choices over a moving average);
//! - a deployment that is out of rotation, whose breaker is open or whose quota cannot take the
//!   request's cost now is passed over at once. When none can take it now, the request goes to
//!   the one free soonest — into its quota's fair queue, or after waiting here for one out of
//!   rotation or open — within the request's [`Deadline`](tollgate_core::Deadline) (or
//!   [`max_wait`](RouterConfig::max_wait), 60 s by default); beyond it, it fails at
//!   once with [`NoDeployment`](error::NoDeployment) carrying `retry_after`;
//! - **context-window routing**: from the token estimate (prompt plus the output the body asks
//!   for, counted once however many completions `n` asks for) and a
//!   table of [`ContextWindows`], a request too long for a deployment's model goes only to
//!   deployments whose model fits, or fails at once with
//!   [`ContextWindowTooSmall`](error::ContextWindowTooSmall) naming both sizes — never sent
//!   just to fail;
//! - a deployment whose key is rejected (`Unauthorized`, `PermissionDenied`) or whose quota is
//!   spent (`QuotaExhausted`) is taken out of rotation for
//!   [`eject_for`](RouterConfig::eject_for) (5 minutes by default), its share moves to the
//!   others, and the request goes on to another deployment at once. The request's observer
//!   hears of every choice and ejection (`tollgate_core::observe`; `MetricsLayer` counts them
//!   as `tollgate_router_requests_total` and `tollgate_router_ejections_total`).
//!
//! # Example: one model on three API keys
//!
//! ```
//! use std::num::NonZeroU64;
//! use tollgate_providers::rewrite::Credentials;
//! use tollgate_ratelimit::{Limit, Limits, algorithm::Quota};
//! use tollgate_router::{Deployment, RouterConfig, RouterLayer, Strategy};
//! use tower::ServiceBuilder;
//!
//! # fn main() -> Result<(), tollgate_core::BoxError> {
//! # let transport = tower::service_fn(|_req: http::Request<tollgate_core::body::BufferedBody>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! # });
//! let rpm = |n| Limits::new([Limit::requests(Quota::per_minute(NonZeroU64::new(n).unwrap()))]);
//! let keys = ["KEY_A", "KEY_B", "KEY_C"]; // in practice, read from the environment
//! let deployments = keys.iter().enumerate().map(|(i, key)| {
//!     Ok::<_, tollgate_core::BoxError>(
//!         Deployment::new(&format!("key-{i}"))
//!             .with_rewrite(Credentials::bearer(key)?)
//!             .with_limits(rpm(500)),
//!     )
//! });
//! // 3 × 500 requests per minute, to whichever key has the most headroom.
//! let config = RouterConfig::new(deployments.collect::<Result<Vec<_>, _>>()?)
//!     .with_strategy(Strategy::LeastLoaded);
//! let router = RouterLayer::new(config)?;
//! let client = ServiceBuilder::new()
//!     .layer(router)
//!     // .layer(ClassifyLayer::new(OpenAi::new()))  — below the router, shared by every key
//!     .service(transport);
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
//!
//! # Example: context-window routing
//!
//! A prompt too long for `gpt-4o` (128K tokens) goes straight to the `gpt-4.1` deployment (1M
//! tokens), its body's `model` rewritten for it:
//!
//! ```
//! use tollgate_core::body::BufferedBody;
//! use tollgate_router::{Deployment, RouterConfig, RouterLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! // Stands in for the transport: answers with the body it was sent.
//! let transport = tower::service_fn(|request: http::Request<BufferedBody>| async move {
//!     let body = String::from_utf8_lossy(request.body().bytes()).into_owned();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(body))
//! });
//! let openai = RouterLayer::new(RouterConfig::new([
//!     Deployment::new("gpt-4o").with_model("gpt-4o"),     // 128K tokens
//!     Deployment::new("gpt-4.1").with_model("gpt-4.1"),   // 1M tokens
//! ]))?
//! .layer(transport);
//!
//! // About 150K tokens of prompt.
//! let prompt = "x".repeat(600_000);
//! let message = format!(r#"{{"role":"user","content":"{prompt}"}}"#);
//! let body = format!(r#"{{"model":"gpt-4o","messages":[{message}]}}"#);
//! let request = http::Request::post("https://api.openai.com/v1/chat/completions")
//!     .body(BufferedBody::from(body))?;
//! let response = openai.oneshot(request).await?;
//! assert!(response.body().starts_with(r#"{"model":"gpt-4.1","#));
//! # Ok(())
//! # }
//! ```
//!
//! The router chooses among *equivalent* deployments; a `FallbackLayer` (`tollgate-fallback`)
//! above it moves to a different model or provider. The router's refusals carry verdicts the
//! fallback reads: when no deployment can take the request soon it moves on, and a prompt too
//! long for every deployment goes to its context-window chain. The facade's
//! `ServiceBuilderExt::route` shows both in one stack.
//!
//! # Ordering
//!
//! Above the router: `RetryLayer` (a retry goes back through the router, to a deployment with
//! headroom) and `FallbackLayer`. Below it: `ClassifyLayer` and the transport, shared by every
//! deployment. Each deployment's breaker and quota are built by the router. Requests come as
//! `http::Request<BufferedBody>` (`BufferBodyLayer`, or `ServiceBuilderExt::retries`, above):
//! the router keeps the request to send it elsewhere when a key is rejected.
//!
//! # Performance
//!
//! A routing decision among 8 deployments costs about as much as reading each candidate's
//! breaker and quota; see the crate's README for figures.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod context;
mod deployment;
pub mod error;
pub mod future;
mod layer;
mod service;
mod strategy;

pub use config::RouterConfig;
pub use context::ContextWindows;
pub use deployment::Deployment;
pub use layer::RouterLayer;
pub use service::Router;
pub use strategy::Strategy;

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
