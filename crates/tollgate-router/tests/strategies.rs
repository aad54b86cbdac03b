//! The router's choices at their boundaries, on tokio's paused clock: a context window exactly
//! as large as the request needs takes it; least-loaded never picks a deployment the request
//! does not fit, however much headroom it has, and breaks a tie of headroom by the requests in
//! flight; latency-aware draws two distinct deployments, any two, and weighs latency by the
//! requests in flight, and its moving average of latency; when nothing can take a request now,
//! the first of the deployments free soonest is waited for, exactly up to the wait allowed.
//! Found by mutation testing (CONTRIBUTING.md, "Mutation testing").

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tollgate_core::Deadline;
use tollgate_core::body::BufferedBody;
use tollgate_providers::rewrite::Credentials;
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits};
use tollgate_router::error::{ContextWindowTooSmall, NoDeployment};
use tollgate_router::{Deployment, RouterConfig, RouterLayer, Strategy};
use tower::{Layer, ServiceExt};

/// A transport that answers every request and logs the bearer key it came with.
fn transport(
    log: Arc<Mutex<Vec<String>>>,
) -> impl tower::Service<
    Request<BufferedBody>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let drift_calls = Arc::new(AtomicU32::new(0));
    tower::service_fn(move |request: Request<BufferedBody>| {
        let key = request.headers()[http::header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .trim_start_matches("Bearer ")
            .to_owned();
        // "slow…" takes ten seconds to answer, "ms<n>" n milliseconds, "drift" 10 ms twice
        // and 100 ms after; every other key answers at once.
        let latency = match key.strip_prefix("ms") {
            _ if key.starts_with("slow") => Duration::from_secs(10),
            _ if key == "drift" => match drift_calls.fetch_add(1, Ordering::Relaxed) {
                0 | 1 => Duration::from_millis(10),
                _ => Duration::from_millis(100),
            },
            Some(ms) => Duration::from_millis(ms.parse().unwrap()),
            None => Duration::ZERO,
        };
        log.lock().unwrap().push(key);
        async move {
            tokio::time::sleep(latency).await;
            Ok::<_, Infallible>(Response::new(String::new()))
        }
    })
}

fn key(name: &str, window: u64) -> Deployment {
    Deployment::new(name)
        .with_rewrite(Credentials::bearer(name).unwrap())
        .with_context_window(window)
}

fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}"#,
        ))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_context_window_exactly_as_large_as_needed_takes_the_request() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    // What the request needs, from a window too small for it.
    let tiny = RouterLayer::new(RouterConfig::new([key("tiny", 1)]))
        .unwrap()
        .layer(transport(Arc::clone(&log)));
    let error = tiny.oneshot(chat()).await.unwrap_err();
    let needed = error
        .downcast_ref::<ContextWindowTooSmall>()
        .unwrap()
        .needed();
    assert!(needed > 100, "{needed}");
    // One token short is too small; exactly enough is sent.
    let short = RouterLayer::new(RouterConfig::new([key("short", needed - 1)]))
        .unwrap()
        .layer(transport(Arc::clone(&log)));
    let error = short.oneshot(chat()).await.unwrap_err();
    let too_small = error.downcast_ref::<ContextWindowTooSmall>().unwrap();
    assert_eq!(
        (too_small.needed(), too_small.largest()),
        (needed, needed - 1)
    );
    let exact = RouterLayer::new(RouterConfig::new([
        key("short", needed - 1),
        key("exact", needed),
    ]))
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    exact.clone().oneshot(chat()).await.unwrap();
    exact.oneshot(chat()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["exact", "exact"]);
}

#[tokio::test(start_paused = true)]
async fn least_loaded_passes_over_a_deployment_the_request_does_not_fit() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    // "roomy" has no quota (all headroom) but a window of one token; "fits" has a quota.
    let fits = key("fits", 1_000_000).with_limits(Limits::new([Limit::requests(
        Quota::per_minute(NonZeroU64::new(100).unwrap()),
    )]));
    let router = RouterLayer::new(
        RouterConfig::new([key("roomy", 1), fits]).with_strategy(Strategy::LeastLoaded),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    for _ in 0..3 {
        router.clone().oneshot(chat()).await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), ["fits", "fits", "fits"]);
}

#[tokio::test(start_paused = true)]
async fn least_loaded_breaks_a_tie_of_headroom_by_the_requests_in_flight() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let router = RouterLayer::new(
        RouterConfig::new([key("slow", 1_000_000), key("fast", 1_000_000)])
            .with_strategy(Strategy::LeastLoaded),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    // The first goes to "slow" (the scan starts there) and stays in flight.
    let first = tokio::spawn(router.clone().oneshot(chat()));
    tokio::task::yield_now().await;
    assert_eq!(*log.lock().unwrap(), ["slow"]);
    // The scan starts at "fast", then at "slow": both times "fast", which has nothing in
    // flight, wins the tie.
    router.clone().oneshot(chat()).await.unwrap();
    router.clone().oneshot(chat()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["slow", "fast", "fast"]);
    first.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn latency_aware_draws_two_distinct_deployments_from_all_pairs() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    // The 40 ms one is slower than any other: once measured, it loses every draw, unless a
    // draw picked it twice. The 30 ms one wins only a draw against it.
    let names = ["ms20", "ms10", "ms30", "ms11", "ms40"];
    let router = RouterLayer::new(
        RouterConfig::new(names.map(|name| key(name, 1_000_000)))
            .with_strategy(Strategy::LatencyAware),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    for _ in 0..60 {
        router.clone().oneshot(chat()).await.unwrap();
    }
    let log = log.lock().unwrap();
    let measured = (1..=log.len())
        .find(|&n| names.iter().all(|name| log[..n].iter().any(|k| k == name)))
        .expect("every deployment is tried while not yet measured");
    let after = &log[measured..];
    let count = |name: &str| after.iter().filter(|k| *k == name).count();
    assert_eq!(count("ms40"), 0, "{log:?}");
    assert!(count("ms30") > 0, "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn latency_aware_weighs_latency_by_the_requests_in_flight() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let router = RouterLayer::new(
        RouterConfig::new([key("ms10", 1_000_000), key("ms25", 1_000_000)])
            .with_strategy(Strategy::LatencyAware),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    // Both measured: the first goes to either, the second to the one not yet measured.
    for _ in 0..2 {
        router.clone().oneshot(chat()).await.unwrap();
    }
    log.lock().unwrap().clear();
    // Three at once: 10 ms × 1, 10 ms × 2, then 10 ms × 3 = 30 ms against 25 ms × 1.
    let mut burst = Vec::new();
    for _ in 0..3 {
        burst.push(tokio::spawn(router.clone().oneshot(chat())));
        tokio::task::yield_now().await;
    }
    for request in burst {
        request.await.unwrap().unwrap();
    }
    assert_eq!(*log.lock().unwrap(), ["ms10", "ms10", "ms25"]);
}

#[tokio::test(start_paused = true)]
async fn latency_aware_follows_a_moving_average_of_one_fifth_per_sample() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let router = RouterLayer::new(
        RouterConfig::new([key("drift", 1_000_000), key("ms30", 1_000_000)])
            .with_strategy(Strategy::LatencyAware),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    for _ in 0..6 {
        router.clone().oneshot(chat()).await.unwrap();
    }
    // drift: 10 ms, 10 ms (average 10), then 100 ms: 8 + 20 = 28 ms, still below 30; then
    // 22.4 + 20 = 42.4 ms, above.
    assert_eq!(
        *log.lock().unwrap(),
        ["drift", "ms30", "drift", "drift", "drift", "ms30"]
    );
}

fn one_a_minute(name: &str) -> Deployment {
    key(name, 1_000_000).with_limits(Limits::new([Limit::requests(Quota::per_minute(
        NonZeroU64::new(1).unwrap(),
    ))]))
}

#[tokio::test(start_paused = true)]
async fn the_first_of_the_deployments_free_soonest_is_waited_for_up_to_the_wait_allowed() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let router = RouterLayer::new(
        RouterConfig::new([one_a_minute("a"), one_a_minute("b")]).with_max_wait(secs(120)),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    router.clone().oneshot(chat()).await.unwrap();
    router.clone().oneshot(chat()).await.unwrap();
    // Both are free in 60 s: one 1 ms short of it is refused.
    let mut request = chat();
    request
        .extensions_mut()
        .insert(Deadline::after(secs(60) - Duration::from_millis(1)));
    let error = router.clone().oneshot(request).await.unwrap_err();
    assert_eq!(
        error.downcast_ref::<NoDeployment>().unwrap().retry_after(),
        Some(secs(60))
    );
    // Exactly 60 s allowed: it waits in the first one's queue, and goes at 60 s.
    let start = tokio::time::Instant::now();
    let mut request = chat();
    request.extensions_mut().insert(Deadline::after(secs(60)));
    router.clone().oneshot(request).await.unwrap();
    assert_eq!(start.elapsed(), secs(60));
    assert_eq!(*log.lock().unwrap(), ["a", "b", "a"]);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn latency_aware_sends_a_burst_to_deployments_not_yet_measured_one_at_a_time() {
    let log = Arc::<Mutex<Vec<String>>>::default();
    let router = RouterLayer::new(
        RouterConfig::new(["slow0", "slow1", "slow2"].map(|name| key(name, 1_000_000)))
            .with_strategy(Strategy::LatencyAware),
    )
    .unwrap()
    .layer(transport(Arc::clone(&log)));
    // None answers before all three are sent. A deployment not yet measured counts as the
    // fastest only while nothing is in flight there: the third request's draw holds one in
    // flight and one idle, and goes to the idle one.
    let mut burst = Vec::new();
    for _ in 0..3 {
        burst.push(tokio::spawn(router.clone().oneshot(chat())));
        tokio::task::yield_now().await;
    }
    let mut sent = log.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, ["slow0", "slow1", "slow2"]);
    for request in burst {
        request.await.unwrap().unwrap();
    }
}
