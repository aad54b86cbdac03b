//! A circuit breaker for [tollgate](https://docs.rs/tollgate): stop calling a provider that is
//! down, and probe it back.
//!
//! # Overview
//!
//! [`CircuitBreakerLayer`] counts the outcomes of the calls to its target — by their
//! [`Verdict`](tollgate_core::Verdict), so only what says the target is unhealthy counts:
//! server errors, overloads, timeouts, failed connections ([`ClassSet::TARGET_HEALTH`]), never
//! a 4xx, a 429, an exhausted quota or a prompt too long for the model. When the count trips
//! ([`Trip`]: failures in a row, a failure rate or a slow-call rate over a window of calls or
//! of time, once the window holds enough calls), the breaker **opens**: calls fail at once with
//! [`CircuitOpen`], which says when a probe will be let through, so a retry or fallback above
//! moves on without waiting. After the open period it turns **half-open**: a bounded number of
//! probes go through; enough successes close it, a failure opens it again for longer (the
//! period grows on repeated trips, up to a cap).
//!
//! A [`CircuitBreakerHandle`] observes the state, opens a breaker for a given time from outside
//! (a server delay beyond the retry cap, a quota cooldown), closes it, and sets the
//! [`Mode`]: disabled, forced open, or metrics-only (count and change state, never refuse).
//! Breakers can be keyed per target or model ([`keyed_by`](CircuitBreakerLayer::keyed_by));
//! idle ones are forgotten. An [`OnStateChange`] hook hears every change.
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service. `call` asks the request's breaker: when closed —
//! one atomic load, no clock read and, unkeyed, no lock — it calls the inner service; a free
//! half-open probe slot does too; otherwise the future fails at once. The outcome is counted
//! when the inner future completes. Clones share the breakers.
//!
//! ## Cancellation
//!
//! A call dropped before its response counts for nothing; a dropped half-open probe gives its
//! slot back.
//!
//! ## Errors
//!
//! [`BoxError`](tollgate_core::BoxError): the inner service's errors, or [`CircuitOpen`].
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use tollgate_circuit_breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer, CircuitOpen};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // A provider that answers 503.
//! let provider = tower::service_fn(|_: http::Request<()>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(503).body(()).unwrap())
//! });
//! let layer = CircuitBreakerLayer::new(BreakerConfig::default());
//! let handle = layer.handle();
//! let service = layer.layer(provider);
//! for _ in 0..5 {
//!     let response = service.clone().oneshot(http::Request::new(())).await.unwrap();
//!     assert_eq!(response.status(), 503);
//! }
//! assert_eq!(handle.state(None), BreakerState::Open);
//! let error = service.oneshot(http::Request::new(())).await.unwrap_err();
//! let open = error.downcast_ref::<CircuitOpen>().unwrap();
//! assert_eq!(open.retry_after(), Some(Duration::from_secs(60)));
//! # }
//! ```
//!
//! A breaker per model, tripped by the failure rate, with a hook:
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::time::Duration;
//! use tollgate_circuit_breaker::{
//!     BreakerConfig, CircuitBreakerLayer, StateChange, Trip, CallWindow, on_state_change_fn,
//! };
//! use tollgate_core::key::ByRouteKey;
//!
//! let config = BreakerConfig::default()
//!     .with_trip(Trip::FailureRate {
//!         percent: 50,
//!         window: CallWindow::Calls(NonZeroU32::new(20).unwrap()),
//!         min_calls: 10,
//!     })
//!     .with_open_for(Duration::from_secs(30), 2, Duration::from_secs(300));
//! let layer = CircuitBreakerLayer::new(config)
//!     .on_state_change(on_state_change_fn(|change: &StateChange| eprintln!("{change:?}")))
//!     .keyed_by(ByRouteKey);
//! # let _ = layer;
//! ```
//!
//! # Layer ordering
//!
//! Below retry (an attempt at an open target fails at once, and the retry or fallback above
//! moves on) and above the rate limiter (a refused call spends no quota). See the facade's
//! `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod breaker;
mod config;
pub mod error;
mod handle;
mod layer;
mod service;
mod shared;

pub use config::{BreakerConfig, CallWindow, Trip};
pub use error::CircuitOpen;
pub use handle::{
    BreakerState, CircuitBreakerHandle, Mode, OnStateChange, OnStateChangeFn, StateChange,
    on_state_change_fn,
};
pub use layer::CircuitBreakerLayer;
pub use service::CircuitBreaker;
pub use tollgate_core::ClassSet;
pub use tollgate_core::keyed::{KeyStats, TooManyKeys};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
