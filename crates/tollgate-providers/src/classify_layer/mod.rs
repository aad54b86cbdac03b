//! [`ClassifyLayer`]: classify every response once, nearest the wire.
//!
//! The layer runs a classifier — one of this crate's providers, [`Provider`](crate::Provider),
//! or any [`Classify`](tollgate_core::Classify) — once per response and attaches the
//! [`Verdict`](tollgate_core::Verdict) to the response extensions, where every layer above
//! (retry, circuit breaker, rate limit, fallback, metrics) and the caller read it with
//! [`Verdict::of_response`](tollgate_core::Verdict::of_response). An error from the inner
//! service (connect failure, timeout) is wrapped in [`Classified`](tollgate_core::Classified),
//! which carries its verdict; read it with [`Verdict::of_error`](tollgate_core::Verdict::of_error).
//!
//! tower has no sibling: tower-http's `classify` module judges success or failure for tracing;
//! this layer produces the full verdict (class, retry advice, server delay and its source,
//! rate-limit snapshot, usage) and keeps the body intact.
//!
//! # What it does
//!
//! - `poll_ready` forwards to the inner service; its error is boxed, not classified (a service
//!   that fails readiness is broken, not answering).
//! - `call` calls the inner service. When the classifier needs the body
//!   ([`Classify::needs_body`](tollgate_core::Classify::needs_body): every error status, and
//!   OpenRouter's non-streaming successes, which can carry errors) the future reads the body
//!   ahead until it has peeked the limit (64 KiB, less with [`ClassifyLayer::with_peek_limit`]),
//!   the body ends, trailers arrive or reading fails, then classifies and returns the response.
//!   The [`PeekedBody`] replays every frame it read — data, trailers, and a read error in its
//!   place — then streams the rest: the caller gets the body exactly as the server sent it. Any
//!   other response (a success, a stream) is classified from status and headers and returned at
//!   once, its body passed through in place.
//! - A response that already carries a verdict (an inner `ClassifyLayer`) is not classified
//!   again, and an error that is already `Classified` is not wrapped again.
//! - Clones share nothing but the (cloned) classifier.
//!
//! The error type is [`BoxError`](tollgate_core::BoxError); every error of a response future is
//! a `Classified`. The body's data and error types are the inner body's.
//!
//! Reading ahead waits for the server's frames: an error body that stalls stalls the response.
//! Put a timeout around the transport (as every HTTP client does) to bound it.
//!
//! # Examples
//!
//! Attach OpenAI's verdict to every response:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use tollgate_core::{ErrorClass, Verdict};
//! use tollgate_providers::{ClassifyLayer, OpenAi};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! const BODY: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
//! let transport = service_fn(|_request: http::Request<Full<Bytes>>| async {
//!     let response = http::Response::builder().status(429).body(Full::new(Bytes::from(BODY)))?;
//!     Ok::<_, http::Error>(response)
//! });
//! let client = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new(OpenAi::new()))
//!     .service(transport);
//!
//! let response = client.oneshot(http::Request::new(Full::default())).await.unwrap();
//! let verdict = Verdict::of_response(&response).unwrap();
//! assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted));
//! assert!(!verdict.is_retryable());
//!
//! // The caller still gets the whole body.
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, BODY);
//! # }
//! ```
//!
//! Choose the provider at run time, peek less, and read the verdict of a transport error:
//!
//! ```
//! use std::io;
//!
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tollgate_core::{ErrorClass, Verdict};
//! use tollgate_providers::{ClassifyLayer, Provider};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let provider: Provider = "anthropic".parse().unwrap();
//! let transport = service_fn(|_request: http::Request<Full<Bytes>>| async {
//!     Err::<http::Response<Full<Bytes>>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(ClassifyLayer::new(provider).with_peek_limit(16 * 1024))
//!     .service(transport);
//!
//! let error = client.oneshot(http::Request::new(Full::default())).await.unwrap_err();
//! let verdict = Verdict::of_error(error.as_ref()).unwrap();
//! assert_eq!(verdict.class(), Some(ErrorClass::Connect));
//! assert!(verdict.is_retryable());
//! # }
//! ```

mod body;
pub mod future;
mod layer;
mod service;

pub use body::PeekedBody;
pub use layer::ClassifyLayer;
pub use service::ClassifyService;
