//! End to end: tollgate stacks over real HTTP clients — hyper-util's legacy client and reqwest
//! (through `tollgate::transport::ReqwestTransport`) — on loopback against `tollgate-mock`.
//!
//! Every test runs on tokio's paused clock (`start_paused`, current-thread runtime): when every
//! task waits, for a quota, a retry delay or the mock's latency, tokio jumps to the next timer,
//! so minutes of quota pass in moments and delays can be asserted exactly. Loopback sockets do
//! not break this: on the current-thread runtime a socket that became readable wakes its task
//! during the driver's zero-timeout poll, and the clock only moves when nothing did. No test
//! sets a client timeout (one could fire while bytes are in flight, when the clock jumps).

#![cfg(all(
    feature = "circuit-breaker",
    feature = "fallback",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry"
))]

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::circuit_breaker::BreakerConfig;
use tollgate::fallback::{BoxTarget, Endpoint, FallbackConfig, Target, boxed};
use tollgate::providers::{Anthropic, OpenAi, PeekedBody};
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::{Limit, Limits, OpenAiChat, RateLimitLayer};
use tollgate::retry::{RetryEvent, RetryLayer, RetryPolicy, on_retry_fn};
use tollgate::transport::ReqwestTransport;
use tollgate::{BoxError, DelaySource, ServiceBuilderExt};
use tollgate_mock::{Latency, MockConfig, MockServer};
use tower::{Service, ServiceBuilder, ServiceExt};

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

/// A chat request to `base_url`: 96 characters of prompt and at most 20 tokens of answer.
fn chat(base_url: &str, i: usize) -> Request<BufferedBody> {
    let content = format!("{i:>6} {}", "x".repeat(89));
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": content}],
    });
    Request::post(format!("{base_url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(BufferedBody::from(body.to_string()))
        .unwrap()
}

fn hyper_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, BufferedBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn reqwest_client() -> ReqwestTransport {
    ReqwestTransport::new(reqwest::Client::new())
}

/// Sends `total` requests from `callers` concurrent tasks, reading every body; the statuses.
async fn drive<S, B>(client: S, base_url: &str, total: usize, callers: usize) -> Vec<StatusCode>
where
    S: Service<Request<BufferedBody>, Response = Response<B>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (client, next, base_url) = (client.clone(), Arc::clone(&next), base_url.to_owned());
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return statuses;
                }
                let response = client.clone().oneshot(chat(&base_url, i)).await.unwrap();
                statuses.push(response.status());
                response.into_body().collect().await.unwrap();
            }
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.extend(done.unwrap());
    }
    statuses
}

// ===== (a) the quota is used, and the provider never has to refuse =====

const RPM: u64 = 600;
const TPM: u64 = 60_000;

/// Retries above a breaker above the mock's own quota, kept on this side, above OpenAI's
/// classifier.
fn quota_stack<T, B>(transport: T) -> BoxTarget<PeekedBody<B>>
where
    T: Service<Request<BufferedBody>, Response = Response<B>> + Clone + Send + Sync + 'static,
    T::Error: Into<BoxError>,
    T::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Send,
{
    let limits = Limits::new([
        Limit::requests(Quota::per_minute(n(RPM))),
        Limit::tokens(Quota::per_minute(n(TPM))),
    ]);
    boxed(
        ServiceBuilder::new()
            .retries(RetryPolicy::default())
            .circuit_breaker(BreakerConfig::default())
            .layer(RateLimitLayer::new(limits).with_estimator(OpenAiChat::new()))
            .classify(OpenAi::new())
            .service(transport),
    )
}

/// 2,400 requests from 50 callers through `client` (a [`quota_stack`]) against a 600-a-minute
/// quota that starts full: the last should be answered three minutes in, and the mock should
/// refuse (almost) nothing.
async fn uses_the_quota_without_429s<B>(mock: MockServer, client: BoxTarget<B>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    const TOTAL: usize = 2_400;
    let start = Instant::now();
    let statuses = drive(client, &mock.base_url(), TOTAL, 50).await;
    let elapsed = start.elapsed();
    let stats = mock.stats();

    let ok = statuses.iter().filter(|s| s.is_success()).count();
    assert_eq!(ok, TOTAL, "every caller is answered: {:?}", stats.by_status);
    // The provider's quota over the run: the full bucket at the start, plus the refill.
    let quota = RPM as f64 * (1.0 + elapsed.as_secs_f64() / 60.0);
    let used = stats.ok as f64 / quota;
    println!(
        "{} answered in {elapsed:?} ({:.1} % of the quota); {} 429s of {} requests",
        stats.ok,
        used * 100.0,
        stats.rate_limited,
        stats.requests
    );
    assert!(
        used >= 0.95,
        "{} answered in {elapsed:?}: {:.1} % of the quota",
        stats.ok,
        used * 100.0
    );
    assert!(
        stats.rate_limited * 100 < stats.requests,
        "{} of {} requests were refused with 429",
        stats.rate_limited,
        stats.requests
    );
    // Tokens were counted on both sides (the TPM limit is in force, if not the binding one).
    assert!(stats.input_tokens > 0);
    mock.shutdown().await;
}

fn quota_mock() -> MockConfig {
    MockConfig::openai()
        .with_requests_per_minute(RPM)
        .with_tokens_per_minute(TPM)
        .with_latency(Latency::Uniform {
            min_ms: 50,
            max_ms: 400,
        })
        .with_seed(11)
}

/// (a), through hyper-util's legacy client.
#[tokio::test(start_paused = true)]
async fn hyper_uses_the_quota_without_429s() {
    let mock = MockServer::start(quota_mock()).await.unwrap();
    uses_the_quota_without_429s(mock, quota_stack(hyper_client())).await;
}

/// (a), through reqwest.
#[tokio::test(start_paused = true)]
async fn reqwest_uses_the_quota_without_429s() {
    let mock = MockServer::start(quota_mock()).await.unwrap();
    uses_the_quota_without_429s(mock, quota_stack(reqwest_client())).await;
}

// ===== (b) an outage of the primary loses nothing =====

/// The primary (OpenAI-shaped) is down from 1 s to 4 s into a run of 1,000 requests from 10
/// callers (about 10 s); the fallback (Anthropic-shaped, its own stack) answers what the
/// primary cannot. Every request succeeds, each was answered exactly once, and once the
/// primary is back (its breaker probes it every second) it serves again.
#[tokio::test(start_paused = true)]
async fn an_outage_of_the_primary_loses_no_request() {
    const TOTAL: usize = 1_000;
    let latency = Latency::Fixed { ms: 100 };
    let primary = MockServer::start(
        MockConfig::openai()
            .with_requests_per_minute(100_000)
            .with_latency(latency.clone())
            .with_outage(Duration::from_secs(1), Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let fallback = MockServer::start(
        MockConfig::anthropic()
            .with_requests_per_minute(100_000)
            .with_latency(latency),
    )
    .await
    .unwrap();

    let transport = reqwest_client();
    let second = Duration::from_secs(1);
    let primary_stack = ServiceBuilder::new()
        .retries(RetryPolicy::default())
        .circuit_breaker(BreakerConfig::default().with_open_for(second, 1, second))
        .classify(OpenAi::new())
        .service(transport.clone());
    let fallback_stack = ServiceBuilder::new()
        .retries(RetryPolicy::default())
        .circuit_breaker(BreakerConfig::default())
        .classify(Anthropic::new())
        .service(transport);
    let client = ServiceBuilder::new()
        .fallback(
            FallbackConfig::new([Target::new("fallback", boxed(fallback_stack))
                .with_rewrite(Endpoint::new(&fallback.base_url()).unwrap())])
            .with_primary_name("primary"),
        )
        .service(boxed(primary_stack));

    let statuses = drive(client, &primary.base_url(), TOTAL, 10).await;

    let ok = statuses.iter().filter(|s| s.is_success()).count();
    let (primary_stats, fallback_stats) = (primary.stats(), fallback.stats());
    println!(
        "primary: {:?}; fallback: {:?}",
        primary_stats.by_status, fallback_stats.by_status
    );
    assert_eq!(ok, TOTAL, "every request succeeds: {statuses:?}");
    assert_eq!(
        primary_stats.ok + fallback_stats.ok,
        TOTAL as u64,
        "each answered once"
    );
    assert!(
        primary_stats.by_status.get(&503).copied().unwrap_or(0) > 0,
        "the primary was down: {:?}",
        primary_stats.by_status
    );
    assert!(
        fallback_stats.ok > 0,
        "the fallback served what the primary could not"
    );
    assert_eq!(
        fallback_stats.ok, fallback_stats.requests,
        "the fallback failed nothing"
    );
    let timeline = primary.timeline();
    assert!(
        timeline.iter().any(|b| b.second >= 5 && b.ok > 0),
        "the primary serves again after the outage: {timeline:?}"
    );
    primary.shutdown().await;
    fallback.shutdown().await;
}

// ===== (c) a 429's retry-after-ms is waited exactly =====

/// One attempt: when it was sent, its status, its `retry-after-ms`.
type Attempt = (Duration, StatusCode, Option<u64>);

/// A transport that logs when each attempt was sent (virtual time since its creation), and
/// the status and `retry-after-ms` of each answer.
#[derive(Clone)]
struct Logged<T> {
    inner: T,
    start: Instant,
    log: Arc<Mutex<Vec<Attempt>>>,
}

impl<T, B> Service<Request<BufferedBody>> for Logged<T>
where
    T: Service<Request<BufferedBody>, Response = Response<B>> + Send + 'static,
    T::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, T::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let sent = self.start.elapsed();
        let log = Arc::clone(&self.log);
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let wait = response
                .headers()
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            log.lock().unwrap().push((sent, response.status(), wait));
            Ok(response)
        })
    }
}

/// The mock admits one request a minute. The second request, sent at once, gets a 429 with
/// `retry-after-ms: 60000`; the retry goes out exactly 60 s later, and succeeds.
#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_exactly_its_retry_after_ms() {
    let mock = MockServer::start(MockConfig::openai().with_requests_per_minute(1))
        .await
        .unwrap();
    let transport = Logged {
        inner: hyper_client(),
        start: Instant::now(),
        log: Arc::default(),
    };
    let scheduled = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::clone(&scheduled);
    let client = ServiceBuilder::new()
        .layer(tollgate::body::BufferBodyLayer::new())
        .layer(
            RetryLayer::new(RetryPolicy::openai()).on_retry(on_retry_fn(move |event| {
                if let RetryEvent::Scheduled { delay, source, .. } = event {
                    events.lock().unwrap().push((*delay, *source));
                }
            })),
        )
        .classify(OpenAi::new())
        .service(transport.clone());

    let first = client
        .clone()
        .oneshot(chat(&mock.base_url(), 0))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let sent = Instant::now();
    let second = client
        .clone()
        .oneshot(chat(&mock.base_url(), 1))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::OK);

    let ms = Duration::from_millis;
    assert_eq!(
        *transport.log.lock().unwrap(),
        [
            (ms(0), StatusCode::OK, None),
            (ms(0), StatusCode::TOO_MANY_REQUESTS, Some(60_000)),
            (ms(60_000), StatusCode::OK, None),
        ]
    );
    assert_eq!(
        *scheduled.lock().unwrap(),
        [(ms(60_000), DelaySource::RetryAfterMs)]
    );
    assert_eq!(sent.elapsed(), ms(60_000));
    assert_eq!(mock.stats().rate_limited, 1);
    mock.shutdown().await;
}
