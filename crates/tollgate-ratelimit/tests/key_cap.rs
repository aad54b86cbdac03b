//! The cap on keys an in-process quota holds: a flood of distinct keys keeps at most
//! `max_keys` of them, evicts the least recently used (reported to the request's observer and
//! counted by the handle), never refuses a request for want of room, and leaves a key in
//! recent use its count. Time is tokio's paused clock.

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response};
use tollgate_core::RouteKey;
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::error::RateLimited;
use tollgate_ratelimit::{ByRouteKey, Limit, Limits, RateLimitConfig, RateLimitLayer};
use tower::{Layer, ServiceExt, service_fn};

/// Counts what the layer reports of its cap.
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
            assert_eq!(layer, "ratelimit");
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
async fn a_flood_of_keys_keeps_at_most_the_cap_and_recent_keys_their_count() {
    let one_a_day = Limits::new([Limit::requests(Quota::per_day(NonZeroU64::new(1).unwrap()))]);
    let layer = RateLimitLayer::new(
        RateLimitConfig::new(one_a_day)
            .with_max_wait(Duration::ZERO)
            .with_max_keys(16),
    )
    .keyed_by(ByRouteKey);
    let handle = layer.handle();
    let service = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let caps = Arc::new(Caps::default());

    // Key "a" spends its one request of the day; eight other keys come after it.
    service.clone().oneshot(request("a", &caps)).await.unwrap();
    for i in 0..8 {
        service
            .clone()
            .oneshot(request(&format!("k-{i}"), &caps))
            .await
            .unwrap();
    }
    // Below the cap nothing was forgotten: "a" is still spent.
    let error = service
        .clone()
        .oneshot(request("a", &caps))
        .await
        .unwrap_err();
    assert!(error.is::<RateLimited>(), "{error}");

    // 1,000 new keys: every one admitted (a fresh key has its quota), at most 16 held.
    for i in 0..1_000 {
        service
            .clone()
            .oneshot(request(&format!("flood-{i}"), &caps))
            .await
            .unwrap();
        assert!(handle.keys() <= 16);
    }
    let stats = handle.key_stats().unwrap();
    assert_eq!(stats.max_keys, 16);
    assert_eq!(stats.refused, 0);
    // Every key beyond the 16 held was evicted once, and each eviction reported.
    assert_eq!(stats.evicted, 1_009 - stats.keys as u64);
    assert_eq!(caps.evicted.load(Ordering::Relaxed), stats.evicted);
    assert_eq!(caps.refused.load(Ordering::Relaxed), 0);
    // "a" was evicted long ago, losing its count: the documented price of the cap.
    service.clone().oneshot(request("a", &caps)).await.unwrap();
}
