//! Boundaries of `tollgate_core::headers` that the tables of `header_parsers.rs` do not reach:
//! which texts are numbers of seconds or milliseconds (dots, signs, exponents, zeros), and
//! where OpenRouter's epoch resets switch from seconds to milliseconds. Found by mutation
//! testing (CONTRIBUTING.md, "Mutation testing").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use tollgate_core::headers::{openrouter, retry_after, server_delay};
use tollgate_core::{DelaySource, Dimension, Window};

fn one(name: &'static str, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(name, HeaderValue::from_str(value).unwrap());
    map
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_445_412_460)
}

#[test]
fn a_delay_is_digits_with_at_most_one_dot() {
    let ms = Duration::from_millis;
    let cases: &[(&str, Option<Duration>)] = &[
        ("1.", Some(ms(1_000))),
        (".5", Some(ms(500))),
        ("0.25", Some(ms(250))),
        ("007", Some(ms(7_000))),
        ("1.2.3", None),
        ("1..2", None),
        ("..5", None),
        (".", None),
        ("..", None),
        ("+1", None),
        ("1e3", None),
        ("1E3", None),
        ("1_000", None),
        ("1,5", None),
        ("0", None),
        ("0.", None),
        (".0", None),
        ("0.000", None),
        // Below a nanosecond: nothing to wait.
        ("0.0000000001", None),
    ];
    let mut failures = Vec::new();
    for (value, want) in cases {
        let got = retry_after(&one("retry-after", value), now());
        if got != *want {
            failures.push(format!(
                "retry-after {value:?}: expected {want:?}, got {got:?}"
            ));
        }
        // The same text in milliseconds is a thousand times shorter.
        let want_ms = want.and_then(|d| {
            let d = d / 1_000;
            (!d.is_zero()).then_some(d)
        });
        let got = retry_after(&one("retry-after-ms", value), now());
        if got != want_ms {
            failures.push(format!(
                "retry-after-ms {value:?}: expected {want_ms:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_malformed_milliseconds_header_falls_through_to_retry_after() {
    for bad in ["1.2.3", ".", "+5", "1e3", "0"] {
        let mut map = one("retry-after-ms", bad);
        map.insert("x-ms-retry-after-ms", HeaderValue::from_static("1.2.3"));
        map.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            server_delay(&map, now()),
            Some((Duration::from_secs(3), DelaySource::RetryAfterSeconds)),
            "{bad:?}"
        );
    }
}

fn openrouter_reset(value: &str, now: SystemTime) -> Option<Duration> {
    openrouter(&one("x-ratelimit-reset", value), now)
        .get(Dimension::Requests, Window::Unspecified)
        .and_then(|reading| reading.reset)
}

#[test]
fn an_openrouter_reset_from_ten_to_the_eleventh_is_milliseconds() {
    // 10¹¹ − 1 is seconds (the year 5138), 10¹¹ milliseconds (March 1973).
    let start = UNIX_EPOCH;
    assert_eq!(
        openrouter_reset("99999999999", start),
        Some(Duration::from_secs(99_999_999_999))
    );
    assert_eq!(
        openrouter_reset("100000000000", start),
        Some(Duration::from_millis(100_000_000_000))
    );
    assert_eq!(
        openrouter_reset("100000000001", start),
        Some(Duration::from_millis(100_000_000_001))
    );
}
