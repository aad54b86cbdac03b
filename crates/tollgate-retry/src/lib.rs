//! Retries for [tollgate](https://docs.rs/tollgate) that do what the provider asks.
//!
//! # Overview
//!
//! [`RetryLayer`] re-sends a request whose attempt failed retryably, and only then: the
//! [`Verdict`](tollgate_core::Verdict) on each attempt — attached by a `ClassifyLayer` below,
//! or computed by the layer's [`Judge`] — says whether the same target may be tried again
//! (a rate limit, an overload, a server error, a timeout, a dropped connection) or not (an
//! exhausted quota, a prompt too long for the context window, a bad key, a bad request).
//!
//! How long to wait comes from the **current** attempt's response: the server's
//! `retry-after-ms`, `retry-after` (seconds or an HTTP-date), a body hint or an exhausted
//! limit's reset, when it gives one and it is within
//! [`max_server_delay`](RetryPolicy::max_server_delay) (120 s by default). A longer requested
//! delay is never retried early: the layer gives up at once with
//! [`RetriesExhausted`], whose [`retry_after`](RetriesExhausted::retry_after) carries it, so a
//! fallback or the caller can act; so is a numeric delay too large to represent (a verdict's
//! [`Duration::MAX`](std::time::Duration::MAX)), as the official OpenAI SDK does. Without a
//! server delay, exponential [`Backoff`] with a [`Jitter`] mode decides, per class if
//! configured. Never an immediate retry: [`min_delay`](RetryPolicy::min_delay).
//!
//! A server's delay is a floor, not an appointment: by default a random [`Spread`] of up to
//! 50 % (at most 5 s) is added on top, so that callers all told `retry-after: 1` do not come
//! back in the same millisecond ([`server_delay_spread`](RetryPolicy::server_delay_spread)).
//! [`RetryPolicy::openai`] waits exactly, as the SDK does; put a `RateLimitLayer` below it.
//!
//! Retries are bounded by [`max_retries`](RetryPolicy::max_retries), by
//! [`max_overloaded_retries`](RetryPolicy::max_overloaded_retries) for overloads (after which
//! a fallback should move on), by the request's [`Deadline`](tollgate_core::Deadline) and
//! [`total_time`](RetryPolicy::total_time), and by a shared [`RetryBudget`], so an outage
//! cannot multiply the load. [`RetryPolicy::decide`] is the whole decision as a pure function
//! of (retries, verdict, policy, random draw); the random source is injectable
//! ([`with_rng`](RetryLayer::with_rng)), and time is tokio's, so tests pause it.
//!
//! It differs from `tower::retry` in judging by verdicts rather than a policy per service, in
//! honouring server delays and their caps, and in keeping the last response in its error.
//!
//! ## Requests
//!
//! The layer works over any `Req: Clone`: the first attempt gets the request itself, and each
//! retry a copy of the one kept ([`Judge::keep`]; [`HttpJudge`] keeps the headers packed in one
//! buffer, which costs no allocation for a small request). HTTP requests with a
//! streaming body are made cloneable by buffering the body once, above the layer:
//! [`BufferBodyLayer`](tollgate_core::body::BufferBodyLayer) turns `http::Request<B>` into
//! `http::Request<BufferedBody>`, whose clones share the bytes (the facade's
//! `ServiceBuilderExt::retries` adds both).
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service for the first attempt; `call` sends it at once and
//! keeps a copy of the request and a clone of the inner service; before each retry the future
//! readies that clone again. Clones of the service share the policy, judge, hook and budget.
//!
//! ## Errors
//!
//! [`BoxError`](tollgate_core::BoxError): the inner service's errors as they are when not
//! retried, or [`RetriesExhausted`] when the layer gave up on a retryable failure — with the
//! last response ([`take_response`](RetriesExhausted::take_response)) or error (its `source`),
//! the verdict, and why ([`GaveUp`]). A response that is not retryable (a 400, a quota 429) is
//! returned as it is, `Ok`.
//!
//! # Example
//!
//! The default policy over an HTTP client, with a `ClassifyLayer` below; the random source is
//! pinned, so the server's delay is spread by exactly half its bound:
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tollgate_core::body::{BufferBodyLayer, BufferedBody};
//! use tollgate_retry::{RetryLayer, RetryPolicy, rng_fn};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! // Stands in for a provider: 429 with `retry-after-ms: 200` once, then 200.
//! let calls = Arc::new(AtomicU32::new(0));
//! let transport = tower::service_fn({
//!     let calls = Arc::clone(&calls);
//!     move |_req: http::Request<BufferedBody>| {
//!         let first = calls.fetch_add(1, Ordering::Relaxed) == 0;
//!         async move {
//!             let response = if first {
//!                 http::Response::builder().status(429).header("retry-after-ms", "200")
//!             } else {
//!                 http::Response::builder().status(200)
//!             };
//!             Ok::<_, Infallible>(response.body(()).unwrap())
//!         }
//!     }
//! });
//! let client = ServiceBuilder::new()
//!     .layer(BufferBodyLayer::new())
//!     .layer(RetryLayer::new(RetryPolicy::default()).with_rng(rng_fn(|| 0.5)))
//!     .service(transport);
//!
//! let start = tokio::time::Instant::now();
//! let response = client.oneshot(http::Request::new(String::from("{}"))).await?;
//! assert_eq!(response.status(), 200);
//! // As the server asked, plus the spread: 200 ms + 0.5 × min(50 % of 200 ms, 5 s).
//! assert_eq!(start.elapsed(), Duration::from_millis(250));
//! assert_eq!(calls.load(Ordering::Relaxed), 2);
//! # Ok(())
//! # }
//! ```
//!
//! The OpenAI SDK's behaviour, and a custom policy with a budget and a hook:
//!
//! ```
//! use std::time::Duration;
//! use tollgate_core::ErrorClass;
//! use tollgate_retry::{
//!     Backoff, Jitter, RetryBudget, RetryEvent, RetryLayer, RetryPolicy, on_retry_fn,
//! };
//!
//! let openai = RetryLayer::openai();
//! assert_eq!(openai.policy().max_retries, 2);
//!
//! let policy = RetryPolicy::default()
//!     .with_max_retries(4)
//!     .with_total_time(Duration::from_secs(60))
//!     .with_backoff(
//!         Backoff::exponential(Duration::from_millis(250), Duration::from_secs(10))
//!             .with_jitter(Jitter::Decorrelated),
//!     )
//!     // Overloads start from 30 s, as PROVIDERS.md advises for 503s.
//!     .with_class_backoff(
//!         ErrorClass::Overloaded,
//!         Backoff::exponential(Duration::from_secs(30), Duration::from_secs(60))
//!             .with_jitter(Jitter::Proportional { percent: 25 }),
//!     );
//! let budget = RetryBudget::new(Duration::from_secs(10), 1, 20.0)?; // 20% + 1/s
//! let layer = RetryLayer::new(policy)
//!     .with_budget(budget)
//!     .on_retry(on_retry_fn(|event: &RetryEvent| eprintln!("{event:?}")));
//! # let _ = layer;
//! # Ok::<(), tollgate_retry::InvalidBudget>(())
//! ```
//!
//! # Layer ordering
//!
//! Above the router or circuit breaker, below the fallback: every attempt goes back through
//! the rate limiter (an attempt waits for quota like any other) and the breaker (an open target
//! fails at once). See the facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod backoff;
mod budget;
pub mod error;
mod events;
mod judge;
mod layer;
mod policy;
mod rng;
mod service;
mod spread;

pub use backoff::{Backoff, Jitter};
pub use budget::{InvalidBudget, RetryBudget};
pub use error::RetriesExhausted;
pub use events::{OnRetry, OnRetryFn, RetryEvent, on_retry_fn};
pub use judge::{HttpJudge, Judge, JudgeFn, Kept, judge_fn};
pub use layer::RetryLayer;
pub use policy::{Decision, GaveUp, RetryPolicy};
pub use rng::{HasherRng, Rng, RngFn, rng_fn};
pub use service::Retry;
pub use spread::Spread;

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
