//! Heap allocations a request that succeeds at the first try makes in the retry layer, over the
//! bare service: the copy kept for a retry is most of the layer's cost. The figure is printed
//! (run with `--nocapture`) and documented in the crate README; the test fails if it grows.
//!
//! One test in its own binary: the allocator counts every thread.

use std::alloc::System;

use http::Request;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tollgate_core::body::BufferedBody;
use tollgate_retry::{RetryLayer, RetryPolicy};
use tower::Layer;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "../../../benches/support/mod.rs"]
mod support;
use support::Bare;

#[path = "../../../benches/support/chat.rs"]
#[allow(dead_code)] // `Wire`: these requests go to `Bare`
mod chat;
use chat::chat;

#[path = "../../../benches/support/allocations.rs"]
mod counting;

/// Allocations made while `service` answers `make()`.
fn allocations<S, R>(service: &mut S, make: fn() -> Request<BufferedBody>) -> i64
where
    S: tower::Service<Request<BufferedBody>, Response = http::Response<R>>,
    S::Error: std::fmt::Debug,
{
    counting::per_request(ALLOCATOR, service, make)
}

/// The documented bound: allocations the layer adds to a chat request's first try.
const DOCUMENTED_CHAT: i64 = 0;

#[test]
fn a_first_try_allocates_at_most_the_documented_count() {
    let mut retry = RetryLayer::new(RetryPolicy::default()).layer(Bare);
    let mut openai = RetryLayer::openai().layer(Bare);
    let bare = allocations(&mut Bare, chat);
    let added = allocations(&mut retry, chat) - bare;
    let added_openai = allocations(&mut openai, chat) - bare;
    let minimal = || Request::new(BufferedBody::empty());
    let added_minimal = allocations(&mut retry, minimal) - allocations(&mut Bare, minimal);
    println!(
        "allocations added per first try: chat {added} (OpenAI preset {added_openai}), minimal {added_minimal}"
    );
    assert!(added <= DOCUMENTED_CHAT, "{added} allocations");
    assert!(
        added_openai <= DOCUMENTED_CHAT,
        "{added_openai} allocations"
    );
    assert_eq!(added_minimal, 0);
}
