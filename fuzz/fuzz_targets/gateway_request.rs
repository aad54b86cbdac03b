//! The request handling of the gateway example (`examples/axum_gateway.rs`, included as a
//! module, as `tests/gateway.rs` does): arbitrary requests — method, path, headers, body, and
//! how the body arrives — through its `axum::Router`, to either of its routes (OpenAI's
//! `POST /v1/chat/completions`, Anthropic's `POST /v1/messages`) or elsewhere, in front of an
//! in-memory upstream whose answer the input also chooses.
//!
//! Input layout:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | the method: `POST`, `GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`, `PATCH`, `CONNECT` (`b % 8`) |
//! | 1 | how the caller's body arrives (bits 0–1): whole; in two frames; then a read error; then never ends. How the upstream answers (bits 2–4): as its section says; that, then a read error; a refused connection; a timed-out connection; that, never ending (success statuses only). The path when the path section is not a valid URI (bit 5): `/v1/chat/completions` (0) or `/v1/messages` (1) |
//! | 2, 3 | the upstream's status: `100 + u16 (little-endian) % 900` |
//! | the rest, cut at `0xff` | the path and query; the caller's header lines (`name: value`); the caller's body (`0xfe k` stands for `k × 64 KiB + 1` copies of the byte before it, up to 5 MiB, past the gateway's 4 MiB limit); the upstream's header lines; the upstream's body |
//!
//! Lines that are not a valid header are skipped; a path that is not a valid URI (an empty one
//! among them) becomes the route bit 5 of byte 1 picks.
//!
//! The router is built once, around the example's `app` (the function `tests/gateway.rs`
//! calls) over a stack of the example's retry policy and OpenAI's `ClassifyLayer` above the
//! in-memory upstream (the example's own `stack` needs a reqwest transport, and its breaker
//! and quota would carry state from one input to the next). `app` hands the stack the
//! request as the caller's route has it and translates nothing (translation is the `stack`'s
//! `Translate` layer, absent here; the `translate` target fuzzes it): the upstream gets
//! `POST` to the caller's route's path with the caller's `Api` as an extension and the
//! caller's body unchanged, whichever the route. Each input runs on one current-thread tokio
//! runtime, built once, with its clock paused: the gateway's body timeout and the retries'
//! waits pass at once.
//!
//! Checks: no panic; the answer comes within an hour of (paused) time; a `2xx` only from the
//! upstream's `2xx`, for `POST` to one of the two routes with a JSON object of at most 4 MiB,
//! with the upstream's status and, read to its end, its body; every `4xx` and `5xx` is the
//! gateway's own, in the caller's shape — the route's, or for a `404` Anthropic's when the
//! caller sends `anthropic-version` or `x-api-key`, else OpenAI's: `content-type:
//! application/json`, a body `{"error":{"message","type","param":null,"code"}}` (OpenAI's)
//! with a code of lowercase words joined by `_`, or `{"type":"error","error":{"type",
//! "message"}}` (Anthropic's) with a type of Anthropic's list that agrees with the status
//! (`billing_error` at any) and a message starting with such a code and `: `;
//! `x-should-retry`, and, when it is `true`, `retry-after` and `retry-after-ms` that agree;
//! nothing of the upstream's secret marker in it (only a request id passes back); `404`
//! exactly for a path other than the two, `405` with `allow: POST` for another method on
//! either; the upstream is called only with `POST` to the caller's route's path (relative),
//! its `Api` as an extension, `content-type: application/json`, the caller's body unchanged
//! and none of the caller's headers.

#![no_main]

#[path = "../../examples/axum_gateway.rs"]
#[allow(dead_code, unused_imports)]
mod axum_gateway;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tollgate::ServiceBuilderExt;
use tollgate::body::BufferedBody;
use tollgate::fallback::boxed;
use tollgate::providers::ProviderClassifier;
use tower::{ServiceBuilder, ServiceExt};

use axum_gateway::{Api, MAX_BODY, app, retry_policy};

/// The paths the gateway serves: OpenAI's route, Anthropic's.
const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// Anthropic's `error.type`s.
const ANTHROPIC_TYPES: [&str; 8] = [
    "invalid_request_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "billing_error",
    "timeout_error",
    "overloaded_error",
    "api_error",
];

/// The caller's body expands to at most this: past [`MAX_BODY`].
const MAX_EXPANDED: usize = MAX_BODY + 1024 * 1024;

/// Put in a header of every upstream answer: it must never reach a caller's error answer.
const SECRET: &str = "sk-upstream-SECRET-7f3a";

/// How a body ends after its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Clean,
    Error,
    Never,
}

/// A body of ready frames, then its ending.
struct Scripted {
    frames: VecDeque<Bytes>,
    ending: Ending,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(data) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match self.ending {
            Ending::Clean => Poll::Ready(None),
            Ending::Error => {
                self.ending = Ending::Clean;
                Poll::Ready(Some(Err(io::Error::from(io::ErrorKind::ConnectionReset))))
            }
            // Nothing will wake it: only the gateway's timers end the wait.
            Ending::Never => Poll::Pending,
        }
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
enum Answer {
    Response {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        ending: Ending,
    },
    Fails(io::ErrorKind),
}

/// What the upstream saw of one call.
#[derive(Debug)]
struct Call {
    method: Method,
    uri: Uri,
    api: Option<Api>,
    headers: HeaderMap,
    body: Bytes,
}

thread_local! {
    /// The answer for the current input (the runtime is current-thread: one thread).
    static ANSWER: RefCell<Option<Answer>> = const { RefCell::new(None) };
    /// The upstream's calls for the current input.
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
}

/// The in-memory upstream: answers [`ANSWER`], records [`CALLS`].
#[derive(Debug, Clone, Copy)]
struct Upstream;

impl tower::Service<Request<BufferedBody>> for Upstream {
    type Response = Response<Scripted>;
    type Error = io::Error;
    type Future = std::future::Ready<Result<Response<Scripted>, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let (parts, body) = request.into_parts();
        CALLS.with_borrow_mut(|calls| {
            calls.push(Call {
                method: parts.method,
                uri: parts.uri,
                api: parts.extensions.get::<Api>().copied(),
                headers: parts.headers,
                body: Bytes::copy_from_slice(body.bytes()),
            });
        });
        let answer = ANSWER.with_borrow(|answer| answer.clone().expect("an answer is set"));
        std::future::ready(match answer {
            Answer::Fails(kind) => Err(io::Error::from(kind)),
            Answer::Response {
                status,
                headers,
                body,
                ending,
            } => {
                let mut response = Response::new(Scripted {
                    frames: VecDeque::from([body]),
                    ending,
                });
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                Ok(response)
            }
        })
    }
}

/// The runtime, current-thread with its clock paused, and the router, built once.
static GATEWAY: LazyLock<(Runtime, Router)> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let router = runtime.block_on(async {
        let stack = ServiceBuilder::new()
            .retries(retry_policy())
            .classify(ProviderClassifier::OpenAi)
            .service(Upstream);
        app(boxed(stack))
    });
    (runtime, router)
});

const METHODS: [Method; 8] = [
    Method::POST,
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::PATCH,
    Method::CONNECT,
];

/// Header lines `name: value`; invalid ones skipped.
fn header_lines(text: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    headers
}

/// The caller's body, with `0xfe k` expanded.
fn expand(script: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut bytes = script.iter();
    while let Some(&byte) = bytes.next() {
        if byte == 0xfe {
            let Some(&k) = bytes.next() else { break };
            let copies = (usize::from(k) * 64 * 1024 + 1).min(MAX_EXPANDED - body.len());
            let last = body.last().copied().unwrap_or(b' ');
            body.resize(body.len() + copies, last);
        } else if body.len() < MAX_EXPANDED {
            body.push(byte);
        }
    }
    body
}

/// Whether `code` is lowercase ASCII words joined by single underscores.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .split('_')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Checks an answer the gateway wrote itself (a 4xx or 5xx) to a caller of `api`; its body,
/// unless it answers `HEAD`.
fn check_own(api: Api, status: StatusCode, headers: &HeaderMap, body: Option<&[u8]>) {
    assert_eq!(
        headers
            .get(http::header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
        Some(&b"application/json"[..]),
        "{status}: content-type"
    );
    check_waits(status, headers);
    let Some(body) = body else {
        return;
    };
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    let text = std::str::from_utf8(body).expect("UTF-8");
    assert!(
        !text.contains("SECRET"),
        "{status}: upstream text in {text}"
    );
    if api == Api::Messages {
        check_anthropic(status, &value);
        return;
    }
    let error = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(serde_json::Value::as_object)
        .expect("{\"error\":{…}} alone");
    assert_eq!(error.len(), 4, "{status}: {error:?}");
    assert!(error["message"].is_string(), "{status}: message");
    assert!(
        error["type"].as_str().is_some_and(is_code),
        "{status}: type"
    );
    assert!(error["param"].is_null(), "{status}: param");
    let code = error["code"].as_str().expect("a code");
    assert!(is_code(code) && code.len() <= 64, "{status}: code {code:?}");
}

/// Checks the body of the gateway's own answer in Anthropic's shape:
/// `{"type":"error","error":{"type","message"}}`, a type of Anthropic's list agreeing with the
/// status (`anthropic_type`'s table; `billing_error`, a spent quota, at any status), and a
/// message that starts with the gateway's code and `: `.
fn check_anthropic(status: StatusCode, value: &serde_json::Value) {
    let object = value.as_object().expect("a JSON object");
    assert_eq!(object.len(), 2, "{status}: {object:?}");
    assert_eq!(object.get("type"), Some(&serde_json::json!("error")), "{status}: type");
    let error = object
        .get("error")
        .and_then(serde_json::Value::as_object)
        .expect("{\"type\":\"error\",\"error\":{…}}");
    assert_eq!(error.len(), 2, "{status}: {error:?}");
    let kind = error["type"].as_str().expect("an error.type");
    assert!(ANTHROPIC_TYPES.contains(&kind), "{status}: error.type {kind:?}");
    let expected = match status.as_u16() {
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    assert!(
        kind == expected || kind == "billing_error",
        "{status}: error.type {kind:?}, not {expected:?}"
    );
    let message = error["message"].as_str().expect("an error.message");
    let code = message
        .split_once(": ")
        .map(|(code, _)| code)
        .expect("a message `code: …`");
    assert!(
        is_code(code) && code.len() <= 64,
        "{status}: code {code:?} in {message:?}"
    );
}

/// Checks the headers of the gateway's own answer: no upstream text but a request id, and
/// `x-should-retry` with its waits.
fn check_waits(status: StatusCode, headers: &HeaderMap) {
    for (name, value) in headers {
        if name != "x-request-id" && name != "request-id" {
            assert!(
                !value.as_bytes().windows(6).any(|w| w == b"SECRET"),
                "{status}: upstream text in {name}"
            );
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII").to_owned())
    };
    match header("x-should-retry").as_deref() {
        Some("true") => {
            let seconds: u64 = header("retry-after")
                .expect("retry-after")
                .parse()
                .expect("whole seconds");
            let millis: u64 = header("retry-after-ms")
                .expect("retry-after-ms")
                .parse()
                .expect("whole milliseconds");
            assert_eq!(seconds, millis.div_ceil(1000), "{status}: waits disagree");
        }
        Some("false") => {
            assert!(
                header("retry-after").is_none(),
                "{status}: a wait, no retry"
            );
        }
        other => panic!("{status}: x-should-retry {other:?}"),
    }
}

/// Reads `body` to its end, or until a body error or an hour of (paused) time.
async fn read(body: axum::body::Body) -> (Vec<u8>, bool) {
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            Ok(None) => return (bytes, true),
            Ok(Some(Err(_))) | Err(_) => return (bytes, false),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [method, modes, s0, s1, rest @ ..] = data else {
        return;
    };
    let method = METHODS[usize::from(*method) % METHODS.len()].clone();
    let mut sections = rest.splitn(5, |&b| b == 0xff);
    let mut next = || sections.next().unwrap_or_default();
    let (path, caller_headers, caller_body, upstream_headers, upstream_body) =
        (next(), next(), next(), next(), next());

    let default_path = if modes & 0b10_0000 == 0 { CHAT } else { MESSAGES };
    let uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static(default_path));
    let caller_headers = header_lines(caller_headers);
    // The shape of a 404's answer.
    let looks_anthropic = caller_headers.contains_key("anthropic-version")
        || caller_headers.contains_key("x-api-key");
    let caller_body = Bytes::from(expand(caller_body));
    let caller_ending = match modes & 0b11 {
        2 => Ending::Error,
        3 => Ending::Never,
        _ => Ending::Clean,
    };
    let frames = if modes & 0b11 == 1 {
        let mid = caller_body.len() / 2;
        VecDeque::from([caller_body.slice(..mid), caller_body.slice(mid..)])
    } else {
        VecDeque::from([caller_body.clone()])
    };

    let status =
        StatusCode::from_u16(100 + u16::from_le_bytes([*s0, *s1]) % 900).expect("100 to 999");
    let mut headers = header_lines(upstream_headers);
    headers.insert("x-upstream-key", HeaderValue::from_static(SECRET));
    let upstream_body = Bytes::copy_from_slice(upstream_body);
    let answer = match (modes >> 2) & 0b111 {
        2 => Answer::Fails(io::ErrorKind::ConnectionRefused),
        3 => Answer::Fails(io::ErrorKind::TimedOut),
        mode => Answer::Response {
            status,
            headers,
            body: upstream_body.clone(),
            ending: match mode {
                1 => Ending::Error,
                // An error body that never ends holds the stack's read-ahead (the example's
                // stack puts no time limit on it): only a success may stall.
                4 if status.is_success() => Ending::Never,
                _ => Ending::Clean,
            },
        },
    };
    let upstream = match &answer {
        Answer::Response { status, ending, .. } => Some((*status, *ending)),
        Answer::Fails(_) => None,
    };
    ANSWER.with_borrow_mut(|slot| *slot = Some(answer));
    CALLS.with_borrow_mut(Vec::clear);

    let mut request = Request::new(axum::body::Body::new(Scripted {
        frames,
        ending: caller_ending,
    }));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = caller_headers;

    let (runtime, router) = &*GATEWAY;
    let (answer, body, complete) = runtime.block_on(async {
        let answered =
            tokio::time::timeout(Duration::from_secs(3600), router.clone().oneshot(request)).await;
        let Ok(Ok(answer)) = answered else {
            panic!("no answer within an hour: {answered:?}");
        };
        let (parts, body) = answer.into_parts();
        let (body, complete) = read(body).await;
        (parts, body, complete)
    });
    let calls = CALLS.with_borrow_mut(std::mem::take);

    let route = match uri.path() {
        CHAT => Some(Api::Chat),
        MESSAGES => Some(Api::Messages),
        _ => None,
    };
    let served = route.is_some();
    // The shape of the gateway's own answers: the route's, or for a 404 the caller's looks.
    let shape = route.unwrap_or(if looks_anthropic {
        Api::Messages
    } else {
        Api::Chat
    });
    let status = answer.status;
    if !served {
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
    } else if method != Method::POST {
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(
            answer
                .headers
                .get(http::header::ALLOW)
                .map(HeaderValue::as_bytes),
            Some(&b"POST"[..])
        );
    }
    if !calls.is_empty() {
        assert!(
            served && method == Method::POST,
            "called upstream for {method} {uri}"
        );
        assert_eq!(
            caller_ending,
            Ending::Clean,
            "an unread body reached upstream"
        );
        assert!(
            caller_body.len() <= MAX_BODY,
            "an oversized body reached upstream"
        );
        assert!(
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&caller_body)
                .is_ok(),
            "a body that is not a JSON object reached upstream"
        );
        for call in &calls {
            assert_eq!(call.method, Method::POST);
            assert_eq!(
                call.uri.to_string(),
                uri.path(),
                "the upstream gets the route's path, relative"
            );
            assert_eq!(call.api, route, "the caller's API as an extension");
            assert_eq!(call.body, caller_body, "the body changed on its way");
            let names: Vec<_> = call.headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(names, ["content-type"], "caller headers reached upstream");
            assert_eq!(call.headers[http::header::CONTENT_TYPE], "application/json");
        }
    }
    if status.is_success() {
        assert!(!calls.is_empty(), "a {status} without the upstream");
        let Some((upstream_status, ending)) = upstream else {
            panic!("a {status} from a failed upstream");
        };
        assert_eq!(
            status, upstream_status,
            "the upstream's status is passed back"
        );
        assert!(
            upstream_body.starts_with(&body),
            "a body that is not the upstream's"
        );
        let stream = answer
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_start().get(..17))
            .is_some_and(|v| v.eq_ignore_ascii_case("text/event-stream"));
        if ending == Ending::Clean && !stream {
            assert!(complete, "a clean upstream body did not end cleanly");
            assert_eq!(
                body, upstream_body,
                "the upstream's body is passed back whole"
            );
        }
    } else if (status.is_client_error() || status.is_server_error()) && method == Method::HEAD {
        // axum answers `HEAD` without the body, as HTTP wants.
        assert!(body.is_empty(), "{status}: a body for HEAD");
        check_own(shape, status, &answer.headers, None);
    } else if status.is_client_error() || status.is_server_error() {
        check_own(shape, status, &answer.headers, Some(&body));
        assert!(complete, "{status}: the gateway's own body ends cleanly");
    } else {
        // The gateway answers every upstream status but a 2xx with its own 4xx or 5xx.
        panic!("{status} from the gateway");
    }
});
