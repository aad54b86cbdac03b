//! Response caching and request coalescing for [tollgate](https://docs.rs/tollgate): identical
//! requests do not reach the provider twice.
//!
//! # Overview
//!
//! [`CacheLayer`] answers a cacheable request from the cache when an identical one was answered
//! within the [time-to-live](CacheConfig::ttl): a hit costs no quota, no money and no latency.
//! Concurrent identical requests that miss share one upstream call: the first (the leader)
//! goes upstream, the others (followers) wait for its answer.
//!
//! - **What is cacheable** is a policy ([`CacheConfig`]): requests that opt in with the header
//!   `x-tollgate-cache: on` ([`CACHE_HEADER`], removed before the request goes upstream) or the
//!   extension [`CacheRequest::Use`]; with [`deterministic`](CacheConfig::deterministic), also
//!   requests whose JSON body has `"temperature": 0` and `n` absent or 1.
//!   [`CacheRequest::Bypass`] (or the header's value `off`) wins. Anything else passes through
//!   untouched.
//! - **The key** is the method, the URI, the body and the caller's identity. A JSON body is
//!   normalised — object keys sorted, whitespace dropped, escapes undone — so that key order
//!   and formatting do not matter; numbers are kept as written (`1.0` and `1.00` are two keys:
//!   a missed hit, never a wrong answer). A byte-identical request is found without parsing. The identity is a seeded
//!   128-bit hash of the `authorization`, `x-api-key`, `api-key` and `x-goog-api-key` headers
//!   and of a [`CacheIdentity`] extension (a tenant): one caller's answer is never served to
//!   another unless [`shared_across_callers`](CacheConfig::shared_across_callers) says so. Raw
//!   keys are never stored, and keys compare whole: a hash collision cannot serve a wrong
//!   answer.
//! - **What is stored**: a 2xx response whose [`Verdict`](tollgate_core::Verdict), if a
//!   classifier below attached one, is a success, and whose body was read to its end, without
//!   error or trailers, within [`max_entry_bytes`](CacheConfig::max_entry_bytes). An event
//!   stream (`text/event-stream`) that reported an error mid-way — an `event: error`, or a
//!   `data:` object with an `error` — is not stored, though its status was 200. Its status,
//!   end-to-end headers and body are stored; hop-by-hop headers (`connection`,
//!   `transfer-encoding`, …, and those `connection` names) are not. Anything else reaches the caller intact — a body that was
//!   too large or failed while being read is handed on from where it was, nothing lost — and
//!   is not stored.
//! - **Memory is bounded** by the time-to-live, a [maximum entry count](CacheConfig::max_entries)
//!   and a [maximum total size](CacheConfig::max_bytes), with [moka](https://docs.rs/moka)
//!   evicting the least recently used entries.
//! - **Marking**: every response carries a [`CacheStatus`] extension (`Hit`, `Coalesced`,
//!   `Miss`, or `Bypass` for requests that are not cacheable), and a cacheable request's
//!   response the header `x-tollgate-cache: hit`, `coalesced` or `miss`. Each cacheable request
//!   reports one [`Event::CacheLookup`](tollgate_core::observe::Event::CacheLookup) to the
//!   request's observer, which `MetricsLayer` counts as `tollgate_cache_requests_total`
//!   by `outcome`.
//!
//! ## Coalescing, failures and cancellation
//!
//! A follower never receives another caller's failure. When the leader's answer is not
//! storable (an error, a failure status, a body too large), each follower goes upstream
//! itself, at once and in parallel, rather than queueing behind a new leader. When the
//! leader's future is dropped, its followers look again and one of them becomes the next
//! leader. Followers hold an unreadied clone of the inner service while they wait, and ready
//! it only if they must go upstream. The leader's call makes progress only while its future is
//! polled: identical requests from one task must be polled together (`join`), not one awaited
//! before the other is started — as a server's separate tasks naturally are.
//!
//! Besides the caller's identity, the values of a few request headers that select another
//! answer for the same body — `accept`, `accept-encoding`, `anthropic-version`,
//! `anthropic-beta`, `openai-organization`, `openai-project` — are part of every key
//! ([`CacheConfig::variant_headers`]).
//!
//! ## `poll_ready` and `call`
//!
//! `poll_ready` readies the inner service. `call` looks the request up: a hit resolves at once
//! and leaves the inner service readied for the next call; a leader calls it at once. Time is
//! read from tokio's clock, so tests with a paused clock see exact expiry. Clones of the
//! service and of the layer share one store. The layer adds no error: `Error` is the inner
//! service's.
//!
//! Requests are `http::Request<`[`BufferedBody`](tollgate_core::body::BufferedBody)`>`: put a
//! [`BufferBodyLayer`](tollgate_core::body::BufferBodyLayer) above to accept any body (the
//! facade's `ServiceBuilderExt::cache` adds it). Responses are
//! `http::Response<`[`CacheBody`]`<B>>` for any inner body `B` with `Bytes` data.
//!
//! ## Caveats
//!
//! - A cacheable request's response is returned once its body has been read whole (so that it
//!   can be stored and shared): opting a streamed (SSE) request in trades time to first token
//!   for the cache. A stored stream is replayed whole, as one chunk.
//! - A stored response is served as it was, with the headers it had: rate-limit headers and
//!   request ids are those of the original call. It carries no
//!   [`Verdict`](tollgate_core::Verdict), so a metrics layer above counts a success and no
//!   token usage: none was spent.
//! - With [`deterministic`](CacheConfig::deterministic) on, a JSON request that has not opted in
//!   is parsed on each lookup whose raw body is not in the store, to decide whether it is
//!   deterministic.
//! - Entries are per process; the store does not survive a restart.
//!
//! # Example
//!
//! Defaults: requests opt in with the header; the second identical request is a hit.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tollgate_cache::{CacheConfig, CacheLayer, CacheStatus};
//! use tollgate_core::body::BufferedBody;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! // A stand-in for the provider.
//! let provider = tower::service_fn(|_: http::Request<BufferedBody>| async {
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"Hello!"))))
//! });
//! let client = CacheLayer::new(CacheConfig::default()).layer(provider);
//!
//! let request = || {
//!     http::Request::post("https://api.openai.com/v1/chat/completions")
//!         .header("authorization", "Bearer sk-…")
//!         .header("x-tollgate-cache", "on")
//!         .body(BufferedBody::from(r#"{"model":"gpt-4o","messages":[]}"#))
//! };
//! let first = client.clone().oneshot(request()?).await?;
//! assert_eq!(CacheStatus::of(&first), Some(CacheStatus::Miss));
//!
//! let second = client.clone().oneshot(request()?).await?;
//! assert_eq!(second.headers()["x-tollgate-cache"], "hit");
//! assert_eq!(second.into_body().collect().await?.to_bytes(), "Hello!");
//! # Ok(())
//! # }
//! ```
//!
//! Customised: deterministic requests cached without opting in, per tenant, a minute, 1 000
//! entries, 16 MiB; a side handle on the store.
//!
//! ```
//! use std::convert::Infallible;
//! use std::num::NonZeroU64;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tollgate_cache::{CacheConfig, CacheIdentity, CacheLayer, CacheStatus};
//! use tollgate_core::body::BufferedBody;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_core::BoxError> {
//! # let provider = tower::service_fn(|_: http::Request<BufferedBody>| async {
//! #     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
//! # });
//! let layer = CacheLayer::new(
//!     CacheConfig::default()
//!         .with_deterministic(true)
//!         .with_ttl(Duration::from_secs(60))
//!         .with_max_entries(NonZeroU64::new(1_000).unwrap())
//!         .with_max_bytes(NonZeroU64::new(16 << 20).unwrap()),
//! );
//! let handle = layer.handle();
//! let client = layer.layer(provider);
//!
//! let request = |tenant: &str, body: &'static str| {
//!     let mut request = http::Request::post("https://api.openai.com/v1/chat/completions")
//!         .body(BufferedBody::from(body))
//!         .unwrap();
//!     request.extensions_mut().insert(CacheIdentity(tenant.to_owned()));
//!     request
//! };
//! client.clone().oneshot(request("acme", r#"{"model":"m","temperature":0}"#)).await?;
//! // Key order and whitespace do not matter…
//! let again = client.clone().oneshot(request("acme", r#"{ "temperature": 0, "model": "m" }"#)).await?;
//! assert_eq!(CacheStatus::of(&again), Some(CacheStatus::Hit));
//! // …but the caller does.
//! let other = client.clone().oneshot(request("globex", r#"{"model":"m","temperature":0}"#)).await?;
//! assert_eq!(CacheStatus::of(&other), Some(CacheStatus::Miss));
//! // Sampled requests are not cached.
//! let sampled = client.clone().oneshot(request("acme", r#"{"model":"m","temperature":0.7}"#)).await?;
//! assert_eq!(CacheStatus::of(&sampled), Some(CacheStatus::Bypass));
//!
//! handle.run_pending_tasks();
//! assert_eq!(handle.entry_count(), 3); // two responses, and the alias of the reordered body
//! # Ok(())
//! # }
//! ```
//!
//! # Layer ordering
//!
//! Under `MetricsLayer`, so that hits are counted as requests, and above everything that
//! spends quota — fallback, retry, router, circuit breaker, rate limiter — so that hits and
//! coalesced requests consume none:
//!
//! ```text
//! MetricsLayer → BufferBodyLayer → CacheLayer → FallbackLayer → RetryLayer → … → RateLimitLayer → ClassifyLayer → transport
//! ```
//!
//! The verdict it reads comes from `ClassifyLayer` below. See the facade's `ordering` page.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.85 (edition 2024).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

pub mod future;

mod body;
mod key;
mod layer;
mod policy;
mod service;
mod store;

pub use body::CacheBody;
pub use layer::{CacheHandle, CacheLayer};
pub use policy::{CACHE_HEADER, CacheConfig, CacheIdentity, CacheRequest, CacheStatus};
pub use service::Cache;

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
