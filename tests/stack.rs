//! The stack as an application builds it — `FallbackLayer` over provider stacks of
//! `RetryLayer` above `CircuitBreakerLayer` above `RateLimitLayer` above `ConcurrencyLayer`
//! above `ClassifyLayer` —
//! against a stand-in transport that answers like OpenAI: the provider's
//! rate-limit headers and 429s, classified once, keep the client-side quota in sync, and
//! retries wait as the provider asks and go back through the quota. Time is tokio's paused
//! clock.

#![cfg(all(
    feature = "circuit-breaker",
    feature = "concurrency",
    feature = "fallback",
    feature = "metrics",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry"
))]

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tollgate::concurrency::ConcurrencyConfig;
use tollgate::providers::OpenAi;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::error::RateLimited;
use tollgate::ratelimit::{Limit, Limits, OpenAiChat, RateLimitConfig, RateLimitLayer};
use tollgate::retry::{GaveUp, RetriesExhausted, RetryPolicy, Spread};
use tollgate::{ServiceBuilderExt, body::BufferedBody};
use tower::{Service, ServiceBuilder, ServiceExt};

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

/// A chat request of 100 prompt characters (25 tokens) allowing `max_tokens` more.
fn chat(max_tokens: u64) -> Request<BufferedBody> {
    let content = "x".repeat(96);
    let body = format!(
        r#"{{"model":"gpt-4o","max_tokens":{max_tokens},"messages":[{{"role":"user","content":"{content}"}}]}}"#
    );
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(body))
        .unwrap()
}

type Answer = Box<dyn Fn() -> Response<Full<Bytes>> + Send + Sync>;

/// A transport that answers from a script, one response per request, and logs when each
/// request arrived.
#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<Vec<Answer>>>,
    arrived: Arc<Mutex<Vec<Duration>>>,
    start: Instant,
}

impl Script {
    fn new(answers: Vec<Answer>) -> Self {
        Script {
            answers: Arc::new(Mutex::new(answers.into_iter().rev().collect())),
            arrived: Arc::default(),
            start: Instant::now(),
        }
    }

    fn arrived(&self) -> Vec<Duration> {
        self.arrived.lock().unwrap().clone()
    }
}

impl Service<Request<BufferedBody>> for Script {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<BufferedBody>) -> Self::Future {
        self.arrived.lock().unwrap().push(self.start.elapsed());
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop()
            .expect("a scripted answer");
        std::future::ready(Ok(answer()))
    }
}

fn ok_with(headers: &'static [(&'static str, &'static str)]) -> Answer {
    Box::new(move || {
        let mut response = Response::builder().status(200);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    })
}

fn error(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Answer {
    Box::new(move || {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    })
}

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
const NO_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;

/// OpenAI's `x-ratelimit-remaining-tokens` caps the local token quota.
#[tokio::test(start_paused = true)]
async fn openai_headers_cap_the_local_quota() {
    let transport = Script::new(vec![
        ok_with(&[
            ("x-ratelimit-limit-tokens", "60000"),
            ("x-ratelimit-remaining-tokens", "100"),
            ("x-ratelimit-reset-tokens", "59.9s"),
        ]),
        ok_with(&[]),
    ]);
    let layer = RateLimitLayer::new(Limits::new([Limit::tokens(Quota::per_minute(n(60_000)))]))
        .with_estimator(OpenAiChat::new());
    let client = ServiceBuilder::new()
        .layer(layer)
        .classify(OpenAi::new())
        .service(transport.clone());
    client.clone().oneshot(chat(75)).await.unwrap();
    // 100 tokens left by the provider's count, not 59,900: 1,125 more come in 1.025 s at
    // 1,000 per second.
    client.clone().oneshot(chat(1_100)).await.unwrap();
    assert_eq!(
        transport.arrived(),
        [Duration::ZERO, Duration::from_millis(1_025)]
    );
}

/// A 429 with `retry-after-ms` pauses every request on the key, and then they leave at the
/// limit's pace (100/s), not all at once; a quota 429 pauses nothing.
#[tokio::test(start_paused = true)]
async fn a_classified_429_pauses_the_key_but_quota_does_not() {
    let transport = Script::new(vec![
        error(429, &[("retry-after-ms", "1500")], RATE_LIMITED),
        ok_with(&[]),
        ok_with(&[]),
        error(429, &[("retry-after", "30")], NO_QUOTA),
        ok_with(&[]),
    ]);
    let client = ServiceBuilder::new()
        .rate_limits(Limits::new([Limit::requests(Quota::per_second(n(100)))]))
        .classify(OpenAi::new())
        .service(transport.clone());
    let response = client.clone().oneshot(chat(10)).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (a, b) = tokio::join!(
        client.clone().oneshot(chat(10)),
        client.clone().oneshot(chat(10))
    );
    a.unwrap();
    b.unwrap();
    // insufficient_quota is not a rate limit: nothing to wait for.
    client.clone().oneshot(chat(10)).await.unwrap();
    client.clone().oneshot(chat(10)).await.unwrap();
    let ms = Duration::from_millis;
    assert_eq!(
        transport.arrived(),
        [ms(0), ms(1_500), ms(1_510), ms(1_520), ms(1_530)]
    );
}

/// Refusals come out of the stack typed, with the wait.
#[tokio::test(start_paused = true)]
async fn refusals_are_typed() {
    let transport = Script::new(vec![ok_with(&[])]);
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(Limits::new([Limit::requests(Quota::per_minute(n(1)))]))
            .with_max_wait(Duration::ZERO),
    );
    let client = ServiceBuilder::new()
        .layer(layer)
        .classify(OpenAi::new())
        .service(transport);
    client.clone().oneshot(chat(1)).await.unwrap();
    let error = client.clone().oneshot(chat(1)).await.unwrap_err();
    let refused = error.downcast_ref::<RateLimited>().unwrap();
    assert_eq!(refused.retry_after(), Duration::from_secs(60));
}

/// A retried attempt waits as the provider asked and goes back through the quota, which the
/// same 429 paused for everyone; a request with a streaming-capable body type is buffered once.
#[tokio::test(start_paused = true)]
async fn retries_wait_as_asked_and_go_back_through_the_quota() {
    let transport = Script::new(vec![
        error(429, &[("retry-after-ms", "1500")], RATE_LIMITED),
        ok_with(&[]),
        ok_with(&[]),
    ]);
    let client = ServiceBuilder::new()
        .retries(RetryPolicy::default().with_server_delay_spread(Spread::None))
        .rate_limits(Limits::new([Limit::requests(Quota::per_second(n(100)))]))
        .concurrency(ConcurrencyConfig::new(8))
        .classify(OpenAi::new())
        .service(transport.clone());
    let body = Full::new(Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#));
    let first = tokio::spawn(client.clone().oneshot(Request::new(body.clone())));
    tokio::task::yield_now().await;
    // Another request, sent after the 429, waits for the same pause, and goes one interval
    // of the limit (10 ms) after the retry.
    let second = tokio::spawn(client.clone().oneshot(Request::new(body)));
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    let ms = Duration::from_millis;
    assert_eq!(transport.arrived(), [ms(0), ms(1_500), ms(1_510)]);
}

/// A delay above the cap comes out as `RetriesExhausted`, with the 429 inside, at once.
#[tokio::test(start_paused = true)]
async fn a_delay_above_the_cap_comes_back_at_once() {
    let transport = Script::new(vec![error(429, &[("retry-after", "3600")], RATE_LIMITED)]);
    let client = ServiceBuilder::new()
        .retries(RetryPolicy::openai())
        .classify(OpenAi::new())
        .service(transport.clone());
    let body = Full::new(Bytes::from_static(b"{}"));
    let error = client.oneshot(Request::new(body)).await.unwrap_err();
    let exhausted = error.downcast_ref::<RetriesExhausted>().unwrap();
    assert_eq!(
        exhausted.reason(),
        GaveUp::DelayAboveCap {
            requested: Duration::from_secs(3_600)
        }
    );
    assert_eq!(transport.arrived(), [Duration::ZERO]);
}

/// An outage: the breaker opens after five overloaded attempts (retried ones included), and
/// from then on calls fail at once with `CircuitOpen` — no wait, no quota spent, nothing sent.
#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_at_once_through_retry() {
    use tollgate::circuit_breaker::{BreakerConfig, CircuitOpen};
    let overloaded = || error(503, &[], "");
    let transport = Script::new((0..5).map(|_| overloaded()).collect());
    let client = ServiceBuilder::new()
        .retries(
            RetryPolicy::default()
                .with_max_retries(4)
                .with_max_overloaded_retries(4),
        )
        .circuit_breaker(BreakerConfig::default())
        .rate_limits(Limits::new([Limit::requests(Quota::per_minute(n(1_000)))]))
        .classify(OpenAi::new())
        .service(transport.clone());
    let body = || Request::new(Full::new(Bytes::from_static(b"{}")));
    // Five attempts: the first and four retries, each 503, the last of which trips it.
    let error = client.clone().oneshot(body()).await.unwrap_err();
    let exhausted = error.downcast_ref::<RetriesExhausted>().unwrap();
    assert_eq!(exhausted.attempts(), 5);
    let started = Instant::now();
    let error = client.clone().oneshot(body()).await.unwrap_err();
    let open = error.downcast_ref::<CircuitOpen>().unwrap();
    assert_eq!(open.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(transport.arrived().len(), 5);
}

/// Two providers, each its own stack: the primary stays overloaded through its retries, the
/// fallback moves to the secondary at once, rewritten for it.
#[tokio::test(start_paused = true)]
async fn the_fallback_moves_to_the_second_provider_when_the_first_gives_up() {
    use tollgate::circuit_breaker::BreakerConfig;
    use tollgate::fallback::{FallbackConfig, SetModel, Target, boxed};
    const OVERLOADED: &str = r#"{"error":{"message":"The server is overloaded","type":"server_error","code":"server_is_overloaded"}}"#;
    let primary = Script::new(vec![
        error(503, &[], OVERLOADED),
        error(503, &[], OVERLOADED),
    ]);
    let secondary = Script::new(vec![ok_with(&[])]);
    let stack = |transport: Script| {
        ServiceBuilder::new()
            .retries(RetryPolicy::default().with_max_overloaded_retries(1))
            .circuit_breaker(BreakerConfig::default())
            .classify(OpenAi::new())
            .service(transport)
    };
    let client = ServiceBuilder::new()
        .fallback(
            FallbackConfig::new([Target::new("secondary", boxed(stack(secondary.clone())))
                .with_rewrite(SetModel::new("gpt-4o-mini"))])
            .with_primary_name("primary"),
        )
        .service(boxed(stack(primary.clone())));
    let body = Full::new(Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#));
    let response = client.oneshot(Request::new(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Two attempts at the primary (one retry for the overload), then the secondary at once.
    let primary_at = primary.arrived();
    assert_eq!(primary_at.len(), 2);
    assert_eq!(secondary.arrived(), [primary_at[1]]);
}

/// Every layer in the documented order, metrics outermost: the snapshot counts the retry that
/// the layers below reported, and the rate-limit utilization from the provider's headers and
/// from the local limiter.
#[tokio::test(start_paused = true)]
async fn the_whole_stack_composes_and_reports() {
    use tollgate::circuit_breaker::BreakerConfig;
    use tollgate::metrics::MetricsLayer;
    let transport = Script::new(vec![
        error(429, &[("retry-after-ms", "200")], RATE_LIMITED),
        ok_with(&[
            ("x-ratelimit-limit-requests", "100"),
            ("x-ratelimit-remaining-requests", "10"),
        ]),
    ]);
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let client = ServiceBuilder::new()
        .layer(metrics)
        .retries(RetryPolicy::default().with_server_delay_spread(Spread::None))
        .circuit_breaker(BreakerConfig::default())
        .rate_limits(Limits::new([Limit::requests(Quota::per_second(n(100)))]))
        .concurrency(ConcurrencyConfig::new(8))
        .classify(OpenAi::new())
        .service(transport.clone());
    let body = Full::new(Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#));
    let response = client.oneshot(Request::new(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let snapshot = handle.snapshot();
    assert_eq!(
        (snapshot.requests, snapshot.successes, snapshot.retries),
        (1, 1, 1)
    );
    assert_eq!(snapshot.retry_delay, Duration::from_millis(200));
    assert_eq!(
        snapshot.utilization(tollgate::Dimension::Requests),
        Some(0.9)
    );
    // The local limiter's bucket of 100: the 429's pause emptied it (so that waiters leave
    // at 100/s, not all at once), and the retry took the one request it let in at the end.
    assert_eq!(
        snapshot.limiter_utilization[tollgate::Dimension::Requests.index()],
        Some(1.0)
    );
    assert_eq!(
        snapshot.alerts().len(),
        1,
        "90 % of the quota used is a warning"
    );
}

/// The cache under metrics and above the quota: a hit spends no quota and never reaches the
/// transport, and the snapshot counts hits and misses.
#[tokio::test(start_paused = true)]
async fn cache_hits_spend_no_quota_and_are_counted() {
    use tollgate::cache::{CacheConfig, CacheStatus};
    use tollgate::metrics::MetricsLayer;
    let transport = Script::new(vec![ok_with(&[]), ok_with(&[])]);
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let client = ServiceBuilder::new()
        .layer(metrics)
        .cache(CacheConfig::default())
        .rate_limits(Limits::new([Limit::requests(Quota::per_minute(n(1)))]))
        .classify(OpenAi::new())
        .service(transport.clone());
    let opted_in = || {
        let mut request = chat(10);
        request
            .headers_mut()
            .insert("x-tollgate-cache", http::HeaderValue::from_static("on"));
        request
    };
    let start = Instant::now();
    let first = client.clone().oneshot(opted_in()).await.unwrap();
    assert_eq!(CacheStatus::of(&first), Some(CacheStatus::Miss));
    let second = client.clone().oneshot(opted_in()).await.unwrap();
    assert_eq!(CacheStatus::of(&second), Some(CacheStatus::Hit));
    assert_eq!(start.elapsed(), Duration::ZERO, "a hit waits for no quota");
    // A different request waits a minute for the quota the hit did not spend.
    client.clone().oneshot(chat(20)).await.unwrap();
    assert_eq!(
        transport.arrived(),
        [Duration::ZERO, Duration::from_secs(60)]
    );
    let snapshot = handle.snapshot();
    assert_eq!(
        (
            snapshot.requests,
            snapshot.cache_hits,
            snapshot.cache_misses
        ),
        (3, 1, 1)
    );
}
