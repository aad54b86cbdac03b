//! One parser per provider's rate-limit header family, each into a [`RateLimitSnapshot`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::read::{first_values, value_text};
use super::{go_duration, rfc3339};
use crate::{Dimension, LimitReading, RateLimitSnapshot, Window};

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: requests and tokens per
/// minute, resets as Go durations until the bucket is fully refilled.
///
/// The `*-tokens_usage_based` headers describe a separate usage-based bucket and are not read.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let mut map = HeaderMap::new();
/// map.insert("x-ratelimit-limit-requests", "10000".parse().unwrap());
/// map.insert("x-ratelimit-remaining-requests", "9999".parse().unwrap());
/// map.insert("x-ratelimit-reset-requests", "8.64s".parse().unwrap());
/// let snapshot = headers::openai(&map, SystemTime::now());
/// let requests = snapshot.get(Dimension::Requests, Window::Minute).unwrap();
/// assert_eq!(requests.limit, Some(10_000));
/// assert_eq!(requests.reset, Some(Duration::from_millis(8_640)));
/// ```
pub fn openai(headers: &HeaderMap, _now: SystemTime) -> RateLimitSnapshot {
    requests_and_tokens(headers, Window::Minute, go_duration)
}

/// Azure OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: per minute, resets in
/// integer seconds (a Go duration is accepted too). `-1` means unknown, and so does a reset of
/// `0`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let mut map = HeaderMap::new();
/// map.insert("x-ratelimit-remaining-tokens", "-1".parse().unwrap());
/// map.insert("x-ratelimit-remaining-requests", "12".parse().unwrap());
/// map.insert("x-ratelimit-reset-requests", "37".parse().unwrap());
/// let snapshot = headers::azure_openai(&map, SystemTime::now());
/// assert!(snapshot.get(Dimension::Tokens, Window::Minute).is_none());
/// let requests = snapshot.get(Dimension::Requests, Window::Minute).unwrap();
/// assert_eq!((requests.remaining, requests.reset), (Some(12), Some(Duration::from_secs(37))));
/// ```
pub fn azure_openai(headers: &HeaderMap, _now: SystemTime) -> RateLimitSnapshot {
    requests_and_tokens(headers, Window::Minute, |v| {
        let reset = whole_seconds(v).or_else(|| go_duration(v))?;
        (!reset.is_zero()).then_some(reset)
    })
}

/// Groq's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`: the request headers are **per
/// day**, the token headers per minute; resets are Go durations.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let mut map = HeaderMap::new();
/// map.insert("x-ratelimit-limit-requests", "14400".parse().unwrap());
/// map.insert("x-ratelimit-reset-requests", "2m59.56s".parse().unwrap());
/// map.insert("x-ratelimit-remaining-tokens", "17997".parse().unwrap());
/// let snapshot = headers::groq(&map, SystemTime::now());
/// assert_eq!(snapshot.get(Dimension::Requests, Window::Day).unwrap().limit, Some(14_400));
/// assert_eq!(snapshot.get(Dimension::Tokens, Window::Minute).unwrap().remaining, Some(17_997));
/// ```
pub fn groq(headers: &HeaderMap, _now: SystemTime) -> RateLimitSnapshot {
    requests_and_tokens(headers, Window::Day, go_duration)
}

/// Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`:
/// per minute, resets as RFC 3339 times of the full refill (a time already past is a reset of
/// zero).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_740_435_900); // 2025-02-24T22:25:00Z
/// let mut map = HeaderMap::new();
/// map.insert("anthropic-ratelimit-input-tokens-remaining", "78000".parse().unwrap());
/// map.insert("anthropic-ratelimit-input-tokens-reset", "2025-02-24T22:25:32Z".parse().unwrap());
/// let snapshot = headers::anthropic(&map, now);
/// let input = snapshot.get(Dimension::InputTokens, Window::Minute).unwrap();
/// assert_eq!(input.remaining, Some(78_000));
/// assert_eq!(input.reset, Some(Duration::from_secs(32)));
/// ```
pub fn anthropic(headers: &HeaderMap, now: SystemTime) -> RateLimitSnapshot {
    let found = first_values(
        headers,
        "anthropic-ratelimit-",
        [
            "requests-limit",
            "requests-remaining",
            "requests-reset",
            "tokens-limit",
            "tokens-remaining",
            "tokens-reset",
            "input-tokens-limit",
            "input-tokens-remaining",
            "input-tokens-reset",
            "output-tokens-limit",
            "output-tokens-remaining",
            "output-tokens-reset",
        ],
    );
    let mut snapshot = RateLimitSnapshot::new();
    let dimensions = [
        Dimension::Requests,
        Dimension::Tokens,
        Dimension::InputTokens,
        Dimension::OutputTokens,
    ];
    for (i, dimension) in dimensions.into_iter().enumerate() {
        let reading = LimitReading {
            limit: parsed(found[3 * i], count),
            remaining: parsed(found[3 * i + 1], count),
            reset: parsed(found[3 * i + 2], |v| {
                let at = rfc3339(v)?;
                Some(at.duration_since(now).unwrap_or(Duration::ZERO))
            }),
        };
        snapshot.set(dimension, Window::Minute, reading);
    }
    snapshot
}

/// Mistral's token limits: `x-ratelimitbysize-{limit,remaining}-{minute,month}` and
/// `ratelimitbysize-{limit,remaining,reset}` (per minute, reset in seconds). The per-minute
/// values of both families are merged, the `x-` family first.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let mut map = HeaderMap::new();
/// map.insert("x-ratelimitbysize-limit-month", "1000000000".parse().unwrap());
/// map.insert("ratelimitbysize-remaining", "467993".parse().unwrap());
/// map.insert("ratelimitbysize-reset", "40".parse().unwrap());
/// let snapshot = headers::mistral(&map, SystemTime::now());
/// assert_eq!(snapshot.get(Dimension::Tokens, Window::Month).unwrap().limit, Some(1_000_000_000));
/// let minute = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
/// assert_eq!((minute.remaining, minute.reset), (Some(467_993), Some(Duration::from_secs(40))));
/// ```
pub fn mistral(headers: &HeaderMap, _now: SystemTime) -> RateLimitSnapshot {
    let [
        limit_minute,
        remaining_minute,
        limit_month,
        remaining_month,
        plain_limit,
        plain_remaining,
        plain_reset,
    ] = first_values(
        headers,
        "",
        [
            "x-ratelimitbysize-limit-minute",
            "x-ratelimitbysize-remaining-minute",
            "x-ratelimitbysize-limit-month",
            "x-ratelimitbysize-remaining-month",
            "ratelimitbysize-limit",
            "ratelimitbysize-remaining",
            "ratelimitbysize-reset",
        ],
    );
    let mut snapshot = RateLimitSnapshot::new();
    for (window, limit, remaining) in [
        (Window::Minute, limit_minute, remaining_minute),
        (Window::Month, limit_month, remaining_month),
    ] {
        let reading = LimitReading {
            limit: parsed(limit, count),
            remaining: parsed(remaining, count),
            reset: None,
        };
        snapshot.set(Dimension::Tokens, window, reading);
    }
    let plain = LimitReading {
        limit: parsed(plain_limit, count),
        remaining: parsed(plain_remaining, count),
        reset: parsed(plain_reset, whole_seconds),
    };
    let merged = match snapshot.get(Dimension::Tokens, Window::Minute) {
        Some(x) => LimitReading {
            limit: x.limit.or(plain.limit),
            remaining: x.remaining.or(plain.remaining),
            reset: plain.reset,
        },
        None => plain,
    };
    snapshot.set(Dimension::Tokens, Window::Minute, merged);
    snapshot
}

/// OpenRouter's `X-RateLimit-{Limit,Remaining,Reset}`: requests over a window the headers do not
/// name ([`Window::Unspecified`]); the reset is an epoch time, in milliseconds in practice
/// (values below 10¹¹ are taken as seconds). A reset already past is a reset of zero.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use tollgate_core::{headers, Dimension, Window};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
/// let mut map = HeaderMap::new();
/// map.insert("X-RateLimit-Remaining", "0".parse().unwrap());
/// map.insert("X-RateLimit-Reset", "1750000004500".parse().unwrap());
/// let snapshot = headers::openrouter(&map, now);
/// let requests = snapshot.get(Dimension::Requests, Window::Unspecified).unwrap();
/// assert_eq!(requests.reset, Some(Duration::from_millis(4_500)));
/// ```
pub fn openrouter(headers: &HeaderMap, now: SystemTime) -> RateLimitSnapshot {
    let [limit, remaining, reset] =
        first_values(headers, "x-ratelimit-", ["limit", "remaining", "reset"]);
    let reading = LimitReading {
        limit: parsed(limit, count),
        remaining: parsed(remaining, count),
        reset: parsed(reset, |v| {
            let epoch = count(v)?;
            let at = if epoch < 100_000_000_000 {
                UNIX_EPOCH.checked_add(Duration::from_secs(epoch))?
            } else {
                UNIX_EPOCH.checked_add(Duration::from_millis(epoch))?
            };
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }),
    };
    let mut snapshot = RateLimitSnapshot::new();
    snapshot.set(Dimension::Requests, Window::Unspecified, reading);
    snapshot
}

/// The `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` family (OpenAI, Azure, Groq):
/// requests over `requests_window`, tokens per minute, resets read by `reset`. A response with
/// none of these headers (most successes through a proxy, every one in tests) reads nothing else
/// and allocates nothing.
fn requests_and_tokens(
    headers: &HeaderMap,
    requests_window: Window,
    reset: impl Fn(&str) -> Option<Duration>,
) -> RateLimitSnapshot {
    let found = first_values(
        headers,
        "x-ratelimit-",
        [
            "limit-requests",
            "limit-tokens",
            "remaining-requests",
            "remaining-tokens",
            "reset-requests",
            "reset-tokens",
        ],
    );
    if found.iter().all(Option::is_none) {
        return RateLimitSnapshot::new();
    }
    let [
        limit_requests,
        limit_tokens,
        remaining_requests,
        remaining_tokens,
        reset_requests,
        reset_tokens,
    ] = found;
    RateLimitSnapshot::of_distinct([
        (
            Dimension::Requests,
            requests_window,
            LimitReading {
                limit: parsed(limit_requests, count),
                remaining: parsed(remaining_requests, count),
                reset: parsed(reset_requests, &reset),
            },
        ),
        (
            Dimension::Tokens,
            Window::Minute,
            LimitReading {
                limit: parsed(limit_tokens, count),
                remaining: parsed(remaining_tokens, count),
                reset: parsed(reset_tokens, &reset),
            },
        ),
    ])
}

/// A header's value (from [`first_values`]) read as trimmed text and parsed.
fn parsed<T>(value: Option<&HeaderValue>, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    value.and_then(value_text).and_then(parse)
}

/// A non-negative integer count; `-1` and anything else unparseable is unknown. Reads what
/// `value.parse::<u64>()` reads (an optional `+`, then decimal digits, no overflow), without its
/// error value.
fn count(value: &str) -> Option<u64> {
    let digits = value.strip_prefix('+').unwrap_or(value).as_bytes();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A non-negative whole number of seconds.
fn whole_seconds(value: &str) -> Option<Duration> {
    count(value).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::count;

    #[test]
    fn count_edges() {
        for value in [
            "",
            "+",
            "-",
            "+0",
            "-0",
            "++1",
            "+-1",
            "0",
            "007",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "٣",
        ] {
            assert_eq!(count(value), value.parse::<u64>().ok(), "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn count_reads_what_parse_reads(value in "[-+]{0,2}[0-9]{0,22}|\\PC{0,8}") {
            prop_assert_eq!(count(&value), value.parse::<u64>().ok());
        }
    }
}
