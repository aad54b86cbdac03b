//! Heap allocations a request whose first target (the primary) succeeds makes in the fallback layer, over the
//! bare service: the copy kept for the targets after it is most of the layer's cost. The figure is printed
//! (run with `--nocapture`) and documented in the crate README; the test fails if it grows.
//!
//! One test in its own binary: the allocator counts every thread.

use std::alloc::System;

use http::Request;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tollgate_core::body::BufferedBody;
use tollgate_fallback::{FallbackConfig, FallbackLayer, Target};
use tollgate_providers::rewrite::SetModel;
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

/// The documented bound: allocations the layer adds to a chat request whose first target succeeds.
const DOCUMENTED_CHAT: i64 = 0;

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
