//! The memory a `MemoryStore` holds per key, measured with a counting allocator: 10,000 keys
//! on a three-limit quota, then evicted once idle; on one limit; under an adaptive limit. The figure is printed (run with
//! `--nocapture`) and documented in the crate README; the test fails if it grows past the
//! documented bound or if eviction does not give the memory back.
//!
//! One test in its own binary: the allocator counts every thread.

use std::alloc::System;
use std::num::NonZeroU64;
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tollgate_core::{Cost, Dimension, RouteKey};
use tollgate_ratelimit::adaptive::Adaptive;
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits, MemoryStore, QuotaDecision, Store};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, by every thread. (`stats_alloc` already counts a
/// reallocation's growth in `bytes_allocated` and its shrinking in `bytes_deallocated`;
/// adding `bytes_reallocated` too would count it twice.)
fn live() -> isize {
    let stats = ALLOCATOR.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// The bound the crate README documents, in bytes per key, besides the key itself.
const DOCUMENTED_BYTES_PER_KEY: isize = 224;

/// The same on one limit.
const DOCUMENTED_ONE_LIMIT_BYTES_PER_KEY: isize = 128;

/// The same under an adaptive limit (no configured limits).
const DOCUMENTED_ADAPTIVE_BYTES_PER_KEY: isize = 416;

/// Admits `cost` once for each key, at once.
fn admit_each(store: &MemoryStore, keys: &[RouteKey], cost: &Cost, now: Duration) {
    for key in keys {
        let answer = std::future::Future::poll(
            std::pin::pin!(store.admit(Some(key), cost, None, now)),
            &mut std::task::Context::from_waker(std::task::Waker::noop()),
        );
        assert!(matches!(
            answer,
            std::task::Poll::Ready(Ok(QuotaDecision::Admitted))
        ));
    }
}

#[test]
fn memory_per_key_is_bounded_and_given_back() {
    const KEYS: usize = 10_000;
    let n = |v| NonZeroU64::new(v).unwrap();
    let store = MemoryStore::new(Limits::new([
        Limit::requests(Quota::per_minute(n(10_000))),
        Limit::tokens(Quota::per_minute(n(2_000_000))),
        Limit::tokens(Quota::per_day(n(50_000_000))),
    ]));
    let keys: Vec<RouteKey> = (0..KEYS)
        .map(|i| RouteKey::new(format!("tenant-{i}")))
        .collect();
    let cost = Cost::requests(1).with(Dimension::Tokens, 1_000);
    let now = Duration::from_secs(1);

    let before = live();
    admit_each(&store, &keys, &cost, now);
    let held = live() - before;
    let per_key = held / KEYS as isize;
    println!("{KEYS} keys, 3 token-bucket limits: {held} bytes, {per_key} bytes per key");
    assert_eq!(store.keys(), KEYS);
    assert!(
        per_key <= DOCUMENTED_BYTES_PER_KEY,
        "{per_key} bytes per key"
    );

    // A day later every limit is full again: idle keys are forgotten and memory is given back.
    let later = now + Duration::from_secs(86_400);
    assert_eq!(store.evict_idle(later), 0);
    let left = live() - before;
    println!("after eviction: {left} bytes");
    assert!(left < 4_096, "{left} bytes still held");

    // One limit: requests per minute.
    let store = MemoryStore::new(Limits::new([Limit::requests(Quota::per_minute(n(10_000)))]));
    let before = live();
    admit_each(&store, &keys, &cost, now);
    let per_key = (live() - before) / KEYS as isize;
    println!("{KEYS} keys, 1 token-bucket limit: {per_key} bytes per key");
    assert!(
        per_key <= DOCUMENTED_ONE_LIMIT_BYTES_PER_KEY,
        "{per_key} bytes per key"
    );
    drop(store);

    // The same keys under an adaptive limit: its learned pace per key, forgotten once the key
    // has been idle for five minutes.
    let store = MemoryStore::new(Limits::adaptive(Adaptive::default()));
    let before = live();
    admit_each(&store, &keys, &cost, now);
    let per_key = (live() - before) / KEYS as isize;
    println!("{KEYS} keys, an adaptive limit: {per_key} bytes per key");
    assert!(
        per_key <= DOCUMENTED_ADAPTIVE_BYTES_PER_KEY,
        "{per_key} bytes per key"
    );
    assert_eq!(store.evict_idle(now + Duration::from_secs(299)), KEYS);
    assert_eq!(store.evict_idle(now + Duration::from_secs(300)), 0);
    let left = live() - before;
    assert!(left < 4_096, "{left} bytes still held");
}
