//! What `Retry` adds to a chat that succeeds at the first try, over the bare always-ready
//! service in the same run: the copy of the chat kept for a retry, the clone of the inner
//! service, the judging of the response. Run with `cargo bench -p tollgate-retry`.

use criterion::{Criterion, Throughput, criterion_main};
use http::Request;
use tollgate_core::body::BufferedBody;
use tollgate_retry::{RetryLayer, RetryPolicy};
use tower::Layer;

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers `Response<()>`; the rows here use `Wire`
mod support;
use support::send;
#[path = "../../../benches/support/chat.rs"]
mod chat;
use chat::{Wire, chat};
#[path = "../../../benches/support/clone_only.rs"]
mod clone_only;
use clone_only::CloneOnly;

/// The smallest request: no headers, an empty body.
fn minimal() -> Request<BufferedBody> {
    Request::new(BufferedBody::empty())
}

fn first_try(c: &mut Criterion) {
    for (name, make) in [
        ("chat request", chat as fn() -> Request<BufferedBody>),
        ("minimal request", minimal),
    ] {
        let mut group = c.benchmark_group(format!("first-try success, {name}"));
        group.throughput(Throughput::Elements(1));
        let batch = criterion::BatchSize::SmallInput;
        group.bench_function("bare", |b| {
            let mut service = Wire;
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.bench_function("tower retry (clone only)", |b| {
            let mut service = tower::retry::RetryLayer::new(CloneOnly).layer(Wire);
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.bench_function("retry (default policy)", |b| {
            let mut service = RetryLayer::new(RetryPolicy::default()).layer(Wire);
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.bench_function("retry (OpenAI preset)", |b| {
            let mut service = RetryLayer::openai().layer(Wire);
            b.iter_batched(make, |r| send(&mut service, r), batch);
        });
        group.finish();
    }
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::first_try);
}
criterion_main!(harness::benches);
