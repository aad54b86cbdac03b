//! Helpers shared by the fuzz targets: a fixed clock, the header names the targets feed, and the
//! line format that turns fuzzer bytes into a `HeaderMap`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::RateLimitSnapshot;

/// The fixed "now" of the targets: 2025-06-15T15:06:40Z.
pub const NOW_SECS: u64 = 1_750_000_000;

/// `UNIX_EPOCH + NOW_SECS`.
pub fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// The delay headers, in the order the `retry_after` target assigns its values to them.
pub const DELAY_NAMES: &[&str] = &[
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "retry-after",
    "x-should-retry",
];

/// Every rate-limit header any family parser reads.
pub const RATE_LIMIT_NAMES: &[&str] = &[
    // OpenAI, Azure OpenAI, Groq
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-reset-tokens_usage_based",
    // OpenRouter
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    // Anthropic
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    // Mistral
    "x-ratelimitbysize-limit-minute",
    "x-ratelimitbysize-remaining-minute",
    "x-ratelimitbysize-limit-month",
    "x-ratelimitbysize-remaining-month",
    "ratelimitbysize-limit",
    "ratelimitbysize-remaining",
    "ratelimitbysize-reset",
    "ratelimitbysize-query-cost",
];

/// Headers only the classifiers read.
pub const CLASSIFIER_NAMES: &[&str] = &["x-amzn-errortype"];

/// Builds a `HeaderMap` from lines separated by `\n`: the first byte of a line picks the name
/// (`names[byte % names.len()]`), the rest is the value. Values `HeaderValue::from_bytes`
/// rejects are skipped; a name given twice gets two values.
pub fn header_lines(data: &[u8], names: &[&[&'static str]]) -> HeaderMap {
    let total: usize = names.iter().map(|n| n.len()).sum();
    let mut headers = HeaderMap::new();
    if total == 0 {
        return headers;
    }
    for line in data.split(|&b| b == b'\n') {
        let Some((&selector, value)) = line.split_first() else {
            continue;
        };
        let mut index = usize::from(selector) % total;
        let name = names
            .iter()
            .find_map(|group| {
                if index < group.len() {
                    Some(group[index])
                } else {
                    index -= group.len();
                    None
                }
            })
            .expect("index is below the total");
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// Asserts what `RateLimitSnapshot` promises: each `(dimension, window)` pair at most once, and
/// no empty reading stored.
pub fn check_snapshot(snapshot: &RateLimitSnapshot) {
    let entries = snapshot.entries();
    for (i, a) in entries.iter().enumerate() {
        assert!(!a.reading.is_empty(), "empty reading stored: {a:?}");
        for b in &entries[i + 1..] {
            assert!(
                !(a.dimension == b.dimension && a.window == b.window),
                "duplicate ({}, {}) in {entries:?}",
                a.dimension,
                a.window,
            );
        }
    }
    if let Some(reset) = snapshot.exhausted_reset() {
        assert!(!reset.is_zero(), "zero exhausted_reset in {entries:?}");
    }
}
