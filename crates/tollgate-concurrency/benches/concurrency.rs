//! What `ConcurrencyLimit` adds per request over the bare, always-ready service in the same
//! run — a slot taken and freed, lock-free — beside tower's own `ConcurrencyLimit`. Run with
//! `cargo bench -p tollgate-concurrency`.
//!
//! Two groups: `free slot` sends `Request<()>` to `support::Bare`; `chat request` sends what
//! the facade's `peers` bench sends — a small chat request (two headers, a 62-byte JSON
//! `BufferedBody`, built outside the timing) to a service answering `Response<Full<Bytes>>`,
//! the response and its body dropped inside the timing (which frees a slot held by the body).

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use tollgate_concurrency::{ConcurrencyConfig, ConcurrencyLayer};
use tollgate_core::body::BufferedBody;
use tower::{Layer, Service};

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

/// The facade `peers` bench's bare service: answers 200 at once with an empty `Full<Bytes>`.
#[derive(Debug, Clone, Copy)]
struct Wire;

impl<B> Service<Request<B>> for Wire {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// The facade `peers` bench's chat request.
fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
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
