//! What `Metrics` adds per request over the bare, always-ready service in the same run: with
//! no `metrics` recorder and no `tracing` subscriber installed, and with the in-process
//! snapshot as well. Run with `cargo bench -p tollgate-metrics`.

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_metrics::MetricsLayer;
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

fn per_request(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Bare;
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("no recorder", |b| {
        let mut service = MetricsLayer::new("openai").layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
    });
    group.bench_function("no recorder, with snapshot", |b| {
        let layer = MetricsLayer::new("openai");
        let handle = layer.handle();
        let mut service = layer.layer(Bare);
        b.iter(|| send(&mut service, Request::new(())));
        assert!(handle.snapshot().requests > 0);
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::per_request);
}
criterion_main!(harness::benches);
