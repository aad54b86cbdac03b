//! Fallback for [tollgate](https://docs.rs/tollgate): move to the next provider or model when
//! one is down, overloaded, out of quota, or too small for the prompt.
//!
//! # Overview
//!
//! [`FallbackLayer`] sends each request to the inner service — the primary — and, when the
//! attempt's [`Verdict`](tollgate_core::Verdict) says another target may succeed, to the next
//! [`Target`] in order, at once (no sleep while one is available). Each target may rewrite the
//! request ([`Rewrite`], from `tollgate-core`): [`SetModel`] for the JSON body's `model`,
//! [`Endpoint`] for the scheme, authority and path prefix (and Azure's `api-version`),
//! [`Credentials`] for the key — so one request can go to OpenAI, then Azure OpenAI, then
//! DeepSeek or any OpenAI-compatible endpoint. The rewriters live in `tollgate-providers`
//! ([`tollgate_providers::rewrite`]) and are re-exported here.
//!
//! It reads every outcome as a [`Verdict`](tollgate_core::Verdict)
//! ([`Verdict::of_outcome`](tollgate_core::Verdict::of_outcome)): the one a `ClassifyLayer`
//! attached, or the one a layer's own refusal carries — it knows no other layer's error types. By
//! default it moves on for overloads, server errors, timeouts, failed connections, an open circuit
//! breaker's `CircuitOpen` (a local overload, whatever the policy), an exhausted quota and a
//! rejected key, and for a rate limit whose requested wait exceeds a threshold ([`FallbackPolicy`])
//! — a provider's 429 or a client-side quota's `RateLimited`, whose wait becomes the target's
//! cooldown; a retry layer's `RetriesExhausted` is judged by the last attempt's verdict, with the
//! wait it did not take. A prompt too long for the context window goes to the [context-window
//! chain](FallbackConfig::context_window_targets) of larger-context models, a content-policy
//! refusal to its [own chain](FallbackConfig::content_policy_targets). Everything else — a success,
//! a bad request — returns to the caller unchanged.
//!
//! A target that reported a delay cools down: it is skipped until the delay has passed, and a
//! later report extends the cooldown to the later of the two, never shortens it. When every
//! remaining target is cooling down, the fallback waits for the first to be free if that is
//! within the request's [`Deadline`](tollgate_core::Deadline) (or the policy's
//! [`max_wait`](FallbackPolicy::max_wait)); otherwise, and when every target failed, it fails
//! with [`AllTargetsFailed`], which lists each target's verdict and when the first cooling one
//! is free again.
//!
//! A streamed answer is handed back once its first byte is there, and may still fail half-way
//! (its [`StreamReport`](tollgate_core::StreamReport) says so): nothing is re-sent then — the
//! caller already has part of it — but a failure the policy moves on from cools the target
//! down for the policy's cooldown of its class, as a failure before the first byte would.
//!
//! Targets are services of one type; for mixed types, [`boxed`] boxes each once, at
//! construction. Requests are `http::Request<BufferedBody>`: put a
//! [`BufferBodyLayer`](tollgate_core::body::BufferBodyLayer) above to accept any body (the
//! facade's `ServiceBuilderExt::fallback` adds it).
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the primary; `call` sends the request to it at once (unless it is
//! cooling down) and keeps the request for the targets after it. Each later target is cloned,
//! readied and called by the future. Errors are [`BoxError`](tollgate_core::BoxError): the
//! last target's own outcome when the verdict says to return it, or [`AllTargetsFailed`].
//!
//! # Example
//!
//! OpenAI first, then DeepSeek, each behind its own circuit breaker:
//!
//! ```
//! use std::convert::Infallible;
//! use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
//! use tollgate_core::body::BufferedBody;
//! use tollgate_fallback::{FallbackConfig, FallbackLayer, Target, boxed};
//! use tollgate_providers::rewrite::{Credentials, Endpoint, SetModel};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! // Stand-ins for HTTP clients: OpenAI is overloaded, DeepSeek answers.
//! let openai = tower::service_fn(|_: http::Request<BufferedBody>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(529).body(String::new()).unwrap())
//! });
//! let deepseek = tower::service_fn(|request: http::Request<BufferedBody>| async move {
//!     let text = String::from_utf8_lossy(request.body().bytes()).into_owned();
//!     Ok::<_, Infallible>(http::Response::new(format!("{} {}", request.uri(), text)))
//! });
//! let breaker = || CircuitBreakerLayer::new(BreakerConfig::default());
//!
//! let deepseek = Target::new("deepseek", boxed(breaker().layer(deepseek)))
//!     .with_rewrite(Endpoint::new("https://api.deepseek.com")?.with_prefix_replaced("/v1"))
//!     .with_rewrite(Credentials::bearer("sk-deepseek")?)
//!     .with_rewrite(SetModel::new("deepseek-chat"));
//! let fallback = FallbackLayer::new(FallbackConfig::new([deepseek]).with_primary_name("openai"));
//! let client = fallback.layer(boxed(breaker().layer(openai)));
//!
//! let request = http::Request::post("https://api.openai.com/v1/chat/completions")
//!     .body(BufferedBody::from(r#"{"model":"gpt-4o","messages":[]}"#))?;
//! let response = client.oneshot(request).await?;
//! assert_eq!(
//!     response.body(),
//!     r#"https://api.deepseek.com/chat/completions {"model":"deepseek-chat","messages":[]}"#
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Layer ordering
//!
//! Above retry: each target is retried as its own policy says, and the fallback moves on when
//! retrying there gave up or a breaker is open. See the facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod config;
pub mod error;
mod kept;
mod layer;
mod service;
mod target;

pub use config::FallbackConfig;
pub use error::AllTargetsFailed;
pub use layer::FallbackLayer;
pub use service::Fallback;
pub use target::{BoxTarget, FallbackPolicy, Target, boxed};
pub use tollgate_core::rewrite::Rewrite;
pub use tollgate_providers::rewrite::{Credentials, Endpoint, IncludeUsage, SetModel};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
