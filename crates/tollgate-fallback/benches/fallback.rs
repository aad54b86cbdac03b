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
mod support;
use support::{Bare, send};

fn minimal() -> Request<BufferedBody> {
    Request::new(BufferedBody::empty())
}

fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
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
            let mut service = Bare;
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.bench_function("fallback to one target", |b| {
            let layer = FallbackLayer::new(FallbackConfig::new([
                Target::new("second", Bare).with_rewrite(SetModel::new("m"))
            ]));
            let mut service = layer.layer(Bare);
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
