//! What `RateLimit` adds per request over the bare, always-ready service, measured in the same
//! run: a single-dimension unkeyed bucket and a keyed three-dimension quota, on one thread and
//! on two threads sharing the layer. On the same unkeyed path, the adaptive limit: as the pace
//! over that same bucket (`Limits::with_adaptive`: the pace stays off until a throttle, so only
//! its check is added), and alone (`Limits::adaptive`: no configured limit, the learned pace
//! decides every admission; on one thread only, see `contended`). The quotas, and the adaptive
//! pace's starting rate and ceiling, are large enough never to make a request wait (`send`
//! panics if one would), so this is the admission path alone: one clock read, one lock, the
//! arithmetic, the clone of the readied service. Run with `cargo bench -p tollgate-ratelimit`.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use http::{Request, Response};
use tollgate_core::{Cost, Dimension, RouteKey};
use tollgate_ratelimit::adaptive::{Adaptive, Rate};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{ByRouteKey, Limit, Limits, RateLimitLayer};
use tower::{Layer, Service};

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn unkeyed() -> RateLimitLayer {
    RateLimitLayer::new(Limits::new([Limit::requests(Quota::per_second(n(
        1_000_000_000_000,
    )))]))
}

/// An adaptive limit alone whose pace never holds a request back on one thread: it starts at,
/// and is capped at, 10^12 requests/s, an interval of a picosecond, below the clock's
/// resolution.
fn adaptive() -> RateLimitLayer {
    let fast = Rate::per_second(n(1_000_000_000_000));
    RateLimitLayer::new(Limits::adaptive(
        Adaptive::default().with_initial(fast).with_ceiling(fast),
    ))
}

/// The unkeyed bucket with an adaptive limit under it: the pace is off until a throttle, which
/// never comes here.
fn unkeyed_adaptive() -> RateLimitLayer {
    RateLimitLayer::new(
        Limits::new([Limit::requests(Quota::per_second(n(1_000_000_000_000)))])
            .with_adaptive(Adaptive::default()),
    )
}

fn keyed() -> RateLimitLayer<ByRouteKey> {
    RateLimitLayer::new(Limits::new([
        Limit::requests(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_minute(n(1_000_000_000_000))),
        Limit::tokens(Quota::per_day(n(1_000_000_000_000_000))),
    ]))
    .keyed_by(ByRouteKey)
}

/// The keyed requests: one of 64 keys, with a token cost, as a gateway would see them.
struct Requests {
    keys: Vec<RouteKey>,
    next: usize,
}

impl Requests {
    fn new(thread: usize) -> Self {
        Requests {
            keys: (0..64)
                .map(|i| RouteKey::new(format!("model-{i}")))
                .collect(),
            // Threads start half the keys apart, as independent callers would.
            next: thread * 32,
        }
    }

    fn next(&mut self) -> Request<()> {
        self.next = (self.next + 1) % self.keys.len();
        let mut request = Request::new(());
        let extensions = request.extensions_mut();
        extensions.insert(self.keys[self.next].clone());
        extensions.insert(Cost::requests(1).with(Dimension::Tokens, 1_000));
        request
    }
}

fn one_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("one thread");
    group.throughput(Throughput::Elements(1));

    group.bench_function("bare", |b| {
        let mut service = Bare;
        b.iter(|| send(&mut service, Request::new(())));
    });
    // tower's `RateLimit`, the peer: it arms its sleep when built, which needs a tokio runtime
    // with a timer; its calls do not (they read the clock, and sleep only when the rate is
    // spent).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    group.bench_function("tower RateLimit", |b| {
        let mut service = {
            let _context = runtime.enter();
            tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(Bare)
        };
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("unkeyed, 1 dimension", |b| {
        let mut service = unkeyed().layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("unkeyed, adaptive", |b| {
        let mut service = adaptive().layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("unkeyed, 1 dimension, adaptive ceiling", |b| {
        let mut service = unkeyed_adaptive().layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });

    group.bench_function("bare, keyed requests", |b| {
        let mut service = Bare;
        let mut requests = Requests::new(0);
        b.iter(|| send(&mut service, requests.next()));
    });
    group.bench_function("keyed, 3 dimensions", |b| {
        let mut service = keyed().layer(Bare);
        let mut requests = Requests::new(0);
        b.iter(|| send(&mut service, requests.next()));
    });
    group.finish();
}

/// Runs `iters` requests on each of two threads at once, each with its own clone of `service`.
fn two_threads<S>(service: &S, keyed: bool, iters: u64) -> Duration
where
    S: Service<Request<()>, Response = Response<()>> + Clone + Send,
    S::Error: std::fmt::Debug,
{
    // Wall time is what a throughput benchmark measures; nothing here runs on tokio's clock.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let mut service = service.clone();
            scope.spawn(move || {
                let mut requests = Requests::new(thread);
                for _ in 0..iters {
                    let request = if keyed {
                        requests.next()
                    } else {
                        Request::new(())
                    };
                    send(&mut service, request);
                }
            });
        }
    });
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("two threads");
    group.throughput(Throughput::Elements(2));
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| two_threads(&Bare, false, iters))
    });
    group.bench_function("unkeyed, 1 dimension", |b| {
        let service = unkeyed().layer(Bare);
        b.iter_custom(|iters| two_threads(&service, false, iters));
    });
    // Not the adaptive limit alone: without a ceiling its pace has no burst, one request at a
    // time, so a thread whose clock reading is a few nanoseconds older than the other's
    // admission is told to wait those nanoseconds, and `send` cannot wait.
    group.bench_function("unkeyed, 1 dimension, adaptive ceiling", |b| {
        let service = unkeyed_adaptive().layer(Bare);
        b.iter_custom(|iters| two_threads(&service, false, iters));
    });
    group.bench_function("bare, keyed requests", |b| {
        b.iter_custom(|iters| two_threads(&Bare, true, iters))
    });
    group.bench_function("keyed, 3 dimensions", |b| {
        let service = keyed().layer(Bare);
        b.iter_custom(|iters| two_threads(&service, true, iters));
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::one_thread, super::contended);
}
criterion_main!(harness::benches);
