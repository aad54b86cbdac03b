//! `RateLimitLayer` end to end on tokio's paused clock: admission timing per algorithm, all or
//! nothing over dimensions, fairness, priorities, refusals, provider feedback, reconciliation,
//! cancellation, shared state, eviction and the `poll_ready` contract. Every duration is exact.

use std::convert::Infallible;
use std::future::Future;

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{self, Instant};
use tollgate_core::{
    BoxError, Cost, Deadline, DelaySource, Dimension, ErrorClass, LimitReading, Priority,
    RateLimitSnapshot, RouteKey, StreamReport, Usage, Verdict, Window,
};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::error::{CostTooLarge, RateLimited};
use tollgate_ratelimit::{
    AlgorithmKind, ByRouteKey, Limit, Limits, RateLimit, RateLimitConfig, RateLimitLayer,
    estimator_fn,
};
use tower::{Layer, Service, ServiceExt};

mod support;
use support::{Recorder, millis, n, request, secs, spawn, verdict_response};

/// Sends `request`, which must be refused, and returns the refusal's `retry_after`.
async fn refused_after<S>(service: &S, request: Request<String>) -> Duration
where
    S: Service<Request<String>, Response = Response<()>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    let error = spawn(service, request).await.unwrap().unwrap_err();
    match error.downcast_ref::<RateLimited>() {
        Some(refused) => refused.retry_after(),
        None => panic!("refused for another reason: {error}"),
    }
}

fn limits(list: impl IntoIterator<Item = Limit>) -> Limits {
    Limits::new(list)
}

// ===== admission timing =====

/// Each algorithm, two per second: the third request waits for its exact time.
#[tokio::test(start_paused = true)]
async fn each_algorithm_admits_at_its_exact_time() {
    let cases = [
        (AlgorithmKind::TokenBucket, millis(500)),
        (AlgorithmKind::Gcra, millis(500)),
        (AlgorithmKind::FixedWindow, secs(1)),
        (AlgorithmKind::SlidingWindowLog, secs(1)),
        // The previous window weighs 2 until it has decayed to 1: half a window into the next.
        (AlgorithmKind::SlidingWindowCounter, millis(1_500)),
    ];
    for (algorithm, third_at) in cases {
        let quota = Quota::per_second(n(2));
        let layer = RateLimitLayer::new(limits([Limit::requests(quota).with_algorithm(algorithm)]));
        let transport = Recorder::new();
        let service = layer.layer(transport.clone());
        for name in ["a", "b", "c"] {
            spawn(&service, request(name, 0)).await.unwrap().unwrap();
        }
        let log = transport.log();
        let at: Vec<Duration> = log.iter().map(|(_, at)| *at).collect();
        assert_eq!(
            at,
            [Duration::ZERO, Duration::ZERO, third_at],
            "{algorithm:?}"
        );
    }
}

/// Clones of the layer and of the service draw from one quota.
#[tokio::test(start_paused = true)]
async fn clones_share_one_quota() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]));
    let transport = Recorder::new();
    let first = layer.clone().layer(transport.clone());
    let second = layer.layer(transport.clone());
    spawn(&first, request("a", 0)).await.unwrap().unwrap();
    spawn(&second.clone(), request("b", 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(transport.log()[1], ("b".to_owned(), secs(1)));
}

// ===== several dimensions =====

/// Requests and tokens are admitted together or not at all: a request refused for tokens
/// spends no request.
#[tokio::test(start_paused = true)]
async fn dimensions_are_admitted_all_or_nothing() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([
            Limit::requests(Quota::per_minute(n(2))),
            Limit::tokens(Quota::per_minute(n(100))),
        ]))
        .with_max_wait(Duration::ZERO),
    );
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    spawn(&service, request("a", 80)).await.unwrap().unwrap();
    // 10 more tokens come in 6 s.
    assert_eq!(refused_after(&service, request("b", 30)).await, secs(6));
    // The refused request spent no request: the second slot is still there.
    spawn(&service, request("c", 20)).await.unwrap().unwrap();
    assert_eq!(transport.names(), ["a", "c"]);
}

/// A cost no limit can ever hold fails at once, naming the dimension.
#[tokio::test(start_paused = true)]
async fn a_cost_above_capacity_fails_at_once() {
    let layer = RateLimitLayer::new(limits([
        Limit::requests(Quota::per_minute(n(10))),
        Limit::tokens(Quota::per_minute(n(1_000))),
    ]));
    let service = layer.layer(Recorder::new());
    let start = Instant::now();
    let error = spawn(&service, request("huge", 1_001))
        .await
        .unwrap()
        .unwrap_err();
    let too_large = error.downcast_ref::<CostTooLarge>().unwrap();
    assert_eq!(too_large.dimension(), Dimension::Tokens);
    assert_eq!((too_large.cost(), too_large.capacity()), (1_001, 1_000));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        too_large.to_string(),
        "request costs 1001 tokens but the limit admits at most 1000 per 60s; it can never be admitted"
    );
}

// ===== keys =====

/// Each key has its own quota; a key can have limits of its own.
#[tokio::test(start_paused = true)]
async fn keys_have_their_own_quotas() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]))
        .keyed_by(ByRouteKey);
    layer
        .handle()
        .set_limits_for("big", limits([Limit::requests(Quota::per_second(n(2)))]));
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let keyed = |name: &str, key: &str| {
        let mut request = request(name, 0);
        request.extensions_mut().insert(RouteKey::new(key));
        request
    };
    for (name, key) in [
        ("a1", "a"),
        ("b1", "b"),
        ("big1", "big"),
        ("big2", "big"),
        ("a2", "a"),
    ] {
        spawn(&service, keyed(name, key)).await.unwrap().unwrap();
    }
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(
        at,
        [
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            secs(1)
        ]
    );
    assert_eq!(layer.handle().keys(), 3);
}

/// Ten thousand keys used once are all forgotten once idle, and memory goes back down.
#[tokio::test(start_paused = true)]
async fn idle_keys_are_evicted() {
    let layer = RateLimitLayer::new(limits([
        Limit::requests(Quota::per_minute(n(60))),
        Limit::tokens(Quota::per_minute(n(10_000))),
    ]))
    .keyed_by(ByRouteKey);
    let service = layer.layer(Recorder::new());
    let keyed = |key: String| {
        let mut request = request("r", 100);
        request.extensions_mut().insert(RouteKey::new(key));
        request
    };
    for i in 0..10_000 {
        let mut service = service.clone();
        service
            .ready()
            .await
            .unwrap()
            .call(keyed(format!("tenant-{i}")))
            .await
            .unwrap();
    }
    let handle = layer.handle();
    // Sweeps while growing keep at most the keys that are not yet idle.
    assert_eq!(handle.keys(), 10_000);
    // A minute later every bucket is full again: the next admission's sweep forgets them.
    time::advance(secs(60)).await;
    service
        .clone()
        .oneshot(keyed("fresh".into()))
        .await
        .unwrap();
    assert_eq!(handle.keys(), 1);
}

// ===== waiting =====

/// A 50-token request behind a steady stream of 1-token requests is admitted at its fair time:
/// first come, first served, whatever the cost.
#[tokio::test(start_paused = true)]
async fn a_large_request_is_not_starved_by_small_ones() {
    // 10 tokens per second, 10 at once.
    let layer = RateLimitLayer::new(limits([Limit::tokens(Quota::per_second(n(10)))]));
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let mut tasks = vec![spawn(&service, request("drain", 10))];
    tokio::task::yield_now().await;
    tasks.push(spawn(&service, request("large", 10)));
    tokio::task::yield_now().await;
    // A 1-token request every 100 ms, each of which would fit on its own.
    let producer = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut smalls = Vec::new();
            for i in 0..20 {
                smalls.push(spawn(&service, request(&format!("small{i}"), 1)));
                time::sleep(millis(100)).await;
            }
            smalls
        })
    };
    tasks.extend(producer.await.unwrap());
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let log = transport.log();
    assert_eq!(log[0], ("drain".to_owned(), Duration::ZERO));
    // 10 tokens refill in exactly one second; nothing arriving later goes first.
    assert_eq!(log[1], ("large".to_owned(), secs(1)));
    // The small ones then follow at the refill rate, in order.
    assert_eq!(log[2], ("small0".to_owned(), millis(1_100)));
    assert_eq!(log[3], ("small1".to_owned(), millis(1_200)));
}

/// Higher priority first, first come first served within a class.
#[tokio::test(start_paused = true)]
async fn higher_priority_goes_first() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]));
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let with = |name: &str, priority: Priority| {
        let mut request = request(name, 0);
        request.extensions_mut().insert(priority);
        request
    };
    let mut tasks = Vec::new();
    for (name, priority) in [
        ("first", Priority::NORMAL),
        ("low", Priority::LOW),
        ("normal1", Priority::NORMAL),
        ("high", Priority::HIGH),
        ("normal2", Priority::NORMAL),
    ] {
        tasks.push(spawn(&service, with(name, priority)));
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        transport.names(),
        ["first", "high", "normal1", "normal2", "low"]
    );
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(at, [Duration::ZERO, secs(1), secs(2), secs(3), secs(4)]);
}

/// A wait longer than the maximum, or than the request's deadline, fails at once with
/// `retry_after`, spending nothing.
#[tokio::test(start_paused = true)]
async fn waits_beyond_the_limit_or_deadline_fail_at_once() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::requests(Quota::per_second(n(1)))]))
            .with_max_wait(millis(1_500)),
    );
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let start = Instant::now();
    let first = spawn(&service, request("a", 0));
    tokio::task::yield_now().await;
    let second = spawn(&service, request("b", 0)); // waits 1 s: allowed
    tokio::task::yield_now().await;
    let third = spawn(&service, request("c", 0)); // would wait 2 s: refused now
    tokio::task::yield_now().await;
    let mut late = request("d", 0);
    late.extensions_mut().insert(Deadline::after(millis(500)));
    let fourth = spawn(&service, late); // 2 s > its 0.5 s deadline: refused now
    let refused = third.await.unwrap().unwrap_err();
    assert_eq!(
        refused.downcast_ref::<RateLimited>().unwrap().retry_after(),
        secs(2)
    );
    let refused = fourth.await.unwrap().unwrap_err();
    assert_eq!(
        refused.downcast_ref::<RateLimited>().unwrap().retry_after(),
        secs(2)
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // The refused requests spent nothing: the next is admitted at 2 s, right after "b".
    spawn(&service, request("e", 0)).await.unwrap().unwrap();
    assert_eq!(transport.log().last().unwrap(), &("e".to_owned(), secs(2)));
}

/// Reject-only: never waits.
#[tokio::test(start_paused = true)]
async fn reject_only_never_waits() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::requests(Quota::per_minute(n(1)))]))
            .with_max_wait(Duration::ZERO),
    );
    let service = layer.layer(Recorder::new());
    spawn(&service, request("a", 0)).await.unwrap().unwrap();
    let refused = spawn(&service, request("b", 0)).await.unwrap().unwrap_err();
    let refused = refused.downcast_ref::<RateLimited>().unwrap();
    assert_eq!(refused.retry_after(), secs(60));
    assert_eq!(refused.to_string(), "rate limited; retry after 60s");
}

/// A request dropped while waiting leaves the queue and spends nothing; the one behind it takes
/// its place.
#[tokio::test(start_paused = true)]
async fn a_request_dropped_while_waiting_spends_nothing() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]));
    let handle = layer.handle();
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    spawn(&service, request("a", 0)).await.unwrap().unwrap();
    let dropped = spawn(&service, request("dropped", 0));
    tokio::task::yield_now().await;
    let next = spawn(&service, request("next", 0));
    tokio::task::yield_now().await;
    assert_eq!(handle.waiting(), 2);
    time::advance(millis(500)).await;
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    assert_eq!(handle.waiting(), 1);
    next.await.unwrap().unwrap();
    assert_eq!(
        transport.log(),
        [
            ("a".to_owned(), Duration::ZERO),
            ("next".to_owned(), secs(1))
        ]
    );
    assert_eq!(handle.waiting(), 0);
}

/// A request dropped after admission keeps its charge.
#[tokio::test(start_paused = true)]
async fn a_request_dropped_after_admission_keeps_its_charge() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::requests(Quota::per_second(n(1)))]))
            .with_max_wait(Duration::ZERO),
    );
    // A transport that never answers.
    let hang = tower::service_fn(|_: Request<String>| {
        std::future::pending::<Result<Response<()>, Infallible>>()
    });
    let mut service = layer.layer(hang);
    let mut admitted = service.ready().await.unwrap().call(request("a", 0));
    // Polled once: admitted and calling.
    assert!(futures_poll(&mut admitted).is_pending());
    drop(admitted);
    let refused = service
        .ready()
        .await
        .unwrap()
        .call(request("b", 0))
        .await
        .unwrap_err();
    assert!(refused.is::<RateLimited>());
}

fn futures_poll<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = std::task::Waker::noop();
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

// ===== feedback from the provider =====

/// The provider's `remaining` caps the local quota.
#[tokio::test(start_paused = true)]
async fn the_providers_remaining_caps_the_local_quota() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::tokens(Quota::per_minute(n(60_000)))]))
            .with_max_wait(Duration::ZERO),
    );
    let transport = Recorder::answering(|_| {
        let mut snapshot = RateLimitSnapshot::new();
        snapshot.set(
            Dimension::Tokens,
            Window::Minute,
            LimitReading::new().with_limit(60_000).with_remaining(1_000),
        );
        verdict_response(Verdict::success().with_rate_limits(snapshot))
    });
    let service = layer.layer(transport);
    spawn(&service, request("a", 100)).await.unwrap().unwrap();
    // Locally 59,900 are left; the provider says 1,000.
    // One more token comes in a millisecond (1,000 per second).
    assert_eq!(
        refused_after(&service, request("b", 1_001)).await,
        millis(1)
    );
    spawn(&service, request("c", 1_000)).await.unwrap().unwrap();
}

/// A 429 with a delay pauses the whole key: every waiter and every new request waits it out,
/// and then they leave at the limit's pace (100/s), not all at once.
#[tokio::test(start_paused = true)]
async fn a_429_pauses_the_key_for_everyone() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(100)))]));
    let transport = Recorder::answering(|request| {
        if request.body() == "limited" {
            verdict_response(
                Verdict::failure(ErrorClass::RateLimited)
                    .with_status(StatusCode::TOO_MANY_REQUESTS)
                    .with_delay(secs(5), DelaySource::RetryAfterSeconds),
            )
        } else {
            Response::new(())
        }
    });
    let service = layer.layer(transport.clone());
    spawn(&service, request("limited", 0))
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        tasks.push(spawn(&service, request(name, 0)));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(at, [Duration::ZERO, secs(5), millis(5_010), millis(5_020)]);
}

/// Without a verdict, a 429's `retry-after` header still pauses the key.
#[tokio::test(start_paused = true)]
async fn a_bare_429_with_retry_after_pauses_the_key() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(100)))]));
    let transport = Recorder::answering(|request| {
        let mut response = Response::new(());
        if request.body() == "limited" {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert("retry-after-ms", "2500".parse().unwrap());
        }
        response
    });
    let service = layer.layer(transport.clone());
    spawn(&service, request("limited", 0))
        .await
        .unwrap()
        .unwrap();
    spawn(&service, request("after", 0)).await.unwrap().unwrap();
    assert_eq!(transport.log()[1], ("after".to_owned(), millis(2_500)));
}

/// An overload (529) is not our rate limit: it never pauses the key.
#[tokio::test(start_paused = true)]
async fn an_overload_does_not_pause_the_key() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(100)))]));
    let transport = Recorder::answering(|_| {
        verdict_response(
            Verdict::failure(ErrorClass::Overloaded)
                .with_status(StatusCode::from_u16(529).unwrap())
                .with_delay(secs(5), DelaySource::RetryAfterSeconds),
        )
    });
    let service = layer.layer(transport.clone());
    spawn(&service, request("a", 0)).await.unwrap().unwrap();
    spawn(&service, request("b", 0)).await.unwrap().unwrap();
    assert_eq!(transport.log()[1].1, Duration::ZERO);
}

/// Reported usage refunds what was over-estimated and charges what was under-estimated.
#[tokio::test(start_paused = true)]
async fn usage_reconciles_the_estimate() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::tokens(Quota::per_minute(n(6_000)))]))
            .with_max_wait(Duration::ZERO),
    );
    let handle = layer.handle();
    let transport = Recorder::answering(|request| {
        let mut response = Response::new(());
        let used = match request.body().as_str() {
            "over-estimated" => 1_000, // charged 4,000
            _ => 3_000,                // charged 1,000
        };
        response.extensions_mut().insert(
            Usage::new()
                .with_input_tokens(used / 2)
                .with_output_tokens(used / 2),
        );
        response
    });
    let service = layer.layer(transport);
    spawn(&service, request("over-estimated", 4_000))
        .await
        .unwrap()
        .unwrap();
    // 6,000 − 1,000 actually used: 5,000 fit now, though 4,000 were charged at first.
    spawn(&service, request("under-estimated", 1_000))
        .await
        .unwrap()
        .unwrap();
    // 5,000 − 3,000 = 2,000 left: 2,001 waits for one token, 10 ms at 100 per second.
    assert_eq!(
        refused_after(&service, request("x", 2_001)).await,
        millis(10)
    );
    assert_eq!(handle.waiting(), 0);
}

/// 6,000 tokens a minute, refusing rather than waiting, over a transport whose every answer is
/// a stream reporting its usage to `report`.
fn streaming(
    report: &StreamReport,
) -> RateLimit<Recorder, tollgate_ratelimit::Unkeyed, tollgate_ratelimit::PerRequest> {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::tokens(Quota::per_minute(n(6_000)))]))
            .with_max_wait(Duration::ZERO),
    );
    let report = report.clone();
    layer.layer(Recorder::answering(move |_| {
        let mut response = Response::new(());
        response.extensions_mut().insert(report.clone());
        response
    }))
}

/// A streamed answer reports its usage when its stream ends, long after the response was
/// handed on: the estimate is reconciled then.
#[tokio::test(start_paused = true)]
async fn a_streams_usage_reconciles_the_estimate_at_its_end() {
    let report = StreamReport::new();
    let service = streaming(&report);
    spawn(&service, request("stream", 5_000))
        .await
        .unwrap()
        .unwrap();
    // While the stream runs, the 5,000 estimated stay charged: 2,000 more do not fit.
    assert_eq!(
        refused_after(&service, request("x", 2_000)).await,
        millis(10_000)
    );
    // It ends having used 1,000: 4,000 come back.
    report.complete(Some(
        Usage::new().with_input_tokens(400).with_output_tokens(600),
    ));
    spawn(&service, request("after", 5_000))
        .await
        .unwrap()
        .unwrap();
}

/// A stream that fails (so reports no usage) keeps its estimate charged.
#[tokio::test(start_paused = true)]
async fn a_stream_without_usage_keeps_its_estimate() {
    let report = StreamReport::new();
    let service = streaming(&report);
    spawn(&service, request("stream", 5_000))
        .await
        .unwrap()
        .unwrap();
    report.fail(tollgate_core::ErrorClass::Truncated);
    assert_eq!(
        refused_after(&service, request("x", 2_000)).await,
        millis(10_000)
    );
}

/// The usage can come in the verdict, and the estimator turns it into the dimensions it
/// charges.
#[tokio::test(start_paused = true)]
async fn verdict_usage_goes_through_the_estimator() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([
            Limit::input_tokens(Quota::per_minute(n(600))),
            Limit::output_tokens(Quota::per_minute(n(600))),
        ]))
        .with_max_wait(Duration::ZERO),
    )
    .with_estimator(tollgate_ratelimit::AnthropicMessages::new());
    let transport = Recorder::answering(|_| {
        verdict_response(
            Verdict::success().with_usage(
                Usage::new()
                    .with_input_tokens(500)
                    .with_cached_input_tokens(400)
                    .with_output_tokens(700),
            ),
        )
    });
    let service = layer.layer(transport);
    let body =
        r#"{"model":"claude","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}"#;
    spawn(&service, Request::new(body.to_owned()))
        .await
        .unwrap()
        .unwrap();
    // 700 output tokens put the 600-per-minute output limit 100 into debt: the next request
    // waits until it is repaid (10 per second).
    assert_eq!(
        refused_after(&service, Request::new(body.to_owned())).await,
        secs(10)
    );
}

// ===== runtime changes =====

/// Limits change at runtime for every clone; what was used carries over.
#[tokio::test(start_paused = true)]
async fn limits_change_at_runtime() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::requests(Quota::per_minute(n(2)))]))
            .with_max_wait(Duration::ZERO),
    );
    let handle = layer.handle();
    let service = layer.layer(Recorder::new());
    spawn(&service, request("a", 0)).await.unwrap().unwrap();
    spawn(&service, request("b", 0)).await.unwrap().unwrap();
    assert!(spawn(&service, request("c", 0)).await.unwrap().is_err());
    handle.set_limits(limits([Limit::requests(Quota::per_minute(n(3)))]));
    // Two of three used: one more fits, then none.
    spawn(&service, request("d", 0)).await.unwrap().unwrap();
    assert!(spawn(&service, request("e", 0)).await.unwrap().is_err());
}

// ===== the service contract =====

/// The cost comes from the estimator when the request has no `Cost` extension.
#[tokio::test(start_paused = true)]
async fn the_estimator_prices_requests_without_a_cost() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::tokens(Quota::per_minute(n(10)))]))
            .with_max_wait(Duration::ZERO),
    )
    .with_estimator(estimator_fn(|request: &Request<String>| {
        Cost::ZERO.with(Dimension::Tokens, request.body().len() as u64)
    }));
    let service = layer.layer(Recorder::new());
    spawn(&service, Request::new("12345678".to_owned()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refused_after(&service, Request::new("123".to_owned())).await,
        secs(6)
    );
}

/// The inner service's errors pass through, and its readiness errors too.
#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]));
    let failing = tower::service_fn(|_: Request<String>| async {
        Err::<Response<()>, _>(std::io::Error::other("connection reset"))
    });
    let error = layer
        .layer(failing)
        .oneshot(request("a", 0))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "connection reset");
}

#[test]
#[should_panic(expected = "poll_ready")]
fn call_without_poll_ready_panics() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(1)))]));
    let mut service = layer.layer(Recorder::new());
    drop(service.call(request("a", 0)));
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<RateLimitLayer>();
    clone::<RateLimitLayer>();
    send_sync::<RateLimit<Recorder>>();
    clone::<RateLimit<Recorder>>();
    let mut service = RateLimitLayer::new(Limits::unlimited()).layer(Recorder::new());
    let _ = futures_poll(&mut service.ready());
    send(&service.call(request("a", 0)));
}

// ===== the store seam =====

/// A store that answers after a round trip, as a remote one would, around a `MemoryStore`: it
/// decides when asked (as a server would, in the order asked) and the answer arrives `latency`
/// later (on the next poll when zero).
struct RoundTripStore {
    inner: tollgate_ratelimit::MemoryStore,
    latency: Duration,
    admits: std::sync::atomic::AtomicUsize,
    feedback: Mutex<Vec<tollgate_ratelimit::Feedback>>,
}

impl RoundTripStore {
    fn new(limits: Limits, latency: Duration) -> Self {
        RoundTripStore {
            inner: tollgate_ratelimit::MemoryStore::new(limits),
            latency,
            admits: Default::default(),
            feedback: Mutex::default(),
        }
    }
}

/// An answer that is ready on the second poll, or once its latency has passed.
struct RoundTrip {
    answer: Option<Result<tollgate_ratelimit::QuotaDecision, BoxError>>,
    arrives: Option<Pin<Box<time::Sleep>>>,
    sent: bool,
}

impl Future for RoundTrip {
    type Output = Result<tollgate_ratelimit::QuotaDecision, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(arrives) = &mut self.arrives {
            std::task::ready!(arrives.as_mut().poll(cx));
        } else if !self.sent {
            self.sent = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.answer.take().expect("polled after completion"))
    }
}

impl tollgate_ratelimit::Store for RoundTripStore {
    type Future = RoundTrip;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> RoundTrip {
        self.admits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RoundTrip {
            answer: Some(self.inner.admit(key, cost, ahead, now).into_inner()),
            arrives: (!self.latency.is_zero()).then(|| Box::pin(time::sleep(self.latency))),
            sent: false,
        }
    }

    fn feedback(
        &self,
        key: Option<&RouteKey>,
        feedback: &tollgate_ratelimit::Feedback,
        now: Duration,
    ) {
        self.feedback.lock().unwrap().push(feedback.clone());
        self.inner.feedback(key, feedback, now);
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        self.inner.set_limits(key, limits);
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.inner.limits(key)
    }

    fn keys(&self) -> usize {
        self.inner.keys()
    }
}

/// Another store replaces the in-memory one without touching the layer, even one whose
/// answers take a round trip.
#[tokio::test(start_paused = true)]
async fn a_store_with_round_trips_replaces_the_memory_store() {
    let store = RoundTripStore::new(
        limits([Limit::requests(Quota::per_second(n(1)))]),
        Duration::ZERO,
    );
    let layer =
        RateLimitLayer::from_store(store, limits([Limit::requests(Quota::per_second(n(1)))]));
    let handle = layer.handle();
    let transport = Recorder::answering(|_| {
        let mut response = Response::new(());
        response
            .extensions_mut()
            .insert(Usage::new().with_total_tokens(7));
        response
    });
    let service = layer.layer(transport.clone());
    let first = spawn(&service, request("a", 0));
    let second = spawn(&service, request("b", 0));
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(at, [Duration::ZERO, secs(1)]);
    // "a" once; "b" refused at first, then admitted after its wait.
    let store = handle.store();
    assert_eq!(store.admits.load(std::sync::atomic::Ordering::Relaxed), 3);
    // Each response's usage was reported back through the store: 7 tokens, none estimated.
    let feedback = store.feedback.lock().unwrap();
    assert_eq!(
        *feedback,
        [
            tollgate_ratelimit::Feedback::Charge(Cost::ZERO.with(Dimension::Tokens, 7)),
            tollgate_ratelimit::Feedback::Charge(Cost::ZERO.with(Dimension::Tokens, 7)),
        ]
    );
}

/// A store's round trip is not a wait for quota: with no patience at all (`max_wait` zero),
/// requests sent together while answers are on their way are admitted as far as the quota has
/// room, and the others are refused with the quota's own wait — none gives up because the one
/// before it is still waiting for its answer.
#[tokio::test(start_paused = true)]
async fn a_round_trip_does_not_count_against_max_wait() {
    let quota = || limits([Limit::requests(Quota::per_minute(n(10)))]);
    let store = RoundTripStore::new(quota(), millis(1));
    let config = RateLimitConfig::new(quota()).with_max_wait(Duration::ZERO);
    let layer = RateLimitLayer::from_store(store, config);
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let tasks: Vec<_> = (0..20)
        .map(|i| spawn(&service, request(&format!("r{i}"), 0)))
        .collect();
    let mut refusals = Vec::new();
    for task in tasks {
        if let Err(error) = task.await.unwrap() {
            let refused = error.downcast_ref::<RateLimited>().expect("a refusal");
            refusals.push(refused.retry_after());
        }
    }
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    // Ten admitted, each after its answer's round trip, in the order sent.
    assert_eq!(at, [millis(1); 10]);
    let names: Vec<String> = transport.log().into_iter().map(|(name, _)| name).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(names, expected);
    // Ten refused, told the quota's own wait: the next of ten per minute in six seconds.
    assert_eq!(refusals.len(), 10);
    assert!(refusals.iter().all(|wait| *wait == secs(6)), "{refusals:?}");
}

/// A store's round trip is not counted against a short `max_wait` either: a request the quota
/// admits within it waits for its turn and is admitted, though the answers take longer.
#[tokio::test(start_paused = true)]
async fn a_short_max_wait_is_measured_on_the_quota() {
    let quota = || {
        limits([Limit::requests(
            Quota::per_second(n(1_000)).with_burst(n(1)),
        )])
    };
    let store = RoundTripStore::new(quota(), millis(5));
    let config = RateLimitConfig::new(quota()).with_max_wait(millis(2));
    let layer = RateLimitLayer::from_store(store, config);
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let tasks: Vec<_> = (0..2)
        .map(|i| spawn(&service, request(&format!("r{i}"), 0)))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    // The first at its answer; the second told to wait 1 ms (within 2 ms), asks again, admitted
    // at that answer.
    assert_eq!(at, [millis(5), millis(10)]);
}

/// The wait queue is capped (`max_queue`): 50,000 requests at once against one a minute, 1,024
/// may wait, and every other one is refused at once, told how long the quota's wait is and how
/// many were waiting — the memory held by waiters is bounded by the cap.
#[tokio::test(start_paused = true)]
async fn the_wait_queue_is_capped_and_every_refusal_says_when() {
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_minute(n(1)))]));
    assert_eq!(layer.config().max_queue, 1_024);
    let handle = layer.handle();
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let tasks: Vec<_> = (0..50_000)
        .map(|i| spawn(&service, request(&format!("r{i}"), 0)))
        .collect();
    // Let every task run until it waits or is refused.
    time::sleep(millis(1)).await;
    assert_eq!(handle.waiting(), 1_024);
    let mut refused = 0;
    for task in tasks.into_iter().skip(1_025) {
        let error = task.await.unwrap().unwrap_err();
        let error = error.downcast_ref::<RateLimited>().expect("a refusal");
        assert_eq!(error.waiting(), Some(1_024));
        assert!(error.retry_after() >= secs(59), "{:?}", error.retry_after());
        refused += 1;
    }
    assert_eq!(refused, 48_975);
    assert_eq!(transport.log().len(), 1);

    // A smaller cap, and one that lets nobody wait.
    for (cap, admitted_by_three_minutes) in [(2, 3), (0, 1)] {
        let config = RateLimitConfig::new(limits([Limit::requests(Quota::per_minute(n(1)))]))
            .with_max_queue(cap);
        let transport = Recorder::new();
        let service = RateLimitLayer::new(config).layer(transport.clone());
        let tasks: Vec<_> = (0..10)
            .map(|i| spawn(&service, request(&format!("r{i}"), 0)))
            .collect();
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(error) => {
                    let error = error.downcast_ref::<RateLimited>().expect("a refusal");
                    assert_eq!(error.waiting(), Some(cap));
                }
            }
        }
        assert_eq!(ok, admitted_by_three_minutes, "cap {cap}");
    }
}

// ===== regressions found in review =====

/// "Wait for ever" (`Duration::MAX`) and a broken `retry-after` far in the future never make
/// time overflow: the waiters wait, the key's pause is capped at a day.
#[tokio::test(start_paused = true)]
async fn huge_waits_do_not_overflow_time() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::requests(Quota::per_second(n(1)))]))
            .with_max_wait(Duration::MAX),
    );
    let transport = Recorder::new();
    let service = layer.layer(transport.clone());
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| spawn(&service, request(name, 0)))
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(at, [Duration::ZERO, secs(1), secs(2)]);

    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_second(n(100)))]));
    let transport = Recorder::answering(|request| {
        let mut response = Response::new(());
        if request.body() == "limited" {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let far = "10000000000000000000".parse().unwrap();
            response.headers_mut().insert("retry-after", far);
        }
        response
    });
    let service = layer.layer(transport.clone());
    spawn(&service, request("limited", 0))
        .await
        .unwrap()
        .unwrap();
    spawn(&service, request("after", 0)).await.unwrap().unwrap();
    assert_eq!(transport.log()[1], ("after".to_owned(), secs(86_400)));
}

/// Requests called in order keep their order even when polled in another: the place in the
/// queue is taken in `call`.
#[tokio::test(start_paused = true)]
async fn the_order_of_calls_is_kept_before_any_poll() {
    let layer = RateLimitLayer::new(limits([Limit::tokens(Quota::per_second(n(10)))]));
    let transport = Recorder::new();
    let mut service = layer.layer(transport.clone());
    service
        .ready()
        .await
        .unwrap()
        .call(request("drain", 8))
        .await
        .unwrap();
    let large = service.ready().await.unwrap().call(request("large", 10));
    let small = service.ready().await.unwrap().call(request("small", 2));
    // The later call is polled first.
    let (small, large) = tokio::join!(small, large);
    small.unwrap();
    large.unwrap();
    assert_eq!(transport.names(), ["drain", "large", "small"]);
    let at: Vec<Duration> = transport.log().into_iter().map(|(_, at)| at).collect();
    assert_eq!(at, [Duration::ZERO, millis(800), millis(1_000)]);
}

/// The provider's `remaining` has the last word over a refund from the same response.
#[tokio::test(start_paused = true)]
async fn the_providers_remaining_wins_over_the_refund() {
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(limits([Limit::tokens(Quota::per_minute(n(60_000)))]))
            .with_max_wait(Duration::ZERO),
    );
    let transport = Recorder::answering(|_| {
        let mut snapshot = RateLimitSnapshot::new();
        let reading = LimitReading::new().with_limit(60_000).with_remaining(1_000);
        snapshot.set(Dimension::Tokens, Window::Minute, reading);
        let mut response = verdict_response(Verdict::success().with_rate_limits(snapshot));
        let usage = Usage::new().with_input_tokens(50).with_output_tokens(50);
        response.extensions_mut().insert(usage);
        response
    });
    let service = layer.layer(transport);
    // Charged 5,000, used 100; the provider says 1,000 remain.
    spawn(&service, request("a", 5_000)).await.unwrap().unwrap();
    assert_eq!(refused_after(&service, request("b", 5_000)).await, secs(4));
}

/// A refund frees room only where the refunded request counted: never in a later window, never
/// from a later request's log entry.
#[test]
fn window_refunds_free_only_their_own_room() {
    use tollgate_ratelimit::{Feedback, MemoryStore, QuotaDecision, Store};
    fn admit(store: &MemoryStore, tokens: u64, now: Duration) -> QuotaDecision {
        let cost = Cost::ZERO.with(Dimension::Tokens, tokens);
        store.admit(None, &cost, None, now).into_inner().unwrap()
    }
    let refund = |tokens, taken_at| Feedback::Refund {
        cost: Cost::ZERO.with(Dimension::Tokens, tokens),
        taken_at,
    };
    // Fixed window, 2,000 per second.
    let fixed = MemoryStore::new(limits([
        Limit::tokens(Quota::per_second(n(2_000))).with_algorithm(AlgorithmKind::FixedWindow)
    ]));
    assert_eq!(admit(&fixed, 1_000, millis(900)), QuotaDecision::Admitted); // uses 100
    assert_eq!(admit(&fixed, 1_500, millis(1_100)), QuotaDecision::Admitted);
    fixed.feedback(None, &refund(900, millis(900)), millis(1_200));
    assert_ne!(admit(&fixed, 1_400, millis(1_300)), QuotaDecision::Admitted);
    assert_eq!(admit(&fixed, 500, millis(1_300)), QuotaDecision::Admitted);
    // The exact log, 2,000 per minute.
    let log =
        MemoryStore::new(limits([Limit::tokens(Quota::per_minute(n(2_000)))
            .with_algorithm(AlgorithmKind::SlidingWindowLog)]));
    assert_eq!(admit(&log, 1_000, secs(0)), QuotaDecision::Admitted); // uses 100
    assert_eq!(admit(&log, 1_000, secs(30)), QuotaDecision::Admitted);
    log.feedback(None, &refund(900, secs(0)), secs(31));
    // At 60 s the first request has left; the second's 1,000 stay until 90 s.
    assert_ne!(admit(&log, 1_001, secs(60)), QuotaDecision::Admitted);
    assert_eq!(admit(&log, 1_000, secs(60)), QuotaDecision::Admitted);
    // And within the first minute the refund did free the first request's room.
    let log =
        MemoryStore::new(limits([Limit::tokens(Quota::per_minute(n(2_000)))
            .with_algorithm(AlgorithmKind::SlidingWindowLog)]));
    assert_eq!(admit(&log, 1_000, secs(0)), QuotaDecision::Admitted);
    assert_eq!(admit(&log, 1_000, secs(30)), QuotaDecision::Admitted);
    log.feedback(None, &refund(900, secs(0)), secs(31));
    assert_eq!(admit(&log, 900, secs(31)), QuotaDecision::Admitted);
}

/// Debt at the edge of the arithmetic neither panics nor admits.
#[test]
fn enormous_debt_never_admits() {
    use tollgate_ratelimit::{Feedback, MemoryStore, QuotaDecision, Store};
    let quota = Quota::new(n(1), Duration::from_nanos(u64::MAX)).unwrap();
    let store = MemoryStore::new(limits([Limit::tokens(quota)]));
    let huge = Feedback::Charge(Cost::ZERO.with(Dimension::Tokens, u64::MAX));
    store.feedback(None, &huge, secs(0));
    store.feedback(None, &huge, secs(0));
    let one = Cost::ZERO.with(Dimension::Tokens, 1);
    let decision = store.admit(None, &one, None, secs(0)).into_inner().unwrap();
    assert!(matches!(decision, QuotaDecision::Wait(_)), "{decision:?}");
    // A fixed window at the end of time does not overflow either.
    let tiny = Quota::new(n(1), Duration::from_nanos(1)).unwrap();
    let fixed = MemoryStore::new(limits([
        Limit::requests(tiny).with_algorithm(AlgorithmKind::FixedWindow)
    ]));
    for _ in 0..2 {
        drop(
            fixed
                .admit(None, &Cost::requests(1), None, Duration::MAX)
                .into_inner(),
        );
    }
}

/// Utilization per dimension is the busiest of that dimension's limits.
#[test]
fn utilization_reports_the_busiest_limit_per_dimension() {
    use tollgate_ratelimit::{MemoryStore, Store};
    let store = MemoryStore::new(limits([
        Limit::requests(Quota::per_minute(n(10))),
        Limit::tokens(Quota::per_minute(n(1_000))),
        Limit::tokens(Quota::per_day(n(100_000))),
    ]));
    let cost = Cost::requests(1).with(Dimension::Tokens, 500);
    for _ in 0..2 {
        drop(store.admit(None, &cost, None, secs(0)).into_inner());
    }
    let mut used = store.utilization(None, secs(0));
    used.sort_by_key(|(dimension, _)| dimension.index());
    assert_eq!(
        used,
        [(Dimension::Requests, 0.2), (Dimension::Tokens, 1.0)],
        "the minute's tokens are all used; the day's only 1 %"
    );
    // Half a minute later half the minute's tokens have come back.
    let used = store.utilization(None, secs(30));
    assert!(used.contains(&(Dimension::Tokens, 0.5)), "{used:?}");
}

/// A refund lets the first waiter in at once instead of at its planned time.
#[tokio::test(start_paused = true)]
async fn a_refund_wakes_the_first_waiter_early() {
    let layer = RateLimitLayer::new(limits([Limit::tokens(Quota::per_minute(n(6_000)))]));
    // Each answer comes 1 s after the call and reports 100 tokens used.
    let slow = tower::service_fn(|_: Request<String>| async {
        time::sleep(secs(1)).await;
        let mut response = Response::new(());
        response
            .extensions_mut()
            .insert(Usage::new().with_total_tokens(100));
        Ok::<_, Infallible>(response)
    });
    let service = layer.layer(slow);
    let start = Instant::now();
    let first = spawn(&service, request("a", 6_000)); // charged the whole minute
    tokio::task::yield_now().await;
    let second = spawn(&service, request("b", 3_000)); // planned for 30 s
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // At 1 s the first's refund of 5,900 lets the second in; its answer takes 1 s more.
    assert_eq!(start.elapsed(), secs(2));
}

/// The outlook says what admission would decide and what headroom it would leave, spending
/// nothing; a newcomer behind waiters is told to wait.
#[tokio::test(start_paused = true)]
async fn the_outlook_spends_nothing_and_counts_waiters() {
    use tollgate_ratelimit::{Outlook, QuotaDecision};
    let layer = RateLimitLayer::new(limits([Limit::requests(Quota::per_minute(n(2)))]));
    let handle = layer.handle();
    let one = Cost::requests(1);
    let outlook = |handle: &tollgate_ratelimit::RateLimitHandle| handle.outlook(None, &one);
    let expect = |decision, headroom| Some(Outlook { decision, headroom });
    assert_eq!(outlook(&handle), expect(QuotaDecision::Admitted, 0.5));
    assert_eq!(
        outlook(&handle),
        expect(QuotaDecision::Admitted, 0.5),
        "nothing spent"
    );
    let service = layer.layer(tower::service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    for _ in 0..2 {
        service
            .clone()
            .oneshot(Request::new(String::new()))
            .await
            .unwrap();
    }
    assert_eq!(
        outlook(&handle),
        expect(QuotaDecision::Wait(secs(30)), -0.5)
    );
    // One caller waits for the next slot (30 s); a newcomer would come after it (60 s).
    let waiter = tokio::spawn(service.clone().oneshot(Request::new(String::new())));
    tokio::task::yield_now().await;
    assert_eq!(handle.waiting(), 1);
    assert_eq!(
        outlook(&handle),
        expect(QuotaDecision::Wait(secs(60)), -0.5)
    );
    waiter.await.unwrap().unwrap();
}
