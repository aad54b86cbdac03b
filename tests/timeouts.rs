//! Time limits per attempt in the ready stacks, end to end over hyper-util on loopback against
//! `tollgate-mock`, on tokio's paused clock (current-thread runtime; see `tests/e2e.rs` on why
//! loopback sockets keep the virtual durations exact): an upstream that never answers times
//! out after exactly its limit, is retried, then falls back; a stream that stalls after its
//! first event ends the caller's body with a timeout after exactly the idle limit, and is not
//! re-sent; a first token that comes too late, or an error event as the first event, is
//! retried before the caller sees anything; a stream cut mid-way ends the caller's body; streams
//! cut before their first event, in a row, open the circuit breaker.

#![cfg(all(feature = "stack", feature = "timeout"))]

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::retry::{Backoff, Jitter, RetryPolicy};
use tollgate::stack::{Provider, StackBuilder};
use tollgate::timeout::{TimeLimit, TimedOut, TimeoutConfig};
use tollgate::{ErrorClass, Verdict};
use tollgate_mock::{FirstTokenDelay, MockConfig, MockServer, StreamFault};
use tower::ServiceExt;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn hyper_client() -> Client<HttpConnector, BufferedBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A chat request, streamed or not.
fn chat(stream: bool) -> Request<BufferedBody> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 5,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello"}],
    });
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(BufferedBody::from(body.to_string()))
        .unwrap()
}

/// One retry, 1 s after the failure, exactly.
fn one_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(1)
        .with_backoff(Backoff::exponential(secs(1), secs(1)).with_jitter(Jitter::None))
}

fn provider(mock: &MockServer, name: &str, timeouts: TimeoutConfig) -> Provider {
    Provider::openai_compatible(&mock.base_url())
        .with_name(name)
        .with_timeouts(timeouts)
        .with_retry(one_retry())
}

/// An upstream that never answers: each attempt times out after exactly the head limit, one
/// retry after 1 s, then the fallback answers.
#[tokio::test(start_paused = true)]
async fn a_silent_upstream_is_retried_then_left_to_the_fallback() {
    let silent = MockServer::start(MockConfig::openai().with_hang_rate(1.0))
        .await
        .unwrap();
    let healthy = MockServer::start(MockConfig::openai()).await.unwrap();
    let limits = TimeoutConfig::none().with_response_head(secs(20));
    let stack = StackBuilder::new(provider(&silent, "silent", limits))
        .with_fallback(provider(&healthy, "healthy", limits))
        .build(hyper_client())
        .unwrap();
    let start = Instant::now();
    let response = stack.oneshot(chat(false)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), secs(20 + 1 + 20));
    assert_eq!(silent.stats().requests, 2);
    assert_eq!(healthy.stats().requests, 1);
}

/// A stream that stalls after its first event: the caller has the response and the event;
/// its body then ends with a timeout exactly the idle limit later. Nothing is re-sent.
#[tokio::test(start_paused = true)]
async fn a_stalled_stream_ends_the_callers_body() {
    let mock = MockServer::start(MockConfig::openai().with_stream_stall(StreamFault::after(1)))
        .await
        .unwrap();
    let limits = TimeoutConfig::none().with_idle(secs(15));
    let stack = StackBuilder::new(provider(&mock, "stalls", limits))
        .build(hyper_client())
        .unwrap();
    let start = Instant::now();
    let response = stack.oneshot(chat(true)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut events = 0;
    let error = loop {
        match body.frame().await {
            Some(Ok(_)) => events += 1,
            Some(Err(error)) => break error,
            None => panic!("the stream ended cleanly"),
        }
    };
    assert!(events >= 1);
    assert_eq!(start.elapsed(), secs(15));
    let timed_out = TimedOut::find(&*error).expect("a timeout");
    assert_eq!(timed_out.limit(), TimeLimit::Idle);
    assert_eq!(
        Verdict::of_error(&*error).and_then(Verdict::class),
        Some(ErrorClass::Timeout)
    );
    assert_eq!(mock.stats().requests, 1, "not re-sent");
}

/// A first token later than the limit: the attempt fails before the caller saw a byte, and the
/// retry's stream (the mock delays only some) is the one the caller gets.
#[tokio::test(start_paused = true)]
async fn a_late_first_token_is_retried_unseen() {
    let mock = MockServer::start(
        MockConfig::openai()
            .with_first_token_delay(FirstTokenDelay::new(secs(60)))
            .with_seed(3),
    )
    .await
    .unwrap();
    let limits = TimeoutConfig::none().with_first_chunk(secs(10));
    let stack = StackBuilder::new(provider(&mock, "thinks", limits))
        .build(hyper_client())
        .unwrap();
    let start = Instant::now();
    let error = stack.oneshot(chat(true)).await.unwrap_err();
    // Every stream is delayed: two attempts of 10 s and the retry's 1 s between them.
    assert_eq!(start.elapsed(), secs(21));
    assert_eq!(mock.stats().requests, 2);
    assert!(
        TimedOut::find(&*error).is_some_and(|t| t.limit() == TimeLimit::FirstChunk),
        "{error}"
    );
}

/// An error event as a stream's first event: the attempt fails before the caller saw a byte,
/// is retried, then left to the fallback, whose clean stream is the one the caller gets.
#[tokio::test(start_paused = true)]
async fn a_first_event_error_is_retried_and_the_caller_sees_one_clean_stream() {
    let failing = MockServer::start(MockConfig::openai().with_stream_error(StreamFault::after(0)))
        .await
        .unwrap();
    let healthy = MockServer::start(MockConfig::openai()).await.unwrap();
    let limits = TimeoutConfig::default();
    let stack = StackBuilder::new(provider(&failing, "failing", limits))
        .with_fallback(provider(&healthy, "healthy", limits))
        .build(hyper_client())
        .unwrap();
    let response = stack.oneshot(chat(true)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"error\""), "{text}");
    assert_eq!(failing.stats().requests, 2, "tried, and retried once");
    assert_eq!(healthy.stats().requests, 1);
}

/// A stream cut after some events ends the caller's body with an error carrying a verdict;
/// nothing is re-sent.
#[tokio::test(start_paused = true)]
async fn a_stream_cut_mid_way_ends_the_callers_body() {
    let mock = MockServer::start(MockConfig::openai().with_stream_cut(StreamFault::after(2)))
        .await
        .unwrap();
    let stack = StackBuilder::new(provider(&mock, "cut", TimeoutConfig::default()))
        .build(hyper_client())
        .unwrap();
    let response = stack.oneshot(chat(true)).await.unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(Verdict::of_error(&*error).is_some(), "{error}");
    assert_eq!(mock.stats().requests, 1, "not re-sent");
}

/// Streams cut before their first event are failures of the attempt, which the circuit
/// breaker counts: of 12 such calls in a row, the breaker lets 5 through (its default trips
/// after 5 consecutive failures) and refuses the rest at once.
#[tokio::test(start_paused = true)]
async fn cut_streams_in_a_row_open_the_breaker() {
    let mock = MockServer::start(MockConfig::openai().with_stream_cut(StreamFault::after(0)))
        .await
        .unwrap();
    let stack = StackBuilder::new(
        Provider::openai_compatible(&mock.base_url())
            .with_name("cut")
            .with_retry(RetryPolicy::default().with_max_retries(0)),
    )
    .build(hyper_client())
    .unwrap();
    let mut classes = Vec::new();
    for _ in 0..12 {
        let error = stack.clone().oneshot(chat(true)).await.unwrap_err();
        classes.push(Verdict::of_error(&*error).and_then(Verdict::class));
    }
    assert_eq!(mock.stats().requests, 5, "{classes:?}");
    assert!(
        classes[..5]
            .iter()
            .all(|c| c.is_some_and(ErrorClass::counts_against_health)),
        "{classes:?}"
    );
}

/// The ready stack asks for a streamed answer's usage (`stream_options.include_usage`); when
/// the stream ends, its tokens reach the metrics as a buffered answer's would.
#[tokio::test(start_paused = true)]
async fn a_streams_usage_reaches_the_metrics() {
    let mock = MockServer::start(MockConfig::openai()).await.unwrap();
    let metrics = tollgate::metrics::MetricsLayer::new("mock");
    let handle = metrics.handle();
    let stack = StackBuilder::new(provider(&mock, "streams", TimeoutConfig::default()))
        .with_metrics(metrics)
        .build(hyper_client())
        .unwrap();
    let response = stack.oneshot(chat(true)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("\"usage\":{"), "{text}");
    let snapshot = handle.snapshot();
    assert!(snapshot.input_tokens > 0, "{snapshot:?}");
    assert!(snapshot.output_tokens > 0, "{snapshot:?}");
    assert_eq!(
        (snapshot.input_tokens, snapshot.output_tokens),
        (mock.stats().input_tokens, mock.stats().output_tokens)
    );
}

/// Streams cut after their first events reach the caller as a response, then fail half-way:
/// nothing can be re-sent, but the breaker counts each as the failure it is. Of 12 such calls
/// in a row, 5 go upstream (the default trips after 5 consecutive failures) and the rest are
/// refused at once.
#[tokio::test(start_paused = true)]
async fn streams_cut_mid_way_in_a_row_open_the_breaker() {
    let mock = MockServer::start(MockConfig::openai().with_stream_cut(StreamFault::after(2)))
        .await
        .unwrap();
    let metrics = tollgate::metrics::MetricsLayer::new("mock");
    let handle = metrics.handle();
    let stack = StackBuilder::new(
        Provider::openai_compatible(&mock.base_url())
            .with_name("cut")
            .with_retry(RetryPolicy::default().with_max_retries(0)),
    )
    .with_metrics(metrics)
    .build(hyper_client())
    .unwrap();
    let (mut cut, mut refused) = (0, 0);
    for _ in 0..12 {
        match stack.clone().oneshot(chat(true)).await {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                let error = response.into_body().collect().await.unwrap_err();
                assert!(
                    Verdict::of_error(&*error)
                        .and_then(Verdict::class)
                        .is_some_and(ErrorClass::counts_against_health),
                    "{error}"
                );
                cut += 1;
            }
            Err(error) => {
                assert!(
                    error.is::<tollgate::circuit_breaker::CircuitOpen>(),
                    "{error}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!((cut, refused), (5, 7));
    assert_eq!(mock.stats().requests, 5);
    // The metrics record the cut streams as failures, not as the 200s their heads were.
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.requests, snapshot.successes), (12, 0));
}

/// A stream that stalls after its first event is ended by the idle limit, and the breaker
/// counts that timeout: 5 in a row open it.
#[tokio::test(start_paused = true)]
async fn stalled_streams_in_a_row_open_the_breaker() {
    let mock = MockServer::start(MockConfig::openai().with_stream_stall(StreamFault::after(1)))
        .await
        .unwrap();
    let limits = TimeoutConfig::none().with_idle(secs(15));
    let stack = StackBuilder::new(
        provider(&mock, "stalls", limits).with_retry(RetryPolicy::default().with_max_retries(0)),
    )
    .build(hyper_client())
    .unwrap();
    for _ in 0..5 {
        let response = stack.clone().oneshot(chat(true)).await.unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(TimedOut::find(&*error).is_some(), "{error}");
    }
    let error = stack.clone().oneshot(chat(true)).await.unwrap_err();
    assert!(
        error.is::<tollgate::circuit_breaker::CircuitOpen>(),
        "{error}"
    );
    assert_eq!(mock.stats().requests, 5);
}

/// A streamed answer's time to first token is recorded when its stream ends: the mock holds
/// every first event back 2 s.
#[tokio::test(start_paused = true)]
async fn a_streams_time_to_first_token_reaches_the_metrics() {
    let mock = MockServer::start(
        MockConfig::openai().with_first_token_delay(FirstTokenDelay::new(secs(2))),
    )
    .await
    .unwrap();
    let metrics = tollgate::metrics::MetricsLayer::new("mock");
    let handle = metrics.handle();
    let stack = StackBuilder::new(provider(&mock, "thinks", TimeoutConfig::default()))
        .with_metrics(metrics)
        .build(hyper_client())
        .unwrap();
    let start = Instant::now();
    let response = stack.oneshot(chat(true)).await.unwrap();
    assert_eq!(
        handle.snapshot().requests,
        0,
        "recorded at the stream's end: {:?}",
        handle.snapshot()
    );
    response.into_body().collect().await.unwrap();
    let took = start.elapsed();
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.requests, snapshot.successes), (1, 1));
    let first = snapshot.first_token_p50.expect("a time to first token");
    // (Three significant figures: the histogram may round up by less than 0.1 %.)
    assert!(
        first >= secs(2) && first <= took.mul_f64(1.001),
        "{first:?} of {took:?}"
    );
    // The latency runs to the stream's end.
    assert!(snapshot.p50.unwrap() >= took, "{snapshot:?}");
}

/// A streamed answer's usage reconciles the token quota when the stream ends: 1,000 tokens a
/// minute, and a request allowing 900 output tokens is charged about 910 while its stream is
/// open — a second such request is refused — but the answer used 5 (and a prompt of a few):
/// once the stream has been read to its end, the second fits. (The ready stacks ask for the
/// usage chunk themselves; this stack is built by hand, so the request asks.)
#[tokio::test(start_paused = true)]
async fn a_streams_usage_reconciles_the_token_quota() {
    use tollgate::ServiceBuilderExt;
    use tollgate::ratelimit::algorithm::Quota;
    use tollgate::ratelimit::error::RateLimited;
    use tollgate::ratelimit::{Limit, Limits, OpenAiChat, RateLimitConfig, RateLimitLayer};
    let mock = MockServer::start(MockConfig::openai().with_completion_tokens(5))
        .await
        .unwrap();
    let base = mock.base_url();
    let quota = Quota::per_minute(std::num::NonZeroU64::new(1_000).unwrap());
    let limiter = RateLimitLayer::new(
        RateLimitConfig::new(Limits::new([Limit::tokens(quota)])).with_max_wait(Duration::ZERO),
    )
    .with_estimator(OpenAiChat::new());
    let client = tower::ServiceBuilder::new()
        .layer(tollgate::body::BufferBodyLayer::new())
        .layer(limiter)
        .classify(tollgate::providers::OpenAi::new())
        .map_request(move |mut request: Request<BufferedBody>| {
            let uri = format!("{base}{}", request.uri().path());
            *request.uri_mut() = uri.parse().unwrap();
            request
        })
        .service(hyper_client());
    let ask = || {
        let body = serde_json::json!({
            "model": "gpt-4o-mini",
            "max_tokens": 900,
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hello"}],
        });
        Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(BufferedBody::from(body.to_string()))
            .unwrap()
    };
    let response = client.clone().oneshot(ask()).await.unwrap();
    let refused = client.clone().oneshot(ask()).await.unwrap_err();
    assert!(refused.is::<RateLimited>(), "{refused}");
    response.into_body().collect().await.unwrap();
    let second = client.clone().oneshot(ask()).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
}
