//! What `ConcurrencyLimit` adds per request over the bare, always-ready service in the same
//! run — a slot taken and freed, lock-free — beside tower's own `ConcurrencyLimit`. Run with
//! `cargo bench -p tollgate-concurrency`.
//!
//! Two groups: `free slot` sends `Request<()>` to `support::Bare`; `chat request` sends what
//! the facade's `peers` bench sends — a small chat request (two headers, a 62-byte JSON
//! `BufferedBody`, built outside the timing) to a service answering `Response<Full<Bytes>>`,
//! the response and its body dropped inside the timing (which frees a slot held by the body).

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::{Bare, send};
#[path = "../../../benches/support/chat.rs"]
mod chat;
use chat::{Wire, chat};

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

fn chat_request(c: &mut Criterion) {
    let batch = BatchSize::SmallInput;
    let mut group = c.benchmark_group("chat request");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Wire;
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function("tower ConcurrencyLimit", |b| {
        let mut service = tower::limit::ConcurrencyLimitLayer::new(64).layer(Wire);
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.bench_function("slot held by the body", |b| {
        let mut service = ConcurrencyLayer::new(ConcurrencyConfig::new(64)).layer(Wire);
        b.iter_batched(chat, |r| send(&mut service, r).status(), batch);
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::uncontended, super::chat_request);
}
criterion_main!(harness::benches);
