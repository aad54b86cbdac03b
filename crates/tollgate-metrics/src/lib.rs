//! Metrics for [tollgate](https://docs.rs/tollgate): what every request came to — outcome,
//! latency, tokens, retries, fallback hops — through the `metrics` facade, `tracing`, and an
//! in-process snapshot with alerts.
//!
//! # Overview
//!
//! [`MetricsLayer`], outermost in a stack, sees each logical request once and records it:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `http.client.request.duration` (OpenTelemetry) | histogram, seconds | provider, route, `http.response.status_code`, `error.type` |
//! | `gen_ai.client.operation.duration` (OpenTelemetry) | histogram, seconds | `gen_ai.system`, route, `error.type` |
//! | `gen_ai.client.token.usage` (OpenTelemetry) | histogram, tokens | `gen_ai.system`, route, `gen_ai.token.type` |
//! | `gen_ai.server.time_to_first_token` (OpenTelemetry; streamed answers) | histogram, seconds | `gen_ai.system`, route |
//! | `gen_ai.server.time_per_output_token` (OpenTelemetry; streamed answers, after the first token) | histogram, seconds | `gen_ai.system`, route |
//! | `tollgate_requests_total` | counter | provider, route, outcome, status, attempts, hops |
//! | `tollgate_retries_total`, `tollgate_retry_delay_seconds` | counter, histogram | provider, route, class, delay source |
//! | `tollgate_retries_exhausted_total` | counter | provider, route, class |
//! | `tollgate_ratelimit_wait_seconds`, `tollgate_ratelimit_refused_total` | histogram, counter | provider, route |
//! | `tollgate_ratelimit_learned_rate` (an adaptive limit's, when it moves by 1 % or more) | gauge, requests per second | provider, route |
//! | `tollgate_ratelimit_quota_shared` (a shared store's, e.g. `RedisStore`: 1 while Redis answers, 0 while it applies its fallback) | gauge | provider |
//! | `tollgate_breaker_transitions_total`, `tollgate_breaker_refused_total` | counter | provider, route, from, to |
//! | `tollgate_fallback_hops_total` | counter | provider, route, from (the target's name), class |
//! | `tollgate_concurrency_waits_total` | counter | provider, route |
//! | `tollgate_keys_evicted_total`, `tollgate_keys_refused_total` (a keyed rate limit, breaker or concurrency map at its cap on keys: entries evicted, new keys refused) | counter | provider, route, layer |
//!
//! Any `metrics` exporter works — Prometheus below. The layers underneath report what they did
//! through one mechanism, [`tollgate_core::observe`]: the layer attaches an observer to each
//! request, and retry, rate limit, circuit breaker, fallback and concurrency report to it.
//! Every request gets a `tollgate.request` span with the same fields, and an event per
//! retry, wait, refusal, transition and hop.
//!
//! Labels never carry request data: the provider is configuration, the route is the request's
//! [`RouteKey`](tollgate_core::RouteKey) (a model, a tenant, or an API key's fingerprint),
//! classes and statuses are enums. No header — `authorization`, `x-api-key` — is ever read.
//!
//! Once a [`handle`](MetricsLayer::handle) is taken, it also keeps in-process figures: a
//! [`MetricsHandle`] gives a [`Snapshot`] — totals; success, 429, 5xx and retry-success
//! rates; context-window errors; retries and their mean delay; p50/p90/p99 latency (an HDR
//! histogram, retries included); time to first token of streamed answers (p50, p99); throughput; quota utilization per dimension, both the
//! provider's (from its rate-limit headers) and the local `RateLimitLayer`'s (reported after
//! each admission); the rate an adaptive rate limit learned; whether a shared quota is shared now; breaker opens — and [`Snapshot::alerts`] checks it against the
//! warning and critical thresholds of PROVIDERS.md.
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service; `call` attaches the observer, opens the span and
//! calls it; the future records when the response (or error) arrives — or, for an event
//! stream that `ClassifyLayer` follows, when the stream ends, so a stream that fails half-way
//! is recorded as the failure it is. Errors are
//! [`BoxError`](tollgate_core::BoxError), the inner service's, unchanged.
//!
//! # Example
//!
//! Reading the snapshot:
//!
//! ```
//! use std::convert::Infallible;
//! use tollgate_metrics::MetricsLayer;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let layer = MetricsLayer::new("openai");
//! let handle = layer.handle();
//! let provider = tower::service_fn(|_: http::Request<()>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(429).body(()).unwrap())
//! });
//! let service = layer.layer(provider);
//! service.oneshot(http::Request::new(())).await.unwrap();
//! let snapshot = handle.snapshot();
//! assert_eq!(snapshot.requests, 1);
//! assert_eq!(snapshot.rate_limit_rate(), Some(1.0));
//! assert!(!snapshot.alerts().is_empty()); // a 100% 429 rate is critical
//! # }
//! ```
//!
//! Exporting to Prometheus (`cargo run -p tollgate-metrics --example prometheus`):
//!
//! ```
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tollgate_metrics::MetricsLayer;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let recorder = PrometheusBuilder::new().build_recorder();
//! let prometheus = recorder.handle();
//! // An application installs it once: `PrometheusBuilder::new().install_recorder()`.
//! let _local = metrics::set_default_local_recorder(&recorder);
//!
//! let provider = tower::service_fn(|_: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! });
//! MetricsLayer::new("openai").layer(provider).oneshot(http::Request::new(())).await.unwrap();
//!
//! let text = prometheus.render();
//! assert!(text.contains(r#"tollgate_requests_total{provider="openai",route="none",outcome="success",status="200",attempts="1",hops="0"} 1"#));
//! # }
//! ```
//!
//! # Layer ordering
//!
//! Outermost: one logical request, with its retries, waits and hops inside. See the facade's
//! `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod handles;
mod labels;
mod layer;
mod observer;
mod service;
mod snapshot;

pub use layer::{MetricsHandle, MetricsLayer};
pub use service::Metrics;
pub use snapshot::{Alert, Level, Signal, Snapshot};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
