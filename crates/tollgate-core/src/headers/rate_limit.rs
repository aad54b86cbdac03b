//! One parser per provider's rate-limit header family, each into a [`RateLimitSnapshot`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::read::text;
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
    let mut snapshot = RateLimitSnapshot::new();
    for (suffix, dimension) in [
        ("requests", Dimension::Requests),
        ("tokens", Dimension::Tokens),
    ] {
        let reading = read_family(headers, "x-ratelimit-", suffix, count, go_duration);
        snapshot.set(dimension, Window::Minute, reading);
    }
    snapshot
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
    let mut snapshot = RateLimitSnapshot::new();
    for (suffix, dimension) in [
        ("requests", Dimension::Requests),
        ("tokens", Dimension::Tokens),
    ] {
        let reading = read_family(headers, "x-ratelimit-", suffix, count, |v| {
            let reset = whole_seconds(v).or_else(|| go_duration(v))?;
            (!reset.is_zero()).then_some(reset)
        });
        snapshot.set(dimension, Window::Minute, reading);
    }
    snapshot
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
    let mut snapshot = RateLimitSnapshot::new();
    for (suffix, dimension, window) in [
        ("requests", Dimension::Requests, Window::Day),
        ("tokens", Dimension::Tokens, Window::Minute),
    ] {
        let reading = read_family(headers, "x-ratelimit-", suffix, count, go_duration);
        snapshot.set(dimension, window, reading);
    }
    snapshot
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
    let mut snapshot = RateLimitSnapshot::new();
    for (suffix, dimension) in [
        ("requests", Dimension::Requests),
        ("tokens", Dimension::Tokens),
        ("input-tokens", Dimension::InputTokens),
        ("output-tokens", Dimension::OutputTokens),
    ] {
        let reading = LimitReading {
            limit: header_with(headers, &["anthropic-ratelimit-", suffix, "-limit"], count),
            remaining: header_with(
                headers,
                &["anthropic-ratelimit-", suffix, "-remaining"],
                count,
            ),
            reset: header_with(headers, &["anthropic-ratelimit-", suffix, "-reset"], |v| {
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
    let mut snapshot = RateLimitSnapshot::new();
    for (suffix, window) in [("minute", Window::Minute), ("month", Window::Month)] {
        let reading = LimitReading {
            limit: header_with(headers, &["x-ratelimitbysize-limit-", suffix], count),
            remaining: header_with(headers, &["x-ratelimitbysize-remaining-", suffix], count),
            reset: None,
        };
        snapshot.set(Dimension::Tokens, window, reading);
    }
    let plain = LimitReading {
        limit: header_with(headers, &["ratelimitbysize-limit"], count),
        remaining: header_with(headers, &["ratelimitbysize-remaining"], count),
        reset: header_with(headers, &["ratelimitbysize-reset"], whole_seconds),
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
    let mut snapshot = RateLimitSnapshot::new();
    let reading = LimitReading {
        limit: header_with(headers, &["x-ratelimit-limit"], count),
        remaining: header_with(headers, &["x-ratelimit-remaining"], count),
        reset: header_with(headers, &["x-ratelimit-reset"], |v| {
            let epoch = count(v)?;
            let at = if epoch < 100_000_000_000 {
                UNIX_EPOCH.checked_add(Duration::from_secs(epoch))?
            } else {
                UNIX_EPOCH.checked_add(Duration::from_millis(epoch))?
            };
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }),
    };
    snapshot.set(Dimension::Requests, Window::Unspecified, reading);
    snapshot
}

/// Looks up a header whose name is the concatenation of `parts` and parses it.
fn header_with<T>(
    headers: &HeaderMap,
    parts: &[&str],
    parse: impl FnOnce(&str) -> Option<T>,
) -> Option<T> {
    let mut name = String::with_capacity(48);
    for part in parts {
        name.push_str(part);
    }
    text(headers, &name).and_then(parse)
}

/// `{prefix}{limit,remaining,reset}-{suffix}`.
fn read_family(
    headers: &HeaderMap,
    prefix: &str,
    suffix: &str,
    count: fn(&str) -> Option<u64>,
    reset: impl FnOnce(&str) -> Option<Duration>,
) -> LimitReading {
    LimitReading {
        limit: header_with(headers, &[prefix, "limit-", suffix], count),
        remaining: header_with(headers, &[prefix, "remaining-", suffix], count),
        reset: header_with(headers, &[prefix, "reset-", suffix], reset),
    }
}

/// A non-negative integer count; `-1` and anything else unparseable is unknown.
fn count(value: &str) -> Option<u64> {
    value.parse::<u64>().ok()
}

/// A non-negative whole number of seconds.
fn whole_seconds(value: &str) -> Option<Duration> {
    count(value).map(Duration::from_secs)
}
