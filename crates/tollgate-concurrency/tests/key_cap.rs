//! The cap on keys a keyed concurrency limit holds, and the hint of every `Saturated`: gates
//! with requests in flight are never evicted; when every one is busy a new key is refused with
//! a typed error reported to the request's observer; a refusal always says when to come back.

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer, Saturated, TooManyKeys};
use tollgate_core::key::ByRouteKey;
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_core::{BoxError, DelaySource, RouteKey, Verdict};
use tower::{Layer, ServiceExt, service_fn};

#[derive(Default)]
struct Caps {
    evicted: AtomicU64,
    refused: AtomicU64,
}

impl Observer for Caps {
    fn observe(&self, event: &Event<'_>) {
        if let Event::KeysAtCap {
            layer,
            evicted,
            refused,
        } = *event
        {
            assert_eq!(layer, "concurrency");
            self.evicted
                .fetch_add(u64::from(evicted), Ordering::Relaxed);
            self.refused
                .fetch_add(u64::from(refused), Ordering::Relaxed);
        }
    }
}

fn request(key: &str, caps: &Arc<Caps>) -> Request<()> {
    let mut request = Request::new(());
    request.extensions_mut().insert(RouteKey::new(key));
    request
        .extensions_mut()
        .insert(Observe::new(Arc::clone(caps) as Arc<dyn Observer>));
    request
}

/// Requests of keys starting with "slow" never finish; the others answer at once.
async fn answer(request: Request<()>) -> Result<Response<()>, BoxError> {
    if RouteKey::of(&request).is_some_and(|k| k.as_str().starts_with("slow")) {
        pending::<()>().await;
    }
    Ok(Response::new(()))
}

#[tokio::test(start_paused = true)]
async fn busy_gates_are_kept_and_a_full_map_refuses_new_keys() {
    let layer =
        ConcurrencyLayer::new(ConcurrencyConfig::new(10).with_max_keys(4)).keyed_by(ByRouteKey);
    let handle = layer.handle();
    let service = layer.layer(service_fn(answer));
    let caps = Arc::new(Caps::default());
    let mut in_flight: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(
                service
                    .clone()
                    .oneshot(request(&format!("slow-{i}"), &caps)),
            )
        })
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(handle.keys(), 4);

    let error = service
        .clone()
        .oneshot(request("new", &caps))
        .await
        .unwrap_err();
    assert_eq!(error.downcast_ref::<TooManyKeys>().unwrap().max_keys(), 4);
    assert!(Verdict::of_error(&*error).unwrap().is_local_refusal());
    assert_eq!(caps.refused.load(Ordering::Relaxed), 1);

    // One request let go: its gate, idle again (nothing in flight, a fixed cap), is forgotten
    // to make room — nothing lost, so no eviction.
    let first = in_flight.remove(0);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    service
        .clone()
        .oneshot(request("new", &caps))
        .await
        .unwrap();
    assert_eq!(caps.evicted.load(Ordering::Relaxed), 0);
    let stats = handle.key_stats();
    assert_eq!((stats.keys, stats.evicted, stats.refused), (4, 0, 1));
    assert!(handle.keys() <= 4);
}

/// Before any latency is measured (a fixed cap never measures it), a refusal's hint is the
/// limit's `max_wait`, else one second; it is the verdict's delay too.
#[tokio::test(start_paused = true)]
async fn every_refusal_says_when_to_come_back() {
    for (config, hint) in [
        (
            ConcurrencyConfig::new(1).with_max_queue(0),
            Duration::from_secs(1),
        ),
        (
            ConcurrencyConfig::new(1)
                .with_max_queue(0)
                .with_max_wait(Duration::from_secs(5)),
            Duration::from_secs(5),
        ),
        (
            ConcurrencyConfig::new(1)
                .with_max_queue(0)
                .with_max_wait(Duration::ZERO),
            Duration::from_secs(1),
        ),
    ] {
        let service = ConcurrencyLayer::new(config)
            .keyed_by(ByRouteKey)
            .layer(service_fn(answer));
        let caps = Arc::new(Caps::default());
        let held = tokio::spawn(service.clone().oneshot(request("slow", &caps)));
        tokio::task::yield_now().await;
        let error = service
            .clone()
            .oneshot(request("slow", &caps))
            .await
            .unwrap_err();
        assert_eq!(
            error.downcast_ref::<Saturated>().unwrap().retry_after(),
            hint
        );
        let verdict = Verdict::of_error(&*error).unwrap();
        assert_eq!(verdict.delay(), Some(hint));
        assert_eq!(verdict.delay_source(), DelaySource::LocalQuota);
        held.abort();
    }
}

/// A request that waited its `max_wait` in the queue is refused with the same hint.
#[tokio::test(start_paused = true)]
async fn a_wait_that_runs_out_says_when_to_come_back() {
    let service =
        ConcurrencyLayer::new(ConcurrencyConfig::new(1).with_max_wait(Duration::from_millis(300)))
            .keyed_by(ByRouteKey)
            .layer(service_fn(answer));
    let caps = Arc::new(Caps::default());
    let held = tokio::spawn(service.clone().oneshot(request("slow", &caps)));
    tokio::task::yield_now().await;
    let error = service
        .clone()
        .oneshot(request("slow", &caps))
        .await
        .unwrap_err();
    let refused = error.downcast_ref::<Saturated>().unwrap();
    assert_eq!(refused.waited(), Some(Duration::from_millis(300)));
    assert_eq!(refused.retry_after(), Duration::from_millis(300));
    held.abort();
}
