//! Heap allocations per request, for the tests that bound them (`tests/allocations.rs` of the
//! retry and fallback crates): counted by the `stats_alloc` global allocator the including test
//! declares, while a request is sent with `support::send`. Included with `#[path]` beside
//! `support/mod.rs` (as `mod support`).

use std::alloc::System;

use http::{Request, Response};
use stats_alloc::StatsAlloc;
use tower::Service;

/// Allocations made, on average over 100 requests, while `service` answers `make()` and its
/// response is dropped (the request is built outside the count).
pub(crate) fn per_request<S, B, R>(
    counter: &StatsAlloc<System>,
    service: &mut S,
    make: fn() -> Request<B>,
) -> i64
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Debug,
{
    const N: i64 = 100;
    let mut total = 0;
    for _ in 0..N {
        let request = make();
        let before = counter.stats().allocations;
        drop(super::support::send(service, request));
        total += (counter.stats().allocations - before) as i64;
    }
    total / N
}
