//! Heap allocations a request whose first target (the primary) succeeds makes in the fallback layer, over the
//! bare service: the copy kept for the targets after it is most of the layer's cost. The figure is printed
//! (run with `--nocapture`) and documented in the crate README; the test fails if it grows.
//!
//! One test in its own binary: the allocator counts every thread.

use std::alloc::System;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tollgate_core::body::BufferedBody;
use tollgate_fallback::{FallbackConfig, FallbackLayer, Target};
use tollgate_providers::rewrite::SetModel;
use tower::{Layer, Service};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The documented bound: allocations the layer adds to a chat request whose first target succeeds.
const DOCUMENTED_CHAT: i64 = 0;

/// The always-ready service: a 200 with no body.
#[derive(Clone, Copy)]
struct Bare;

impl<B> Service<Request<B>> for Bare {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// The chat request of the crate's bench: a URI, two headers, a JSON body.
fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}

/// Allocations made while `service` answers `make()` (built outside the count).
fn allocations<S>(service: &mut S, make: fn() -> Request<BufferedBody>) -> i64
where
    S: Service<Request<BufferedBody>>,
    S::Error: std::fmt::Debug,
{
    const N: i64 = 100;
    let mut total = 0;
    for _ in 0..N {
        let request = make();
        let before = ALLOCATOR.stats().allocations;
        let mut cx = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut cx).is_ready());
        let future = pin!(service.call(request));
        assert!(matches!(future.poll(&mut cx), Poll::Ready(Ok(_))));
        total += (ALLOCATOR.stats().allocations - before) as i64;
    }
    total / N
}

#[test]
fn a_first_target_success_allocates_at_most_the_documented_count() {
    let layer = FallbackLayer::new(FallbackConfig::new([
        Target::new("second", Bare).with_rewrite(SetModel::new("gpt-4o-mini"))
    ]));
    let mut fallback = layer.layer(Bare);
    let added = allocations(&mut fallback, chat) - allocations(&mut Bare, chat);
    let minimal = || Request::new(BufferedBody::empty());
    let added_minimal = allocations(&mut fallback, minimal) - allocations(&mut Bare, minimal);
    println!(
        "allocations added when the first target succeeds: chat {added}, minimal {added_minimal}"
    );
    assert!(added <= DOCUMENTED_CHAT, "{added} allocations");
    assert_eq!(added_minimal, 0);
}
