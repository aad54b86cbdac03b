//! [`ClassifyLayer`]: classify every response once, nearest the wire.
//!
//! The layer runs a classifier — one of this crate's providers,
//! [`ProviderClassifier`](crate::ProviderClassifier), or any
//! [`Classify`](tollgate_core::Classify) — once per response and attaches the
//! [`Verdict`](tollgate_core::Verdict) to the response extensions, where every layer above
//! (retry, circuit breaker, rate limit, fallback, metrics) and the caller read it with
//! [`Verdict::of_response`](tollgate_core::Verdict::of_response). An error from the inner
//! service (connect failure, timeout) is wrapped in [`Classified`](tollgate_core::Classified),
//! which carries its verdict; read it with [`Verdict::of_error`](tollgate_core::Verdict::of_error).
//! One verdict is left out: a plain success (a status below 400, no rate-limit readings, no
//! usage, no delay — [`Verdict::is_plain_success`](tollgate_core::Verdict::is_plain_success))
//! says what no verdict says, and [`Verdict::of_outcome`](tollgate_core::Verdict::of_outcome),
//! which every layer uses to judge a response, reads the absence as that same success; not
//! attaching it spares the response's extensions three allocations.
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
//!   once, its body passed through in place — and, for a successful event stream, followed
//!   (see [Event streams](#event-streams)).
//! - A response that already carries a verdict (an inner `ClassifyLayer`) is not classified
//!   again, and an error that is already `Classified` is not wrapped again. (A plain success
//!   carries none, so an outer `ClassifyLayer` classifies it again: from status and headers,
//!   without its body.)
//! - Clones share nothing but the (cloned) classifier.
//!
//! The error type is [`BoxError`](tollgate_core::BoxError); every error of a response future is
//! a `Classified`. The body's data type is the inner body's; its error type is `BoxError`: the
//! inner body's errors, boxed and otherwise unchanged, or the errors of a followed stream.
//!
//! # Event streams
//!
//! A `2xx` response with `content-type: text/event-stream` is classified from its head (a
//! success) and returned at once; its [`PeekedBody`] then follows the SSE framing as the body
//! passes. Every frame is handed on as soon as it is read, unchanged — never held back, never
//! buffered; the follower keeps only the current incomplete line and the current event's
//! `data` (at most 64 KiB each: a larger event is passed on uninspected and never fails the
//! stream). Lines end at `\n` or `\r\n`, wherever the frames are cut.
//!
//! - **An error event** — OpenAI's `data: {"error":{…}}` and Responses `response.failed`,
//!   Anthropic's `event: error`, an OpenRouter chunk with `"error"` or
//!   `finish_reason: "error"`, Gemini's `{"error":{…}}` chunk, any OpenAI-compatible
//!   `data: {"error":…}` — is classified by the layer's classifier as if its JSON were the body
//!   of a response with the status the error implies (its numeric `code`, its gRPC `status`, or
//!   its `type`/`code`: `overloaded_error` is 529, `rate_limit_exceeded` 429,
//!   `server_is_overloaded` 503, …; 500 when it says nothing). The frame that completed the
//!   event is handed on (so the caller sees everything up to and including the error event) —
//!   unless the error is the stream's very first event: then nothing is handed on, so that a
//!   layer above may still retry (the zero-chunk rule) — the next poll yields a [`Classified`](tollgate_core::Classified) carrying that verdict and
//!   an [`error::StreamFailed`] (the provider's error type, message and event name), and the
//!   body ends.
//! - **A truncated stream** — one whose inner body ends without its terminal event — ends with
//!   a `Classified` carrying [`ErrorClass::Truncated`](tollgate_core::ErrorClass::Truncated)
//!   (it counts against the target's health) and an [`error::StreamTruncated`] naming the
//!   terminal event expected. The format, and so the terminal event, is told by the events
//!   seen, with no configuration: `message_start` means Anthropic Messages (ends with
//!   `message_stop`), `response.created` OpenAI Responses (`response.completed` or
//!   `response.incomplete`), a chunk with `"choices"` an OpenAI-compatible chat stream
//!   (`data: [DONE]`, also Anthropic's and Gemini's OpenAI-compatible endpoints), a chunk with
//!   `"candidates"` Gemini's native stream (a chunk with a `finishReason`). A stream with no
//!   event at all (keep-alive comments only) is truncated; one of an unknown format may end
//!   anywhere. An event cut off before its blank line is still judged at the end.
//! - **The usage a stream reports** — OpenAI's final usage chunk (asked for with
//!   `stream_options.include_usage`), Anthropic's `message_start` and cumulative
//!   `message_delta` usage, Gemini's `usageMetadata` — is read as it passes and told, when the
//!   stream ends, to the [`StreamReport`](tollgate_core::StreamReport) put in the response's
//!   extensions: the rate limiter above reconciles its token estimate then, and the metrics
//!   record the tokens. A stream that fails or is truncated reports none (its estimate stays).
//! - **How the stream ends** is told to that same report: completed, failed with the class of
//!   its error (an error event, a truncation, a cut connection), or abandoned by a caller who
//!   dropped the body; and when its first event passed. A stream that fails after its first
//!   byte reached the caller cannot be retried (the zero-chunk rule), but the breaker above
//!   counts it as a failure and the metrics record it, with its time to first token.
//! - The inner body's own errors (a reset connection) end the body wrapped in a `Classified`
//!   with what the transport rules say of them (the original inside). Bedrock's binary event
//!   stream is not SSE and is not followed.
//!
//! Following costs a scan of each frame for line ends and of each event for `"error"` (and,
//! while the format is unknown, its markers); a JSON parse happens only for error events.
//! Layers above see these body errors like any other: their verdict is read with
//! [`Verdict::of_error`](tollgate_core::Verdict::of_error). By then bytes have reached the
//! caller, so nothing retries the request (PROVIDERS.md §7.13).
//!
//! Reading ahead waits for the server's frames: an error body that stalls stalls the response.
//! Put a timeout around the transport (as every HTTP client does) to bound it.
//!
//! # Examples
//!
//! Attach OpenAI's verdict to the responses:
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
//! use tollgate_providers::{ClassifyLayer, ProviderClassifier};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let provider: ProviderClassifier = "anthropic".parse().unwrap();
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
pub mod error;
pub mod future;
mod layer;
mod service;
mod sse;

pub use body::PeekedBody;
pub use layer::ClassifyLayer;
pub use service::ClassifyService;
