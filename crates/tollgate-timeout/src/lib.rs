//! Time limits per attempt for [tollgate](https://docs.rs/tollgate): to the response head, to
//! the first token, between chunks, and in total — each expiry a `Timeout` verdict that every
//! other layer understands.
//!
//! # Overview
//!
//! LLM calls are long and mostly streamed: a non-streamed completion's head comes with the
//! whole answer, minutes later; a streamed one's head comes at once, then the first token
//! after the model has thought, then chunks. One total timeout cannot tell a model thinking
//! from a stream that stalled. [`TimeoutLayer`] holds each attempt to four limits
//! ([`TimeoutConfig`]):
//!
//! - **response head** — from the call to the status and headers;
//! - **first chunk** — from the head to the first chunk of real data (for a stream, the first
//!   token);
//! - **idle** — between chunks of real data;
//! - **total** — from the call to the end of the body;
//!
//! and to the request's [`Deadline`](tollgate_core::Deadline), as a whole: an attempt whose
//! deadline has passed is not sent. In an event stream, chunks of nothing but comments
//! (`: keep-alive`) and blank lines are not real data: they do not count as a first token nor
//! reset the idle limit, and the total limit still bounds a stream that only keeps itself
//! alive. The defaults are chosen for LLM calls, with presets per provider
//! ([`TimeoutConfig::openai`], [`anthropic`](TimeoutConfig::anthropic), …); the table in
//! [`TimeoutConfig`] says why.
//!
//! Each expiry is a [`TimedOut`] wrapped in a [`Classified`](tollgate_core::Classified) with
//! a `Timeout` verdict: a `RetryLayer` above retries it on the same target, a
//! `CircuitBreakerLayer` counts it against the target's health, a `FallbackLayer` moves on.
//!
//! ## The zero-chunk rule
//!
//! The response future resolves only once the head **and the first chunk of real data** have
//! arrived (or the body ended before any). So until the first byte of a body has been handed
//! on, a failure — no head, no first token in time, a connection cut or a body error before
//! any data — is an error of the attempt, which a retry or a fallback above handles without
//! the caller seeing anything. After that, the body ([`TimeoutBody`]) hands on each chunk as
//! it comes, never holding one back, and a limit that runs out ends it with a `TimedOut`
//! error carrying its verdict: nothing is ever re-sent, and no byte is duplicated.
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service (no limit applies to that wait: a rate limit or a
//! concurrency cap above is not the provider being slow). `call` calls it. The timers cost
//! nothing until something is pending: on a response whose head and body are ready at once no
//! clock is read and no timer is created. Clones are independent (there is no shared state).
//!
//! ## Errors
//!
//! [`BoxError`](tollgate_core::BoxError): the inner service's errors, or a [`TimedOut`] in a
//! `Classified` (find it with [`TimedOut::find`]). A body error before the first chunk comes
//! out of the response future wrapped in a `Classified` with the transport rules' verdict.
//!
//! Response bodies must be `Unpin` (hyper's, reqwest's and every boxed body are); box another
//! with `http_body_util::BodyExt::boxed_unsync`.
//!
//! # Example
//!
//! The defaults, in front of a provider that never answers: the attempt fails after exactly
//! ten minutes, with a `Timeout` verdict.
//!
//! ```
//! use std::time::Duration;
//! use tollgate_core::{ErrorClass, Verdict};
//! use tollgate_timeout::{TimeLimit, TimedOut, TimeoutLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let never = tower::service_fn(|_: http::Request<()>| async {
//!     std::future::pending::<Result<http::Response<http_body_util::Empty<bytes::Bytes>>, std::convert::Infallible>>().await
//! });
//! let client = TimeoutLayer::default().layer(never);
//! let start = tokio::time::Instant::now();
//! let error = client.oneshot(http::Request::new(())).await.unwrap_err();
//! assert_eq!(start.elapsed(), Duration::from_secs(600));
//! assert_eq!(TimedOut::find(&*error).unwrap().limit(), TimeLimit::ResponseHead);
//! assert_eq!(Verdict::of_error(&*error).unwrap().class(), Some(ErrorClass::Timeout));
//! # }
//! ```
//!
//! A chat front end that would rather fail over than wait: 20 s to the first token, 30 s
//! between chunks, two minutes in all.
//!
//! ```
//! use std::time::Duration;
//! use tollgate_timeout::{TimeoutConfig, TimeoutLayer};
//!
//! let layer = TimeoutLayer::new(
//!     TimeoutConfig::openai()
//!         .with_first_chunk(Duration::from_secs(20))
//!         .with_idle(Duration::from_secs(30))
//!         .with_total(Duration::from_secs(120)),
//! );
//! assert_eq!(layer.config().first_chunk, Some(Duration::from_secs(20)));
//! ```
//!
//! # Layer ordering
//!
//! Per attempt, below retry, the circuit breaker, the rate limit and the concurrency cap (a
//! wait for quota or for a slot is not the provider being slow), above `ClassifyLayer`. See
//! the facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod body;
pub mod error;
pub mod future;

mod config;
mod layer;
mod service;

pub use body::TimeoutBody;
pub use config::TimeoutConfig;
pub use error::{TimeLimit, TimedOut};
pub use layer::TimeoutLayer;
pub use service::Timeout;

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
