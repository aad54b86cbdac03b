//! What `Fallback` adds when its first target (the primary) succeeds, over the bare
//! always-ready service in the same run: the copy of the request kept for the targets after
//! it, and the judging of the response. Run with `cargo bench -p tollgate-fallback`.

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_core::body::BufferedBody;
use tollgate_fallback::{FallbackConfig, FallbackLayer, Target};
use tollgate_providers::rewrite::SetModel;
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers `Response<()>`; the rows here use `Wire`
mod support;
use support::send;
#[path = "../../../benches/support/chat.rs"]
mod chat;
use chat::{Wire, chat};

fn minimal() -> Request<BufferedBody> {
    Request::new(BufferedBody::empty())
}

fn first_target_succeeds(c: &mut Criterion) {
    for (name, make) in [
        ("minimal request", minimal as fn() -> Request<BufferedBody>),
        ("chat request", chat),
    ] {
        let mut group = c.benchmark_group(format!("first target succeeds, {name}"));
        group.throughput(Throughput::Elements(1));
        let batch = criterion::BatchSize::SmallInput;
        group.bench_function("bare", |b| {
            let mut service = Wire;
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.bench_function("fallback to one target", |b| {
            let layer = FallbackLayer::new(FallbackConfig::new([
                Target::new("second", Wire).with_rewrite(SetModel::new("gpt-4o-mini"))
            ]));
            let mut service = layer.layer(Wire);
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.finish();
    }
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::first_target_succeeds);
}
criterion_main!(harness::benches);
