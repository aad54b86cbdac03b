//! `FallbackLayer` on tokio's paused clock: the outage scenario with a breaker on the primary,
//! cooldowns extended by maximum, waiting within the deadline, the context-window chain,
//! mixed target types, the request replayed (and rewritten) for each target, and what is
//! returned unchanged.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tokio::time::{self, Instant};
use tollgate_circuit_breaker::{BreakerConfig, BreakerState, CircuitBreakerLayer};
use tollgate_core::body::BufferedBody;
use tollgate_core::{BoxError, Deadline, ErrorClass};
use tollgate_fallback::{
    AllTargetsFailed, BoxTarget, FallbackConfig, FallbackLayer, FallbackPolicy, SetModel, Target,
    boxed,
};
use tower::{Layer, Service, ServiceExt};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

type Seen = Arc<Mutex<Vec<(Duration, Bytes)>>>;

/// A provider answering `answer(call number, now)`; it logs when each request came and its
/// body.
#[derive(Clone)]
struct Provider {
    answer: Arc<dyn Fn(u32, Duration) -> Response<String> + Send + Sync>,
    calls: Arc<AtomicU32>,
    seen: Seen,
    start: Instant,
}

impl Provider {
    fn new(answer: impl Fn(u32, Duration) -> Response<String> + Send + Sync + 'static) -> Self {
        Provider {
            answer: Arc::new(answer),
            calls: Arc::default(),
            seen: Seen::default(),
            start: Instant::now(),
        }
    }

    fn ok(name: &'static str) -> Self {
        Provider::new(move |_, _| Response::new(name.to_owned()))
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Service<Request<BufferedBody>> for Provider {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed();
        self.seen
            .lock()
            .unwrap()
            .push((now, request.body().bytes().clone()));
        std::future::ready(Ok((self.answer)(n, now)))
    }
}

fn status(code: u16, headers: &[(&str, &str)], body: &str) -> Response<String> {
    let mut response = Response::builder().status(code);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(body.to_owned()).unwrap()
}

fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}

/// The outage: the primary answers 503 for two minutes. Every request in that time succeeds
/// through the secondary; the breaker on the primary opens after five failures, a half-open
/// probe during the outage opens it again for longer, and probes after it bring the primary
/// back.
#[tokio::test(start_paused = true)]
async fn an_outage_of_the_primary_is_ridden_out_on_the_secondary() {
    let primary = Provider::new(|_, now| {
        if now < secs(120) {
            status(503, &[], "")
        } else {
            Response::new("primary".to_owned())
        }
    });
    let secondary = Provider::ok("secondary");
    let breaker = CircuitBreakerLayer::new(BreakerConfig::default());
    let breaker_handle = breaker.handle();
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        boxed(secondary.clone()),
    )]))
    .layer(boxed(breaker.layer(primary.clone())));
    let mut answered_by = Vec::new();
    for _ in 0..200 {
        let response = client.clone().oneshot(chat()).await.unwrap();
        answered_by.push(response.into_body());
        time::advance(secs(1)).await;
    }
    // Five failures open it (t = 0..4); at 64 s a probe finds the outage and opens it for
    // 120 s; at 184 s three probes find the primary back.
    let primary_calls = primary
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(at, _)| at.as_secs())
        .collect::<Vec<_>>();
    assert_eq!(&primary_calls[..9], [0, 1, 2, 3, 4, 64, 184, 185, 186]);
    assert_eq!(breaker_handle.state(None), BreakerState::Closed);
    assert!(answered_by[..184].iter().all(|by| by == "secondary"));
    assert!(answered_by[184..].iter().all(|by| by == "primary"));
    assert_eq!(secondary.calls(), 184);
}

/// A cooldown reported while another is running extends it to the later end, never shortens
/// it; a cooling target is skipped without being called.
#[tokio::test(start_paused = true)]
async fn cooldowns_are_extended_by_maximum() {
    // Two concurrent requests reach the primary, which takes a second to answer: the first
    // with 60 s, the second with 15 s.
    let calls = Arc::new(AtomicU32::new(0));
    let primary = {
        let calls = Arc::clone(&calls);
        tower::service_fn(move |_: Request<BufferedBody>| {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                time::sleep(secs(1)).await;
                let wait = if n == 0 { "60" } else { "15" };
                Ok::<_, Infallible>(status(429, &[("retry-after", wait)], ""))
            }
        })
    };
    let secondary = Provider::ok("secondary");
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        boxed(secondary.clone()),
    )]))
    .layer(boxed(primary));
    let (a, b) = tokio::join!(
        client.clone().oneshot(chat()),
        client.clone().oneshot(chat())
    );
    assert_eq!(a.unwrap().into_body(), "secondary");
    assert_eq!(b.unwrap().into_body(), "secondary");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    // At 20 s the primary is still cooling (until 61 s, not 16 s): skipped, not called.
    time::advance(secs(20)).await;
    client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    time::advance(secs(41)).await;
    client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

/// When every target is cooling down, the fallback waits for the first within the deadline, or
/// fails at once with when it will be free.
#[tokio::test(start_paused = true)]
async fn all_cooling_waits_within_the_deadline_or_fails_with_retry_after() {
    let limited = |wait: &'static str| {
        Provider::new(move |n, _| {
            if n == 0 {
                status(429, &[("retry-after", wait)], "")
            } else {
                Response::new("ok".to_owned())
            }
        })
    };
    let primary = limited("30");
    let secondary = limited("20");
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        secondary.clone(),
    )]))
    .layer(primary.clone());
    let error = client.clone().oneshot(chat()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    let classes: Vec<_> = failed
        .attempts()
        .map(|(name, v)| (name.to_owned(), v.class()))
        .collect();
    assert_eq!(
        classes,
        [
            ("primary".to_owned(), Some(ErrorClass::RateLimited)),
            ("secondary".to_owned(), Some(ErrorClass::RateLimited))
        ]
    );
    assert_eq!(
        failed.retry_after(),
        None,
        "nothing was cooling before these attempts"
    );
    // Now both cool: without a deadline it fails at once, saying when the first is free.
    let error = client.clone().oneshot(chat()).await.unwrap_err();
    assert_eq!(
        error
            .downcast_ref::<AllTargetsFailed>()
            .unwrap()
            .retry_after(),
        Some(secs(20))
    );
    // With a deadline 25 s away it waits the 20 s for the secondary.
    let mut request = chat();
    request.extensions_mut().insert(Deadline::after(secs(25)));
    let start = Instant::now();
    let response = client.clone().oneshot(request).await.unwrap();
    assert_eq!(response.into_body(), "ok");
    assert_eq!(start.elapsed(), secs(20));
    assert_eq!(secondary.calls(), 2);
}

/// A prompt too long for the model goes to the context-window chain, rewritten for a
/// larger-context model; without that chain it comes back as it is.
#[tokio::test(start_paused = true)]
async fn the_context_window_chain_takes_prompts_too_long() {
    const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
    let primary = Provider::new(|_, _| status(400, &[], TOO_LONG));
    let bigger = Provider::new(|_, _| Response::new("bigger".to_owned()));
    let secondary = Provider::ok("secondary");
    let client = FallbackLayer::new(
        FallbackConfig::new([Target::new("secondary", boxed(secondary.clone()))])
            .with_context_window_targets([Target::new("gpt-4.1", boxed(bigger.clone()))
                .with_rewrite(SetModel::new("gpt-4.1"))]),
    )
    .layer(boxed(tollgate_providers_classify(primary.clone())));
    let response = client.oneshot(chat()).await.unwrap();
    assert_eq!(response.into_body(), "bigger");
    assert_eq!(
        secondary.calls(),
        0,
        "the main chain is not where a longer context is"
    );
    let sent = bigger.seen.lock().unwrap()[0].1.clone();
    assert!(
        std::str::from_utf8(&sent)
            .unwrap()
            .contains(r#""model":"gpt-4.1""#)
    );

    let alone = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        boxed(Provider::ok("secondary")),
    )]))
    .layer(boxed(tollgate_providers_classify(primary)));
    let response = alone.oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), 400);
}

/// The classifier that reads a context-window body: the fallback sees the verdict a
/// `ClassifyLayer` attached.
fn tollgate_providers_classify(provider: Provider) -> ClassifiedProvider {
    ClassifiedProvider(provider)
}

/// The provider's responses with the OpenAI classifier's verdict attached, as a
/// `ClassifyLayer` would.
#[derive(Clone)]
struct ClassifiedProvider(Provider);

impl Service<Request<BufferedBody>> for ClassifiedProvider {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let mut response = self.0.call(request).into_inner().unwrap();
        let verdict = tollgate_providers::OpenAi::new().verdict(
            response.status(),
            response.headers(),
            response.body().as_bytes(),
        );
        response.extensions_mut().insert(verdict);
        std::future::ready(Ok(response))
    }
}

/// Targets of different types, boxed once; the request body replayed to each in full.
#[tokio::test(start_paused = true)]
async fn mixed_targets_each_get_the_whole_request() {
    let failing = Provider::new(|_, _| status(500, &[], ""));
    let whole = chat().body().len();
    let also_failing = tower::service_fn(move |request: Request<BufferedBody>| async move {
        assert_eq!(request.body().len(), whole);
        Err::<Response<String>, BoxError>(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        )
    });
    let last = Provider::ok("third");
    let targets: Vec<Target<BoxTarget<String>>> = vec![
        Target::new("second", boxed(also_failing)),
        Target::new("third", boxed(last.clone())),
    ];
    let client = FallbackLayer::new(FallbackConfig::new(targets)).layer(boxed(failing.clone()));
    let response = client.oneshot(chat()).await.unwrap();
    assert_eq!(response.into_body(), "third");
    let first = failing.seen.lock().unwrap()[0].1.clone();
    let third = last.seen.lock().unwrap()[0].1.clone();
    assert_eq!(first, third);
    assert_eq!(first, chat().body().bytes().clone());
}

/// What another target cannot fix comes back unchanged: a bad request, a short rate limit.
#[tokio::test(start_paused = true)]
async fn what_another_target_cannot_fix_comes_back() {
    for response in [
        status(400, &[], "bad"),
        status(429, &[("retry-after", "2")], ""),
    ] {
        let code = response.status();
        let body = response.body().clone();
        let primary =
            Provider::new(move |_, _| status(code.as_u16(), &[("retry-after", "2")], &body));
        let secondary = Provider::ok("secondary");
        let client = FallbackLayer::new(
            FallbackConfig::new([Target::new("secondary", secondary.clone())])
                .with_policy(FallbackPolicy::default()),
        )
        .layer(primary);
        let answer = client.oneshot(chat()).await.unwrap();
        assert_eq!(answer.status(), code);
        assert_eq!(secondary.calls(), 0);
    }
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<FallbackLayer<Provider>>();
    clone::<FallbackLayer<Provider>>();
    send_sync::<tollgate_fallback::Fallback<Provider>>();
    send_sync::<AllTargetsFailed>();
    let mut service =
        FallbackLayer::new(FallbackConfig::new([Target::new("b", Provider::ok("b"))]))
            .layer(Provider::ok("a"));
    send(&service.call(chat()));
}

// ===== regressions found in review =====

const TOO_LONG_BODY: &str = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
const FLAGGED_BODY: &str = r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_filter"}}"#;

fn classified(body: &'static str, code: u16) -> BoxTarget<String> {
    boxed(tollgate_providers_classify(Provider::new(move |_, _| {
        status(code, &[], body)
    })))
}

/// Typed chains are entered once each: a context-window model that refuses on content policy,
/// whose content-policy model is too small, ends — it does not go round for ever.
#[tokio::test(start_paused = true)]
async fn typed_chains_are_entered_once() {
    let client = FallbackLayer::new(
        FallbackConfig::new(Vec::<Target<BoxTarget<String>>>::new())
            .with_context_window_targets([Target::new("bigger", classified(FLAGGED_BODY, 400))])
            .with_content_policy_targets([Target::new("lenient", classified(TOO_LONG_BODY, 400))]),
    )
    .layer(classified(TOO_LONG_BODY, 400));
    let response = client.oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), 400);
}

/// Inside the context-window chain, the same failure moves on to the next, larger model.
#[tokio::test(start_paused = true)]
async fn a_typed_chain_is_followed_to_its_end() {
    let largest = Provider::ok("1M");
    let client = FallbackLayer::new(
        FallbackConfig::new(Vec::<Target<BoxTarget<String>>>::new()).with_context_window_targets([
            Target::new("200k", classified(TOO_LONG_BODY, 400)),
            Target::new("1M", boxed(largest.clone())),
        ]),
    )
    .layer(classified(TOO_LONG_BODY, 400));
    assert_eq!(client.oneshot(chat()).await.unwrap().into_body(), "1M");
}

/// A target passed over while cooling is waited for at the end of the scan, or reported in
/// `retry_after`.
#[tokio::test(start_paused = true)]
async fn targets_passed_over_while_cooling_are_not_forgotten() {
    let b_answers = |n: u32, _| {
        if n == 0 {
            status(429, &[("retry-after", "14")], "")
        } else {
            Response::new("b".to_owned())
        }
    };
    let failing = || Provider::new(|_, _| status(500, &[], ""));
    // No waiting: the second request reports when b is free again.
    let layer = FallbackLayer::new(FallbackConfig::new([
        Target::new("b", Provider::new(b_answers)),
        Target::new("c", failing()),
    ]));
    let client = layer.layer(failing());
    assert!(client.clone().oneshot(chat()).await.is_err()); // cools b down for 14 s
    let error = client.clone().oneshot(chat()).await.unwrap_err();
    assert_eq!(
        error
            .downcast_ref::<AllTargetsFailed>()
            .unwrap()
            .retry_after(),
        Some(secs(14))
    );
    // Waiting allowed: the second request waits the 14 s for b once c has failed.
    let layer = FallbackLayer::new(
        FallbackConfig::new([
            Target::new("b", Provider::new(b_answers)),
            Target::new("c", failing()),
        ])
        .with_policy(FallbackPolicy::default().with_max_wait(secs(30))),
    );
    let client = layer.layer(failing());
    assert!(client.clone().oneshot(chat()).await.is_err());
    let start = Instant::now();
    let response = client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(response.into_body(), "b");
    assert_eq!(start.elapsed(), secs(14));
}

/// An exhausted quota without a delay cools the target down for the policy's time.
#[tokio::test(start_paused = true)]
async fn a_quota_failure_cools_the_target_down() {
    const NO_QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    let primary = Provider::new(|_, _| status(429, &[], NO_QUOTA));
    let calls = primary.calls.clone();
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "b",
        boxed(Provider::ok("b")),
    )]))
    .layer(boxed(tollgate_providers_classify(primary)));
    for _ in 0..3 {
        assert_eq!(
            client.clone().oneshot(chat()).await.unwrap().into_body(),
            "b"
        );
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1, "skipped while cooling");
    time::advance(secs(301)).await;
    client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

/// A local quota's refusal counts as a rate limit for as long as it says: beyond the policy's
/// threshold the request moves on at once and the target cools down for that long; within it,
/// the refusal comes back to the caller.
#[tokio::test(start_paused = true)]
async fn a_local_quota_refusal_moves_on_when_its_wait_is_long() {
    use std::num::NonZeroU64;
    use tollgate_ratelimit::RateLimitLayer;
    use tollgate_ratelimit::algorithm::Quota;
    use tollgate_ratelimit::error::RateLimited;
    use tollgate_ratelimit::{Limit, Limits, RateLimitConfig};
    let one = NonZeroU64::MIN;
    let quota = |quota| {
        RateLimitLayer::new(
            RateLimitConfig::new(Limits::new([Limit::requests(quota)]))
                .with_max_wait(Duration::ZERO),
        )
    };

    // One request a minute: the second would wait 60 s, beyond the 10 s threshold.
    let primary = Provider::ok("primary");
    let secondary = Provider::ok("secondary");
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        boxed(secondary.clone()),
    )]))
    .layer(boxed(quota(Quota::per_minute(one)).layer(primary.clone())));
    let mut answered_by = Vec::new();
    for _ in 0..3 {
        let response = client.clone().oneshot(chat()).await.unwrap();
        answered_by.push(response.into_body());
    }
    assert_eq!(answered_by, ["primary", "secondary", "secondary"]);
    assert_eq!(primary.calls(), 1);
    // Cooling for the minute the quota named, the primary takes requests again after it.
    time::advance(secs(60)).await;
    let response = client.clone().oneshot(chat()).await.unwrap();
    assert_eq!(response.into_body(), "primary");

    // One request a second: a wait of 1 s is within the threshold, so the refusal returns.
    let primary = Provider::ok("primary");
    let secondary = Provider::ok("secondary");
    let client = FallbackLayer::new(FallbackConfig::new([Target::new(
        "secondary",
        boxed(secondary.clone()),
    )]))
    .layer(boxed(quota(Quota::per_second(one)).layer(primary.clone())));
    client.clone().oneshot(chat()).await.unwrap();
    let error = client.clone().oneshot(chat()).await.unwrap_err();
    let limited = error
        .downcast_ref::<RateLimited>()
        .expect("the refusal, unchanged");
    assert_eq!(limited.retry_after(), secs(1));
    assert_eq!(secondary.calls(), 0);
}

/// A streamed answer handed back fails half-way with an overload: nothing is re-sent, but
/// with a cooldown for overloads in the policy the primary cools down as if it had failed
/// before its first byte, and the next requests go to the fallback first. A stream that
/// completes cools nothing.
#[tokio::test(start_paused = true)]
async fn a_stream_failing_half_way_cools_its_target_down() {
    use tollgate_core::StreamReport;
    let reports: Arc<Mutex<Vec<StreamReport>>> = Arc::default();
    let primary = {
        let reports = Arc::clone(&reports);
        Provider::new(move |_, _| {
            let report = StreamReport::new();
            reports.lock().unwrap().push(report.clone());
            let mut response = Response::new("primary".to_owned());
            response.extensions_mut().insert(report);
            response
        })
    };
    let calls = primary.calls.clone();
    let policy = FallbackPolicy::default().with_cooldown(ErrorClass::Overloaded, secs(30));
    let client = FallbackLayer::new(
        FallbackConfig::new([Target::new("b", boxed(Provider::ok("b")))]).with_policy(policy),
    )
    .layer(boxed(primary));
    let last = || reports.lock().unwrap().pop().unwrap();
    // Completed: the primary stays first.
    client.clone().oneshot(chat()).await.unwrap();
    last().complete(None);
    assert_eq!(
        client.clone().oneshot(chat()).await.unwrap().into_body(),
        "primary"
    );
    // Failed half-way with an overload: cooled for 30 s.
    last().fail(ErrorClass::Overloaded);
    assert_eq!(
        client.clone().oneshot(chat()).await.unwrap().into_body(),
        "b"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    time::advance(secs(31)).await;
    assert_eq!(
        client.clone().oneshot(chat()).await.unwrap().into_body(),
        "primary"
    );
}
