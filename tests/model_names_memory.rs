//! 100,000 requests under 100,000 distinct made-up model names of 1 KB each, through a ready
//! stack whose provider has no model of its own and a quota of 10 requests a day: 10 are
//! admitted (the quota is not bypassed), the rest refused at once, and the process holds at
//! most 10 MB more afterwards than before (measured with a counting allocator; the figure is
//! printed with `--nocapture` and stated in the README's Safety section). Before the stack
//! keyed quotas by known models only, each name kept a day-long key: 118 MB.
//!
//! One test in its own binary: the allocator counts every thread.

#![cfg(feature = "stack")]

#[allow(dead_code)]
mod support;

use std::alloc::System;
use std::num::NonZeroU64;
use std::time::Duration;

use http::Request;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use support::{Wire, ok, steady};
use tollgate::body::BufferedBody;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::error::RateLimited;
use tollgate::ratelimit::presets::OpenAiTier;
use tollgate::ratelimit::{Limit, Limits};
use tollgate::stack::{Provider, StackBuilder};
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, by every thread. (`stats_alloc` already counts a
/// reallocation's growth in `bytes_allocated` and its shrinking in `bytes_deallocated`;
/// adding `bytes_reallocated` too would count it twice.)
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

const NAMES: usize = 100_000;

/// The bound the README states.
const DOCUMENTED_GROWTH: isize = 10 * 1024 * 1024;

#[tokio::test(start_paused = true)]
async fn distinct_model_names_neither_bypass_the_quota_nor_grow_memory() {
    let provider = Provider::openai(OpenAiTier::Tier3)
        .with_api_key("sk-openai")
        .with_retry(steady().with_max_retries(0))
        .with_limits(Limits::new([Limit::requests(Quota::per_day(
            NonZeroU64::new(10).unwrap(),
        ))]))
        .with_max_wait(Duration::ZERO);
    let wire = Wire::new().script("api.openai.com", (0..10).map(|_| ok()).collect());
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    let padding = "x".repeat(1_000);
    let send = |i: usize| {
        let body = format!(
            r#"{{"model":"made-up-{i}-{padding}","messages":[{{"role":"user","content":"Hi"}}]}}"#
        );
        let request = Request::post("/v1/chat/completions")
            .body(BufferedBody::from(body))
            .unwrap();
        stack.clone().oneshot(request)
    };
    // The first request of all warms every lazily built part.
    assert!(send(0).await.is_ok());
    let before = live();
    let mut admitted = 1;
    for i in 1..NAMES {
        match send(i).await {
            Ok(_) => admitted += 1,
            Err(error) => assert!(
                tollgate::Verdict::of_error(&*error).is_some_and(|v| v.is_local_refusal())
                    || error.is::<RateLimited>(),
                "{error}"
            ),
        }
    }
    let grown = live() - before;
    println!(
        "{NAMES} distinct model names: {admitted} admitted, {:.2} MB more held",
        grown as f64 / 1e6
    );
    assert_eq!(admitted, 10);
    assert_eq!(wire.times().len(), 10);
    assert!(grown <= DOCUMENTED_GROWTH, "grew by {grown} bytes");
}
