//! What a closed `CircuitBreaker` adds per request over the bare, always-ready service in the
//! same run: unkeyed (one atomic load on the way in, one on the way out) and keyed by a
//! `RouteKey`. Run with `cargo bench -p tollgate-circuit-breaker`.
//!
//! Two groups: `closed breaker` sends `Request<()>` to `support::Bare`; `chat request` sends
//! what the facade's `peers` bench sends — a small chat request (two headers, a 62-byte JSON
//! `BufferedBody`, built outside the timing) to a service answering `Response<Full<Bytes>>`,
//! the response dropped inside the timing.

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_circuit_breaker::{BreakerConfig, CircuitBreakerLayer};
use tollgate_core::RouteKey;
use tollgate_core::key::ByRouteKey;
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};
#[path = "../../../benches/support/chat.rs"]
mod chat;
use chat::{Wire, chat};

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

fn chat_request(c: &mut Criterion) {
    let batch = BatchSize::SmallInput;
    let mut group = c.benchmark_group("chat request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Wire;
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function("unkeyed", |b| {
        let mut service = CircuitBreakerLayer::new(BreakerConfig::default()).layer(Wire);
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::closed, super::chat_request);
}
criterion_main!(harness::benches);
