//! The shared vocabulary of [tollgate](https://docs.rs/tollgate): what a response means, said
//! once and read by every layer.
//!
//! # Overview
//!
//! tollgate's layers (rate limiting, retry, circuit breaking, fallback, routing, metrics) never
//! look at raw status codes. A classifier, nearest the wire, turns each response or transport
//! error into a [`Verdict`]:
//!
//! - an [`ErrorClass`] (none for a success): `RateLimited`, `QuotaExhausted`, `Overloaded`, …;
//! - [`RetryAdvice`]: never, the same target after a delay, or elsewhere;
//! - the server's requested delay and its [`DelaySource`];
//! - the [`RateLimitSnapshot`] parsed from the provider's rate-limit headers;
//! - the [`Usage`] the response reported.
//!
//! The verdict rides in the response's extensions ([`Verdict::of_response`]) or wraps the error
//! ([`Classified`], [`Verdict::of_error`]).
//!
//! This crate also holds what every layer shares: the [`Classify`] trait, the [`headers`]
//! parsers, the per-request hints ([`Cost`], [`Priority`], [`RouteKey`], [`Deadline`]), request
//! [`body`] buffering, [`ClassSet`] (the classes a layer acts on), the [`Rewrite`] trait (how a
//! request is changed for one target) and [`BoxError`], and the pieces several layers build
//! on: state per key that forgets idle keys ([`keyed::KeyedMap`]), a layer's own time line on
//! tokio's clock ([`clock::Origin`]), the sooner of a request's deadline and a layer's own
//! limit ([`Deadline::sooner`]), and the one way a URL is shown in output ([`redact::url`]:
//! user info, query values and fragment redacted). Provider classifiers and the concrete
//! rewriters live in `tollgate-providers`.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use tollgate_core::{classify_fn, headers, Classify, DelaySource, ErrorClass, ResponseView, Verdict};
//!
//! // A hand-written classifier: 429 is a rate limit, with the server's delay.
//! let classifier = classify_fn(|r: &ResponseView<'_>| {
//!     if r.status() == StatusCode::TOO_MANY_REQUESTS {
//!         let verdict = Verdict::failure(ErrorClass::RateLimited).with_status(r.status());
//!         match headers::server_delay(r.headers(), r.time()) {
//!             Some((delay, source)) => verdict.with_delay(delay, source),
//!             None => verdict,
//!         }
//!     } else {
//!         Verdict::success()
//!     }
//! });
//!
//! let mut map = HeaderMap::new();
//! map.insert("retry-after", "2".parse().unwrap());
//! let verdict = classifier.classify(&ResponseView::new(StatusCode::TOO_MANY_REQUESTS, &map, b""));
//! assert!(verdict.is_retryable());
//! assert_eq!(verdict.delay_source(), DelaySource::RetryAfterSeconds);
//! ```
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod body;
mod class;
mod class_set;
mod classify;
pub mod clock;
mod extensions;
pub mod headers;
pub mod json;
pub mod key;
pub mod keyed;
pub mod observe;
pub mod packed;
pub mod redact;
pub mod rewrite;
mod snapshot;
mod stream_report;
pub mod timer;
mod verdict;

pub use class::{ErrorClass, RetryAdvice};
pub use class_set::ClassSet;
pub use classify::{Classify, ClassifyFn, ResponseView, classify_fn, transport_verdict};
pub use extensions::{Cost, Deadline, Priority, RouteKey, Sooner};
pub use rewrite::Rewrite;
pub use snapshot::{Dimension, LimitEntry, LimitReading, RateLimitSnapshot, Window};
pub use stream_report::{StreamEnd, StreamOutcome, StreamReport};
pub use verdict::{Classified, DelaySource, Judged, Usage, Verdict};

/// A type-erased, thread-safe error: what layers that add failure modes return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// The README's examples, if any, are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
