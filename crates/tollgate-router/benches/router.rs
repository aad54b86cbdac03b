//! A routing decision among 8 deployments, each with its own quota and breaker, by strategy;
//! and a whole request through the router over the bare always-ready service, next to the
//! bare service in the same run. Run with `cargo bench -p tollgate-router`.

use std::num::NonZeroU64;

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_core::body::BufferedBody;
use tollgate_core::{Cost, Dimension};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits};
use tollgate_router::{Deployment, RouterConfig, RouterLayer, Strategy};
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};

/// Quotas no benchmark run can use up: 10M requests and 10G tokens a minute.
fn roomy() -> Limits {
    let per_minute = |n| Quota::per_minute(NonZeroU64::new(n).unwrap());
    Limits::new([
        Limit::requests(per_minute(10_000_000)),
        Limit::tokens(per_minute(10_000_000_000)),
    ])
}

fn eight() -> Vec<Deployment> {
    (0..8)
        .map(|i| Deployment::new(&format!("key-{i}")).with_limits(roomy()))
        .collect()
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing decision among 8");
    group.throughput(Throughput::Elements(1));
    let cost = Cost::requests(1).with(Dimension::Tokens, 500);
    for (name, strategy) in [
        ("round-robin", Strategy::RoundRobin),
        ("weighted", Strategy::Weighted),
        ("least-loaded", Strategy::LeastLoaded),
        ("latency-aware", Strategy::LatencyAware),
    ] {
        let router = RouterLayer::new(RouterConfig::new(eight()).with_strategy(strategy))
            .unwrap()
            .layer(Bare);
        group.bench_function(name, |b| b.iter(|| router.route(&cost).is_ok()));
    }
    group.finish();
}

fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}

fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("chat request");
    group.throughput(Throughput::Elements(1));
    let batch = criterion::BatchSize::SmallInput;
    group.bench_function("bare", |b| {
        let mut service = Bare;
        b.iter_batched(chat, |r| send(&mut service, r), batch);
    });
    group.bench_function("router over 8, round-robin", |b| {
        let mut service = RouterLayer::new(RouterConfig::new(eight()))
            .unwrap()
            .layer(Bare);
        b.iter_batched(chat, |r| send(&mut service, r), batch);
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::decision, super::request);
}
criterion_main!(harness::benches);
