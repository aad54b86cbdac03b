//! `ConcurrencyLayer` on tokio's paused clock: slots freed on completion, error, drop and at
//! the end of the body; one waiter woken per freed slot, by priority; the queue's bound and
//! the maximum wait; adaptive caps moving down and up; keys.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::time::{self, Instant};
use tollgate_concurrency::{Cap, ConcurrencyConfig, ConcurrencyLayer, PermitBody, Saturated};
use tollgate_core::key::ByRouteKey;
use tollgate_core::{BoxError, Priority, RouteKey};
use tower::{Layer, Service, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A provider taking `latency_ms` to answer `status`, logging who arrived when.
#[derive(Clone)]
struct Provider {
    latency_ms: Arc<AtomicU32>,
    status: Arc<AtomicU16>,
    arrived: Arc<Mutex<Vec<(String, Duration)>>>,
    start: Instant,
}

impl Provider {
    fn new(latency: u32) -> Self {
        Provider {
            latency_ms: Arc::new(AtomicU32::new(latency)),
            status: Arc::new(AtomicU16::new(200)),
            arrived: Arc::default(),
            start: Instant::now(),
        }
    }

    fn names(&self) -> Vec<String> {
        self.arrived
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

impl Service<Request<String>> for Provider {
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        self.arrived
            .lock()
            .unwrap()
            .push((request.body().clone(), self.start.elapsed()));
        let latency = ms(u64::from(self.latency_ms.load(Ordering::Relaxed)));
        let status = self.status.load(Ordering::Relaxed);
        let fail = request.body() == "fail";
        Box::pin(async move {
            // A refused connection fails at once.
            if fail {
                return Err("connection reset".into());
            }
            time::sleep(latency).await;
            Ok(Response::builder()
                .status(status)
                .body(Full::new(Bytes::from_static(b"body")))
                .unwrap())
        })
    }
}

fn named(name: &str) -> Request<String> {
    Request::new(name.to_owned())
}

#[tokio::test(start_paused = true)]
async fn slots_are_freed_on_completion_error_and_drop() {
    let provider = Provider::new(100);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_hold_until_body_end(false));
    let handle = layer.handle();
    let mut service = layer.layer(provider.clone());
    // Completion.
    service
        .ready()
        .await
        .unwrap()
        .call(named("a"))
        .await
        .unwrap();
    assert_eq!(handle.in_flight(None), 0);
    // Error.
    assert!(
        service
            .ready()
            .await
            .unwrap()
            .call(named("fail"))
            .await
            .is_err()
    );
    assert_eq!(handle.in_flight(None), 0);
    // Drop while in flight.
    let dropped = service.ready().await.unwrap().call(named("b"));
    assert_eq!(handle.in_flight(None), 1);
    drop(dropped);
    assert_eq!(handle.in_flight(None), 0);
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_keeps_its_slot_until_it_ends() {
    let provider = Provider::new(0);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(2));
    let handle = layer.handle();
    let mut service = layer.layer(provider);
    let read = service
        .ready()
        .await
        .unwrap()
        .call(named("read"))
        .await
        .unwrap();
    let dropped = service
        .ready()
        .await
        .unwrap()
        .call(named("dropped"))
        .await
        .unwrap();
    assert_eq!(
        handle.in_flight(None),
        2,
        "the heads arrived; the bodies are not read"
    );
    let body: PermitBody<Full<Bytes>> = read.into_body();
    assert!(body.holds_permit());
    assert_eq!(body.collect().await.unwrap().to_bytes(), "body");
    assert_eq!(handle.in_flight(None), 1);
    drop(dropped);
    assert_eq!(handle.in_flight(None), 0);
}

/// Regression (#15): the layer used to rebuild its slots on each configuration method, so a
/// handle or clone taken before `with_max_queue` counted other slots than the service's.
#[tokio::test(start_paused = true)]
async fn a_handle_taken_first_sees_the_slots_of_every_clone_and_key() {
    let provider = Provider::new(1_000);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_max_queue(4));
    let handle = layer.handle();
    let clone = layer.clone();
    let keyed = layer.keyed_by(ByRouteKey);
    let first = tokio::spawn(clone.layer(provider.clone()).oneshot(named("first")));
    let mut request = named("second");
    request.extensions_mut().insert(RouteKey::new("gpt-4o"));
    let second = tokio::spawn(keyed.layer(provider.clone()).oneshot(request));
    tokio::task::yield_now().await;
    assert_eq!(handle.in_flight(None), 1);
    assert_eq!(handle.in_flight(Some("gpt-4o")), 1);
    assert_eq!(handle.keys(), 1);
    assert_eq!(keyed.config().max_queue, 4);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn each_freed_slot_wakes_one_waiter_by_priority() {
    let provider = Provider::new(1_000);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_hold_until_body_end(false));
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    let with = |name: &str, priority| {
        let mut request = named(name);
        request.extensions_mut().insert(priority);
        request
    };
    let mut tasks = Vec::new();
    for (name, priority) in [
        ("first", Priority::NORMAL),
        ("low", Priority::LOW),
        ("normal", Priority::NORMAL),
        ("high", Priority::HIGH),
    ] {
        let service = service.clone();
        tasks.push(tokio::spawn(service.oneshot(with(name, priority))));
        tokio::task::yield_now().await;
    }
    assert_eq!(handle.waiting(None), 3);
    time::advance(ms(1_000)).await;
    tokio::task::yield_now().await;
    // One slot freed: one waiter, the highest, took it; two still wait.
    assert_eq!(handle.in_flight(None), 1);
    assert_eq!(handle.waiting(None), 2);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(provider.names(), ["first", "high", "normal", "low"]);
}

#[tokio::test(start_paused = true)]
async fn the_queue_is_bounded_and_the_wait_too() {
    let provider = Provider::new(1_000);
    let layer = ConcurrencyLayer::new(
        ConcurrencyConfig::new(1)
            .with_max_queue(1)
            .with_max_wait(ms(300)),
    );
    let service = layer.layer(provider.clone());
    let first = tokio::spawn(service.clone().oneshot(named("first")));
    tokio::task::yield_now().await;
    let second = tokio::spawn(service.clone().oneshot(named("second")));
    tokio::task::yield_now().await;
    // The queue holds one: the third is refused at once.
    let start = Instant::now();
    let error = service.clone().oneshot(named("third")).await.unwrap_err();
    let refused = error.downcast_ref::<Saturated>().unwrap();
    assert_eq!(
        (refused.limit(), refused.waiting(), refused.waited()),
        (1, 1, None)
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The second gives up after 300 ms, never sent.
    let error = second.await.unwrap().unwrap_err();
    assert_eq!(
        error.downcast_ref::<Saturated>().unwrap().waited(),
        Some(ms(300))
    );
    first.await.unwrap().unwrap();
    assert_eq!(provider.names(), ["first"]);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_passes_its_turn_on() {
    let provider = Provider::new(1_000);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_hold_until_body_end(false));
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    let first = tokio::spawn(service.clone().oneshot(named("first")));
    tokio::task::yield_now().await;
    let dropped = tokio::spawn(service.clone().oneshot(named("dropped")));
    tokio::task::yield_now().await;
    let third = tokio::spawn(service.clone().oneshot(named("third")));
    tokio::task::yield_now().await;
    dropped.abort();
    let _ = dropped.await;
    assert_eq!(handle.waiting(None), 1);
    first.await.unwrap().unwrap();
    third.await.unwrap().unwrap();
    assert_eq!(provider.names(), ["first", "third"]);
}

#[tokio::test(start_paused = true)]
async fn an_aimd_cap_halves_on_overload_and_grows_on_success() {
    let provider = Provider::new(10);
    let layer = ConcurrencyLayer::new(
        ConcurrencyConfig::from_cap(Cap::Aimd {
            initial: 8,
            min: 1,
            max: 10,
            backoff: 0.5,
        })
        .with_hold_until_body_end(false),
    );
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    provider.status.store(503, Ordering::Relaxed);
    service.clone().oneshot(named("a")).await.unwrap();
    assert_eq!(handle.limit(None), 4);
    service.clone().oneshot(named("b")).await.unwrap();
    assert_eq!(handle.limit(None), 2);
    provider.status.store(429, Ordering::Relaxed);
    service.clone().oneshot(named("c")).await.unwrap();
    assert_eq!(handle.limit(None), 1);
    service.clone().oneshot(named("d")).await.unwrap();
    assert_eq!(handle.limit(None), 1, "never below min");
    // Successes: one more per cap's worth.
    provider.status.store(200, Ordering::Relaxed);
    for _ in 0..2 {
        service.clone().oneshot(named("ok")).await.unwrap();
    }
    assert_eq!(handle.limit(None), 2);
}

#[tokio::test(start_paused = true)]
async fn a_gradient_cap_falls_as_latency_rises() {
    let provider = Provider::new(100);
    let layer = ConcurrencyLayer::new(
        ConcurrencyConfig::from_cap(Cap::Gradient {
            initial: 50,
            min: 5,
            max: 100,
            tolerance: ms(10),
        })
        .with_hold_until_body_end(false),
    );
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    for _ in 0..20 {
        service.clone().oneshot(named("fast")).await.unwrap();
    }
    let unloaded = handle.limit(None);
    assert!(
        unloaded > 50,
        "grows while latency stays at its minimum: {unloaded}"
    );
    provider.latency_ms.store(400, Ordering::Relaxed);
    for _ in 0..20 {
        service.clone().oneshot(named("slow")).await.unwrap();
    }
    let loaded = handle.limit(None);
    assert!(
        loaded < unloaded,
        "falls as latency rises: {loaded} < {unloaded}"
    );
}

#[tokio::test(start_paused = true)]
async fn keys_have_their_own_slots_and_idle_ones_are_forgotten() {
    let provider = Provider::new(1_000);
    let layer = ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_hold_until_body_end(false))
        .keyed_by(ByRouteKey);
    let handle = layer.handle();
    let service = layer.layer(provider.clone());
    let keyed = |key: &str| {
        let mut request = named(key);
        request.extensions_mut().insert(RouteKey::new(key));
        request
    };
    let a = tokio::spawn(service.clone().oneshot(keyed("a")));
    let b = tokio::spawn(service.clone().oneshot(keyed("b")));
    tokio::task::yield_now().await;
    assert_eq!(
        (handle.in_flight(Some("a")), handle.in_flight(Some("b"))),
        (1, 1)
    );
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(handle.keys(), 2);
    assert_eq!(handle.evict_idle(), 0);
}

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<ConcurrencyLayer>();
    clone::<ConcurrencyLayer>();
    send_sync::<tollgate_concurrency::ConcurrencyLimit<Provider>>();
    clone::<tollgate_concurrency::ConcurrencyLimit<Provider>>();
    send_sync::<Saturated>();
    let mut service = ConcurrencyLayer::new(ConcurrencyConfig::new(1)).layer(Provider::new(0));
    send(&service.call(named("a")));
}

/// A burst of failures halves an AIMD cap once, not once per failed response.
#[tokio::test(start_paused = true)]
async fn a_burst_of_overloads_halves_the_cap_once() {
    let provider = Provider::new(100);
    provider.status.store(429, Ordering::Relaxed);
    let layer = ConcurrencyLayer::new(
        ConcurrencyConfig::from_cap(Cap::Aimd {
            initial: 8,
            min: 1,
            max: 16,
            backoff: 0.5,
        })
        .with_hold_until_body_end(false),
    );
    let handle = layer.handle();
    let service = layer.layer(provider);
    let burst: Vec<_> = (0..8)
        .map(|i| tokio::spawn(service.clone().oneshot(named(&format!("r{i}")))))
        .collect();
    for task in burst {
        task.await.unwrap().unwrap();
    }
    assert_eq!(handle.limit(None), 4);
}

/// One fast failure does not pin a gradient cap low: only successes' latency counts.
#[tokio::test(start_paused = true)]
async fn a_fast_failure_does_not_pin_the_gradient_cap() {
    let provider = Provider::new(20);
    let layer = ConcurrencyLayer::new(
        ConcurrencyConfig::from_cap(Cap::Gradient {
            initial: 50,
            min: 2,
            max: 100,
            tolerance: ms(1),
        })
        .with_hold_until_body_end(false),
    );
    let handle = layer.handle();
    let service = layer.layer(provider);
    assert!(service.clone().oneshot(named("fail")).await.is_err());
    for _ in 0..40 {
        service.clone().oneshot(named("ok")).await.unwrap();
    }
    assert!(handle.limit(None) > 50, "{}", handle.limit(None));
}
