//! The gateway of `examples/axum_gateway.rs`, served on loopback in front of `tollgate-mock`
//! upstreams and called with reqwest: what its callers get when the upstreams answer, and
//! when the stack must refuse — a 429 or 503 carrying the stack's own wait, exactly, as
//! `retry-after` and `retry-after-ms`, with `x-should-retry: true`, and never an upstream key.
//! Every upstream error status is answered with the gateway's own body (the upstream's text,
//! which may quote a key or an internal URL, dropped); the environment is checked, each error
//! naming the variable and never its value.
//!
//! It is served by the example's own accept loop (`examples/support/gateway_server.rs`), and
//! the last tests hold it to its bounds with raw sockets: a slow head, an idle connection, a
//! body that never ends, an over-limit body written whole before reading (still answered 413),
//! a full body budget, the connection cap, a shutdown with a hung upstream; and an event
//! stream passes through as it comes.
//!
//! Tokio's clock is paused (`start_paused`, current-thread runtime), so the quotas' minutes
//! pass at once and no virtual time passes while the requests are on the wire: every wait is
//! asserted exactly. A socket that became readable wakes its task before the clock may move,
//! so a short sleep is a barrier: when it ends, the gateway has read everything sent before.
//!
//! With the `redis` feature, the last test runs two gateways sharing one quota in a real
//! `redis-server` (started on a free loopback port by the `tollgate-redis` tests' harness;
//! skipped loudly where none is installed, unless `TOLLGATE_REQUIRE_REDIS=1`), on the real
//! clock: Redis's is the one the gateways share.

#![cfg(all(
    feature = "circuit-breaker",
    feature = "fallback",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry"
))]

#[path = "../examples/axum_gateway.rs"]
#[allow(dead_code)]
mod axum_gateway;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum_gateway::gateway_server::{DRAIN, HEAD_TIMEOUT, IDLE_TIMEOUT, WRITE_TIMEOUT};
use axum_gateway::{
    Api, BODY_TIMEOUT, BodyLimits, ConnectionLimits, Quotas, ReqwestTransport, Upstream, app,
    app_with, per_minute, retry_policy, serve_gateway, stack,
};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tollgate::providers::ProviderClassifier;
use tollgate::ratelimit::Limits;
use tollgate_mock::{Latency, MockConfig, MockServer, StreamFault};

const PRIMARY_KEY: &str = "sk-primary-secret";
const FALLBACK_KEY: &str = "sk-fallback-secret";

/// Starts a mock upstream.
async fn start(config: MockConfig) -> MockServer {
    MockServer::start(config).await.unwrap()
}

/// The primary's mock upstream: OpenAI-shaped, expecting the primary's key.
fn primary_config() -> MockConfig {
    MockConfig::openai().with_api_key(PRIMARY_KEY)
}

/// An upstream for `mock`, which expects `key`: speaking Anthropic's Messages API when
/// `provider` is Anthropic, else OpenAI's Chat Completions.
fn upstream(name: &str, mock: &MockServer, key: &str, provider: ProviderClassifier) -> Upstream {
    Upstream {
        name: name.to_owned(),
        base_url: mock.base_url(),
        api: match provider {
            ProviderClassifier::Anthropic => Api::Messages,
            _ => Api::Chat,
        },
        api_key: Some(key.to_owned()),
        model: None,
        provider,
        limits: Limits::unlimited(),
        max_wait: None,
        context_window: None,
    }
}

/// The primary upstream: OpenAI-shaped, on `mock`, sent the primary's key.
fn primary(mock: &MockServer) -> Upstream {
    upstream("primary", mock, PRIMARY_KEY, ProviderClassifier::OpenAi)
}

/// The primary on `mock` behind a gateway quota of one request a minute that refuses at once
/// what it cannot admit.
fn reject_only(mock: &MockServer) -> Upstream {
    Upstream {
        limits: per_minute(1, 100_000).unwrap(),
        max_wait: Some(Duration::ZERO),
        ..primary(mock)
    }
}

/// Serves `router` on a free port within `limits` until `shutdown`; the task returns the
/// number of connections aborted.
async fn listen_with(
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (SocketAddr, JoinHandle<usize>) {
    listen_until(router, limits, shutdown, std::future::pending()).await
}

/// [`listen_with`], aborting the drain when `abort` completes.
async fn listen_until(
    router: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    abort: impl Future<Output = ()> + Send + 'static,
) -> (SocketAddr, JoinHandle<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_gateway(listener, router, limits, shutdown, abort));
    (addr, server)
}

/// Serves `router` on a free port.
async fn listen(router: axum::Router) -> SocketAddr {
    let limits = ConnectionLimits::default();
    listen_with(router, limits, std::future::pending()).await.0
}

/// The gateway's stack over `primary` (and `fallback`).
fn gateway_stack(primary: &Upstream, fallback: Option<&Upstream>) -> axum_gateway::GatewayStack {
    stack(
        primary,
        fallback,
        &retry_policy(),
        &Quotas::Local,
        ReqwestTransport::new(reqwest::Client::new()),
    )
    .unwrap()
}

/// Serves the gateway over `primary` (and `fallback`) on a free port.
async fn serve(primary: &Upstream, fallback: Option<&Upstream>) -> SocketAddr {
    listen(app(gateway_stack(primary, fallback))).await
}

/// Serves the gateway over [`primary`]`(mock)` alone.
async fn serve_primary(mock: &MockServer) -> SocketAddr {
    serve(&primary(mock), None).await
}

/// What a caller got.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: serde_json::Value,
    text: String,
}

impl Answer {
    /// What the caller got in `response`, read to its end.
    async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_default();
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `(retry-after, retry-after-ms, x-should-retry)`.
    fn waits(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        (
            self.header("retry-after"),
            self.header("retry-after-ms"),
            self.header("x-should-retry"),
        )
    }

    /// The caller was told to come back later: `status`, and a wait of `seconds` in
    /// `retry-after` and `retry-after-ms`, with `x-should-retry: true`.
    fn assert_told_to_wait(&self, status: StatusCode, seconds: u64) {
        assert_eq!(self.status, status, "{}", self.text);
        let (secs, millis) = (seconds.to_string(), (seconds * 1_000).to_string());
        assert_eq!(
            self.waits(),
            (Some(&*secs), Some(&*millis), Some("true")),
            "{}",
            self.text
        );
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// Neither key appears anywhere in what the caller got.
    fn assert_no_key(&self) {
        for key in [PRIMARY_KEY, FALLBACK_KEY] {
            assert!(!self.text.contains(key), "a key in the body: {}", self.text);
            for (name, value) in &self.headers {
                assert!(
                    !value.to_str().unwrap_or_default().contains(key),
                    "a key in {name}"
                );
            }
        }
    }
}

/// POSTs `body` to the gateway at `addr` as a caller with its own key.
async fn post(addr: SocketAddr, body: impl Into<reqwest::Body>) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer caller-key")
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

async fn chat(addr: SocketAddr) -> Answer {
    let body = r#"{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"Say hello."}]}"#;
    post(addr, body).await
}

/// A request goes through, with the upstream's key (not the caller's), and comes back
/// without the upstream's key.
#[tokio::test(start_paused = true)]
async fn a_chat_request_goes_through() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let answer = chat(addr).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(answer.body["choices"][0]["message"]["content"].is_string());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    answer.assert_no_key();
    // The mock checks the key: it was the upstream's, not the caller's.
    assert_eq!(mock.stats().ok, 1);
}

/// The gateway's own quota, reject-only, refuses the second request of a minute: a 429 with
/// the limiter's `retry_after` — 60 s, no virtual time having passed — in both headers.
#[tokio::test(start_paused = true)]
async fn the_local_quota_refuses_with_its_retry_after() {
    let mock = start(primary_config()).await;
    let addr = serve(&reject_only(&mock), None).await;

    assert_eq!(chat(addr).await.status, StatusCode::OK);
    let refused = chat(addr).await;
    refused.assert_told_to_wait(StatusCode::TOO_MANY_REQUESTS, 60);
    assert_eq!(refused.code(), "rate_limit_exceeded");
    assert_eq!(refused.body["error"]["type"], "requests");
    refused.assert_no_key();
    // Refused here: the upstream never saw it.
    assert_eq!(mock.stats().requests, 1);
}

/// The upstream's own quota is spent and it asks for 60 s, beyond the gateway's 10 s cap: no
/// retry, and the caller gets the upstream's wait, exactly.
#[tokio::test(start_paused = true)]
async fn a_provider_delay_beyond_the_cap_is_passed_on() {
    let mock = start(primary_config().with_requests_per_minute(1)).await;
    let addr = serve_primary(&mock).await;

    assert_eq!(chat(addr).await.status, StatusCode::OK);
    let refused = chat(addr).await;
    refused.assert_told_to_wait(StatusCode::TOO_MANY_REQUESTS, 60);
    assert_eq!(refused.code(), "rate_limit_exceeded");
    refused.assert_no_key();
    let stats = mock.stats();
    assert_eq!((stats.requests, stats.rate_limited), (2, 1), "not retried");
}

/// With a fallback: the primary's 429 sends the request to the fallback; once both are out
/// of quota, every target failed or is cooling down, and the caller gets a 429 with the
/// time until the first is free again.
#[tokio::test(start_paused = true)]
async fn when_every_upstream_is_out_of_quota_the_caller_waits_for_the_first() {
    let primary_mock = start(primary_config().with_requests_per_minute(1)).await;
    let fallback = start(
        MockConfig::anthropic()
            .with_requests_per_minute(1)
            .with_api_key(FALLBACK_KEY),
    )
    .await;
    let addr = serve(
        &primary(&primary_mock),
        Some(&upstream(
            "fallback",
            &fallback,
            FALLBACK_KEY,
            ProviderClassifier::Anthropic,
        )),
    )
    .await;

    assert_eq!(chat(addr).await.status, StatusCode::OK); // the primary
    assert_eq!(chat(addr).await.status, StatusCode::OK); // the primary's 429, then the fallback
    let refused = chat(addr).await; // the primary cools down; the fallback's 429
    refused.assert_told_to_wait(StatusCode::TOO_MANY_REQUESTS, 60);
    refused.assert_no_key();
    // Both cool down after their 429s: nothing is tried, and the refusal is still a rate
    // limit (not an outage), with the wait until the first is free.
    let sent = (primary_mock.stats().requests, fallback.stats().requests);
    let cooling = chat(addr).await;
    cooling.assert_told_to_wait(StatusCode::TOO_MANY_REQUESTS, 60);
    assert_eq!(cooling.code(), "rate_limit_exceeded");
    assert_eq!(
        (primary_mock.stats().requests, fallback.stats().requests),
        sent,
        "nothing was sent while both cooled down"
    );
    assert_eq!(
        (primary_mock.stats().ok, fallback.stats().ok),
        (1, 1),
        "each served one"
    );
}

/// An upstream that is down: 503s (each given up at once, the overload left to a fallback),
/// then, once the breaker opens after five, a 503 that says when it will probe again.
#[tokio::test(start_paused = true)]
async fn a_down_upstream_gives_503_then_the_open_circuit_says_when() {
    let mock = start(primary_config()).await;
    mock.set_outage(true);
    let addr = serve_primary(&mock).await;

    for _ in 0..5 {
        chat(addr)
            .await
            .assert_told_to_wait(StatusCode::SERVICE_UNAVAILABLE, 1);
    }
    let open = chat(addr).await;
    open.assert_told_to_wait(StatusCode::SERVICE_UNAVAILABLE, 60);
    assert_eq!(open.code(), "upstream_unavailable");
    open.assert_no_key();
    assert_eq!(mock.stats().requests, 5, "the open circuit sent nothing");
}

/// Every upstream down: the caller is told the upstreams are unavailable (503), never rate
/// limited — also once both breakers are open and both targets cool down, so that the
/// fallback tries nothing and explains its refusal by the cooldowns' causes alone.
#[tokio::test(start_paused = true)]
async fn every_upstream_down_is_503_not_429() {
    let primary_mock = start(primary_config()).await;
    let fallback = start(MockConfig::openai().with_api_key(FALLBACK_KEY)).await;
    primary_mock.set_outage(true);
    fallback.set_outage(true);
    let addr = serve(
        &primary(&primary_mock),
        Some(&upstream(
            "fallback",
            &fallback,
            FALLBACK_KEY,
            ProviderClassifier::OpenAi,
        )),
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..12 {
        let answer = chat(addr).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.text
        );
        assert_eq!(answer.header("x-should-retry"), Some("true"));
        let seconds: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        let millis: u64 = answer.header("retry-after-ms").unwrap().parse().unwrap();
        assert_eq!(seconds, millis.div_ceil(1_000), "{}", answer.text);
        answer.assert_no_key();
        codes.push(answer.code().to_owned());
    }
    assert!(
        codes.iter().all(|code| code == "upstream_unavailable"),
        "{codes:?}"
    );
    // Each breaker opened after five failures: later requests sent nothing.
    assert_eq!(
        (primary_mock.stats().requests, fallback.stats().requests),
        (5, 5)
    );
    // The last refusals tried nothing: both targets were cooling down behind open breakers.
    let last = chat(addr).await;
    assert_eq!(last.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        last.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open, circuit open"),
        "{}",
        last.text
    );
}

/// Every upstream out of quota (429 `insufficient_quota`): a 429 `insufficient_quota` with
/// `x-should-retry: false`, whether both were tried or both were passed over while cooling
/// down after it; no wait mends a spent quota.
#[tokio::test(start_paused = true)]
async fn spent_quotas_are_not_worth_retrying() {
    let spent = r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let upstream = |name: &str, base_url: String| Upstream {
        name: name.to_owned(),
        base_url,
        api: Api::Chat,
        api_key: Some(PRIMARY_KEY.to_owned()),
        model: None,
        provider: ProviderClassifier::OpenAi,
        limits: Limits::unlimited(),
        max_wait: None,
        context_window: None,
    };
    let primary = upstream("primary", crafted_upstream(429, spent).await);
    let fallback = upstream("fallback", crafted_upstream(429, spent).await);
    let addr = serve(&primary, Some(&fallback)).await;
    for attempt in ["both tried", "both cooling"] {
        let answer = chat(addr).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{attempt}: {}",
            answer.text
        );
        assert_eq!(
            answer.body["error"]["type"], "insufficient_quota",
            "{attempt}"
        );
        assert_eq!(answer.code(), "insufficient_quota", "{attempt}");
        assert_eq!(answer.waits(), (None, None, Some("false")), "{attempt}");
    }
    // Alone, an upstream's spent quota goes back the same way.
    let alone = upstream("primary", crafted_upstream(429, spent).await);
    let answer = chat(serve(&alone, None).await).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.waits(), (None, None, Some("false")));
}

/// Bad input is refused without reaching the upstream, and nothing panics: a body over
/// 4 MiB (413, refused from its content-length: at once when the client waits with `expect:
/// 100-continue`, after the rest is read when it writes it all), a body that is not a JSON
/// object, another path or method.
#[tokio::test(start_paused = true)]
async fn bad_input_is_refused() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    for whole in [false, true] {
        assert_eq!(
            axum_gateway::too_large(addr, whole).await.unwrap(),
            "HTTP/1.1 413 Payload Too Large"
        );
    }
    for body in ["hello", "[1, 2]", "", "{\"model\":"] {
        let answer = post(addr, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(answer.code(), "invalid_json");
        assert_eq!(answer.header("x-should-retry"), Some("false"));
    }
    let elsewhere = reqwest::get(format!("http://{addr}/v1/models"))
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    let get = reqwest::get(format!("http://{addr}/v1/chat/completions"))
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
    // Exactly at the limit is read (and then refused for not being JSON).
    let answer = post(addr, vec![b' '; axum_gateway::MAX_BODY]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(mock.stats().requests, 0);
}

/// The upstream rejects the gateway's key: the caller gets a 502 of the gateway's own, not the
/// upstream's 401 (whose body quotes the key it was given).
#[tokio::test(start_paused = true)]
async fn a_rejected_upstream_key_is_not_passed_on() {
    let mock = start(MockConfig::openai().with_api_key("sk-the-right-one")).await;
    let addr = serve_primary(&mock).await;

    let answer = chat(addr).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.text);
    assert_eq!(answer.code(), "upstream_auth_failed");
    assert_eq!(answer.header("x-should-retry"), Some("false"));
    answer.assert_no_key();
    assert!(!answer.text.contains("sk-"), "{}", answer.text);
    assert_eq!(mock.stats().by_status.get(&401), Some(&1));
}

/// An upstream that answers every request with `status` and `body` (JSON), on loopback; its
/// base URL.
async fn crafted_upstream(status: u16, body: &'static str) -> String {
    let answer = move || async move {
        let status = StatusCode::from_u16(status).unwrap();
        (
            status,
            [
                ("content-type", "application/json"),
                ("x-request-id", "req_123"),
            ],
            body,
        )
    };
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// What an upstream's error body may hold that must never reach a caller.
const LEAKS: [&str; 4] = [
    PRIMARY_KEY,
    "10.0.0.7",
    "internal-token",
    "Incorrect API key provided",
];

/// Every upstream error status is answered with the gateway's own body: the status (a 401 or
/// 403 becomes a 502), the class as `error.type`, a code kept only when it is safe, a message of
/// the gateway's — and nothing of the upstream's text, which here quotes the gateway's key and
/// an internal URL.
#[tokio::test(start_paused = true)]
async fn upstream_errors_get_the_gateways_own_body() {
    let quoted = |code: &str| -> &'static str {
        format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {PRIMARY_KEY}; see http://10.0.0.7:8080/debug?token=internal-token","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
        )
        .leak()
    };
    // (upstream status, upstream body, caller's status, error.type, error.code)
    let cases = [
        (
            400,
            quoted("context_length_exceeded"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (
            400,
            quoted("unsupported_parameter"),
            400,
            "invalid_request_error",
            "unsupported_parameter",
        ),
        // A code that is not safe to pass on: the class's.
        (
            400,
            quoted(PRIMARY_KEY),
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (
            400,
            quoted("http://10.0.0.7/x"),
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (
            404,
            quoted("model_not_found"),
            404,
            "invalid_request_error",
            "model_not_found",
        ),
        (
            404,
            "<html>not found at 10.0.0.7</html>",
            404,
            "invalid_request_error",
            "model_not_found",
        ),
        (
            422,
            quoted("invalid_value"),
            422,
            "invalid_request_error",
            "invalid_value",
        ),
        (
            401,
            quoted("invalid_api_key"),
            502,
            "server_error",
            "upstream_auth_failed",
        ),
        (
            403,
            quoted("unsupported_country"),
            502,
            "server_error",
            "upstream_auth_failed",
        ),
    ];
    for (status, body, expected_status, kind, code) in cases {
        let upstream = Upstream {
            name: "primary".to_owned(),
            base_url: crafted_upstream(status, body).await,
            api: Api::Chat,
            api_key: Some(PRIMARY_KEY.to_owned()),
            model: None,
            provider: ProviderClassifier::OpenAi,
            limits: Limits::unlimited(),
            max_wait: None,
            context_window: None,
        };
        let addr = serve(&upstream, None).await;
        let answer = chat(addr).await;
        let case = format!("{status} {body}");
        assert_eq!(
            answer.status.as_u16(),
            expected_status,
            "{case}: {}",
            answer.text
        );
        assert_eq!(answer.body["error"]["type"], kind, "{case}");
        assert_eq!(answer.code(), code, "{case}");
        assert_eq!(answer.header("x-should-retry"), Some("false"), "{case}");
        assert_eq!(answer.header("x-request-id"), Some("req_123"), "{case}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty());
        for leak in LEAKS {
            assert!(!answer.text.contains(leak), "{case}: {}", answer.text);
        }
        answer.assert_no_key();
    }
}

/// The gateway's answer to each kind of upstream error, without a network: status, type and
/// code, and the wait.
#[test]
fn upstream_refusals_keep_the_class_and_a_safe_code_only() {
    use axum_gateway::{safe_code, upstream_refusal};
    use tollgate::{ErrorClass, Verdict};

    let body = |code: &str| format!(r#"{{"error":{{"message":"sk-secret","code":"{code}"}}}}"#);
    let of = |status: u16| {
        Verdict::of_status(
            StatusCode::from_u16(status).unwrap(),
            &http::HeaderMap::new(),
            std::time::SystemTime::UNIX_EPOCH,
        )
    };
    let rate_limited = Verdict::failure(ErrorClass::RateLimited).with_delay(
        Duration::from_secs(7),
        tollgate::DelaySource::RetryAfterSeconds,
    );
    let quota =
        Verdict::failure(ErrorClass::QuotaExhausted).with_advice(tollgate::RetryAdvice::Never);
    let overloaded = Verdict::failure(ErrorClass::Overloaded);
    /// Upstream status, verdict and body; the caller's status, type, code and wait (seconds).
    type Row = (
        u16,
        Verdict,
        String,
        u16,
        &'static str,
        &'static str,
        Option<u64>,
    );
    let cases: Vec<Row> = vec![
        (
            429,
            rate_limited,
            body("rate_limit_exceeded"),
            429,
            "requests",
            "rate_limit_exceeded",
            Some(7),
        ),
        (
            429,
            quota,
            body("insufficient_quota"),
            429,
            "insufficient_quota",
            "insufficient_quota",
            None,
        ),
        (
            400,
            Verdict::failure(ErrorClass::ContextWindowExceeded),
            "{}".to_owned(),
            400,
            "invalid_request_error",
            "context_length_exceeded",
            None,
        ),
        (
            400,
            of(400),
            body("Not_Safe"),
            400,
            "invalid_request_error",
            "invalid_request",
            None,
        ),
        (
            400,
            of(400),
            body("a__b"),
            400,
            "invalid_request_error",
            "invalid_request",
            None,
        ),
        (
            413,
            of(413),
            "not json".to_owned(),
            413,
            "invalid_request_error",
            "request_too_large",
            None,
        ),
        (
            407,
            of(407),
            body("proxy"),
            502,
            "server_error",
            "upstream_auth_failed",
            None,
        ),
        (
            500,
            of(500),
            body("server_error"),
            500,
            "server_error",
            "server_error",
            Some(1),
        ),
        (
            529,
            overloaded,
            "{}".to_owned(),
            503,
            "server_error",
            "upstream_unavailable",
            Some(1),
        ),
        (
            520,
            of(520),
            "{}".to_owned(),
            502,
            "server_error",
            "upstream_unavailable",
            Some(1),
        ),
        (
            302,
            of(302),
            body("moved"),
            502,
            "server_error",
            "upstream_error",
            None,
        ),
        // A wait beyond a day is advertised as a day (its milliseconds would not fit).
        (
            429,
            Verdict::failure(ErrorClass::RateLimited).with_delay(
                Duration::from_secs(2_011_901_686_167_809_024),
                tollgate::DelaySource::RetryAfterSeconds,
            ),
            body("rate_limit_exceeded"),
            429,
            "requests",
            "rate_limit_exceeded",
            Some(86_400),
        ),
        // Anthropic's shape: the type is the code.
        (
            404,
            of(404),
            r#"{"type":"error","error":{"type":"not_found_error","message":"x"}}"#.to_owned(),
            404,
            "invalid_request_error",
            "not_found_error",
            None,
        ),
        // Gemini's: a list.
        (
            400,
            of(400),
            r#"[{"error":{"code":400,"status":"INVALID_ARGUMENT"}}]"#.to_owned(),
            400,
            "invalid_request_error",
            "invalid_request",
            None,
        ),
    ];
    for (status, verdict, body, expected, kind, code, wait) in cases {
        let refusal = upstream_refusal(
            StatusCode::from_u16(status).unwrap(),
            &verdict,
            body.as_bytes(),
        );
        let case = format!("{status} {body}");
        assert_eq!(refusal.status.as_u16(), expected, "{case}");
        assert_eq!(refusal.kind, kind, "{case}");
        assert_eq!(refusal.code, code, "{case}");
        assert_eq!(refusal.retry_after, wait.map(Duration::from_secs), "{case}");
        assert!(!refusal.message.contains("sk-secret"), "{case}");
    }
    for code in ["context_length_exceeded", "model_not_found", "x"] {
        assert!(safe_code(code), "{code}");
    }
    for code in [
        "",
        "_x",
        "x_",
        "a__b",
        "sk-proj-abc",
        "Key",
        "k3y",
        "a b",
        &"a".repeat(65),
    ] {
        assert!(!safe_code(code), "{code}");
    }
}

/// A client that writes its whole over-limit body before it reads anything (Python's `urllib`)
/// reads the 413: the gateway reads and discards the rest first. Announced or chunked alike.
#[tokio::test(start_paused = true)]
async fn an_over_limit_body_written_whole_still_gets_its_413() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;
    let over = axum_gateway::MAX_BODY + 1024 * 1024;

    let mut announced = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-length: {over}\r\n\r\n"
    );
    announced.write_all(head.as_bytes()).await.unwrap();
    announced.write_all(&vec![b' '; over]).await.unwrap();
    let (status, head, body) = read_answer(&mut announced).await;
    assert_eq!(status, 413, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_too_large");
    closed(&mut announced).await;

    // Chunked: found too large while reading, the rest read all the same.
    let mut chunked = TcpStream::connect(addr).await.unwrap();
    chunked
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..over / chunk.len() + 1 {
        chunked
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        chunked.write_all(&chunk).await.unwrap();
        chunked.write_all(b"\r\n").await.unwrap();
    }
    chunked.write_all(b"0\r\n\r\n").await.unwrap();
    assert_eq!(read_answer(&mut chunked).await.0, 413);
    assert_eq!(mock.stats().requests, 0);
}

/// A body announced beyond the drain's bound ([`MAX_DRAIN`](axum_gateway::MAX_DRAIN)) is
/// refused at once, before any of it is read, and the connection closed.
#[tokio::test(start_paused = true)]
async fn a_body_beyond_the_drain_bound_is_refused_at_once() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-length: {}\r\n\r\n",
        axum_gateway::MAX_DRAIN + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let (status, head, _) = read_answer(&mut stream).await;
    assert_eq!(status, 413);
    assert_eq!(Instant::now(), sent, "at once");
    assert!(head.contains("connection: close"), "{head}");
    closed(&mut stream).await;
}

/// Every variable the gateway reads is checked at start, and an error names the variable and
/// what is wrong — never the value, here a marker standing for a key or a password.
#[test]
fn environment_errors_name_the_variable_never_the_value() {
    use std::ffi::OsString;

    use axum_gateway::settings;

    const MARKER: &str = "MARKER-SECRET-1";
    let primary = |extra: &[(&'static str, String)]| {
        let mut vars = vec![(
            "GATEWAY_PRIMARY_URL",
            "https://api.example.com/v1".to_owned(),
        )];
        vars.extend_from_slice(extra);
        vars
    };
    let error_of = |vars: Vec<(&'static str, String)>| {
        settings(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
        .unwrap_err()
    };
    let url = |v: String| vec![("GATEWAY_PRIMARY_URL", v)];
    let mut cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            url(format!("https://api.example.com/v1?key={MARKER}")),
            "GATEWAY_PRIMARY_URL: has a query",
        ),
        (
            url(format!("https://user:{MARKER}@api.example.com")),
            "GATEWAY_PRIMARY_URL: holds user info",
        ),
        (
            url(MARKER.to_owned()),
            "GATEWAY_PRIMARY_URL: not an absolute http or https URL",
        ),
        (
            url(format!("ftp://{MARKER}")),
            "GATEWAY_PRIMARY_URL: not an absolute http or https URL",
        ),
        (
            url(format!("https://{MARKER} x")),
            "GATEWAY_PRIMARY_URL: not a URL",
        ),
        (url(String::new()), "GATEWAY_PRIMARY_URL: is empty"),
        (
            primary(&[("GATEWAY_PRIMARY_KEY", format!("{MARKER}\n"))]),
            "GATEWAY_PRIMARY_KEY: not a valid header value",
        ),
        (
            primary(&[("GATEWAY_PRIMARY_KEY", " ".to_owned())]),
            "GATEWAY_PRIMARY_KEY: is empty",
        ),
        (
            primary(&[("GATEWAY_PRIMARY_MODEL", String::new())]),
            "GATEWAY_PRIMARY_MODEL: is empty",
        ),
        (
            primary(&[("GATEWAY_PRIMARY_PROVIDER", MARKER.to_owned())]),
            "GATEWAY_PRIMARY_PROVIDER: unknown provider; expected one of openai",
        ),
        (
            primary(&[("GATEWAY_PRIMARY_RPM", MARKER.to_owned())]),
            "GATEWAY_PRIMARY_RPM: not a number from 1 to",
        ),
        (
            primary(&[("GATEWAY_PRIMARY_TPM", "0".to_owned())]),
            "GATEWAY_PRIMARY_TPM: not a number from 1 to",
        ),
        (
            vec![("GATEWAY_FALLBACK_URL", "https://api.example.com".to_owned())],
            "GATEWAY_FALLBACK_URL: set without GATEWAY_PRIMARY_URL",
        ),
        (
            primary(&[("GATEWAY_FALLBACK_URL", format!("https://h/?k={MARKER}"))]),
            "GATEWAY_FALLBACK_URL: has a query",
        ),
        (
            primary(&[
                ("GATEWAY_FALLBACK_URL", "https://h".to_owned()),
                ("GATEWAY_FALLBACK_KEY", format!("{MARKER}\r")),
            ]),
            "GATEWAY_FALLBACK_KEY: not a valid header value",
        ),
        (
            vec![("GATEWAY_ADDR", MARKER.to_owned())],
            "GATEWAY_ADDR: not a host and a port",
        ),
        (
            vec![("GATEWAY_ADDR", format!("{MARKER}:99999"))],
            "GATEWAY_ADDR: not a host and a port",
        ),
        (
            vec![("GATEWAY_MAX_CONNECTIONS", MARKER.to_owned())],
            "GATEWAY_MAX_CONNECTIONS: not a number from 1 to",
        ),
        (
            vec![("GATEWAY_MAX_CONNECTIONS", "0".to_owned())],
            "GATEWAY_MAX_CONNECTIONS: not a number from 1 to",
        ),
    ];
    #[cfg(feature = "redis")]
    cases.extend([
        (
            vec![("GATEWAY_REDIS_URL", format!("https://:{MARKER}@cache"))],
            "GATEWAY_REDIS_URL: not a Redis URL",
        ),
        (
            vec![("GATEWAY_REDIS_URL", MARKER.to_owned())],
            "GATEWAY_REDIS_URL: not a Redis URL",
        ),
        (
            vec![
                ("GATEWAY_REDIS_URL", "redis://cache".to_owned()),
                ("GATEWAY_REPLICAS", MARKER.to_owned()),
            ],
            "GATEWAY_REPLICAS: not a number from 1 to",
        ),
        (
            vec![
                ("GATEWAY_REDIS_URL", "redis://cache".to_owned()),
                ("GATEWAY_REDIS_PREFIX", "a b".to_owned()),
            ],
            "GATEWAY_REDIS_PREFIX: must not be empty",
        ),
    ]);
    #[cfg(not(feature = "redis"))]
    cases.push((
        vec![("GATEWAY_REDIS_URL", format!("redis://:{MARKER}@cache"))],
        "GATEWAY_REDIS_URL: set, but this gateway was built without the `redis` feature",
    ));
    for (vars, expected) in cases {
        let error = error_of(vars.clone());
        let shown = format!("{error} {error:?}");
        assert!(error.to_string().starts_with(expected), "{vars:?}: {error}");
        assert!(!shown.contains(MARKER), "{vars:?}: {shown}");
    }

    // A value that is not Unicode.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let error = settings(|name| match name {
            "GATEWAY_PRIMARY_URL" => Some(OsString::from("https://api.example.com")),
            "GATEWAY_PRIMARY_KEY" => Some(OsString::from_vec(vec![b'k', 0xff])),
            _ => None,
        });
        assert_eq!(
            error.unwrap_err().to_string(),
            "GATEWAY_PRIMARY_KEY: not valid Unicode (the value is not shown)"
        );
    }

    // Good settings: the key in no `Debug` output, the URLs redacted.
    let vars = [
        (
            "GATEWAY_PRIMARY_URL",
            "https://api.example.com/v1".to_owned(),
        ),
        ("GATEWAY_PRIMARY_KEY", MARKER.to_owned()),
        ("GATEWAY_PRIMARY_PROVIDER", "anthropic".to_owned()),
        ("GATEWAY_PRIMARY_RPM", "60".to_owned()),
        ("GATEWAY_ADDR", "127.0.0.1:8080".to_owned()),
        ("GATEWAY_MAX_CONNECTIONS", "10".to_owned()),
    ];
    let settings = settings(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| OsString::from(v))
    })
    .unwrap();
    let shown = format!("{settings:?}");
    assert!(!shown.contains(MARKER), "{shown}");
    assert!(
        shown.contains(r#"base_url: "https://api.example.com/v1""#),
        "{shown}"
    );
    assert!(shown.contains(r#"api_key: Some("<redacted>")"#), "{shown}");
    assert_eq!(settings.max_connections, 10);
    let primary = settings.primary.unwrap();
    assert_eq!(primary.provider, ProviderClassifier::Anthropic);
    assert_eq!(primary.api_key.as_deref(), Some(MARKER));
}

/// An upstream's `Debug` shows its base URL redacted and never its key.
#[test]
fn an_upstreams_debug_hides_its_key_and_redacts_its_url() {
    let upstream = Upstream {
        name: "primary".to_owned(),
        base_url: "https://user:MARKER-1@llm.internal/v1?key=MARKER-2".to_owned(),
        api: Api::Chat,
        api_key: Some("MARKER-3".to_owned()),
        model: None,
        provider: ProviderClassifier::OpenAi,
        limits: Limits::unlimited(),
        max_wait: None,
        context_window: None,
    };
    let shown = format!("{upstream:?}");
    assert!(!shown.contains("MARKER"), "{shown}");
    assert!(
        shown.contains("https://<redacted>@llm.internal/v1?key=<redacted>"),
        "{shown}"
    );
}

/// `app` takes any stack with the same request convention: here a ready
/// [`Stack`](tollgate::stack::Stack), which addresses and authenticates the request itself.
#[cfg(feature = "stack")]
#[tokio::test(start_paused = true)]
async fn the_router_serves_a_ready_stack_too() {
    use tollgate::stack::{Provider, StackBuilder};
    let mock = start(primary_config()).await;
    let stack = StackBuilder::new(
        Provider::openai_compatible(&mock.base_url())
            .with_name("mock")
            .with_api_key(PRIMARY_KEY),
    )
    .build(ReqwestTransport::new(reqwest::Client::new()))
    .unwrap();
    let addr = listen(app(stack)).await;

    let answer = chat(addr).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.assert_no_key();
    assert_eq!(mock.stats().ok, 1);
}

// ===== bounds on callers =====

/// A request head that is never finished.
const PARTIAL_HEAD: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\n";

/// A complete request for another path: answered (404) by the gateway alone.
const ELSEWHERE: &[u8] = b"GET /v1/models HTTP/1.1\r\nhost: gateway\r\n\r\n";

/// Lets the gateway read everything sent so far (see the module docs).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Reads until the gateway closes `stream`; when it did.
async fn closed(stream: &mut TcpStream) -> Instant {
    let mut chunk = [0; 1024];
    while let Ok(1..) = stream.read(&mut chunk).await {}
    Instant::now()
}

/// Reads one answer from `stream`: its status, its head and its body (by `content-length`).
async fn read_answer(stream: &mut TcpStream) -> (u16, String, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0; 1024];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "closed before an answer");
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "closed within an answer");
        bytes.extend_from_slice(&chunk[..n]);
    }
    let status = head[9..12].parse().unwrap();
    let body = String::from_utf8_lossy(&bytes[head_end..]).into_owned();
    (status, head, body)
}

/// A slowloris — part of a head, then nothing — is closed exactly [`HEAD_TIMEOUT`] after its
/// first byte, while another caller is served meanwhile.
#[tokio::test(start_paused = true)]
async fn a_slow_head_is_cut_off_while_others_are_served() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(PARTIAL_HEAD).await.unwrap();
    let sent = Instant::now();
    assert_eq!(chat(addr).await.status, StatusCode::OK);
    assert_eq!(closed(&mut slow).await - sent, HEAD_TIMEOUT);
    assert_eq!(mock.stats().requests, 1);
}

/// A connection that sends nothing — new, or kept alive after an answer — is closed exactly
/// [`IDLE_TIMEOUT`] after it became free (not at the shorter head timeout).
#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(ELSEWHERE).await.unwrap();
    let (status, head, _) = read_answer(&mut kept).await;
    assert_eq!(status, 404);
    assert!(!head.contains("connection: close"), "{head}");
    let answered = Instant::now();

    assert_eq!(closed(&mut silent).await - opened, IDLE_TIMEOUT);
    assert_eq!(closed(&mut kept).await - answered, IDLE_TIMEOUT);
}

/// A body that never finishes is answered 408, in OpenAI's shape, exactly [`BODY_TIMEOUT`]
/// after its head, and the connection is closed.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_gets_408() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":")
        .await
        .unwrap();
    let sent = Instant::now();
    let (status, head, body) = read_answer(&mut stream).await;
    assert_eq!(Instant::now() - sent, BODY_TIMEOUT);
    assert_eq!(status, 408);
    assert!(head.contains("connection: close"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    closed(&mut stream).await;
    assert_eq!(mock.stats().requests, 0);
}

/// With the body budget (here 1 KiB) held by a body being read, a new request is refused at
/// once with a 503 to retry in 1 s; once that body is gone, requests are read again.
#[tokio::test(start_paused = true)]
async fn a_full_body_budget_gives_503_with_retry_after() {
    let mock = start(primary_config()).await;
    let limits = BodyLimits {
        budget: 1024,
        ..BodyLimits::default()
    };
    let stack = gateway_stack(&primary(&mock), None);
    let addr = listen(app_with(stack, limits)).await;

    let mut holder = TcpStream::connect(addr).await.unwrap();
    holder
        .write_all(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-length: 2048\r\n\r\n",
        )
        .await
        .unwrap();
    holder.write_all(&[b' '; 1024]).await.unwrap();
    settle().await;

    let refused = chat(addr).await;
    refused.assert_told_to_wait(StatusCode::SERVICE_UNAVAILABLE, 1);
    assert_eq!(refused.code(), "gateway_busy");
    assert_eq!(refused.body["error"]["type"], "server_error");
    assert_eq!(refused.header("connection"), Some("close"));

    drop(holder);
    settle().await;
    assert_eq!(chat(addr).await.status, StatusCode::OK);
    assert_eq!(mock.stats().requests, 1);
}

/// Beyond the cap (here 2), a new connection takes the place of the one free (no request in
/// flight) the longest, which is closed at once; with both inside busy, the new one is closed
/// at once itself. (`chaos.rs` floods the default cap with 2,000.)
#[tokio::test(start_paused = true)]
async fn connections_beyond_the_cap_replace_the_idlest_or_are_closed() {
    /// A head whose 2-byte body is still to come: in flight until it does.
    const HEAD: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n";
    let mock = start(primary_config()).await;
    let limits = ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    };
    let stack = gateway_stack(&primary(&mock), None);
    let (addr, _) = listen_with(app(stack), limits, std::future::pending()).await;

    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    for inside in [&mut first, &mut second] {
        inside.write_all(HEAD).await.unwrap();
    }
    settle().await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    let at = Instant::now();
    assert_eq!(closed(&mut third).await, at, "both busy: closed at once");

    // A body that is not a JSON object: 400, and the connection is kept.
    for inside in [&mut first, &mut second] {
        tokio::time::sleep(Duration::from_secs(1)).await;
        inside.write_all(b"[]").await.unwrap();
        let (status, head, _) = read_answer(inside).await;
        assert_eq!(status, 400);
        assert!(!head.contains("connection: close"), "{head}");
    }
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    let at = Instant::now();
    assert_eq!(closed(&mut first).await, at, "the idlest closed at once");
    for inside in [&mut fourth, &mut second] {
        inside.write_all(ELSEWHERE).await.unwrap();
        assert_eq!(read_answer(inside).await.0, 404);
    }
    assert_eq!(mock.stats().requests, 0);
}

/// On shutdown, a request in flight that finishes within the drain is answered, new
/// connections are refused, and the gateway stops as soon as it is done.
#[tokio::test(start_paused = true)]
async fn shutdown_drains_requests_in_flight() {
    let mock = start(primary_config().with_latency(Latency::Fixed { ms: 2_000 })).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stack = gateway_stack(&primary(&mock), None);
    let (addr, server) = listen_with(app(stack), ConnectionLimits::default(), async {
        let _ = stopped.await;
    })
    .await;

    let call = tokio::spawn(chat(addr));
    settle().await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap(), 0, "none aborted");
    // The rest of the upstream's 2 s, `settle` having taken 1 ms of it.
    assert_eq!(Instant::now() - asked, Duration::from_millis(1_999));
    assert_eq!(call.await.unwrap().status, StatusCode::OK);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// On shutdown with a request to a hung upstream in flight, the gateway drains for exactly
/// [`DRAIN`], then aborts the request — its caller sees the connection close — and stops.
#[tokio::test(start_paused = true)]
async fn shutdown_finishes_within_the_drain_despite_a_hung_upstream() {
    let mock = start(primary_config().with_hang_rate(1.0)).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stack = gateway_stack(&primary(&mock), None);
    let (addr, server) = listen_with(app(stack), ConnectionLimits::default(), async {
        let _ = stopped.await;
    })
    .await;

    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
    let call = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send(),
    );
    while mock.stats().requests == 0 {
        settle().await;
    }
    let asked = Instant::now();
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap(), 1, "the hung request was aborted");
    assert_eq!(Instant::now() - asked, DRAIN);
    assert!(call.await.unwrap().is_err(), "the connection was closed");
}

/// A second signal during the drain aborts what is left at once: the hung request is cut 2 s
/// into the drain, not after all of it.
#[tokio::test(start_paused = true)]
async fn a_second_signal_cuts_the_drain_short() {
    let mock = start(primary_config().with_hang_rate(1.0)).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
    let stack = gateway_stack(&primary(&mock), None);
    let shutdown = async {
        let _ = stopped.await;
    };
    let abort_now = async {
        let _ = aborted.await;
    };
    let (addr, server) =
        listen_until(app(stack), ConnectionLimits::default(), shutdown, abort_now).await;

    let call = tokio::spawn(chat(addr));
    while mock.stats().requests == 0 {
        settle().await;
    }
    let asked = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    abort.send(()).unwrap();
    assert_eq!(server.await.unwrap(), 1, "the hung request was aborted");
    assert_eq!(Instant::now() - asked, Duration::from_secs(2));
    call.abort();
}

/// A body that never ends: 64 KiB of `x` each time it is asked.
struct Endless;

impl http_body::Body for Endless {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
        let chunk = bytes::Bytes::from_static(&CHUNK);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

/// A caller that asks for an endless answer and then reads nothing: once the socket's
/// buffers are full, the gateway's write waits, and after [`WRITE_TIMEOUT`] of waiting the
/// connection is closed — while another caller is served meanwhile.
#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_reading_is_cut_off() {
    let endless = axum::Router::new().route(
        "/endless",
        axum::routing::get(|| async { axum::body::Body::new(Endless) }),
    );
    let mock = start(primary_config()).await;
    let router = endless.merge(app(gateway_stack(&primary(&mock), None)));
    let addr = listen(router).await;

    let mut reader = TcpStream::connect(addr).await.unwrap();
    reader
        .write_all(b"GET /endless HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for longer than the limit; another caller is served meanwhile.
    tokio::time::sleep(WRITE_TIMEOUT / 2).await;
    assert_eq!(chat(addr).await.status, StatusCode::OK);
    tokio::time::sleep(WRITE_TIMEOUT).await;
    // Whatever was buffered before the write blocked, then the end: the connection is closed.
    let mut read = 0_usize;
    let mut chunk = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = reader.read(&mut chunk).await {
        read += n;
        assert!(read < 256 << 20, "still writing after {read} bytes");
    }
    assert!(read > 0);
}

/// An event stream passes through as it comes: the upstream sends two events and then stalls,
/// never ending its stream, and the caller still gets both.
#[tokio::test(start_paused = true)]
async fn an_event_stream_is_not_buffered() {
    let mock = start(primary_config().with_stream_stall(StreamFault::after(2))).await;
    let addr = serve_primary(&mock).await;

    let body = r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut received = String::new();
    // A bound only a buffered stream reaches (the stalled one never ends), virtual and so
    // instant.
    let streamed = tokio::time::timeout(Duration::from_secs(60), async {
        let mut response = reqwest::Client::new()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        while received.matches("data: ").count() < 2 {
            let chunk = response.chunk().await.unwrap().expect("the stream stalls");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(streamed.is_ok(), "events held back: {received:?}");
}

// ===== both APIs: Anthropic's route, translation, context windows, defaults =====

/// POSTs `body` to `path` at the gateway at `addr` as Anthropic's SDK would (`x-api-key`,
/// `anthropic-version`).
async fn post_messages(addr: SocketAddr, body: &str) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/v1/messages"))
        .header("content-type", "application/json")
        .header("x-api-key", "caller-key")
        .header("anthropic-version", "2023-06-01")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

/// An Anthropic Messages request, streamed or not.
fn messages_body(stream: bool) -> String {
    serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 20,
        "stream": stream,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello."}],
    })
    .to_string()
}

/// The fallback upstream: Anthropic-shaped (Messages), on `mock`, sent the fallback's key.
fn anthropic(name: &str, mock: &MockServer) -> Upstream {
    upstream(name, mock, FALLBACK_KEY, ProviderClassifier::Anthropic)
}

/// The SSE events of `text`: each event's name (`message` when it has none) and data.
fn events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(|value| value.trim_start().to_owned())
            };
            (
                field("event:").unwrap_or_else(|| "message".to_owned()),
                field("data:").unwrap_or_default(),
            )
        })
        .collect()
}

/// An Anthropic caller in front of an Anthropic upstream: the request goes as it came (with
/// the upstream's `x-api-key` and `anthropic-version`), the answer comes back as it went, with
/// the upstream's request id and rate-limit headers.
#[tokio::test(start_paused = true)]
async fn an_anthropic_caller_is_served_by_an_anthropic_upstream() {
    let mock = start(
        MockConfig::anthropic()
            .with_api_key(FALLBACK_KEY)
            .with_requests_per_minute(50),
    )
    .await;
    let addr = serve(&anthropic("primary", &mock), None).await;

    let answer = post_messages(addr, &messages_body(false)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["type"], "message");
    assert!(
        answer.body["content"][0]["text"].is_string(),
        "{}",
        answer.text
    );
    assert!(answer.body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(
        answer.header("request-id").is_some(),
        "{:?}",
        answer.headers
    );
    assert_eq!(
        answer.header("anthropic-ratelimit-requests-limit"),
        Some("50"),
        "the upstream's rate-limit headers are passed on"
    );
    answer.assert_no_key();
    assert_eq!(mock.stats().ok, 1);
}

/// An Anthropic caller in front of an OpenAI upstream: the request is translated to Chat
/// Completions, the answer back to a Messages `message`, a stream to Anthropic's events (named
/// as Anthropic names them, in order, with the usage at the end), its `cache-control` kept.
#[tokio::test(start_paused = true)]
async fn an_anthropic_caller_is_translated_for_an_openai_upstream() {
    let mock = start(primary_config()).await;
    let addr = serve_primary(&mock).await;

    let answer = post_messages(addr, &messages_body(false)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["type"], "message");
    assert_eq!(answer.body["role"], "assistant");
    assert_eq!(answer.body["content"][0]["type"], "text");
    assert!(
        !answer.body["content"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(
        ["end_turn", "max_tokens"].contains(&answer.body["stop_reason"].as_str().unwrap()),
        "{}",
        answer.text
    );
    assert!(answer.body["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let streamed = post_messages(addr, &messages_body(true)).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert!(
        streamed
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(streamed.header("cache-control"), Some("no-cache"));
    let events = events(&streamed.text);
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert!(names.contains(&"content_block_delta"), "{names:?}");
    let delta = events
        .iter()
        .find(|(name, _)| name == "message_delta")
        .map(|(_, data)| serde_json::from_str::<serde_json::Value>(data).unwrap())
        .unwrap();
    assert!(
        delta["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{delta}"
    );
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .map(|(_, data)| {
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            data["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(!text.is_empty());
    assert_eq!(mock.stats().ok, 2);
}

/// An OpenAI caller in front of an Anthropic upstream: a `chat.completion` back, and a stream
/// of `chat.completion.chunk`s ending in the usage chunk it asked for and `[DONE]`.
#[tokio::test(start_paused = true)]
async fn an_openai_caller_is_translated_for_an_anthropic_upstream() {
    let mock = start(MockConfig::anthropic().with_api_key(FALLBACK_KEY)).await;
    let addr = serve(&anthropic("primary", &mock), None).await;

    let answer = chat(addr).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["object"], "chat.completion");
    assert!(answer.body["choices"][0]["message"]["content"].is_string());
    assert!(answer.body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let body = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}"#;
    let streamed = post(addr, body).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text);
    assert_eq!(streamed.header("cache-control"), Some("no-cache"));
    let data: Vec<String> = events(&streamed.text)
        .into_iter()
        .map(|(_, data)| data)
        .collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let chunks: Vec<serde_json::Value> = data[..data.len() - 1]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"].is_string()),
        "a finish reason"
    );
    assert_eq!(mock.stats().ok, 2);
}

/// Anthropic's callers get Anthropic's error shape, `{"type":"error","error":{…}}`, with the
/// same statuses and waits as OpenAI's: the gateway's quota (429 `rate_limit_error` with
/// `retry-after`), a body that is not JSON, an unknown path, every upstream down (503
/// `api_error`, never a rate limit), and a feature the upstream's API lacks (400 naming it,
/// nothing sent).
#[tokio::test(start_paused = true)]
async fn anthropic_callers_get_anthropic_errors() {
    let mock = start(primary_config()).await;
    let addr = serve(&reject_only(&mock), None).await;
    let kind = |answer: &Answer| {
        assert_eq!(answer.body["type"], "error", "{}", answer.text);
        answer.body["error"]["type"].as_str().unwrap().to_owned()
    };

    let untranslatable = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 20,
        "top_k": 5,
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let refused = post_messages(addr, &untranslatable.to_string()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(kind(&refused), "invalid_request_error");
    assert!(refused.text.contains("top_k"), "{}", refused.text);
    assert_eq!(mock.stats().requests, 0, "nothing was sent");

    assert_eq!(post_messages(addr, &messages_body(false)).await.status, 200);
    let limited = post_messages(addr, &messages_body(false)).await;
    limited.assert_told_to_wait(StatusCode::TOO_MANY_REQUESTS, 60);
    assert_eq!(kind(&limited), "rate_limit_error");

    let not_json = post_messages(addr, "hello").await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(kind(&not_json), "invalid_request_error");

    let unknown = reqwest::Client::new()
        .post(format!("http://{addr}/v1/complete"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unknown: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(unknown["error"]["type"], "not_found_error", "{unknown}");

    let down = start(primary_config()).await;
    down.set_outage(true);
    let addr = serve_primary(&down).await;
    for _ in 0..8 {
        let answer = post_messages(addr, &messages_body(false)).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            answer.text
        );
        assert_eq!(kind(&answer), "api_error");
        assert_eq!(answer.header("x-should-retry"), Some("true"));
        answer.assert_no_key();
    }
}

/// A prompt too long for the primary's context window goes to the fallback when the
/// fallback's window is larger (or not known); when it is known to be no larger, the
/// primary's 400 `context_length_exceeded` goes back.
#[tokio::test(start_paused = true)]
async fn a_prompt_too_long_for_the_primary_goes_to_a_larger_fallback() {
    let small = start(primary_config().with_context_window(100)).await;
    let large = start(MockConfig::anthropic().with_api_key(FALLBACK_KEY)).await;
    let long = "word ".repeat(400);
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": long}],
    })
    .to_string();

    let primary_upstream = Upstream {
        context_window: Some(100),
        ..primary(&small)
    };
    let larger = Upstream {
        context_window: Some(200_000),
        ..anthropic("fallback", &large)
    };
    let addr = serve(&primary_upstream, Some(&larger)).await;
    let answer = post(addr, body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!((small.stats().ok, large.stats().ok), (0, 1));

    let no_larger = Upstream {
        context_window: Some(100),
        ..anthropic("fallback", &large)
    };
    let addr = serve(&primary_upstream, Some(&no_larger)).await;
    let answer = post(addr, body).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    assert_eq!(answer.code(), "context_length_exceeded");
    assert_eq!(large.stats().ok, 1, "the fallback was not tried");
}

/// With no quota configured, an upstream's limit is the adaptive one, which learns the
/// provider's: the gateway sends upstream about as many requests as its callers send it,
/// rather than multiplying them with 429s and retries.
#[tokio::test(start_paused = true)]
async fn without_a_configured_quota_the_gateway_learns_the_upstreams() {
    let settings = axum_gateway::settings(|name| match name {
        "GATEWAY_PRIMARY_URL" => Some("http://127.0.0.1:9/v1".into()),
        _ => None,
    })
    .unwrap();
    let configured = settings.primary.unwrap();
    assert!(
        configured.limits.adaptive_config().is_some(),
        "{configured:?}"
    );

    let mock = start(primary_config().with_requests_per_minute(60)).await;
    let adaptive = Upstream {
        limits: configured.limits,
        max_wait: Some(Duration::from_secs(5)),
        ..primary(&mock)
    };
    let addr = serve(&adaptive, None).await;
    // 120 callers, 4 a second for 30 s, against 1 a second upstream.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..120u64 {
        calls.spawn(async move {
            tokio::time::sleep(Duration::from_millis(250 * i)).await;
            chat(addr).await.status
        });
    }
    let mut served = 0;
    while let Some(status) = calls.join_next().await {
        served += usize::from(status.unwrap() == StatusCode::OK);
    }
    let stats = mock.stats();
    println!(
        "served {served} of 120; upstream: {} requests, {} rate limited",
        stats.requests, stats.rate_limited
    );
    assert!(served >= 30, "{served}");
    assert!(
        stats.requests <= 150,
        "{} upstream requests for 120 callers",
        stats.requests
    );
    assert!(stats.rate_limited <= 5, "{} 429s", stats.rate_limited);
}

// ===== several gateways, one quota (Redis) =====

#[cfg(feature = "redis")]
#[path = "../crates/tollgate-redis/tests/support/mod.rs"]
mod redis_support;

/// Two gateways in front of one upstream that admits 10 requests a minute, each holding its
/// requests to that quota (refusing what it cannot admit within a second, and retrying
/// nothing), its quota kept as `quotas` says; 10 callers at once at each gateway. What the
/// callers got (successes, 429s), and what the upstream did.
///
/// The wait allowed is not zero: through Redis every admission takes a round trip, and a
/// request queued behind one still being admitted would be refused at once.
#[cfg(feature = "redis")]
async fn two_gateways(quotas: &Quotas) -> (usize, usize, tollgate_mock::MockStats) {
    let mock = start(
        primary_config()
            .with_requests_per_minute(10)
            .with_tokens_per_minute(1_000_000),
    )
    .await;
    let upstream = Upstream {
        limits: per_minute(10, 1_000_000).unwrap(),
        max_wait: Some(Duration::from_secs(1)),
        ..primary(&mock)
    };
    let no_retries = retry_policy().with_max_retries(0);
    let mut gateways = Vec::new();
    for _ in 0..2 {
        let transport = ReqwestTransport::new(reqwest::Client::new());
        let stack = stack(&upstream, None, &no_retries, quotas, transport).unwrap();
        gateways.push(listen(app(stack)).await);
    }
    let mut callers = tokio::task::JoinSet::new();
    for &addr in &gateways {
        for _ in 0..10 {
            callers.spawn(chat(addr));
        }
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(answer) = callers.join_next().await {
        let answer = answer.unwrap();
        answer.assert_no_key();
        match answer.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    let stats = mock.stats();
    mock.shutdown().await;
    (ok, refused, stats)
}

/// Two gateways given the same Redis keep to the upstream's quota together: of 20 callers,
/// 10 are served and 10 refused by the gateways themselves, and the upstream sends no 429.
/// Two gateways with their quotas in memory each spend the whole quota, and the upstream
/// refuses what is beyond its own. On the real clock (Redis's), about a second.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_redis_keep_to_one_quota() {
    use tollgate::ratelimit::redis::RedisConfig;

    let Some(redis) = redis_support::start() else {
        return;
    };
    let shared = Quotas::Shared(
        RedisConfig::new(redis.url())
            .with_prefix("gateway-test")
            .with_replicas(2),
    );
    let (ok, refused, upstream) = two_gateways(&shared).await;
    assert_eq!((ok, refused), (10, 10));
    assert_eq!((upstream.ok, upstream.rate_limited), (10, 0));

    // Each gateway sends up to its whole quota (one may hold back its last requests once the
    // upstream's headers said the quota is spent).
    let (ok, refused, upstream) = two_gateways(&Quotas::Local).await;
    assert_eq!((ok, refused), (10, 10));
    assert!(upstream.requests > 10, "{upstream:?}");
    assert!(upstream.rate_limited > 0, "{upstream:?}");
}
