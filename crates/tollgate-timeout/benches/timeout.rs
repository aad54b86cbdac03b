//! What `Timeout` adds per request over the bare, always-ready service in the same run, on the
//! success path — head and body ready at once, the body read to its end — beside tower's own
//! `Timeout` (a total limit on the response future only). Run with
//! `cargo bench -p tollgate-timeout`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tollgate_timeout::{TimeoutConfig, TimeoutLayer};
use tower::{Layer, Service};

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers with no body; these answer with one
mod support;
use support::send;

/// An always-ready service answering 200 at once with a small JSON body.
#[derive(Debug, Clone, Copy)]
struct Answers;

impl Service<Request<()>> for Answers {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"{}")))))
    }
}

/// Reads `body` to its end, every frame ready at once.
fn drain<B: Body + Unpin>(mut body: B) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        assert!(frame.is_ok(), "the body reads without error");
        frames += 1;
    }
    frames
}

fn success(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("success path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare", |b| {
        let mut service = Answers;
        b.iter(|| drain(send(&mut service, Request::new(())).into_body()));
    });
    group.bench_function("tower Timeout, total", |b| {
        let mut service =
            tower::timeout::TimeoutLayer::new(Duration::from_secs(600)).layer(Answers);
        b.iter(|| drain(send(&mut service, Request::new(())).into_body()));
    });
    group.bench_function("Timeout, default limits", |b| {
        let mut service = TimeoutLayer::new(TimeoutConfig::default()).layer(Answers);
        b.iter(|| drain(send(&mut service, Request::new(())).into_body()));
    });
    group.bench_function("Timeout, no limits", |b| {
        let mut service = TimeoutLayer::new(TimeoutConfig::none()).layer(Answers);
        b.iter(|| drain(send(&mut service, Request::new(())).into_body()));
    });
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::success);
}
criterion_main!(harness::benches);
