//! A mock LLM provider: a real HTTP server on loopback that answers like OpenAI or Anthropic,
//! with their quotas, rate-limit headers, error bodies, streaming and faults.
//!
//! # Overview
//!
//! [`MockServer::start`] binds `127.0.0.1:0` and serves HTTP/1.1 (keep-alive) and h2c:
//!
//! - `POST /v1/chat/completions`: OpenAI's Chat Completions shape (on both flavors; an Anthropic
//!   server answers it as its OpenAI-compatible endpoint, with Anthropic's headers and errors);
//! - `POST /v1/messages`: Anthropic's Messages shape (on both flavors).
//!
//! The [`Flavor`] decides the headers, error bodies and token accounting (see PROVIDERS.md):
//!
//! | | OpenAI | Anthropic |
//! |---|---|---|
//! | headers | `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, Go-duration resets | `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`, RFC 3339 resets |
//! | 429 | `rate_limit_exceeded` "… Please try again in 1.2s.", `retry-after`, `retry-after-ms` | `rate_limit_error`, `retry-after` |
//! | credit spent | 429 `insufficient_quota` | 400 "credit balance is too low", `x-should-retry: false` |
//! | context window | 400 `context_length_exceeded` | 400 "prompt is too long: M tokens > N maximum" |
//! | outage | 503 `server_is_overloaded` | 529 `overloaded_error` |
//! | TPM charge | `ceil(chars / 4) + max_tokens` at admission | input at admission (ITPM), output when answered (OTPM) |
//!
//! Quotas ([`MockQuota`]) are continuously refilling buckets; refused, unauthorized and
//! context-window requests consume nothing. Optionally, a reverse proxy's limiter
//! ([`ProxyLimit`], like nginx `limit_req` or Envoy's local rate limit) sits in front: a GCRA
//! bucket per API key whose refusals are bare `text/plain` 429s with a fixed `Retry-After` and no
//! rate-limit headers, with another tenant taking a share of the rate on a schedule or at runtime
//! ([`MockServer::set_tenant_share`]). Faults ([`Faults`]) are drawn from a seeded RNG after
//! admission (so a faulted request has consumed quota); outages consume nothing. Streamed
//! answers have faults of their own after the 200 head ([`StreamFaults`]): a delayed first
//! token, and a stall, an error event or a cut connection after N events. All timing uses
//! tokio's clock, so tests can run with `start_paused = true`. [`MockServer::stats`] and
//! [`MockServer::timeline`] report what happened.
//!
//! The pipeline, in order, is documented on the `server` module: route, body (≤ 10 MiB, else
//! 413), reverse-proxy limit, API key, outage, JSON, credit, context window, admission, faults,
//! latency, answer.
//!
//! # Example
//!
//! ```
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tollgate_mock::{MockConfig, MockServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = MockServer::start(MockConfig::openai().with_requests_per_minute(2)).await?;
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
//! let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":10}"#;
//! let mut statuses = Vec::new();
//! for _ in 0..3 {
//!     let req = http::Request::post(format!("{}/v1/chat/completions", server.base_url()))
//!         .header("content-type", "application/json")
//!         .body(Full::from(body))?;
//!     let res = client.request(req).await?;
//!     statuses.push(res.status().as_u16());
//!     let _ = res.into_body().collect().await?;
//! }
//! assert_eq!(statuses, [200, 200, 429]);
//! assert_eq!(server.stats().rate_limited, 1);
//! # Ok(())
//! # }
//! ```
//!
//! A TOML configuration ([`MockConfig::from_toml`]; the `tollgate-mock` binary takes one with
//! `--config`):
//!
//! ```
//! let cfg = tollgate_mock::MockConfig::from_toml(r#"
//! flavor = "anthropic"
//! completion_tokens = 100
//! seed = 42
//! latency = { kind = "log_normal", median_ms = 400, p99_ms = 4000 }
//!
//! [quota]
//! requests_per_minute = 50
//! input_tokens_per_minute = 30000
//! output_tokens_per_minute = 8000
//! max_concurrency = 20
//!
//! [faults]
//! error_rates = { 500 = 0.01, 529 = 0.02 }
//! outages = [{ start_ms = 60000, duration_ms = 10000 }]
//!
//! [faults.stream]
//! first_token_delay = { ms = 8000, rate = 0.5 }
//! cut = { after = 5, rate = 0.01 }
//!
//! [proxy_limit]
//! rate_per_second = 5
//! burst = 2
//! tenant = [{ from_ms = 20000, share = 0.5 }]
//! "#).unwrap();
//! assert_eq!(cfg.faults.outages[0].status, 529);
//! assert_eq!(cfg.faults.stream.cut.unwrap().after, 5);
//! assert_eq!(cfg.proxy_limit.unwrap().tenant_schedule[0].share, 0.5);
//! ```
//!
//! # Feature flags
//!
//! None.
//!
//! # Supported Rust versions
//!
//! The workspace MSRV, 1.85.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings), allow(dead_code, unused_variables))))]

mod answer;
mod anthropic;
mod body;
mod config;
mod faults;
mod openai;
mod proxy;
mod quota;
mod server;
mod stats;

pub use config::{
    Faults, FirstTokenDelay, Flavor, Latency, MockConfig, MockConfigError, MockQuota, Outage,
    ProxyLimit, StreamFault, StreamFaults, TenantShare,
};
pub use server::{MAX_BODY_BYTES, MockServer};
pub use stats::{Bucket, MockStats};

// The README's examples are compiled (and run) as doc tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
