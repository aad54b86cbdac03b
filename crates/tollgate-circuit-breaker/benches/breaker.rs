//! What a closed `CircuitBreaker` adds per request over the bare, always-ready service in the
//! same run: unkeyed (one atomic load on the way in, one on the way out) and keyed by a
//! `RouteKey`. Run with `cargo bench -p tollgate-circuit-breaker`.

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
use tollgate_core::RouteKey;
use tollgate_core::key::ByRouteKey;
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

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
