//! A gateway for OpenAI's and Anthropic's SDKs: `POST /v1/chat/completions` (OpenAI's Chat
//! Completions) and `POST /v1/messages` (Anthropic's Messages) go through a tollgate stack to a
//! primary upstream, then to a fallback — each upstream speaking either API, the gateway
//! translating between them — and when the stack must refuse, the gateway's own callers get a
//! 429 or 503 with `retry-after`, `retry-after-ms` and `x-should-retry`, in their own API's
//! error shape, so that their SDKs back off as they would from the provider itself.
//!
//! ```sh
//! cargo run --example axum_gateway              # a self-test against two in-process mocks
//! cargo run --example axum_gateway -- --serve   # serve until Ctrl-C (or GATEWAY_SERVE=1)
//! ```
//!
//! # What it shows
//!
//! - **Both API shapes** ([`translate`]): a caller of either API can be served by an upstream
//!   of either. When they differ, the request is translated on its way up (messages, system
//!   prompt, images, tools and tool calls, stop sequences, sampling, `max_tokens` — Anthropic
//!   requires one: a Chat request without gets [`DEFAULT_MAX_TOKENS`](translate::DEFAULT_MAX_TOKENS),
//!   4,096) and the answer on its way back, a
//!   stream event by event (Anthropic's `message_start` … `message_stop` to OpenAI's chunks
//!   and `[DONE]`, and back). A request using a feature the upstream's API cannot express
//!   (`n` > 1, `logprobs`, `seed`, a temperature above 1 for Anthropic; `top_k`, extended
//!   thinking, server tools for OpenAI) is refused with a 400 `unsupported_feature` that names
//!   it, before anything is sent: nothing is dropped silently.
//! - **One stack per upstream**, in the documented order: translation and address, then
//!   retries (provider delays honoured up to 10 s, overloads left to the fallback at once)
//!   above a circuit breaker above a client-side quota (the adaptive limit, which learns the
//!   provider's from its answers, unless a quota is configured; waiting at most 5 s, 2 s in
//!   the self-test) above `ClassifyLayer` above a reqwest transport; a `FallbackLayer` over the
//!   two, whose context-window chain sends a prompt too long for the primary to the fallback
//!   unless the fallback's window is known to be no larger.
//! - **Refusals become answers**: [`refusal`] maps the stack's typed errors —
//!   `RateLimited` (the local quota), `RetriesExhausted` (a provider delay above the cap,
//!   an upstream that stayed down), `CircuitOpen`, `AllTargetsFailed` (saying why each
//!   upstream was tried or passed over: a 429 only when every reason is a rate limit or a
//!   spent quota, a 503 for outages and open breakers) — to a status, a wait and a body in the
//!   caller's shape ([`Refusal::answer`]: OpenAI's `{"error": {…}}` or Anthropic's
//!   `{"type": "error", "error": {…}}`). A spent quota never carries a wait
//!   (`x-should-retry: false`): no wait mends it.
//! - **Upstream errors are rewritten, never relayed**: the upstreams' keys and addresses never
//!   reach a caller. The gateway builds each upstream request itself, passes back only a few
//!   response headers, and answers every upstream error status (4xx and 5xx, and anything else
//!   but 2xx) with an error body of its own ([`upstream_refusal`]): the status (a 401 or 403,
//!   about the gateway's own key, becomes a 502), the error's class, a code taken from the
//!   upstream only when it is lowercase words joined by `_` (`context_length_exceeded`,
//!   `model_not_found`), and a message in the gateway's own words. An upstream's own message,
//!   which may quote a key, an internal URL or another tenant's data, is read only for its code
//!   and dropped.
//! - **No secret in its output**: upstream URLs are printed only through [`redact::url`] (user
//!   info, query values and fragment redacted), the Redis URL not at all, [`Upstream`]'s
//!   `Debug` hides the key, and every error about the environment names the variable at fault without
//!   quoting its value ([`settings`]).
//! - **Bounded input**: caller bodies are read up to 4 MiB ([`MAX_BODY`]; 413 beyond) and must
//!   be a JSON object (400 otherwise); nothing a caller sends can panic the gateway. Before it
//!   answers 413, the gateway reads and discards the rest of the body, up to [`MAX_DRAIN`]
//!   (16 MiB) in all, so that a client that writes its whole body before reading (Python's
//!   `urllib`, `requests`) reads the 413 instead of a broken pipe.
//! - **Slow and idle callers hold nothing for long** (see the limits below): the gateway
//!   serves HTTP/1.1 through its own accept loop, [`serve_gateway`]
//!   (`examples/support/gateway_server.rs`, in place of `axum::serve`), which caps open
//!   connections and closes idle ones and slow request heads; [`app_with`] reads each body
//!   within a time limit (408) and under a byte budget shared by all requests (503 with
//!   `retry-after` when it is spent), so bodies that never end cannot pile up in memory.
//! - **A bounded shutdown**: on Ctrl-C the gateway stops accepting, lets requests in flight
//!   finish for up to 10 s ([`DRAIN`](gateway_server::DRAIN)), then aborts what remains (a
//!   request to a hung upstream, an endless stream; its caller sees the connection close) and
//!   exits — within the drain and the second or so the in-process mocks take to stop. A
//!   second Ctrl-C during the drain aborts at once.
//! - **Streams pass through**: an upstream's answer, `text/event-stream` included, is relayed
//!   frame by frame as it arrives (translated event by event when the APIs differ), never
//!   buffered, with the headers that matter to clients: `cache-control`, the request id
//!   (`x-request-id`, Anthropic's `request-id`) and the upstream's rate-limit headers
//!   (`x-ratelimit-*`, `anthropic-ratelimit-*`), which the gateway does not set itself.
//! - **Reusable pieces**: [`app`] builds the `axum::Router` around any stack and [`stack`]
//!   builds this one, so `tests/gateway.rs` includes this file and drives both.
//!
//! # Configuration
//!
//! Without `GATEWAY_PRIMARY_URL`, the gateway starts two `tollgate-mock` servers in this
//! process (an OpenAI-shaped primary and an Anthropic-shaped fallback) and runs a self-test
//! against itself: a normal request, the same through Anthropic's route, one during a primary
//! outage (served by the fallback, translated), a body too large, a body that is not JSON, and
//! a burst beyond the primary's quota (429s with `retry-after`). With `--serve` it serves
//! instead.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `GATEWAY_ADDR` | `127.0.0.1:8080` (`127.0.0.1:0` for the self-test) | where to listen |
//! | `GATEWAY_SERVE` | — | set to serve until Ctrl-C, like `--serve` |
//! | `GATEWAY_PRIMARY_URL` | — | the primary's base URL, e.g. `https://api.openai.com/v1` or `https://api.anthropic.com` |
//! | `GATEWAY_PRIMARY_KEY` | — | its API key (sent as `authorization: Bearer …`, or `x-api-key` to a Messages upstream) |
//! | `GATEWAY_PRIMARY_MODEL` | the caller's | the model to ask it for |
//! | `GATEWAY_PRIMARY_PROVIDER` | `openai` | whose errors and headers to expect (`anthropic`, `deepseek`, …) |
//! | `GATEWAY_PRIMARY_API` | `anthropic` for the provider `anthropic`, else `openai` | the API it speaks: `openai` (Chat Completions) or `anthropic` (Messages) |
//! | `GATEWAY_PRIMARY_RPM`, `GATEWAY_PRIMARY_TPM` | — (the adaptive limit) | the quota to keep to, per minute; with neither, the adaptive limit learns it from the upstream's rate-limit headers and 429s |
//! | `GATEWAY_PRIMARY_CONTEXT_WINDOW` | — (unknown) | its model's context window in tokens: a prompt too long for the primary goes to the fallback unless the fallback's is known to be no larger |
//! | `GATEWAY_FALLBACK_*` | — | the same for the fallback (none without `GATEWAY_FALLBACK_URL`) |
//! | `GATEWAY_MAX_CONNECTIONS` | 1000 | connections open at once (keep it under `ulimit -n`, less the upstreams' own) |
//! | `GATEWAY_REDIS_URL` | — | keep the quotas in this Redis, shared with every gateway given the same URL and prefix (`--features redis`); never printed |
//! | `GATEWAY_REPLICAS` | 1 | how many gateways share it: while Redis is away, each admits 1/N of every quota |
//! | `GATEWAY_REDIS_PREFIX` | `tollgate-gateway` | the start of its keys in Redis (each upstream's quota under `<prefix>:<primary or fallback>`) |
//!
//! Each variable is checked at start ([`settings`]); an error names the variable and what is
//! wrong, never its value (`GATEWAY_PRIMARY_KEY: not a valid header value (it holds a newline
//! or another control character); the key is not shown`), and the gateway exits.
//!
//! Two gateways sharing one quota, for example:
//!
//! ```sh
//! export GATEWAY_PRIMARY_URL=https://api.openai.com/v1 GATEWAY_PRIMARY_KEY=… GATEWAY_PRIMARY_RPM=500
//! export GATEWAY_REDIS_URL=redis://127.0.0.1:6379/ GATEWAY_REPLICAS=2
//! GATEWAY_ADDR=127.0.0.1:8080 cargo run --features redis --example axum_gateway -- --serve &
//! GATEWAY_ADDR=127.0.0.1:8081 cargo run --features redis --example axum_gateway -- --serve &
//! ```
//!
//! A base URL with a path is the API root (`https://api.groq.com/openai/v1`); one without
//! (`http://127.0.0.1:8000`) gets `/v1`. Then, for example:
//!
//! ```sh
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
//! curl -s localhost:8080/v1/messages -H 'content-type: application/json' \
//!   -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'
//! ```
//!
//! The official SDKs need only their base URL (the gateway holds the upstreams' keys; the
//! caller's is not sent on); `tests/python_sdks.rs` drives the gateway with both:
//!
//! ```python
//! from openai import OpenAI
//! from anthropic import Anthropic
//!
//! OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="unused").chat.completions.create(
//!     model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
//! Anthropic(base_url="http://127.0.0.1:8080", api_key="unused").messages.create(
//!     model="claude-sonnet-4-5", max_tokens=256,
//!     messages=[{"role": "user", "content": "Hello"}])
//! ```
//!
//! # Limits
//!
//! | limit | value | when it is reached |
//! |---|---|---|
//! | [`MAX_CONNECTIONS`](gateway_server::MAX_CONNECTIONS) | 1,000 open connections (`GATEWAY_MAX_CONNECTIONS`) | one more takes the place of the connection free (no request in flight) the longest, which is closed at once; with every connection busy, the new one is closed at once, before anything is read (the caller sees the connection close and retries); nothing queues. So connections that send nothing cannot lock callers out: 2,000 of them at once, and callers are still served at once (`tests/chaos.rs`) |
//! | [`IDLE_TIMEOUT`](gateway_server::IDLE_TIMEOUT) | 30 s | a connection with no request in flight that sends nothing — new, or kept alive after an answer — is closed |
//! | [`HEAD_TIMEOUT`](gateway_server::HEAD_TIMEOUT) | 10 s from its first byte | a request head not complete by then: the connection is closed |
//! | [`WRITE_TIMEOUT`](gateway_server::WRITE_TIMEOUT) | 60 s | a caller that reads nothing while its answer waits to be written: the connection is closed, and the upstream stream behind it dropped |
//! | [`BODY_TIMEOUT`] | 30 s from the end of the head | a body not complete by then: 408 `request_timeout`, and the connection is closed |
//! | [`MAX_BODY`] | 4 MiB a body | 413 `request_too_large`, and the connection is closed: once the rest of the body is read and discarded, up to [`MAX_DRAIN`] in all, within [`BODY_TIMEOUT`]; at once for a body announced beyond [`MAX_DRAIN`] or sent with `expect: 100-continue` (not yet sent) |
//! | [`MAX_DRAIN`] | 16 MiB of an over-limit body | the 413 is sent and the connection closed without reading more: a client still writing sees the connection close |
//! | [`BODY_BUDGET`] | 64 MiB across all requests | a body whose buffer cannot grow within it: 503 `gateway_busy` with `retry-after: 1` and `x-should-retry: true`, and the connection is closed |
//! | [`DRAIN`](gateway_server::DRAIN) | 10 s after Ctrl-C (a second Ctrl-C: at once) | requests still in flight are aborted and their connections closed |
//!
//! The body budget counts the capacity of the buffers bodies are read into (grown by doubling
//! as bytes arrive; an announced `content-length` reserves nothing), and a body keeps its share
//! until the stack is done with it (the retries resend it): so memory for caller bodies stays
//! within 64 MiB, while ordinary chat requests — a few KiB each — are never refused for it
//! short of thousands at once. A caller that holds its share by sending slowly loses it after
//! [`BODY_TIMEOUT`]. An answer being streamed back is in flight for as long as it lasts: the
//! idle timeout does not cut streams, the write timeout cuts one whose caller stopped reading,
//! and the drain bounds them at shutdown.

pub(crate) use tollgate::transport::ReqwestTransport;

#[path = "support/gateway_server.rs"]
pub(crate) mod gateway_server;
pub(crate) use gateway_server::{ConnectionLimits, serve as serve_gateway};

#[path = "support/translate/mod.rs"]
pub(crate) mod translate;
pub(crate) use translate::Api;

use std::borrow::Cow;
use std::error::Error;
use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, TryAcquireError};
use tollgate::body::{BodyTooLarge, BufferedBody};
use tollgate::circuit_breaker::{BreakerConfig, CircuitOpen};
use tollgate::fallback::{AllTargetsFailed, BoxTarget, FallbackConfig, Rewrite, Target, boxed};
use tollgate::providers::rewrite::{Credentials, Endpoint, SetModel};
use tollgate::providers::{PeekedBody, ProviderClassifier};
use tollgate::ratelimit::adaptive::Adaptive;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::error::{CostTooLarge, RateLimited};
#[cfg(feature = "redis")]
use tollgate::ratelimit::redis::{RedisConfig, RedisStore, URL_SCHEMES};
use tollgate::ratelimit::{
    AnthropicMessages, Estimator, Limit, Limits, OpenAiChat, PerRequest, RateLimitConfig,
    RateLimitLayer, Store, Unkeyed,
};
use tollgate::retry::{RetriesExhausted, RetryPolicy};
use tollgate::{BoxError, Cost, ErrorClass, Judged, ServiceBuilderExt, Usage, Verdict, redact};
use tower::{Service, ServiceBuilder, ServiceExt};
use translate::{StreamTranslator, TranslateError, TranslatedBody};

/// The largest request body the gateway reads from a caller: 4 MiB.
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// The most bytes of a body over [`MAX_BODY`] the gateway reads, and discards, before it
/// answers 413: 16 MiB (4 × [`MAX_BODY`]), within [`BODY_TIMEOUT`].
///
/// A client that writes its whole body before it reads (Python's `urllib`) would get a broken
/// pipe, not the 413, were the connection closed with its body unread; reading the rest costs
/// no memory (it is dropped as it comes) and at most this much bandwidth. A body announced
/// larger is refused at once, as is one sent with `expect: 100-continue` (the client waits for
/// the answer before it sends the body).
pub(crate) const MAX_DRAIN: u64 = 4 * MAX_BODY as u64;

/// The most bytes of an upstream's error body the gateway reads, for its error code: 64 KiB.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The longest the gateway waits for an upstream's error body: 10 s. Past it, the answer goes
/// without the upstream's code.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a caller's body may take to arrive, from the end of its head: 30 s (4 MiB at
/// 140 KB/s).
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The bytes of caller bodies the gateway holds at once, across all requests: 64 MiB (16
/// bodies at the 4 MiB limit; thousands of ordinary chat requests).
pub(crate) const BODY_BUDGET: usize = 64 * 1024 * 1024;

/// The wait to advertise when a refusal carries none of its own.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest wait the gateway advertises: an upstream's `retry-after` beyond a day is passed
/// on as a day (found by the `gateway_request` fuzz target: a `retry-after` of 2·10^18 s gave
/// a `retry-after-ms` that wrapped around and disagreed with it).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Response headers passed back with an upstream's successful answer, streamed or not, besides
/// its rate-limit headers ([`RATE_LIMIT_PREFIXES`]); everything else (organisation and project
/// ids, cookies, its content length when the answer was translated) stays behind. An error
/// answer is the gateway's own ([`upstream_refusal`]), with the upstream's request id at most.
const PASSED_HEADERS: [&str; 7] = [
    "content-type",
    "cache-control",
    "x-request-id",
    "request-id",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
];

/// The upstream's rate-limit headers, passed back with a successful answer: the gateway keeps
/// a quota of its own but sends no such headers of its own, so its callers see the provider's
/// (OpenAI's `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*`), whichever upstream
/// answered.
const RATE_LIMIT_PREFIXES: [&str; 2] = ["x-ratelimit-", "anthropic-ratelimit-"];

// ===== the router =====

/// The gateway's router around `stack`, with the default [`BodyLimits`]: see [`app_with`].
pub(crate) fn app<S, B>(stack: S) -> Router
where
    S: Service<Request<BufferedBody>, Response = http::Response<B>, Error = BoxError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    app_with(stack, BodyLimits::default())
}

/// The gateway's router around `stack`: `POST /v1/chat/completions` (OpenAI's shape) and
/// `POST /v1/messages` (Anthropic's), and 405s and 404s for other methods and paths — in
/// Anthropic's error shape for a caller that sends `anthropic-version` or `x-api-key`, else in
/// OpenAI's. Caller bodies are read within `limits`.
///
/// `stack` receives `POST` to the route's path with a relative URI, `content-type:
/// application/json`, the caller's [`Api`] as an extension and the caller's body (at most
/// [`MAX_BODY`], a JSON object), nothing else of the caller's request — no `authorization` —
/// and must address, authenticate and translate the request itself, as the one [`stack`]
/// builds does. Its answers and errors go back in the caller's shape.
pub(crate) fn app_with<S, B>(stack: S, limits: BodyLimits) -> Router
where
    S: Service<Request<BufferedBody>, Response = http::Response<B>, Error = BoxError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let gateway = Gateway {
        stack,
        bodies: Bodies {
            timeout: limits.timeout,
            budget: Arc::new(Semaphore::new(limits.budget)),
        },
    };
    let route = |api: Api| {
        post(move |state, request| serve_api::<S, B>(api, state, request))
            .fallback(move || method_not_allowed(api))
    };
    Router::new()
        .route(Api::Chat.path(), route(Api::Chat))
        .route(Api::Messages.path(), route(Api::Messages))
        .fallback(not_found)
        .with_state(gateway)
}

/// How caller bodies are read; [`Default`] is [`BODY_TIMEOUT`] and [`BODY_BUDGET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    /// The longest one body may take to arrive, from the end of its head.
    pub(crate) timeout: Duration,
    /// The bytes of caller bodies held at once, across all requests.
    pub(crate) budget: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            timeout: BODY_TIMEOUT,
            budget: BODY_BUDGET,
        }
    }
}

/// The router's state: the stack, and how bodies are read.
#[derive(Debug, Clone)]
struct Gateway<S> {
    stack: S,
    bodies: Bodies,
}

#[derive(Debug, Clone)]
struct Bodies {
    timeout: Duration,
    /// One permit a byte.
    budget: Arc<Semaphore>,
}

/// Bytes of the body budget held by one request, given back when dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<Semaphore>,
    bytes: usize,
}

impl Reservation {
    /// Takes `more` bytes of the budget, if they are free now.
    fn grow(&mut self, more: usize) -> Result<(), TryAcquireError> {
        let permits = u32::try_from(more).map_err(|_| TryAcquireError::NoPermits)?;
        self.budget.try_acquire_many(permits)?.forget();
        self.bytes += more;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.add_permits(self.bytes);
    }
}

/// Reads the caller's body: at most [`MAX_BODY`] bytes, within `bodies.timeout` (408), into a
/// buffer whose capacity is taken from the body budget as it grows (503 with `retry-after` when
/// the budget cannot give it).
///
/// A larger body (announced by its content-length, or found so while reading) is refused with
/// a 413 once the rest of it has been [drained](drain) — at once when it was announced larger
/// than [`MAX_DRAIN`], or with `expect: 100-continue` (the client has not sent it).
async fn read_body(
    request: axum::extract::Request,
    bodies: &Bodies,
) -> Result<(BufferedBody, Reservation), Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    };
    let announced = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let waits_to_send = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let deadline = tokio::time::Instant::now() + bodies.timeout;
    if let Some(length) = announced.filter(|&length| length > MAX_BODY as u64) {
        if length <= MAX_DRAIN && !waits_to_send {
            drain(request.into_body(), deadline, 0).await;
        }
        return Err(too_large());
    }
    let mut reservation = Reservation {
        budget: Arc::clone(&bodies.budget),
        bytes: 0,
    };
    let mut buffer = Vec::new();
    let mut body = request.into_body();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "invalid_request_error",
                    "request_timeout",
                    format!(
                        "The request body did not arrive within {} seconds.",
                        bodies.timeout.as_secs()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "invalid_body",
                    "The request body could not be read.",
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let needed = buffer.len() + data.len();
        if needed > MAX_BODY {
            drain(body, deadline, needed as u64).await;
            return Err(too_large());
        }
        // The budget covers the buffer's capacity, not just its bytes: grow it by doubling,
        // and take the growth from the budget first.
        if needed > reservation.bytes {
            let capacity = needed.max(2 * reservation.bytes).min(MAX_BODY);
            if reservation.grow(capacity - reservation.bytes).is_err() {
                return Err(unavailable(
                    "gateway_busy",
                    "The gateway is reading too many request bodies at once. \
                     Please retry after the time in retry-after.",
                )
                .retry_after(DEFAULT_RETRY_AFTER));
            }
            buffer.reserve_exact(capacity - buffer.len());
        }
        buffer.extend_from_slice(&data);
    }
    Ok((BufferedBody::new(buffer), reservation))
}

/// Reads and discards the rest of an over-limit `body`, of which `read` bytes were read already,
/// until it ends, [`MAX_DRAIN`] bytes of it have been read in all, it fails, or `deadline`: so
/// that a caller still writing it reads the 413 that follows rather than a reset connection.
async fn drain(mut body: Body, deadline: tokio::time::Instant, mut read: u64) {
    while read <= MAX_DRAIN {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                }
            }
            // The end, an error or the deadline: the 413 goes now.
            _ => return,
        }
    }
}

/// Reads and checks the body of a caller of `api`, sends it through the stack, and relays a
/// successful answer; an upstream's error answer becomes the gateway's own
/// ([`upstream_refusal`]), and the stack's error a [`Refusal`], each in `api`'s shape.
async fn serve_api<S, B>(
    api: Api,
    State(gateway): State<Gateway<S>>,
    request: axum::extract::Request,
) -> Response
where
    S: Service<Request<BufferedBody>, Response = http::Response<B>, Error = BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Held until the stack is done with the body (its retries keep it).
    let (body, _reservation) = match read_body(request, &gateway.bodies).await {
        Ok(read) => read,
        Err(refusal) => return refusal.closing(api),
    };
    if serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body.bytes()).is_err() {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            "The request body is not a JSON object.",
        )
        .answer(api);
    }
    let mut upstream = Request::new(body);
    *upstream.method_mut() = http::Method::POST;
    *upstream.uri_mut() = http::Uri::from_static(api.path());
    upstream
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    upstream.extensions_mut().insert(api);
    match gateway.stack.oneshot(upstream).await {
        Ok(response) if response.status().is_success() => relay(response),
        // The upstream's error body may quote a key, an internal URL or another caller's data:
        // the caller gets the gateway's own.
        Ok(response) => upstream_error(response, api).await,
        Err(error) => refusal(error.as_ref()).answer(api),
    }
}

async fn method_not_allowed(api: Api) -> Response {
    let mut response = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "Only POST is served here.",
    )
    .answer(api);
    response
        .headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A 404, in Anthropic's shape for a caller that looks like Anthropic's SDK (it sends
/// `anthropic-version`, or its key as `x-api-key`), else in OpenAI's.
async fn not_found(headers: http::HeaderMap) -> Response {
    let api = if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Api::Messages
    } else {
        Api::Chat
    };
    Refusal::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_url",
        "Only POST /v1/chat/completions and POST /v1/messages are served here.",
    )
    .answer(api)
}

/// An upstream's successful answer, passed back: status, body (streamed as it arrives) and a
/// few headers.
fn relay<B>(response: http::Response<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let mut relayed = Response::new(Body::new(body));
    *relayed.status_mut() = parts.status;
    for name in PASSED_HEADERS {
        if let Some(value) = parts.headers.get(name) {
            relayed
                .headers_mut()
                .insert(HeaderName::from_static(name), value.clone());
        }
    }
    let rate_limit = |name: &HeaderName| {
        RATE_LIMIT_PREFIXES
            .iter()
            .any(|prefix| name.as_str().starts_with(prefix))
    };
    for (name, value) in parts.headers.iter().filter(|(name, _)| rate_limit(name)) {
        relayed.headers_mut().append(name.clone(), value.clone());
    }
    relayed
}

// ===== upstream errors =====

/// The gateway's own answer to an upstream's error `response` (any status but 2xx), from
/// [`upstream_refusal`]: the upstream's body is read (at most [`MAX_ERROR_BODY`], within
/// [`ERROR_BODY_TIMEOUT`]) only for its error code, then dropped. The upstream's request id is
/// passed back when it looks like one, so that its support can find the request.
async fn upstream_error<B>(response: http::Response<B>, api: Api) -> Response
where
    B: http_body::Body<Data = Bytes>,
{
    let verdict = Verdict::of_outcome(Ok(&response));
    let (parts, body) = response.into_parts();
    let body = error_body(body).await;
    let mut answer = upstream_refusal(parts.status, &verdict, &body).answer(api);
    for name in ["x-request-id", "request-id"] {
        if let Some(id) = parts.headers.get(name).filter(|id| is_request_id(id)) {
            answer
                .headers_mut()
                .insert(HeaderName::from_static(name), id.clone());
        }
    }
    answer
}

/// Up to [`MAX_ERROR_BODY`] bytes of `body`, read within [`ERROR_BODY_TIMEOUT`]; what came
/// before a failure or the deadline.
async fn error_body<B>(body: B) -> Vec<u8>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let deadline = tokio::time::Instant::now() + ERROR_BODY_TIMEOUT;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ERROR_BODY {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_ERROR_BODY - bytes.len();
                    bytes.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            _ => break,
        }
    }
    bytes
}

/// Whether `id` can be passed back as a request id: 1 to 128 letters, digits, `-`, `_`, `.`
/// or `:`.
fn is_request_id(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The gateway's own answer to an upstream's error: its `status`, the `verdict` its classifier
/// gave, and its `body` (read only for the code). Nothing of the upstream's text is kept but a
/// code that passes [`safe_code`].
///
/// | upstream | status | `error.type` | `error.code` |
/// |---|---|---|---|
/// | 401, 403, 407 (the gateway's own key or proxy) | 502 | `server_error` | `upstream_auth_failed` |
/// | 429, a rate limit | 429 | `requests` | the upstream's, else `rate_limit_exceeded` |
/// | a spent quota (429 `insufficient_quota`, …) | the upstream's (429) | `insufficient_quota` | the upstream's, else `insufficient_quota`; never a wait (`x-should-retry: false`) |
/// | other 4xx | the upstream's | `invalid_request_error` | the upstream's, else by class: `context_length_exceeded`, `model_not_found`, … |
/// | 500, 502, 503, 504 | the upstream's | `server_error` | the upstream's, else by class |
/// | other 5xx (Anthropic's 529 overloaded) | 503 when overloaded, else 502 | `server_error` | the upstream's, else by class |
/// | anything else but 2xx (a redirect) | 502 | `server_error` | `upstream_error` |
///
/// The message is the gateway's, by class. The wait is the upstream's (its `retry-after`, in
/// the verdict) when it gave one, else 1 s when the verdict says a retry may help, else none
/// (`x-should-retry: false`).
pub(crate) fn upstream_refusal(status: StatusCode, verdict: &Verdict, body: &[u8]) -> Refusal {
    let class = verdict
        .class()
        .or_else(|| ErrorClass::of_status(status))
        .unwrap_or(ErrorClass::Unknown);
    if matches!(status.as_u16(), 401 | 403 | 407)
        || matches!(
            class,
            ErrorClass::Unauthorized | ErrorClass::PermissionDenied
        )
    {
        // About the gateway's own key: the caller can do nothing about it.
        return Refusal::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_auth_failed",
            "The upstream rejected the gateway's credentials.",
        );
    }
    let (message, default_code) = upstream_words(class);
    let (status, kind) = if status.is_client_error() {
        let kind = match class {
            ErrorClass::RateLimited => "requests",
            ErrorClass::QuotaExhausted => SPENT_QUOTA,
            _ => "invalid_request_error",
        };
        (status, kind)
    } else if status.is_server_error() {
        let status = match status.as_u16() {
            500 | 502..=504 => status,
            _ if class == ErrorClass::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        (status, "server_error")
    } else {
        return Refusal::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_error",
            "The upstream gave an answer the gateway does not pass on.",
        );
    };
    let code = upstream_code(body).map_or(Cow::Borrowed(default_code), Cow::Owned);
    let refusal = Refusal::new(status, kind, code, message);
    match verdict.delay() {
        Some(wait) => refusal.retry_after(wait),
        None if verdict.is_retryable() => refusal.retry_after(DEFAULT_RETRY_AFTER),
        None => refusal,
    }
}

/// The gateway's message for an upstream error of `class`, and the code it gives when the
/// upstream gave none it can pass on.
fn upstream_words(class: ErrorClass) -> (&'static str, &'static str) {
    match class {
        ErrorClass::ContextWindowExceeded => (
            "The request is too long for the model's context window: shorten the messages or \
             lower max_tokens.",
            "context_length_exceeded",
        ),
        ErrorClass::RateLimited => (
            "The upstream is rate limited. Please retry after the time in retry-after.",
            "rate_limit_exceeded",
        ),
        ErrorClass::QuotaExhausted => ("The upstream's quota is exhausted.", "insufficient_quota"),
        ErrorClass::ContentPolicy => (
            "The upstream refused the request under its content policy.",
            "content_policy_violation",
        ),
        ErrorClass::NotFound => (
            "The upstream does not have what the request asks for (the model, most likely).",
            "model_not_found",
        ),
        ErrorClass::BadRequest => (
            "The upstream refused the request as invalid.",
            "invalid_request",
        ),
        ErrorClass::PayloadTooLarge => (
            "The request is too large for the upstream.",
            "request_too_large",
        ),
        ErrorClass::Conflict => (
            "The upstream reported a conflicting request. Please retry.",
            "conflict",
        ),
        ErrorClass::Timeout => ("The upstream did not answer in time.", "upstream_timeout"),
        ErrorClass::Overloaded | ErrorClass::ServerError | ErrorClass::Truncated => (
            "The upstream is overloaded or failing.",
            "upstream_unavailable",
        ),
        _ => ("The upstream request failed.", "upstream_error"),
    }
}

/// The error code in an upstream's error `body` (`error.code`, or `error.type` when it has no
/// code: OpenAI's and Anthropic's shapes, and a list of such as Gemini's), if it passes
/// [`safe_code`].
fn upstream_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = match &value {
        serde_json::Value::Array(items) => items.first()?.get("error")?,
        _ => value.get("error")?,
    };
    let code = match error.get("code") {
        Some(serde_json::Value::Null) | None => error.get("type")?,
        Some(code) => code,
    };
    code.as_str()
        .filter(|code| safe_code(code))
        .map(str::to_owned)
}

/// Whether `code` can be passed on: lowercase ASCII words joined by single underscores, at
/// most 64 bytes (`context_length_exceeded`, `model_not_found`, `insufficient_quota`). OpenAI's
/// and Anthropic's codes are such; keys, tokens, URLs and messages are not (they hold digits,
/// capitals, `-`, `/`, spaces), so nothing secret rides along with a code.
pub(crate) fn safe_code(code: &str) -> bool {
    code.len() <= 64
        && !code.is_empty()
        && code
            .split('_')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
}

// ===== refusals =====

/// The gateway's own error answer: a status, a body in the caller's shape ([`answer`]:
/// OpenAI's by default, as its `IntoResponse` gives) and, when the caller may retry, how long
/// to wait first.
///
/// [`answer`]: Refusal::answer
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The status.
    pub(crate) status: StatusCode,
    /// OpenAI's `error.type`.
    pub(crate) kind: &'static str,
    /// OpenAI's `error.code`: the gateway's, or an upstream's that passed [`safe_code`].
    pub(crate) code: Cow<'static, str>,
    /// `error.message`: the gateway's own words, never an upstream's.
    pub(crate) message: String,
    /// Sent as `retry-after` (whole seconds, rounded up), `retry-after-ms` (rounded up) and
    /// `x-should-retry: true`; without it, `x-should-retry: false`.
    pub(crate) retry_after: Option<Duration>,
}

impl Refusal {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Refusal {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// Tells the caller to retry after `wait`, at most [`MAX_RETRY_AFTER`] — unless the
    /// refusal is about a spent quota (`insufficient_quota`), which no wait mends: that one
    /// keeps `x-should-retry: false`, so the SDKs do not retry it.
    fn retry_after(mut self, wait: Duration) -> Self {
        if self.kind != SPENT_QUOTA {
            self.retry_after = Some(wait.min(MAX_RETRY_AFTER));
        }
        self
    }
}

impl Refusal {
    /// The answer, closing the connection: for a refusal that leaves the caller's body unread.
    fn closing(self, api: Api) -> Response {
        let mut response = self.answer(api);
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        response
    }

    /// The answer to a caller of `api`: the same status and waits in either shape.
    ///
    /// OpenAI's: `{"error": {"message", "type", "param": null, "code"}}`. Anthropic's:
    /// `{"type": "error", "error": {"type", "message"}}`, the type [`anthropic_type`] gives,
    /// and the code — which Anthropic's shape has no member for — at the start of the message
    /// (`upstream_unavailable: Every upstream failed …`), so that it is not lost. The waits
    /// are the same headers in both (Anthropic's SDK reads `retry-after`, `retry-after-ms` and
    /// `x-should-retry` as OpenAI's does); no `anthropic-ratelimit-*` header is invented for a
    /// refusal: the gateway's own quota does not say which of its limits refused, and an
    /// upstream's error answer is the gateway's own (its headers stay behind).
    pub(crate) fn answer(self, api: Api) -> Response {
        let body = match api {
            Api::Chat => serde_json::json!({
                "error": {
                    "message": self.message,
                    "type": self.kind,
                    "param": null,
                    "code": self.code,
                }
            }),
            Api::Messages => serde_json::json!({
                "type": "error",
                "error": {
                    "type": anthropic_type(self.status, self.kind),
                    "message": format!("{}: {}", self.code, self.message),
                }
            }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self.retry_after {
            Some(wait) => {
                let millis = wait.as_nanos().div_ceil(1_000_000);
                let seconds = wait.as_nanos().div_ceil(1_000_000_000);
                headers.insert("retry-after", HeaderValue::from(seconds as u64));
                headers.insert("retry-after-ms", HeaderValue::from(millis as u64));
                headers.insert("x-should-retry", HeaderValue::from_static("true"));
            }
            None => {
                headers.insert("x-should-retry", HeaderValue::from_static("false"));
            }
        }
        response
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.answer(Api::Chat)
    }
}

/// The `error.type` of Anthropic's shape for a refusal with `status` and OpenAI's `kind`, from
/// Anthropic's list: `invalid_request_error` (400 and other 4xx), `not_found_error` (404),
/// `request_too_large` (413), `rate_limit_error` (429), `billing_error` (a spent quota, still
/// a 429 here: the SDKs back off from it by `x-should-retry: false`), `timeout_error` (504),
/// `overloaded_error` (529) and `api_error` (other 5xx).
pub(crate) fn anthropic_type(status: StatusCode, kind: &str) -> &'static str {
    match status.as_u16() {
        _ if kind == SPENT_QUOTA => "billing_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// What the gateway answers when the stack fails with `error`:
///
/// | error | status | wait |
/// |---|---|---|
/// | `RateLimited` (the local quota would wait too long) | 429 | its `retry_after` |
/// | `CostTooLarge` (a request the quota can never admit) | 400 | — |
/// | `RetriesExhausted`, last verdict a rate limit | 429 | the wait not taken (a delay above the cap) |
/// | `RetriesExhausted`, last verdict a spent quota | 429 `insufficient_quota` | — (`x-should-retry: false`) |
/// | `RetriesExhausted`, anything else | 503 (504 for timeouts, 502 for connection failures) | the wait not taken, or 1 s |
/// | `CircuitOpen` | 503 | until the next probe, or 1 s |
/// | `AllTargetsFailed`, every target tried or passed over for a rate limit or a spent quota, one at least rate limited | 429 `rate_limit_exceeded` | until the first is free, or 1 s |
/// | `AllTargetsFailed`, every target's quota spent | 429 `insufficient_quota` | — (`x-should-retry: false`) |
/// | `AllTargetsFailed`, anything else (an outage, an open breaker, among them) | 503 `upstream_unavailable` | until the first is free, or 1 s |
/// | `BodyTooLarge` | 413 | — |
/// | [`Untranslatable`] (a feature the upstream's API lacks) | 400 `unsupported_feature`, naming it | — |
/// | [`UntranslatableAnswer`] | 502 `upstream_error` | 1 s |
/// | (an upstream's error *answer*, in the handler) | see [`upstream_refusal`] | |
/// | any other error | by its verdict: 504, 502 | 1 s |
pub(crate) fn refusal(error: &(dyn Error + 'static)) -> Refusal {
    if let Some(limited) = error.downcast_ref::<RateLimited>() {
        return Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for this gateway. Please retry after the time in retry-after.",
        )
        .retry_after(limited.retry_after());
    }
    if error.downcast_ref::<CostTooLarge>().is_some() {
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request_too_large",
            "The request needs more tokens than this gateway's quota can ever admit at once.",
        );
    }
    if let Some(open) = error.downcast_ref::<CircuitOpen>() {
        return unavailable(
            "upstream_unavailable",
            "The upstream is failing; the gateway is not sending to it for now.",
        )
        .retry_after(open.retry_after().unwrap_or(DEFAULT_RETRY_AFTER));
    }
    if let Some(all) = error.downcast_ref::<AllTargetsFailed>() {
        return all_failed(all);
    }
    if let Some(exhausted) = error.downcast_ref::<RetriesExhausted>() {
        let wait = exhausted.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
        return match exhausted.verdict().class() {
            Some(ErrorClass::RateLimited) => Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "rate_limit_exceeded",
                "The upstream is rate limited. Please retry after the time in retry-after.",
            ),
            Some(class) => by_class(class),
            None => unavailable("upstream_unavailable", "The upstream did not answer."),
        }
        .retry_after(wait);
    }
    if let Some(untranslatable) = find::<Untranslatable>(error) {
        let code = match untranslatable.error {
            TranslateError::Invalid { .. } => "invalid_request",
            TranslateError::Untranslatable { .. } => "unsupported_feature",
        };
        return Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            format!("The request cannot be sent: {untranslatable}."),
        );
    }
    if find::<UntranslatableAnswer>(error).is_some() {
        return Refusal::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_error",
            "The upstream's answer could not be translated to this API.",
        )
        .retry_after(DEFAULT_RETRY_AFTER);
    }
    if error.downcast_ref::<BodyTooLarge>().is_some() {
        return Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            "The request body is too large.",
        );
    }
    let class = Verdict::of_error(error)
        .and_then(Verdict::class)
        .unwrap_or(ErrorClass::Unknown);
    by_class(class).retry_after(DEFAULT_RETRY_AFTER)
}

/// `error`, or the first error of type `T` in its source chain.
fn find<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Every upstream failed, or was passed over while cooling down: the reasons are the attempts'
/// verdicts and the causes of the cooldowns (a refusal with no attempt has only those). A 429
/// only when every reason is a rate limit or a spent quota; a spent quota alone is not worth
/// retrying.
fn all_failed(all: &AllTargetsFailed) -> Refusal {
    let wait = all.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
    let verdicts: Vec<&Verdict> = all
        .attempts()
        .chain(all.skipped())
        .map(|(_, verdict)| verdict)
        .collect();
    let classes: Vec<Option<ErrorClass>> = verdicts.iter().map(|v| v.class()).collect();
    let is = |class: ErrorClass| classes.contains(&Some(class));
    let limited = !classes.is_empty()
        && classes.iter().all(|class| {
            matches!(
                class,
                Some(ErrorClass::RateLimited | ErrorClass::QuotaExhausted)
            )
        });
    match (limited, is(ErrorClass::RateLimited)) {
        (true, true) => Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            "Every upstream is rate limited or out of quota. Please retry after the time in \
             retry-after.",
        )
        .retry_after(wait),
        (true, false) => Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            SPENT_QUOTA,
            SPENT_QUOTA,
            "Every upstream's quota is exhausted.",
        ),
        (false, _) => {
            let reasons: Vec<&str> = verdicts.iter().map(|v| reason(v)).collect();
            unavailable(
                "upstream_unavailable",
                &format!(
                    "Every upstream failed or is cooling down after a failure ({}).",
                    reasons.join(", ")
                ),
            )
            .retry_after(wait)
        }
    }
}

/// Why a target failed or was passed over, in a word or two: its verdict's class, but for an
/// open breaker (an overload refused locally: `circuit open`) and the gateway's own quota (a
/// rate limit refused locally: `local quota`).
fn reason(verdict: &Verdict) -> &'static str {
    match (verdict.class(), verdict.is_local_refusal()) {
        (Some(ErrorClass::Overloaded), true) => "circuit open",
        (Some(ErrorClass::RateLimited), true) => "local quota",
        (Some(class), _) => class.as_str(),
        (None, _) => "unknown",
    }
}

/// A 503 with `code`.
fn unavailable(code: &'static str, message: &str) -> Refusal {
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        code,
        message,
    )
}

/// The `error.type` (and default code) of a spent quota, as OpenAI sends it.
const SPENT_QUOTA: &str = "insufficient_quota";

/// The answer for an upstream failure of `class`, without its wait.
fn by_class(class: ErrorClass) -> Refusal {
    match class {
        ErrorClass::QuotaExhausted => Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            SPENT_QUOTA,
            SPENT_QUOTA,
            "The upstream's quota is exhausted.",
        ),
        ErrorClass::Timeout => Refusal::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            "upstream_timeout",
            "The upstream did not answer in time.",
        ),
        ErrorClass::Connect => Refusal::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_unreachable",
            "The gateway could not reach the upstream.",
        ),
        ErrorClass::Overloaded | ErrorClass::ServerError => unavailable(
            "upstream_unavailable",
            "The upstream is overloaded or failing.",
        ),
        _ => Refusal::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_error",
            "The upstream request failed.",
        ),
    }
}

// ===== the stack =====

/// One upstream — OpenAI-compatible or Anthropic-shaped — and the quota to keep to there. Its
/// `Debug` shows the base URL redacted ([`redact::url`]) and never the key.
#[derive(Clone)]
pub(crate) struct Upstream {
    /// Its name, for the fallback's errors and logs.
    pub(crate) name: String,
    /// Its base URL, up to `/chat/completions` or `/messages`: `https://api.openai.com/v1`.
    pub(crate) base_url: String,
    /// The API it speaks; a caller of the other is translated ([`translate`]).
    pub(crate) api: Api,
    /// Its API key, sent as `authorization: Bearer …` (Chat Completions) or `x-api-key: …`
    /// (Messages, with `anthropic-version: 2023-06-01`).
    pub(crate) api_key: Option<String>,
    /// The model to ask it for, in place of the caller's.
    pub(crate) model: Option<String>,
    /// Whose classifier reads its answers.
    pub(crate) provider: ProviderClassifier,
    /// The client-side quota (tokens estimated by `OpenAiChat` or `AnthropicMessages`, by
    /// [`api`](Self::api)); [`Limits::adaptive`] when nobody knows it.
    pub(crate) limits: Limits,
    /// The longest a request waits for that quota before a 429 (`None`: as long as it takes).
    pub(crate) max_wait: Option<Duration>,
    /// Its model's context window in tokens, when known: a prompt too long for the primary
    /// goes to the fallback unless the fallback's window is known to be no larger.
    pub(crate) context_window: Option<u64>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base_url", &redact::url(&self.base_url))
            .field("api", &self.api)
            .field("api_key", &self.api_key.as_ref().map(|_| redact::REDACTED))
            .field("model", &self.model)
            .field("provider", &self.provider)
            .field("limits", &self.limits)
            .field("max_wait", &self.max_wait)
            .field("context_window", &self.context_window)
            .finish()
    }
}

impl Upstream {
    /// The upstream as the gateway prints it: its name and its base URL, redacted.
    fn describe(&self) -> String {
        format!("{} at {}", self.name, redact::url(&self.base_url))
    }
}

/// The requests and tokens per minute a stack keeps to.
pub(crate) fn per_minute(requests: u64, tokens: u64) -> Result<Limits, BoxError> {
    let quota = |n: u64| {
        NonZeroU64::new(n)
            .map(Quota::per_minute)
            .ok_or("a quota must be greater than zero")
    };
    Ok(Limits::new([
        Limit::requests(quota(requests)?),
        Limit::tokens(quota(tokens)?),
    ]))
}

/// The gateway's retries: provider delays honoured up to 10 s (a longer one goes back to the
/// caller as `retry-after`), two retries of other failures, and none of an overload — the
/// fallback answers that at once.
pub(crate) fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(2)
        .with_max_overloaded_retries(0)
        .with_max_server_delay(Duration::from_secs(10))
}

/// Where and how one upstream is called: endpoint, key, API version, model.
struct Address {
    endpoint: Endpoint,
    credentials: Option<Credentials>,
    /// `anthropic-version`, for a Messages upstream.
    version: Option<HeaderValue>,
    model: Option<SetModel>,
}

/// The version of Anthropic's API the gateway speaks to a Messages upstream.
const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Address {
    fn of(upstream: &Upstream) -> Result<Self, BoxError> {
        // A base URL with a path is the API root (`https://api.groq.com/openai/v1`) and takes
        // the place of `/v1`; one without keeps `/v1/chat/completions`.
        let base = upstream.base_url.trim_end_matches('/');
        let has_path = base.splitn(4, '/').nth(3).is_some_and(|p| !p.is_empty());
        let endpoint = Endpoint::new(base)?;
        Ok(Address {
            endpoint: if has_path {
                endpoint.with_prefix_replaced("/v1")
            } else {
                endpoint
            },
            credentials: upstream
                .api_key
                .as_deref()
                .map(|key| match upstream.api {
                    Api::Chat => Credentials::bearer(key),
                    Api::Messages => Credentials::header("x-api-key", key),
                })
                .transpose()
                // The header error says nothing, and the key must not be shown.
                .map_err(|_| {
                    format!(
                        "upstream {}: the API key is not a valid header value (not shown)",
                        upstream.name
                    )
                })?,
            version: (upstream.api == Api::Messages)
                .then(|| HeaderValue::from_static(ANTHROPIC_VERSION)),
            model: upstream.model.as_deref().map(SetModel::new),
        })
    }
}

impl Rewrite for Address {
    fn rewrite(&self, request: &mut Request<BufferedBody>) -> Result<(), BoxError> {
        self.endpoint.rewrite(request)?;
        if let Some(credentials) = &self.credentials {
            credentials.rewrite(request)?;
        }
        if let Some(version) = &self.version {
            request
                .headers_mut()
                .insert("anthropic-version", version.clone());
        }
        if let Some(model) = &self.model {
            model.rewrite(request)?;
        }
        Ok(())
    }
}

/// Where the gateway keeps its quotas.
#[derive(Debug, Clone, Default)]
pub(crate) enum Quotas {
    /// In this process: each gateway its own.
    #[default]
    Local,
    /// In Redis, shared by every gateway given the same configuration: each upstream's
    /// quota under `<prefix>:<upstream name>`. The configuration's `Debug` hides the URL.
    #[cfg(feature = "redis")]
    Shared(RedisConfig),
}

impl Quotas {
    /// What the gateway says of them at start: never the URL, not even redacted.
    fn describe(&self) -> String {
        match self {
            Quotas::Local => "quotas kept in this process".to_owned(),
            #[cfg(feature = "redis")]
            Quotas::Shared(config) => format!(
                "quota shared on Redis (URL hidden), {} replica{}",
                config.replicas,
                if config.replicas == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The gateway's stack: its answers' bodies, as the caller of either API receives them.
pub(crate) type GatewayStack = BoxTarget<TranslatedBody<PeekedBody<reqwest::Body>>>;

/// The gateway's stack. Under a `FallbackLayer` (when there is a fallback), one stack per
/// upstream, outermost first:
///
/// ```text
/// translation (Translate: the caller's API to the upstream's, and back) and address →
///   retries (retry_policy) → circuit breaker → rate limit (upstream.limits, max_wait; kept
///   where `quotas` says) → ClassifyLayer (upstream.provider) → transport
/// ```
///
/// The fallback takes over when the primary is down, overloaded, rate limited beyond its wait
/// or out of quota, and — its context-window chain — when the prompt is too long for the
/// primary, unless the fallback's window is known to be no larger
/// ([`Upstream::context_window`]).
///
/// The stack takes requests with a relative URI and the caller's [`Api`] as an extension (as
/// [`app`] sends them; without it, Chat Completions), translates each to its upstream's API and
/// addresses it there: base URL, key and model. With [`Quotas::Shared`] it must be built on a
/// tokio runtime (the stores connect in the background).
///
/// # Errors
///
/// When a base URL is not an absolute URI, or a key cannot be a header value; with
/// [`Quotas::Shared`], when the Redis store refuses its configuration (never quoting the URL).
pub(crate) fn stack(
    primary: &Upstream,
    fallback: Option<&Upstream>,
    retry: &RetryPolicy,
    quotas: &Quotas,
    transport: ReqwestTransport,
) -> Result<GatewayStack, BoxError> {
    let one = |upstream: &Upstream| -> Result<GatewayStack, BoxError> {
        let mut config = RateLimitConfig::new(upstream.limits.clone());
        config.max_wait = upstream.max_wait;
        let inner = match quotas {
            Quotas::Local => {
                upstream_stack(RateLimitLayer::new(config), upstream, retry, &transport)
            }
            #[cfg(feature = "redis")]
            Quotas::Shared(redis) => {
                let prefix = format!("{}:{}", redis.prefix, upstream.name);
                let store =
                    RedisStore::new(redis.clone().with_prefix(prefix), upstream.limits.clone())?;
                let quota = RateLimitLayer::from_store(store, config);
                upstream_stack(quota, upstream, retry, &transport)
            }
        };
        Ok(boxed(Translate {
            api: upstream.api,
            address: Arc::new(Address::of(upstream)?),
            inner,
        }))
    };
    let Some(second) = fallback else {
        return one(primary);
    };
    // One stack for the fallback, in both chains: one quota, one breaker.
    let target = Target::new(second.name.as_str(), one(second)?);
    let mut config = FallbackConfig::new([target.clone()]).with_primary_name(&primary.name);
    let no_larger = matches!(
        (primary.context_window, second.context_window),
        (Some(first), Some(next)) if next <= first
    );
    if !no_larger {
        config = config.with_context_window_targets([target]);
    }
    Ok(boxed(
        ServiceBuilder::new()
            .fallback(config)
            .service(one(primary)?),
    ))
}

/// One upstream's stack over `quota`: retries, breaker, `quota` (estimating tokens as the
/// upstream's API counts them), classifier, transport.
fn upstream_stack<St: Store>(
    quota: RateLimitLayer<Unkeyed, PerRequest, St>,
    upstream: &Upstream,
    retry: &RetryPolicy,
    transport: &ReqwestTransport,
) -> BoxTarget<PeekedBody<reqwest::Body>> {
    boxed(
        ServiceBuilder::new()
            .retries(retry.clone())
            .circuit_breaker(BreakerConfig::default())
            .layer(quota.with_estimator(TokensOf::new(upstream.api)))
            .classify(upstream.provider)
            .service(transport.clone()),
    )
}

/// Tokens estimated as the upstream's API counts them: `OpenAiChat` or `AnthropicMessages`.
#[derive(Debug, Clone)]
enum TokensOf {
    Chat(OpenAiChat),
    Messages(AnthropicMessages),
}

impl TokensOf {
    fn new(api: Api) -> Self {
        match api {
            Api::Chat => TokensOf::Chat(OpenAiChat::new()),
            Api::Messages => TokensOf::Messages(AnthropicMessages::new()),
        }
    }
}

impl Estimator<BufferedBody> for TokensOf {
    fn estimate(&self, request: &Request<BufferedBody>) -> Cost {
        match self {
            TokensOf::Chat(chat) => chat.estimate(request),
            TokensOf::Messages(messages) => messages.estimate(request),
        }
    }

    fn actual(&self, usage: &Usage, estimated: &Cost) -> Cost {
        match self {
            TokensOf::Chat(chat) => Estimator::<BufferedBody>::actual(chat, usage, estimated),
            TokensOf::Messages(messages) => {
                Estimator::<BufferedBody>::actual(messages, usage, estimated)
            }
        }
    }
}

// ===== translation =====

/// The outermost layer of one upstream's stack: translates the request from the caller's
/// [`Api`] (the request's extension) to the upstream's, sets the API's path and the upstream's
/// [`Address`], and translates the successful answer back — whole when it is JSON, event by
/// event when it is a stream ([`TranslatedBody`]). Error answers pass untranslated: the gateway
/// answers those itself ([`upstream_refusal`] reads either shape's code).
///
/// A request that cannot be translated fails with [`Untranslatable`] before anything is sent
/// (a 400 naming the feature); an answer that cannot be, with [`UntranslatableAnswer`] (a 502).
#[derive(Clone)]
struct Translate<S> {
    api: Api,
    address: Arc<Address>,
    inner: S,
}

/// The most bytes of a non-streamed answer read to translate it: 16 MiB.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

impl<S, B> Service<Request<BufferedBody>> for Translate<S>
where
    S: Service<Request<BufferedBody>, Response = http::Response<B>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<TranslatedBody<B>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<BufferedBody>) -> Self::Future {
        let caller = request
            .extensions()
            .get::<Api>()
            .copied()
            .unwrap_or(Api::Chat);
        let upstream = self.api;
        let include_usage = caller == Api::Chat && upstream != caller && wants_usage(&request);
        let prepared = prepare(&mut request, caller, upstream, &self.address);
        // The clone is ready: `self.inner` was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            prepared?;
            let response = inner.call(request).await?;
            translate_answer(response, upstream, caller, include_usage).await
        })
    }
}

/// Translates `request`'s body from `caller`'s API to `upstream`'s, and addresses it.
fn prepare(
    request: &mut Request<BufferedBody>,
    caller: Api,
    upstream: Api,
    address: &Address,
) -> Result<(), BoxError> {
    if caller != upstream {
        let translated = translate::request(request.body().bytes(), caller, upstream)
            .map_err(Untranslatable::new)?;
        *request.body_mut() = BufferedBody::new(translated);
    }
    *request.uri_mut() = http::Uri::from_static(upstream.path());
    address.rewrite(request)
}

/// Whether a Chat Completions request asks for usage in its stream
/// (`stream_options.include_usage`).
fn wants_usage(request: &Request<BufferedBody>) -> bool {
    #[derive(serde::Deserialize)]
    struct Body {
        stream_options: Option<StreamOptions>,
    }
    #[derive(serde::Deserialize)]
    struct StreamOptions {
        include_usage: Option<bool>,
    }
    serde_json::from_slice::<Body>(request.body().bytes())
        .ok()
        .and_then(|body| body.stream_options?.include_usage)
        .unwrap_or(false)
}

/// `response` from `upstream`'s API as a caller of `caller`'s receives it.
async fn translate_answer<B>(
    response: http::Response<B>,
    upstream: Api,
    caller: Api,
    include_usage: bool,
) -> Result<http::Response<TranslatedBody<B>>, BoxError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if upstream == caller || !response.status().is_success() {
        return Ok(response.map(TranslatedBody::pass));
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let streamed = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if streamed {
        let translator = StreamTranslator::new(upstream, caller).with_usage(include_usage);
        return Ok(http::Response::from_parts(
            parts,
            TranslatedBody::stream(body, translator),
        ));
    }
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(Into::into)?.into_data() {
            if bytes.len() + data.len() > MAX_ANSWER {
                return Err(UntranslatableAnswer::new(format!(
                    "the answer is larger than {MAX_ANSWER} bytes"
                ))
                .into());
            }
            bytes.extend_from_slice(&data);
        }
    }
    let translated = translate::response(&bytes, upstream, caller)
        .map_err(|error| UntranslatableAnswer::new(error.to_string()))?;
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(http::Response::from_parts(
        parts,
        TranslatedBody::whole(translated),
    ))
}

/// A request the upstream's API cannot express (or that is not valid in its own): a 400
/// naming the feature. Its verdict (a bad request, refused locally) sends it back at once:
/// neither retried nor passed to the fallback.
#[derive(Debug)]
pub(crate) struct Untranslatable {
    error: TranslateError,
    verdict: Judged,
}

impl Untranslatable {
    fn new(error: TranslateError) -> Self {
        Untranslatable {
            error,
            verdict: Judged::new(Verdict::failure(ErrorClass::BadRequest).refused_locally()),
        }
    }
}

impl fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for Untranslatable {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.verdict)
    }
}

/// A successful answer the gateway could not translate back (not the shape its API promises,
/// or too large): a 502. Its verdict (a server error) moves the fallback on.
#[derive(Debug)]
pub(crate) struct UntranslatableAnswer {
    what: String,
    verdict: Judged,
}

impl UntranslatableAnswer {
    fn new(what: String) -> Self {
        UntranslatableAnswer {
            what,
            verdict: Judged::new(Verdict::failure(ErrorClass::ServerError)),
        }
    }
}

impl fmt::Display for UntranslatableAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the upstream's answer could not be translated: {}",
            self.what
        )
    }
}

impl Error for UntranslatableAnswer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.verdict)
    }
}

// ===== configuration and the self-test =====

/// Why the environment cannot configure the gateway: the variable at fault and what is wrong
/// with it, never its value (a key, a URL that may hold a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvError {
    /// The variable's name: `GATEWAY_PRIMARY_KEY`.
    pub(crate) variable: String,
    /// What is wrong with it.
    pub(crate) problem: String,
}

impl EnvError {
    fn new(variable: impl Into<String>, problem: impl Into<String>) -> Self {
        EnvError {
            variable: variable.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl Error for EnvError {}

/// What the environment configures: see the table in the [module docs](self).
#[derive(Debug)]
pub(crate) struct Settings {
    /// `GATEWAY_SERVE` is set.
    pub(crate) serve: bool,
    /// `GATEWAY_ADDR`, checked to be a host and a port.
    pub(crate) addr: Option<String>,
    /// From `GATEWAY_PRIMARY_*`; `None` without `GATEWAY_PRIMARY_URL` (the self-test's mocks).
    pub(crate) primary: Option<Upstream>,
    /// From `GATEWAY_FALLBACK_*`; `None` without `GATEWAY_FALLBACK_URL`.
    pub(crate) fallback: Option<Upstream>,
    /// From `GATEWAY_REDIS_URL`, `GATEWAY_REPLICAS` and `GATEWAY_REDIS_PREFIX`.
    pub(crate) quotas: Quotas,
    /// `GATEWAY_MAX_CONNECTIONS`, else [`MAX_CONNECTIONS`](gateway_server::MAX_CONNECTIONS).
    pub(crate) max_connections: usize,
}

/// The gateway's settings from the variables `env` gives (the process's with
/// `|name| std::env::var_os(name)`), each checked.
///
/// # Errors
///
/// [`EnvError`] for the first variable that is not Unicode, is empty where a value is needed,
/// or holds a value the gateway cannot use: it names the variable and never quotes the value.
pub(crate) fn settings(env: impl Fn(&str) -> Option<OsString>) -> Result<Settings, EnvError> {
    let var = |name: &str| -> Result<Option<String>, EnvError> {
        match env(name) {
            None => Ok(None),
            Some(value) => value
                .into_string()
                .map(Some)
                .map_err(|_| EnvError::new(name, "not valid Unicode (the value is not shown)")),
        }
    };
    let addr = var("GATEWAY_ADDR")?;
    if let Some(addr) = &addr {
        let port = addr
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
            return Err(EnvError::new(
                "GATEWAY_ADDR",
                "not a host and a port, like 127.0.0.1:8080",
            ));
        }
    }
    let primary = upstream_from(&var, "PRIMARY")?;
    let fallback = upstream_from(&var, "FALLBACK")?;
    if primary.is_none() && fallback.is_some() {
        return Err(EnvError::new(
            "GATEWAY_FALLBACK_URL",
            "set without GATEWAY_PRIMARY_URL",
        ));
    }
    let max_connections = match var("GATEWAY_MAX_CONNECTIONS")? {
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                EnvError::new(
                    "GATEWAY_MAX_CONNECTIONS",
                    format!("not a number from 1 to {}", usize::MAX),
                )
            })?,
        None => gateway_server::MAX_CONNECTIONS,
    };
    Ok(Settings {
        serve: env("GATEWAY_SERVE").is_some(),
        addr,
        primary,
        fallback,
        quotas: quotas_from(&var)?,
        max_connections,
    })
}

/// An upstream from `GATEWAY_<ROLE>_*`, if `GATEWAY_<ROLE>_URL` is set.
fn upstream_from(
    var: &impl Fn(&str) -> Result<Option<String>, EnvError>,
    role: &str,
) -> Result<Option<Upstream>, EnvError> {
    let name = |what: &str| format!("GATEWAY_{role}_{what}");
    let read = |what: &str| -> Result<Option<String>, EnvError> {
        match var(&name(what))? {
            Some(value) if value.trim().is_empty() => Err(EnvError::new(name(what), "is empty")),
            value => Ok(value),
        }
    };
    let Some(base_url) = read("URL")? else {
        return Ok(None);
    };
    check_base_url(&base_url).map_err(|problem| EnvError::new(name("URL"), problem))?;
    let api_key = read("KEY")?;
    if let Some(key) = &api_key {
        if Credentials::bearer(key).is_err() {
            return Err(EnvError::new(
                name("KEY"),
                "not a valid header value (it holds a newline or another control character); \
                 the key is not shown",
            ));
        }
    }
    let provider = match read("PROVIDER")? {
        Some(text) => text.parse::<ProviderClassifier>().map_err(|_| {
            let known: Vec<&str> = ProviderClassifier::ALL.iter().map(|p| p.name()).collect();
            EnvError::new(
                name("PROVIDER"),
                format!("unknown provider; expected one of {}", known.join(", ")),
            )
        })?,
        None => ProviderClassifier::OpenAi,
    };
    let api = match read("API")?.as_deref().map(str::trim) {
        Some("openai") => Api::Chat,
        Some("anthropic") => Api::Messages,
        Some(_) => {
            return Err(EnvError::new(
                name("API"),
                "unknown API; expected openai (Chat Completions) or anthropic (Messages)",
            ));
        }
        None if provider == ProviderClassifier::Anthropic => Api::Messages,
        None => Api::Chat,
    };
    let number = |what: &str| -> Result<Option<NonZeroU64>, EnvError> {
        read(what)?
            .map(|text| {
                text.trim().parse::<NonZeroU64>().map_err(|_| {
                    EnvError::new(name(what), format!("not a number from 1 to {}", u64::MAX))
                })
            })
            .transpose()
    };
    // No quota configured: nobody knows it, and the adaptive limit learns it from the
    // upstream's answers. One configured: that one, the other unlimited.
    let limits = match (number("RPM")?, number("TPM")?) {
        (None, None) => Limits::adaptive(Adaptive::default()),
        (requests, tokens) => Limits::new(
            requests
                .map(|n| Limit::requests(Quota::per_minute(n)))
                .into_iter()
                .chain(tokens.map(|n| Limit::tokens(Quota::per_minute(n)))),
        ),
    };
    Ok(Some(Upstream {
        name: role.to_lowercase(),
        base_url,
        api,
        api_key,
        model: read("MODEL")?,
        provider,
        limits,
        max_wait: Some(Duration::from_secs(5)),
        context_window: number("CONTEXT_WINDOW")?.map(NonZeroU64::get),
    }))
}

/// Whether `url` can be an upstream's base URL: an absolute `http` or `https` URL without user
/// info or query (a key goes in `GATEWAY_<ROLE>_KEY`). The reason does not quote it.
fn check_base_url(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|_| "not a URL (the value is not shown)")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err("not an absolute http or https URL (the value is not shown)");
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("holds user info: put the key in the _KEY variable (the value is not shown)");
    }
    if uri.query().is_some() {
        return Err("has a query: put the key in the _KEY variable (the value is not shown)");
    }
    Endpoint::new(url.trim())
        .map(drop)
        .map_err(|_| "not a base URL the gateway can send to (the value is not shown)")
}

/// Where the quotas live: in Redis when `GATEWAY_REDIS_URL` is set (`GATEWAY_REPLICAS`,
/// `GATEWAY_REDIS_PREFIX`), which needs the `redis` feature; else in this process.
fn quotas_from(
    var: &impl Fn(&str) -> Result<Option<String>, EnvError>,
) -> Result<Quotas, EnvError> {
    let Some(url) = var("GATEWAY_REDIS_URL")? else {
        return Ok(Quotas::Local);
    };
    #[cfg(feature = "redis")]
    {
        if !RedisConfig::has_redis_scheme(&url) {
            return Err(EnvError::new(
                "GATEWAY_REDIS_URL",
                format!("not a Redis URL ({URL_SCHEMES}); the URL is not shown"),
            ));
        }
        let replicas = match var("GATEWAY_REPLICAS")? {
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    EnvError::new(
                        "GATEWAY_REPLICAS",
                        format!("not a number from 1 to {}", u32::MAX),
                    )
                })?,
            None => 1,
        };
        let prefix = match var("GATEWAY_REDIS_PREFIX")? {
            Some(prefix) => {
                let bad = |c: char| c == '{' || c == '}' || c.is_whitespace();
                if prefix.is_empty() || prefix.contains(bad) {
                    return Err(EnvError::new(
                        "GATEWAY_REDIS_PREFIX",
                        "must not be empty, nor hold `{`, `}` or whitespace",
                    ));
                }
                prefix
            }
            None => "tollgate-gateway".to_owned(),
        };
        Ok(Quotas::Shared(
            RedisConfig::new(url)
                .with_prefix(prefix)
                .with_replicas(replicas),
        ))
    }
    #[cfg(not(feature = "redis"))]
    {
        drop(url); // never printed
        Err(EnvError::new(
            "GATEWAY_REDIS_URL",
            "set, but this gateway was built without the `redis` feature: run it with \
             `cargo run --features redis --example axum_gateway`",
        ))
    }
}

/// Two in-process mocks: an OpenAI-shaped primary with a small quota, an Anthropic-shaped
/// fallback with a larger one; and the upstreams that reach them, with the same quotas.
async fn start_mocks() -> Result<(Mocks, Upstream, Upstream), BoxError> {
    use tollgate_mock::{MockConfig, MockServer};
    let primary = MockServer::start(
        MockConfig::openai()
            .with_requests_per_minute(20)
            .with_tokens_per_minute(40_000)
            .with_api_key("sk-primary-secret"),
    )
    .await?;
    let fallback = MockServer::start(
        MockConfig::anthropic()
            .with_requests_per_minute(1_000)
            .with_tokens_per_minute(400_000)
            .with_api_key("sk-fallback-secret"),
    )
    .await?;
    let upstream = |name: &str, server: &MockServer, key: &str, provider, rpm, tpm| {
        let (api, window) = match provider {
            ProviderClassifier::Anthropic => (Api::Messages, 200_000),
            _ => (Api::Chat, 128_000),
        };
        Ok::<_, BoxError>(Upstream {
            name: name.to_owned(),
            base_url: server.base_url(),
            api,
            api_key: Some(key.to_owned()),
            model: None,
            provider,
            limits: per_minute(rpm, tpm)?,
            max_wait: Some(Duration::from_secs(2)),
            context_window: Some(window),
        })
    };
    let first = upstream(
        "primary",
        &primary,
        "sk-primary-secret",
        ProviderClassifier::OpenAi,
        20,
        40_000,
    )?;
    let second = upstream(
        "fallback",
        &fallback,
        "sk-fallback-secret",
        ProviderClassifier::Anthropic,
        1_000,
        400_000,
    )?;
    Ok((Mocks { primary, fallback }, first, second))
}

/// The in-process mock upstreams.
struct Mocks {
    primary: tollgate_mock::MockServer,
    fallback: tollgate_mock::MockServer,
}

/// Calls the gateway at `addr` as a client would, printing what comes back.
async fn self_test(addr: std::net::SocketAddr, mocks: Option<&Mocks>) -> Result<(), BoxError> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/chat/completions");
    let send = |body: String| call(client.clone(), url.clone(), body);
    let messages_url = format!("http://{addr}/v1/messages");
    let show = |label: &str, (status, what): (StatusCode, String)| {
        println!("{label:<28} {status} {what}");
    };

    show("a chat request", send(chat("Say hello.")).await?);
    show(
        "Anthropic's Messages API",
        call(client.clone(), messages_url.clone(), message("Say hello.")).await?,
    );
    if let Some(mocks) = mocks {
        mocks.primary.set_outage(true);
        show(
            "primary down: the fallback",
            send(chat("Say hello again.")).await?,
        );
        mocks.primary.set_outage(false);
    }
    // A body over the limit: a careful client announces it and waits (`expect: 100-continue`),
    // and is refused at once; a hasty one writes it all before reading, and the gateway reads
    // and discards the rest before answering, so that it too reads the 413.
    let head = too_large(addr, false).await?;
    println!("{:<28} {head}", "a 5 MiB body (announced)");
    let head = too_large(addr, true).await?;
    println!("{:<28} {head}", "a 5 MiB body (written)");
    show("a body that is not JSON", send("hello".to_owned()).await?);
    if let Some(mocks) = mocks {
        // 24 at once against a primary quota of 20 a minute, some of it spent: the local quota
        // refuses what would wait more than 2 s, and the refusal is the gateway's 429.
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..24 {
            burst.spawn(send(chat(&format!("Count to {i}."))));
        }
        let (mut served, mut refused) = (0, None::<(usize, String)>);
        while let Some(outcome) = burst.join_next().await {
            let (status, what) = outcome??;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let (count, _) = refused.get_or_insert((0, what));
                *count += 1;
            } else if status.is_success() {
                served += 1;
            }
        }
        println!("{:<28} {served} served", "a burst of 24");
        if let Some((count, first)) = refused {
            println!("{:<28} {count} refused with 429: {first}", "");
        }
        let primary = mocks.primary.stats();
        let fallback = mocks.fallback.stats();
        println!(
            "the primary served {} requests, the fallback {}; 429s from the primary: {}",
            primary.ok, fallback.ok, primary.rate_limited
        );
    }
    Ok(())
}

/// Sends a request with a 5 MiB body to the gateway at `addr`, and returns the status line of
/// the answer. With `whole`, the client writes the whole body before it reads anything, as
/// Python's `urllib` does; without, it announces the body with `expect: 100-continue` and reads
/// the answer before sending any of it.
pub(crate) async fn too_large(addr: std::net::SocketAddr, whole: bool) -> Result<String, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const LENGTH: usize = 5 * 1024 * 1024;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let expect = if whole {
        ""
    } else {
        "expect: 100-continue\r\n"
    };
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {LENGTH}\r\n{expect}\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    if whole {
        stream.write_all(&vec![b' '; LENGTH]).await?;
    }
    let mut answer = Vec::new();
    let mut chunk = [0; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// A chat completions body asking about `text`.
fn chat(text: &str) -> String {
    serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string()
}

/// An Anthropic Messages body asking about `text`.
fn message(text: &str) -> String {
    serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
    })
    .to_string()
}

/// Sends `body` to the gateway; the status, and the reply or the error code and waits.
async fn call(
    client: reqwest::Client,
    url: String,
    body: String,
) -> Result<(StatusCode, String), BoxError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let waits = format!(
        "retry-after {}, retry-after-ms {}, x-should-retry {}",
        header("retry-after"),
        header("retry-after-ms"),
        header("x-should-retry"),
    );
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    // OpenAI's error code, or Anthropic's error type; else the reply, in either shape.
    let error = body["error"]["code"]
        .as_str()
        .or_else(|| body["error"]["type"].as_str());
    let what = match error {
        Some(code) => format!("{code}; {waits}"),
        None => body["choices"][0]["message"]["content"]
            .as_str()
            .or_else(|| body["content"][0]["text"].as_str())
            .map(|text| text.chars().take(40).collect())
            .unwrap_or_default(),
    };
    Ok((status, what))
}

#[tokio::main]
async fn main() {
    // Every error is shown by its `Display`, which names what is at fault and quotes no secret.
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// The gateway: configured from the environment, then serving or testing itself.
async fn run() -> Result<(), BoxError> {
    let settings = settings(|name| std::env::var_os(name))?;
    let serve = std::env::args().skip(1).any(|arg| arg == "--serve") || settings.serve;
    let (mocks, primary, fallback) = match settings.primary {
        Some(primary) => (None, primary, settings.fallback),
        None => {
            let (mocks, primary, fallback) = start_mocks().await?;
            (Some(mocks), primary, Some(fallback))
        }
    };
    let quotas = settings.quotas;
    let stack = stack(
        &primary,
        fallback.as_ref(),
        &retry_policy(),
        &quotas,
        ReqwestTransport::new(reqwest::Client::new()),
    )?;
    let listener = match &settings.addr {
        Some(addr) => tokio::net::TcpListener::bind(addr).await.map_err(|error| {
            EnvError::new("GATEWAY_ADDR", format!("cannot listen there: {error}"))
        })?,
        None => {
            let addr = if serve {
                "127.0.0.1:8080"
            } else {
                "127.0.0.1:0"
            };
            tokio::net::TcpListener::bind(addr).await?
        }
    };
    let addr = listener.local_addr()?;
    let names = match &fallback {
        Some(fallback) => format!("{}, then {}", primary.describe(), fallback.describe()),
        None => primary.describe(),
    };
    let names = format!("{names}; {}", quotas.describe());
    let limits = ConnectionLimits {
        max_connections: settings.max_connections,
        ..ConnectionLimits::default()
    };
    if serve {
        println!("serving http://{addr}/v1/chat/completions ({names}); Ctrl-C to stop");
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
            println!(
                "stopping: draining requests in flight for at most {} s",
                limits.drain.as_secs()
            );
        };
        let again = async {
            let _ = tokio::signal::ctrl_c().await;
            println!("stopping now: aborting what is left");
        };
        let aborted = serve_gateway(listener, app(stack), limits, ctrl_c, again).await;
        if aborted > 0 {
            println!("stopped: aborted {aborted} connection(s) still busy after the drain");
        }
    } else {
        println!("self-test of http://{addr}/v1/chat/completions ({names})");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let server = tokio::spawn(serve_gateway(
            listener,
            app(stack),
            limits,
            stopped,
            std::future::pending(),
        ));
        self_test(addr, mocks.as_ref()).await?;
        let _ = stop.send(());
        server.await?;
    }
    if let Some(mocks) = mocks {
        mocks.primary.shutdown().await;
        mocks.fallback.shutdown().await;
    }
    Ok(())
}
