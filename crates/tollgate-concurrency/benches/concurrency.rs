//! What `ConcurrencyLimit` adds per request over the bare, always-ready service in the same
//! run — a slot taken and freed, lock-free — beside tower's own `ConcurrencyLimit`. Run with
//! `cargo bench -p tollgate-concurrency`.

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("free slot");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Bare;
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("tower ConcurrencyLimit", |b| {
        let mut service = tower::limit::ConcurrencyLimitLayer::new(64).layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("slot freed at the response", |b| {
        let mut service =
            ConcurrencyLayer::new(ConcurrencyConfig::new(64).with_hold_until_body_end(false))
                .layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("slot held by the body", |b| {
        let mut service = ConcurrencyLayer::new(ConcurrencyConfig::new(64)).layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::uncontended);
}
criterion_main!(harness::benches);
