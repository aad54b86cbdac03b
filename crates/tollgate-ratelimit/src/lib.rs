//! Client-side quotas for [tollgate](https://docs.rs/tollgate) that count what providers count:
//! requests *and* tokens, per minute and per day, per model and per API key.
//!
//! # Overview
//!
//! [`RateLimitLayer`] admits each request only when it fits every [`Limit`] of its key — say
//! 10,000 requests and 10M tokens per minute — so the provider never has to answer 429. It
//! differs from tower's `RateLimit` in four ways:
//!
//! - **Weighted, several dimensions.** A request costs one request *and* its tokens
//!   ([`Cost`](tollgate_core::Cost)), admitted on every limit at once or on none. The cost is
//!   the request's `Cost` extension, or what the [`Estimator`] says ([`OpenAiChat`],
//!   [`AnthropicMessages`], [`estimator_fn`]). A cost larger than a limit can ever hold fails at
//!   once with [`CostTooLarge`](error::CostTooLarge) instead of waiting forever.
//! - **Keyed.** A [`Keyer`] picks the quota: per model ([`ByModel`]), API key ([`ByApiKey`]),
//!   tenant ([`ByHeader`]), or the [`RouteKey`](tollgate_core::RouteKey) extension. Idle keys are
//!   evicted ([`MemoryStore`] documents the memory per key).
//! - **Fair.** Waiters are served first come, first served whatever their cost, so a large
//!   request is never starved by a stream of small ones; a higher
//!   [`Priority`](tollgate_core::Priority) goes first. A [`max_wait`](RateLimitConfig::max_wait)
//!   (zero: never wait) or the request's [`Deadline`](tollgate_core::Deadline)
//!   refuse at once with [`RateLimited`](error::RateLimited) and its `retry_after` when the wait
//!   would be longer, spending nothing.
//! - **Kept in sync with the provider.** After each response it reads the
//!   [`Verdict`](tollgate_core::Verdict) that `ClassifyLayer` attached: the rate-limit headers'
//!   `remaining` caps the local state (never believe in more than the provider reports); a 429
//!   with a delay pauses the whole key for every waiter (under an [`adaptive`] limit,
//!   only one whose headers say a limit is used up: a bare 429 lowers the pace instead); the
//!   reported [`Usage`](tollgate_core::Usage) (or a `Usage` response extension) refunds or
//!   charges the difference from the estimate (first, so that the provider's `remaining` has
//!   the last word; a refund also wakes the first waiter, which may now fit). A streamed
//!   answer's usage, known only when its stream ends, is reconciled then, through the
//!   [`StreamReport`](tollgate_core::StreamReport) in its extensions; a stream that reports none
//!   keeps its estimate. Without a
//!   verdict, a 429's `retry-after` header still pauses the key. A pause lasts at most a day,
//!   whatever the header says, and when it ends the waiters leave at the limits' pace, one
//!   after another, never all at once.
//!
//! ## When you don't know your quota
//!
//! Most users don't: organisation quotas are shared with other applications, keys are shared,
//! limits differ per model and change, proxies add their own. [`Limits::adaptive`] learns the
//! sustainable request rate of each key from the provider's answers and paces requests at it:
//! slow start from 10 requests/s, one multiplicative decrease per 429 episode (fifty 429s
//! from one burst are one decrease), a cubic climb back, and a jump to any limit the provider
//! reports in its headers (requests and tokens). On configured limits,
//! [`Limits::with_adaptive`] makes them ceilings, not promises: a 429 the local accounting did
//! not expect paces requests a little below them for a while, instead of pausing the key for
//! the whole `retry-after`. Under an adaptive limit a bare 429 (no header saying a limit is
//! used up) pauses nothing: the retry layer above waits out its own request's delay, and the
//! retried request comes back through this pace. The learned rate is observable
//! ([`RateLimitHandle::learned_rate`], an `Event::RateLearned`). See [`adaptive`] for the
//! rules and why, and the crate README for the figures: against a reverse proxy's leaky
//! bucket nobody configured, 97 % of its rate with 0.75 % 429s, where a hand-written
//! exponential-backoff loop gets 76 % and sends one 429 for every two requests.
//!
//! Every clone of the layer and of its services draws from one shared quota.
//! [`RateLimitHandle`] changes limits at runtime. The [`Store`] trait is the seam for a quota
//! shared between processes (`tollgate-redis`'s `RedisStore`); [`AnyStore`] holds either kind
//! when the choice is made at run time.
//!
//! ## `poll_ready` and `call`
//!
//! The cost and the key depend on the request, which `poll_ready` cannot see. So `poll_ready`
//! only readies the inner service, and admission starts in `call`, which computes the key and
//! the cost and asks the [`Store`]:
//!
//! - **Admitted at once** — the quota has room and nobody waits for this key, the common case —
//!   `call` calls the readied inner service straight away, and the
//!   [`ResponseFuture`](future::ResponseFuture) only awaits the response: no allocation, no
//!   clone of the inner service.
//! - **Otherwise** `call` swaps the readied inner service out for a clone (`std::mem::replace`,
//!   as tower's `Buffer` and `Steer` do) and hands it, with the request, to the response future,
//!   which waits for admission and then calls it in the same poll, so nothing cancels between
//!   grant and call. A waiting future keeps the readied inner service (and whatever it
//!   reserved).
//!
//! This departs from STYLE.md §5's "the future waits for the permit, then calls" only in
//! deciding the uncontended case in `call`: that path is most requests, and skipping the clone,
//! the box and the deferred poll there is most of the layer's cost. The inner service must be
//! `Clone` for the waiting path; put a `tower::buffer::Buffer` below one that is not cheap to
//! clone.
//!
//! ## Waiting or failing fast
//!
//! By default a request waits as long as its admission takes; `poll_ready` never waits for the
//! quota. With a [`max_wait`](RateLimitConfig::max_wait) (zero: never wait) or a request's
//! deadline, a request whose computed wait is longer fails at once. A queued request's wait is
//! computed as if the waiters ahead were admitted first: exact for the token bucket and GCRA, an
//! estimate for the windows.
//!
//! ## Cancellation
//!
//! | dropped | effect |
//! |---|---|
//! | after `poll_ready`, before `call` | nothing was spent; the readied inner service stays readied |
//! | the response future, while waiting | it leaves the queue and the next waiter is woken; nothing is spent; the request and the readied inner service are dropped |
//! | the response future, after admission (in `call` or later) | the cost stays spent — the provider may count the request — and is not reconciled; the inner future is dropped |
//!
//! With a [`Store`] that answers asynchronously (a remote one), a future dropped while the
//! store's answer is in flight cannot know whether it was admitted; if it was, that cost stays
//! spent. [`MemoryStore`] answers at once, so this never happens with it.
//!
//! ## Errors
//!
//! The error type is [`BoxError`](tollgate_core::BoxError). Besides the inner service's errors
//! it carries [`RateLimited`](error::RateLimited), [`CostTooLarge`](error::CostTooLarge) and a
//! [`Store`]'s own errors; use `downcast_ref`.
//!
//! # Example
//!
//! A provider preset, keyed by model, counting tokens as OpenAI does:
//!
//! ```
//! use std::convert::Infallible;
//! use tollgate_ratelimit::{ByModel, OpenAiChat, RateLimitLayer, presets::OpenAiTier};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! let layer = RateLimitLayer::new(OpenAiTier::Tier3.limits())
//!     .keyed_by(ByModel)
//!     .with_estimator(OpenAiChat::new());
//! let transport = tower::service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, Infallible>(http::Response::new("{}"))
//! });
//! let mut client = ServiceBuilder::new().layer(layer.clone()).service(transport);
//!
//! let body = r#"{"model":"gpt-4o","max_tokens":500,"messages":[{"role":"user","content":"Hi"}]}"#;
//! let response = client.ready().await?.call(http::Request::new(body.to_owned())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(layer.handle().keys(), 1); // "gpt-4o"
//! # Ok(())
//! # }
//! ```
//!
//! A custom quota on three dimensions — 60 requests per minute, 100K tokens per minute over an
//! exact sliding window, 2M tokens per day — refusing rather than waiting more than 10 s:
//!
//! ```
//! use std::num::NonZeroU64;
//! use std::time::Duration;
//! use tollgate_core::{Cost, Dimension};
//! use tollgate_ratelimit::error::RateLimited;
//! use tollgate_ratelimit::{AlgorithmKind, Limit, Limits, RateLimitConfig, RateLimitLayer, algorithm::Quota};
//! use tower::{Service, ServiceExt};
//!
//! const fn n(v: u64) -> NonZeroU64 { NonZeroU64::new(v).unwrap() }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! # tokio::time::pause();
//! let limits = Limits::new([
//!     Limit::requests(Quota::per_minute(n(60))),
//!     Limit::tokens(Quota::per_minute(n(100_000)))
//!         .with_algorithm(AlgorithmKind::SlidingWindowLog),
//!     Limit::tokens(Quota::per_day(n(2_000_000))),
//! ]);
//! let layer = RateLimitLayer::new(RateLimitConfig::new(limits).with_max_wait(Duration::from_secs(10)));
//! let mut client = tower::ServiceBuilder::new().layer(layer).service_fn(
//!     |_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) },
//! );
//!
//! let request = |tokens| {
//!     let mut request = http::Request::new(());
//!     request.extensions_mut().insert(Cost::requests(1).with(Dimension::Tokens, tokens));
//!     request
//! };
//! client.ready().await?.call(request(90_000)).await?;
//! // 20K more tokens would fit only when the first 90K leave the window, in a minute.
//! let refused = client.ready().await?.call(request(20_000)).await.unwrap_err();
//! let refused = refused.downcast_ref::<RateLimited>().unwrap();
//! assert_eq!(refused.retry_after(), Duration::from_secs(60));
//! # Ok(())
//! # }
//! ```
//!
//! # Layer ordering
//!
//! Inside retry and the circuit breaker, above concurrency and `ClassifyLayer`: every attempt
//! spends quota, and the verdict the classifier attaches keeps the quota in sync. See the
//! facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod adaptive;
pub mod algorithm;
pub mod error;
pub mod estimate;
pub mod future;
pub mod key;
pub mod presets;

mod config;
mod layer;
mod limit;
mod limiter;
mod service;
mod store;

pub use config::RateLimitConfig;
pub use estimate::{AnthropicMessages, Estimator, OpenAiChat, PerRequest, estimator_fn};
pub use key::{ByApiKey, ByHeader, ByModel, ByRouteKey, Keyer, Unkeyed, keyer_fn};
pub use layer::RateLimitLayer;
pub use limit::{AlgorithmKind, Limit, Limits};
pub use limiter::RateLimitHandle;
pub use service::RateLimit;
pub use store::{AnyAdmit, AnyStore, Feedback, MemoryStore, Outlook, QuotaDecision, Store};
pub use tollgate_core::keyed::{KeyStats, TooManyKeys};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
