//! What a closed `CircuitBreaker` adds per request over the bare, always-ready service in the
//! same run: unkeyed (one atomic load on the way in, one on the way out) and keyed by a
//! `RouteKey`. Run with `cargo bench -p tollgate-circuit-breaker`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, Throughput, criterion_main};
use http::{Request, Response};
use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
use tollgate_core::RouteKey;
use tollgate_core::key::ByRouteKey;
use tower::{Layer, Service};

/// An always-ready service answering 200 at once.
#[derive(Clone, Copy)]
struct Bare;

impl Service<Request<()>> for Bare {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

fn send<S>(service: &mut S, request: Request<()>) -> Response<()>
where
    S: Service<Request<()>, Response = Response<()>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("always ready"),
    }
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        _ => panic!("answered at once"),
    }
}

fn closed(c: &mut Criterion) {
    let mut group = c.benchmark_group("closed breaker");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Bare;
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("unkeyed", |b| {
        let mut service = CircuitBreakerLayer::new(BreakerConfig::default()).layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    let keys: Vec<RouteKey> = (0..64)
        .map(|i| RouteKey::new(format!("model-{i}")))
        .collect();
    let keyed = |i: &mut usize| {
        *i = (*i + 1) % keys.len();
        let mut request = Request::new(());
        request.extensions_mut().insert(keys[*i].clone());
        request
    };
    group.bench_function("bare, keyed requests", |b| {
        let mut service = Bare;
        let mut i = 0;
        b.iter(|| send(&mut service, keyed(&mut i)));
    });
    group.bench_function("keyed", |b| {
        let mut service = CircuitBreakerLayer::new(BreakerConfig::default())
            .keyed_by(ByRouteKey)
            .layer(Bare);
        let mut i = 0;
        b.iter(|| send(&mut service, keyed(&mut i)));
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::closed);
}
criterion_main!(harness::benches);
