//! Every rate-limit family parser: `headers::{openai, azure_openai, groq, anthropic, mistral,
//! openrouter}`.
//!
//! Input: lines separated by `\n`; a line's first byte picks the header name
//! (`RATE_LIMIT_NAMES[byte % 30]`: every `x-ratelimit-*`, `anthropic-ratelimit-*`,
//! `x-ratelimitbysize-*` and `ratelimitbysize-*` name a parser reads), the rest is its value.
//! Each parser runs at the epoch, at a fixed time and 400 years later.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use tollgate_core::{Dimension, RateLimitSnapshot, Window, headers};
use tollgate_fuzz::{RATE_LIMIT_NAMES, check_snapshot, fixed_now, header_lines};

type Parser = fn(&HeaderMap, SystemTime) -> RateLimitSnapshot;

/// A family: its name, its parser, the (dimension, window) pairs it may report, and whether its
/// readings depend on `now`.
type Family = (&'static str, Parser, &'static [(Dimension, Window)], bool);

/// Anthropic and OpenRouter send absolute reset times, so their readings depend on `now`.
const FAMILIES: &[Family] = &[
    (
        "openai",
        headers::openai,
        &[
            (Dimension::Requests, Window::Minute),
            (Dimension::Tokens, Window::Minute),
        ],
        false,
    ),
    (
        "azure_openai",
        headers::azure_openai,
        &[
            (Dimension::Requests, Window::Minute),
            (Dimension::Tokens, Window::Minute),
        ],
        false,
    ),
    (
        "groq",
        headers::groq,
        &[
            (Dimension::Requests, Window::Day),
            (Dimension::Tokens, Window::Minute),
        ],
        false,
    ),
    (
        "anthropic",
        headers::anthropic,
        &[
            (Dimension::Requests, Window::Minute),
            (Dimension::Tokens, Window::Minute),
            (Dimension::InputTokens, Window::Minute),
            (Dimension::OutputTokens, Window::Minute),
        ],
        true,
    ),
    (
        "mistral",
        headers::mistral,
        &[
            (Dimension::Tokens, Window::Minute),
            (Dimension::Tokens, Window::Month),
        ],
        false,
    ),
    (
        "openrouter",
        headers::openrouter,
        &[(Dimension::Requests, Window::Unspecified)],
        true,
    ),
];

fuzz_target!(|data: &[u8]| {
    let map = header_lines(data, &[RATE_LIMIT_NAMES]);
    let later = fixed_now() + Duration::from_secs(400 * 365 * 86_400);
    for &(family, parse, allowed, timed) in FAMILIES {
        let snapshots = [UNIX_EPOCH, fixed_now(), later].map(|now| parse(&map, now));
        for snapshot in &snapshots {
            check_snapshot(snapshot);
            for e in snapshot.entries() {
                assert!(
                    allowed.contains(&(e.dimension, e.window)),
                    "{family}: unexpected ({}, {})",
                    e.dimension,
                    e.window,
                );
                if family == "azure_openai" {
                    assert_ne!(
                        e.reading.reset,
                        Some(Duration::ZERO),
                        "azure: reset 0 is unknown"
                    );
                }
            }
        }
        if !timed {
            assert_eq!(
                snapshots[0], snapshots[1],
                "{family} depends on now: {map:?}"
            );
            assert_eq!(
                snapshots[1], snapshots[2],
                "{family} depends on now: {map:?}"
            );
            continue;
        }
        // Absolute reset times: the same entries at every time, counts unchanged, and a reset
        // that never grows as `now` advances.
        for pair in snapshots.windows(2) {
            let (earlier, later) = (&pair[0], &pair[1]);
            assert_eq!(
                earlier.entries().len(),
                later.entries().len(),
                "{family}: {map:?}"
            );
            for e in earlier.entries() {
                let l = later
                    .get(e.dimension, e.window)
                    .unwrap_or_else(|| panic!("{family}: entry vanished as time passed: {map:?}"));
                assert_eq!(
                    (e.reading.limit, e.reading.remaining),
                    (l.limit, l.remaining)
                );
                assert_eq!(
                    e.reading.reset.is_some(),
                    l.reset.is_some(),
                    "{family}: {map:?}"
                );
                assert!(l.reset <= e.reading.reset, "{family}: reset grew: {map:?}");
            }
        }
    }
});
