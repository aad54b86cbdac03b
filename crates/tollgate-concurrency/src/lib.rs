//! A concurrency limit for [tollgate](https://docs.rs/tollgate): cap the requests in flight to a
//! provider, per account or model, with a fair queue and a fixed or adaptive cap.
//!
//! # Overview
//!
//! Providers cap concurrency too — DeepSeek per account, Anthropic per model (PROVIDERS.md) —
//! and a request over the cap is a 429. [`ConcurrencyLayer`] holds each request's slot from
//! the call until its response body ends (or its response head arrives:
//! [`hold_until_body_end`](ConcurrencyConfig::hold_until_body_end)), on every path: success,
//! error, drop. Requests over the cap wait in a bounded queue, higher
//! [`Priority`](tollgate_core::Priority) first and first come first served within it; a full
//! queue, or a wait past [`max_wait`](ConcurrencyConfig::max_wait) or the request's
//! [`Deadline`](tollgate_core::Deadline), fails at once with [`Saturated`], nothing sent. Slots
//! are per key ([`keyed_by`](ConcurrencyLayer::keyed_by)); idle keys are forgotten.
//!
//! The cap can adapt ([`Cap`], in [`ConcurrencyConfig`]): AIMD — one more per cap's worth of
//! successes, halved on an overload, a 429 or a timeout — or a latency gradient, which lowers the
//! cap as the provider's latency rises above its unloaded minimum, before errors come. Both stay
//! within `[min, max]`.
//!
//! It differs from tower's `ConcurrencyLimit` in taking the slot in `call` (the key and priority
//! are in the request), in holding it until the response body ends, and in its queue, keys and
//! adaptive caps.
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service. `call` takes a slot and calls the inner service at
//! once when one is free and nobody waits — lock-free; otherwise the response future waits in
//! the queue with the readied inner service (swapped for a clone), and calls it when granted a
//! slot. Responses come with a [`PermitBody`], which holds the slot until the body ends.
//!
//! ## Errors
//!
//! [`BoxError`](tollgate_core::BoxError): the inner service's errors, or [`Saturated`].
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer, Saturated};
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let slow = tower::service_fn(|_: http::Request<()>| async {
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//!     Ok::<_, Infallible>(http::Response::new(()))
//! });
//! // DeepSeek-style: at most 2 in flight; waiting at most 100 ms for a slot.
//! let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(2).with_max_wait(Duration::from_millis(100)));
//! let handle = layer.handle();
//! let mut service = layer.layer(slow);
//! let first = service.ready().await.unwrap().call(http::Request::new(()));
//! let second = service.ready().await.unwrap().call(http::Request::new(()));
//! assert_eq!(handle.in_flight(None), 2);
//! let third = service.ready().await.unwrap().call(http::Request::new(())).await;
//! assert!(third.unwrap_err().downcast_ref::<Saturated>().is_some());
//! # let _ = (first, second);
//! # }
//! ```
//!
//! An adaptive cap per model:
//!
//! ```
//! use tollgate_concurrency::{Cap, ConcurrencyConfig, ConcurrencyLayer};
//! use tollgate_core::key::ByRouteKey;
//!
//! let cap = Cap::Aimd { initial: 20, min: 2, max: 200, backoff: 0.5 };
//! let layer = ConcurrencyLayer::new(ConcurrencyConfig::from_cap(cap)).keyed_by(ByRouteKey);
//! # let _ = layer;
//! ```
//!
//! # Layer ordering
//!
//! Below the rate limiter (a request waits for quota before it takes a slot), above
//! `ClassifyLayer` (its verdicts drive the adaptive cap). See the facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod adaptive;
mod body;
mod config;
pub mod error;
mod gate;
mod layer;
mod service;
mod shared;

pub use adaptive::Cap;
pub use body::PermitBody;
pub use config::ConcurrencyConfig;
pub use error::Saturated;
pub use layer::{ConcurrencyHandle, ConcurrencyLayer};
pub use service::ConcurrencyLimit;
pub use shared::Permit;
pub use tollgate_core::keyed::{KeyStats, TooManyKeys};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
