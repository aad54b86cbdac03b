//! `CircuitBreakerLayer` on tokio's paused clock: what counts, each trip model, the open
//! period and its growth, half-open probes (a dropped one included), manual control, modes,
//! keys and their memory, and the state-change hook.

use std::convert::Infallible;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::{self, Instant};
use tollgate_circuit_breaker::{
    BreakerConfig, BreakerState, CallWindow, CircuitBreaker, CircuitBreakerLayer, CircuitOpen,
    ClassSet, Mode, StateChange, Trip, on_state_change_fn,
};
use tollgate_core::key::ByRouteKey;
use tollgate_core::{BoxError, ErrorClass, RouteKey, Verdict};
use tower::{Layer, Service, ServiceExt};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// A provider whose status can be switched, and whose answers take `latency`.
#[derive(Clone, Default)]
struct Provider {
    status: Arc<AtomicU16>,
    latency_ms: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

impl Provider {
    fn answering(status: u16) -> Self {
        let provider = Provider::default();
        provider.set(status);
        provider
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Service<Request<()>> for Provider {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<()>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let status = self.status.load(Ordering::Relaxed);
        let latency = Duration::from_millis(self.latency_ms.load(Ordering::Relaxed));
        Box::pin(async move {
            if !latency.is_zero() {
                time::sleep(latency).await;
            }
            Ok(Response::builder().status(status).body(()).unwrap())
        })
    }
}

type Breaker = CircuitBreaker<Provider>;

async fn send(service: &Breaker) -> Result<u16, BoxError> {
    service
        .clone()
        .oneshot(Request::new(()))
        .await
        .map(|r| r.status().as_u16())
}

fn open_error(result: Result<u16, BoxError>) -> CircuitOpen {
    let error = result.expect_err("refused");
    error
        .downcast_ref::<CircuitOpen>()
        .expect("CircuitOpen")
        .clone()
}

#[tokio::test(start_paused = true)]
async fn consecutive_health_failures_trip_it_and_nothing_else_counts() {
    let provider = Provider::answering(503);
    let layer = CircuitBreakerLayer::new(BreakerConfig::default());
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    for _ in 0..4 {
        assert_eq!(send(&service).await.unwrap(), 503);
    }
    // A success in between starts the count again.
    provider.set(200);
    send(&service).await.unwrap();
    // 4xx, 429 and quota say nothing about the target's health: they count as answers.
    for status in [400, 401, 404, 429, 413] {
        provider.set(status);
        send(&service).await.unwrap();
    }
    provider.set(503);
    for _ in 0..4 {
        send(&service).await.unwrap();
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
    send(&service).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Open);
    let calls = provider.calls();
    let open = open_error(send(&service).await);
    assert_eq!(open.retry_after(), Some(secs(60)));
    assert_eq!(provider.calls(), calls, "refused without calling");
    assert_eq!(open.to_string(), "circuit open; a probe in 60s");
}

#[tokio::test(start_paused = true)]
async fn a_verdicts_class_decides_not_the_status() {
    // Quota exhausted as a 429 with a verdict: not counted; a 200 carrying an overload: counted.
    let overload = tower::service_fn(|_: Request<()>| async {
        let mut response = Response::new(());
        response
            .extensions_mut()
            .insert(Verdict::failure(ErrorClass::Overloaded));
        Ok::<_, Infallible>(response)
    });
    let config = BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(n(2)));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(overload);
    service.clone().oneshot(Request::new(())).await.unwrap();
    service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Open);
    // Counting can be configured: here 429s count too, overloads not.
    let counted = ClassSet::TARGET_HEALTH
        .with(ErrorClass::RateLimited)
        .without(ErrorClass::ServerError);
    assert!(counted.contains(ErrorClass::RateLimited));
    assert!(!counted.contains(ErrorClass::ServerError));
    assert!(counted.contains(ErrorClass::Overloaded));
}

#[tokio::test(start_paused = true)]
async fn local_refusals_count_for_nothing_and_an_attached_success_wins_over_the_status() {
    // Refused below without being sent, as a response or as an error: says nothing of the
    // target. A 503 whose verdict says success is a success.
    let refusals = tower::service_fn(|request: Request<()>| async move {
        let local = Verdict::failure(ErrorClass::Overloaded).refused_locally();
        match request.uri().path() {
            "/response" => {
                let mut response = Response::builder().status(503).body(()).unwrap();
                response.extensions_mut().insert(local);
                Ok(response)
            }
            "/success" => {
                let mut response = Response::builder().status(503).body(()).unwrap();
                response.extensions_mut().insert(Verdict::success());
                Ok(response)
            }
            _ => Err(BoxError::from(tollgate_core::Judged::new(local))),
        }
    });
    let config = BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(n(1)));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(refusals);
    for path in ["/response", "/error", "/success", "/response", "/error"] {
        let request = Request::get(path).body(()).unwrap();
        let _ = service.clone().oneshot(request).await;
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_probes_bring_it_back_or_reopen_it_for_longer() {
    let provider = Provider::answering(503);
    let config = BreakerConfig::default()
        .with_trip(Trip::ConsecutiveFailures(n(1)))
        .with_open_for(secs(10), 2, secs(25));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    send(&service).await.unwrap();
    assert_eq!(handle.retry_after(None), Some(secs(10)));
    // A probe after 10 s fails: open again for 20 s, then 25 s (the cap).
    time::advance(secs(10)).await;
    send(&service).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Open);
    assert_eq!(handle.retry_after(None), Some(secs(20)));
    time::advance(secs(20)).await;
    send(&service).await.unwrap();
    assert_eq!(handle.retry_after(None), Some(secs(25)));
    // Healthy again: three probes close it, and the next trip starts from 10 s again.
    provider.set(200);
    time::advance(secs(25)).await;
    for _ in 0..3 {
        send(&service).await.unwrap();
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
    provider.set(503);
    send(&service).await.unwrap();
    assert_eq!(handle.retry_after(None), Some(secs(10)));
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_a_bounded_number_of_probes_and_a_dropped_one_frees_its_slot() {
    let provider = Provider::answering(503);
    provider.latency_ms.store(1_000, Ordering::Relaxed);
    let config = BreakerConfig::default()
        .with_trip(Trip::ConsecutiveFailures(n(1)))
        .with_probes(n(2));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let mut service = layer.layer(provider.clone());
    send(&service).await.unwrap();
    time::advance(secs(60)).await;
    provider.set(200);
    // Two probes in flight; a third is refused while they are.
    let first = service.ready().await.unwrap().call(Request::new(()));
    let second = service.ready().await.unwrap().call(Request::new(()));
    assert_eq!(handle.state(None), BreakerState::HalfOpen);
    let third = open_error(send(&service).await);
    assert_eq!(third.retry_after(), None);
    // Dropping a probe before its answer gives its slot back.
    drop(first);
    let replacement = service.ready().await.unwrap().call(Request::new(()));
    let (a, b) = tokio::join!(second, replacement);
    a.unwrap();
    b.unwrap();
    assert_eq!(handle.state(None), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_failure_rate_trips_over_a_window_of_calls_once_full_enough() {
    let provider = Provider::answering(200);
    let config = BreakerConfig::default().with_trip(Trip::FailureRate {
        percent: 50,
        window: CallWindow::Calls(n(10)),
        min_calls: 6,
    });
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    // 3 failures of 4 calls: 75 %, but fewer than 6 calls.
    send(&service).await.unwrap();
    provider.set(500);
    for _ in 0..3 {
        send(&service).await.unwrap();
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
    // 2 successes: 3 of 6 is 50 %, reached by the next failure (4 of 7).
    provider.set(200);
    send(&service).await.unwrap();
    send(&service).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Closed);
    provider.set(500);
    send(&service).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn the_failure_rate_over_time_forgets_old_calls() {
    let provider = Provider::answering(500);
    let config = BreakerConfig::default().with_trip(Trip::FailureRate {
        percent: 60,
        window: CallWindow::Time(secs(10)),
        min_calls: 5,
    });
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    // Four failures, then ten seconds of nothing: they leave the window.
    for _ in 0..4 {
        send(&service).await.unwrap();
    }
    time::advance(secs(11)).await;
    provider.set(200);
    for _ in 0..4 {
        send(&service).await.unwrap();
    }
    provider.set(500);
    send(&service).await.unwrap();
    // 1 of 5 in the window: closed. Without forgetting it would be 5 of 9.
    assert_eq!(handle.state(None), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_trip_it() {
    let provider = Provider::answering(200);
    provider.latency_ms.store(3_000, Ordering::Relaxed);
    let config = BreakerConfig::default().with_trip(Trip::SlowCallRate {
        slower_than: secs(2),
        percent: 100,
        window: CallWindow::Calls(n(3)),
        min_calls: 3,
    });
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    for _ in 0..2 {
        send(&service).await.unwrap();
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
    send(&service).await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn it_can_be_opened_closed_and_moded_by_hand() {
    let provider = Provider::answering(200);
    let layer = CircuitBreakerLayer::new(BreakerConfig::default());
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    // A long server delay seen elsewhere: open for it; a shorter one later does not shorten it.
    handle.open_for(None, secs(300));
    handle.open_for(None, secs(30));
    assert_eq!(
        open_error(send(&service).await).retry_after(),
        Some(secs(300))
    );
    handle.close(None);
    send(&service).await.unwrap();
    // Forced open refuses everything; disabled lets everything through and counts nothing.
    handle.set_mode(Mode::ForcedOpen);
    assert_eq!(open_error(send(&service).await).retry_after(), None);
    handle.set_mode(Mode::Disabled);
    provider.set(503);
    for _ in 0..10 {
        send(&service).await.unwrap();
    }
    assert_eq!(handle.state(None), BreakerState::Closed);
    // Metrics only: it trips, but never refuses.
    handle.set_mode(Mode::MetricsOnly);
    for _ in 0..6 {
        assert_eq!(send(&service).await.unwrap(), 503);
    }
    assert_eq!(handle.state(None), BreakerState::Open);
    assert_eq!(handle.mode(), Mode::MetricsOnly);
}

fn keyed_request(key: &str) -> Request<()> {
    let mut request = Request::new(());
    request.extensions_mut().insert(RouteKey::new(key));
    request
}

#[tokio::test(start_paused = true)]
async fn keys_have_their_own_breakers_and_idle_ones_are_forgotten() {
    let provider = Provider::answering(503);
    let config = BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(n(1)));
    let layer = CircuitBreakerLayer::new(config).keyed_by(ByRouteKey);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    service
        .clone()
        .oneshot(keyed_request("gpt-4o"))
        .await
        .unwrap();
    assert_eq!(handle.state(Some("gpt-4o")), BreakerState::Open);
    provider.set(200);
    let ok = service
        .clone()
        .oneshot(keyed_request("gpt-4o-mini"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = service
        .clone()
        .oneshot(keyed_request("gpt-4o"))
        .await
        .unwrap_err();
    assert_eq!(
        refused
            .downcast_ref::<CircuitOpen>()
            .unwrap()
            .key()
            .unwrap()
            .as_str(),
        "gpt-4o"
    );
    // Ten thousand healthy keys come and go; only the open breaker must be kept.
    for i in 0..10_000 {
        service
            .clone()
            .oneshot(keyed_request(&format!("tenant-{i}")))
            .await
            .unwrap();
    }
    assert_eq!(handle.evict_idle(), 1);
    assert_eq!(handle.state(Some("gpt-4o")), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn every_state_change_is_told() {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let changes = Arc::clone(&changes);
        on_state_change_fn(move |change: &StateChange| {
            changes
                .lock()
                .unwrap()
                .push((change.from, change.to, change.open_for));
        })
    };
    let provider = Provider::answering(503);
    let config = BreakerConfig::default()
        .with_trip(Trip::ConsecutiveFailures(n(1)))
        .with_probes(n(1));
    let layer = CircuitBreakerLayer::new(config).on_state_change(hook);
    let service = layer.layer(provider.clone());
    service.clone().oneshot(Request::new(())).await.unwrap();
    time::advance(secs(60)).await;
    provider.set(200);
    service.clone().oneshot(Request::new(())).await.unwrap();
    use BreakerState::{Closed, HalfOpen, Open};
    assert_eq!(
        *changes.lock().unwrap(),
        [
            (Closed, Open, Some(secs(60))),
            (Open, HalfOpen, None),
            (HalfOpen, Closed, None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn plugging_a_hook_in_keeps_the_breakers_a_handle_or_clone_taken_first_sees() {
    let told = Arc::new(AtomicU64::new(0));
    let config = BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(n(1)));
    let layer = CircuitBreakerLayer::new(config);
    let earlier_handle = layer.handle();
    let earlier_clone = layer.clone();
    let hook = {
        let told = Arc::clone(&told);
        on_state_change_fn(move |_: &StateChange| {
            told.fetch_add(1, Ordering::Relaxed);
        })
    };
    let layer = layer.on_state_change(hook);
    assert_eq!(
        layer.config().trip,
        Trip::ConsecutiveFailures(n(1)),
        "the layer keeps its configuration"
    );
    let service = layer.layer(Provider::answering(503));
    service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(told.load(Ordering::Relaxed), 1, "the hook hears the trip");
    assert_eq!(earlier_handle.state(None), BreakerState::Open);
    assert_eq!(
        earlier_handle.config().trip,
        Trip::ConsecutiveFailures(n(1))
    );
    let refused = earlier_clone
        .layer(Provider::answering(200))
        .oneshot(Request::new(()))
        .await;
    assert!(refused.unwrap_err().downcast_ref::<CircuitOpen>().is_some());
    // The earlier handle keeps the hook it had (none): closing by hand tells nobody.
    earlier_handle.close(None);
    assert_eq!(told.load(Ordering::Relaxed), 1);
    assert_eq!(layer.handle().state(None), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn transport_errors_count() {
    let failing = tower::service_fn(|_: Request<()>| async {
        Err::<Response<()>, _>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    });
    let config = BreakerConfig::default().with_trip(Trip::ConsecutiveFailures(n(2)));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(failing);
    for _ in 0..2 {
        let error = service.clone().oneshot(Request::new(())).await.unwrap_err();
        assert!(error.downcast_ref::<std::io::Error>().is_some());
    }
    assert_eq!(handle.state(None), BreakerState::Open);
    let _ = Instant::now();
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<CircuitBreakerLayer>();
    clone::<CircuitBreakerLayer>();
    send_sync::<Breaker>();
    clone::<Breaker>();
    send_sync::<CircuitOpen>();
    let mut service = CircuitBreakerLayer::new(BreakerConfig::default()).layer(Provider::default());
    send(&service.call(Request::new(())));
}

/// A provider whose every answer is a 200 event stream, reported through `report`.
fn streaming(
    reports: Arc<Mutex<Vec<tollgate_core::StreamReport>>>,
) -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone {
    tower::service_fn(move |_: Request<()>| {
        let report = tollgate_core::StreamReport::new();
        reports.lock().unwrap().push(report.clone());
        let mut response = Response::new(());
        response.extensions_mut().insert(report);
        std::future::ready(Ok(response))
    })
}

/// A followed stream is counted when it ends: one that fails half-way is a failure of its
/// class, one that completes a success, one the caller abandons nothing at all — and a
/// half-open probe abandoned gives its slot back.
#[tokio::test(start_paused = true)]
async fn streams_are_counted_when_they_end() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let config = BreakerConfig::default()
        .with_trip(Trip::ConsecutiveFailures(n(2)))
        .with_probes(n(1));
    let layer = CircuitBreakerLayer::new(config);
    let handle = layer.handle();
    let service = layer.layer(streaming(Arc::clone(&reports)));
    let call = || service.clone().oneshot(Request::new(()));
    let last = || reports.lock().unwrap().pop().unwrap();
    // Two 200s whose streams fail: nothing counted until they end, then the breaker opens.
    call().await.unwrap();
    call().await.unwrap();
    assert_eq!(handle.state(None), BreakerState::Closed);
    last().fail(ErrorClass::Truncated);
    last().fail(ErrorClass::Overloaded);
    assert_eq!(handle.state(None), BreakerState::Open);
    // A probe whose caller drops the stream frees its slot; the next probe completes.
    time::advance(secs(60)).await;
    call().await.unwrap();
    drop(last());
    assert_eq!(handle.state(None), BreakerState::HalfOpen);
    call().await.unwrap();
    last().complete(None);
    assert_eq!(handle.state(None), BreakerState::Closed);
}
