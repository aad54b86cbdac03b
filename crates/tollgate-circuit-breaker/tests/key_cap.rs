//! The cap on keys a keyed breaker holds: breakers held by requests in flight are never
//! evicted; when every one is held, a new key is refused with a typed error (an overload,
//! refused locally) reported to the request's observer; once one is let go it makes room.

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer, TooManyKeys};
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_core::{BoxError, ErrorClass, RouteKey, Verdict};
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
            assert_eq!(layer, "breaker");
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

#[tokio::test(start_paused = true)]
async fn breakers_in_use_are_kept_and_a_full_map_refuses_new_keys() {
    let layer = CircuitBreakerLayer::new(BreakerConfig::default().with_max_keys(4))
        .keyed_by(tollgate_core::key::ByRouteKey);
    let handle = layer.handle();
    // Requests of "slow-…" never finish; the others answer at once.
    let service = layer.layer(service_fn(|request: Request<()>| async move {
        if RouteKey::of(&request).is_some_and(|k| k.as_str().starts_with("slow")) {
            pending::<()>().await;
        }
        Ok::<_, BoxError>(Response::new(()))
    }));
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
    let refused = error.downcast_ref::<TooManyKeys>().expect("TooManyKeys");
    assert_eq!(refused.max_keys(), 4);
    let verdict = Verdict::of_error(&*error).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert!(verdict.is_local_refusal());
    assert_eq!(caps.refused.load(Ordering::Relaxed), 1);
    assert_eq!(handle.key_stats().refused, 1);

    // One request let go: its breaker, idle again, is forgotten to make room (nothing lost,
    // no eviction).
    let first = in_flight.remove(0);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    service
        .clone()
        .oneshot(request("new", &caps))
        .await
        .unwrap();
    assert_eq!(caps.evicted.load(Ordering::Relaxed), 0);
    assert_eq!(handle.keys(), 4);

    // Every request let go, and four breakers held open by hand: not idle, not in use. A new
    // key evicts the least recently used of them, losing its open period.
    for task in in_flight {
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    for i in 0..4 {
        handle.open_for(Some(&format!("open-{i}")), Duration::from_secs(60));
    }
    assert_eq!(handle.keys(), 4);
    service
        .clone()
        .oneshot(request("next", &caps))
        .await
        .unwrap();
    assert_eq!(caps.evicted.load(Ordering::Relaxed), 1);
    let stats = handle.key_stats();
    assert_eq!((stats.keys, stats.evicted, stats.refused), (4, 1, 1));
    // The first opened went; the others are still open.
    let error = service
        .clone()
        .oneshot(request("open-1", &caps))
        .await
        .unwrap_err();
    assert!(
        error.is::<tollgate_circuit_breaker::CircuitOpen>(),
        "{error}"
    );
    service
        .clone()
        .oneshot(request("open-0", &caps))
        .await
        .unwrap();
}
