//! The criterion bench's one-thread rows again, for a machine shared with other jobs, where
//! criterion's medians move by ±50 %: the bare service, tower's `RateLimit`, the unkeyed
//! single-dimension layer, and the keyed three-dimension layer beside the bare service given
//! the same keyed requests, run in turn in batches of 2,000 requests, 400 rounds; each figure is
//! its fastest batch (a batch another job interrupted is slower, never faster). Before them:
//! the costs the layer cannot avoid, measured the same way — a read of tokio's clock, an
//! uncontended `parking_lot` lock and unlock, an `Arc` clone and drop — and the in-memory
//! store's admission alone. Run with `cargo bench -p tollgate-ratelimit --bench interleaved`;
//! `-- unkeyed` only sends unkeyed requests through the layer, for a profiler, and `-- keyed`
//! only keyed ones; a number after either (`-- unkeyed 100000`) sends that many requests
//! (unkeyed) or batches (keyed), so that two runs under callgrind give instructions per request.

use std::hint::black_box;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use http::Request;
use tollgate_core::{Cost, Dimension, RouteKey};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{ByRouteKey, Limit, Limits, RateLimitLayer, Store};
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

const BATCH: usize = 2_000;
const ROUNDS: usize = 400;

/// Nanoseconds per item of the batch that `run` timed.
// Wall time is what is measured here; nothing runs on tokio's clock.
#[allow(clippy::disallowed_methods)]
fn timed(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn unkeyed() -> RateLimitLayer {
    RateLimitLayer::new(Limits::new([Limit::requests(Quota::per_minute(n(
        1_000_000_000_000,
    )))]))
}

fn keyed() -> RateLimitLayer<ByRouteKey> {
    RateLimitLayer::new(Limits::new([
        Limit::requests(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_day(n(1_000_000_000_000_000))),
    ]))
    .keyed_by(ByRouteKey)
}

/// One of 64 keys and a token cost, as the criterion bench sends them.
fn keyed_request(keys: &[RouteKey], i: usize) -> Request<()> {
    let mut request = Request::new(());
    let extensions = request.extensions_mut();
    extensions.insert(keys[i % keys.len()].clone());
    extensions.insert(Cost::requests(1).with(Dimension::Tokens, 1_000));
    request
}

fn unavoidable() {
    let mut best = [f64::MAX; 4];
    let lock = parking_lot::Mutex::new(0_u64);
    let shared = Arc::new(0_u64);
    let handle = unkeyed().handle();
    let store = handle.store();
    let cost = Cost::requests(1);
    let mut now = Duration::from_secs(1);
    for _ in 0..ROUNDS {
        let t = timed(|| {
            (0..BATCH).for_each(|_| {
                black_box(tokio::time::Instant::now());
            })
        });
        best[0] = best[0].min(t);
        let t = timed(|| (0..BATCH).for_each(|_| *black_box(&lock).lock() += 1));
        best[1] = best[1].min(t);
        let t = timed(|| (0..BATCH).for_each(|_| drop(black_box(Arc::clone(black_box(&shared))))));
        best[2] = best[2].min(t);
        let t = timed(|| {
            for _ in 0..BATCH {
                now += Duration::from_nanos(1);
                let mut answer = store.admit(None, black_box(&cost), None, now);
                let polled = std::future::Future::poll(
                    std::pin::Pin::new(&mut answer),
                    &mut Context::from_waker(Waker::noop()),
                );
                assert!(polled.is_ready());
            }
        });
        best[3] = best[3].min(t);
    }
    println!(
        "tokio clock read {:.1} ns, lock and unlock {:.1} ns, Arc clone and drop {:.1} ns, \
         in-memory admission alone (unkeyed, 1 dimension) {:.1} ns",
        best[0], best[1], best[2], best[3]
    );
}

fn main() {
    // tower's `RateLimit` arms its sleep when built, which needs a tokio runtime with a timer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut tower = {
        let _context = runtime.enter();
        tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(Bare)
    };
    let count = std::env::args().find_map(|a| a.parse::<usize>().ok());
    let mut unkeyed = unkeyed().layer(Bare);
    if std::env::args().any(|a| a == "unkeyed") {
        for _ in 0..count.unwrap_or(50_000_000) {
            black_box(send(&mut unkeyed, Request::new(())));
        }
        return;
    }
    let mut keyed = keyed().layer(Bare);
    let keys: Vec<RouteKey> = (0..64)
        .map(|i| RouteKey::new(format!("model-{i}")))
        .collect();
    if std::env::args().any(|a| a == "keyed") {
        for round in 0..count.unwrap_or(10_000) {
            let requests: Vec<_> = (0..BATCH)
                .map(|i| keyed_request(&keys, round * BATCH + i))
                .collect();
            for request in requests {
                black_box(send(&mut keyed, request));
            }
        }
        return;
    }
    unavoidable();
    let mut bare = Bare;
    let names = [
        "bare",
        "tower RateLimit",
        "unkeyed, 1 dimension",
        "bare, keyed requests",
        "keyed, 3 dimensions",
    ];
    let mut best = [f64::MAX; 5];
    for round in 0..ROUNDS {
        let requests = |_| -> Vec<Request<()>> {
            (0..BATCH)
                .map(|i| keyed_request(&keys, round * BATCH + i))
                .collect()
        };
        let (for_bare, for_layer) = (requests(0), requests(1));
        let t =
            timed(|| (0..BATCH).for_each(|_| drop(black_box(send(&mut bare, Request::new(()))))));
        best[0] = best[0].min(t);
        let t =
            timed(|| (0..BATCH).for_each(|_| drop(black_box(send(&mut tower, Request::new(()))))));
        best[1] = best[1].min(t);
        let t = timed(|| {
            (0..BATCH).for_each(|_| drop(black_box(send(&mut unkeyed, Request::new(())))))
        });
        best[2] = best[2].min(t);
        let t = timed(|| {
            for_bare
                .into_iter()
                .for_each(|r| drop(black_box(send(&mut bare, r))))
        });
        best[3] = best[3].min(t);
        let t = timed(|| {
            for_layer
                .into_iter()
                .for_each(|r| drop(black_box(send(&mut keyed, r))))
        });
        best[4] = best[4].min(t);
    }
    for (name, time) in names.iter().zip(best) {
        println!("{name:>22}: {time:6.1} ns");
    }
    println!(
        "added over bare: tower RateLimit {:.1} ns, unkeyed {:.1} ns, keyed {:.1} ns",
        best[1] - best[0],
        best[2] - best[0],
        best[4] - best[3]
    );
}
