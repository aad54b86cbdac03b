//! Parsing what providers say in response headers: the requested delay ([`retry_after`]), Go
//! durations ([`go_duration`]), `x-should-retry` ([`should_retry`]), and one parser per
//! rate-limit header family into a [`RateLimitSnapshot`].
//!
//! Every function here takes untrusted input and never panics: a header that is missing,
//! malformed, not UTF-8, negative, NaN or infinite is simply absent. A requested delay that is
//! a number too large to represent is not absent: [`retry_after`] and [`server_delay`] saturate
//! it to [`Duration::MAX`], "longer than any cap" (PROVIDERS.md §7 item 4). Elsewhere (counts,
//! resets, Go durations) an overflowing value is absent.
//!
//! | family | function | notes |
//! |---|---|---|
//! | OpenAI | [`openai`] | per minute; reset is a Go duration until the bucket is full |
//! | Azure OpenAI | [`azure_openai`] | per minute; reset in integer seconds; `-1` (and reset `0`) mean unknown |
//! | Groq | [`groq`] | `*-requests` are **per day**, `*-tokens` per minute; Go durations |
//! | Anthropic | [`anthropic`] | requests, tokens, input and output tokens per minute; RFC 3339 reset times |
//! | Mistral | [`mistral`] | tokens per minute and per month; reset in seconds |
//! | OpenRouter | [`openrouter`] | requests over an unspecified window; reset is an epoch time |
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::HeaderMap;
//! use tollgate_core::{headers, Dimension, Window};
//!
//! let mut map = HeaderMap::new();
//! map.insert("retry-after-ms", "1500".parse().unwrap());
//! map.insert("retry-after", "30".parse().unwrap());
//! map.insert("x-ratelimit-remaining-tokens", "0".parse().unwrap());
//! map.insert("x-ratelimit-reset-tokens", "6m0s".parse().unwrap());
//!
//! let now = SystemTime::now();
//! // retry-after-ms wins over retry-after
//! assert_eq!(headers::retry_after(&map, now), Some(Duration::from_millis(1500)));
//!
//! let snapshot = headers::openai(&map, now);
//! let tokens = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
//! assert_eq!(tokens.remaining, Some(0));
//! assert_eq!(tokens.reset, Some(Duration::from_secs(360)));
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::{DelaySource, Dimension, LimitReading, RateLimitSnapshot, Window};

/// The delay the server asks for, from `retry-after-ms`, then `x-ms-retry-after-ms`
/// (milliseconds, fractions allowed), then `retry-after` (seconds, fractions allowed, or an
/// HTTP-date minus `now`).
///
/// A malformed header falls through to the next one. Zero, negative, NaN, infinite and
/// unparseable values count as absent; surrounding whitespace is ignored. A number written with
/// digits (and at most one `.`) that is too large for a [`Duration`] — such as
/// `99999999999999999999999999999999999`, which the official OpenAI SDK reads as 10³⁵ s and
/// does not retry — is **not** absent: it gives [`Duration::MAX`], longer than any cap, so that
/// a retry layer gives up at once instead of falling back to its backoff. Exponents (`1e5`) are
/// not numbers here.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use tollgate_core::headers::retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_460); // Wed, 21 Oct 2015 07:27:40 GMT
/// let mut map = HeaderMap::new();
/// map.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
/// assert_eq!(retry_after(&map, now), Some(Duration::from_secs(20)));
///
/// map.insert("retry-after-ms", "NaN".parse().unwrap()); // malformed: falls through
/// assert_eq!(retry_after(&map, now), Some(Duration::from_secs(20)));
///
/// map.insert("retry-after", " 2.5 ".parse().unwrap());
/// assert_eq!(retry_after(&map, now), Some(Duration::from_millis(2500)));
///
/// // Too large to represent: longer than any cap, not absent.
/// map.insert("retry-after", "99999999999999999999999999999999999".parse().unwrap());
/// assert_eq!(retry_after(&map, now), Some(Duration::MAX));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    server_delay(headers, now).map(|(delay, _)| delay)
}

/// Like [`retry_after`], and also says which header the delay came from.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tollgate_core::{headers::server_delay, DelaySource};
///
/// let mut map = HeaderMap::new();
/// map.insert("x-ms-retry-after-ms", "250.5".parse().unwrap());
/// assert_eq!(
///     server_delay(&map, SystemTime::now()),
///     Some((Duration::from_micros(250_500), DelaySource::RetryAfterMs)),
/// );
/// ```
pub fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<(Duration, DelaySource)> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(delay) = text(headers, name).and_then(millis) {
            return Some((delay, DelaySource::RetryAfterMs));
        }
    }
    let value = text(headers, "retry-after")?;
    if let Some(delay) = seconds(value) {
        return Some((delay, DelaySource::RetryAfterSeconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let delay = date.duration_since(now).ok()?;
    (!delay.is_zero()).then_some((delay, DelaySource::RetryAfterDate))
}

/// `x-should-retry`: `Some(true)` or `Some(false)` for exactly `true` or `false` (whitespace
/// aside), `None` for anything else or no header.
///
/// # Examples
///
/// ```
/// use http::HeaderMap;
/// use tollgate_core::headers::should_retry;
///
/// let mut map = HeaderMap::new();
/// assert_eq!(should_retry(&map), None);
/// map.insert("x-should-retry", "false".parse().unwrap());
/// assert_eq!(should_retry(&map), Some(false));
/// map.insert("x-should-retry", "TRUE".parse().unwrap());
/// assert_eq!(should_retry(&map), None);
/// ```
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    match text(headers, "x-should-retry")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Parses a Go duration (`time.Duration.String()` output and everything `time.ParseDuration`
/// accepts), as OpenAI and Groq send in their reset headers: `"6m0s"`, `"8.64s"`, `"12ms"`,
/// `"1h2m3.5s"`, `"0s"`, `"250us"`, `"250µs"`, `"5ns"`, and the bare `"0"`.
///
/// Units are `h`, `m`, `s`, `ms`, `us`, `µs` (or `μs`) and `ns`. Negative, malformed and
/// overflowing values give `None`; precision finer than a nanosecond is dropped.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::headers::go_duration;
///
/// assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(go_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// assert_eq!(go_duration("250µs"), Some(Duration::from_micros(250)));
/// assert_eq!(go_duration("-1s"), None);
/// assert_eq!(go_duration("soon"), None);
/// ```
pub fn go_duration(input: &str) -> Option<Duration> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let mut rest = input.trim();
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // integer part
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        rest = after;
        // fraction
        let mut frac_digits = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let (digits, after) = after_dot.split_at(frac_len);
            frac_digits = digits;
            rest = after;
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        // unit
        let (unit_nanos, unit_len): (u128, usize) = if rest.starts_with("ns") {
            (1, 2)
        } else if rest.starts_with("us") {
            (1_000, 2)
        } else if rest.starts_with("µs") || rest.starts_with("μs") {
            (1_000, "µs".len())
        } else if rest.starts_with("ms") {
            (1_000_000, 2)
        } else if rest.starts_with('s') {
            (NANOS_PER_SEC, 1)
        } else if rest.starts_with('m') {
            (60 * NANOS_PER_SEC, 1)
        } else if rest.starts_with('h') {
            (3_600 * NANOS_PER_SEC, 1)
        } else {
            return None;
        };
        rest = &rest[unit_len..];

        let mut whole: u128 = 0;
        for b in int_digits.bytes() {
            whole = whole.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
        }
        let mut nanos = whole.checked_mul(unit_nanos)?;
        // Fractions past 30 digits are far below a nanosecond for every unit.
        let mut scale: u128 = 1;
        let mut frac: u128 = 0;
        for b in frac_digits.bytes().take(30) {
            frac = frac * 10 + u128::from(b - b'0');
            scale *= 10;
        }
        nanos = nanos.checked_add(frac.checked_mul(unit_nanos)? / scale)?;
        total = total.checked_add(nanos)?;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).ok()?;
    let subsec = u32::try_from(total % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, subsec))
}

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

/// Parses an RFC 3339 timestamp (`2025-02-24T22:25:32Z`, with optional fractional seconds and a
/// `Z` or `±hh:mm` offset). Times before 1970 give `None`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tollgate_core::headers::rfc3339;
///
/// assert_eq!(
///     rfc3339("2025-02-24T22:25:32.5+01:00"),
///     Some(UNIX_EPOCH + Duration::from_millis(1_740_432_332_500)),
/// );
/// assert_eq!(rfc3339("2025-02-30T00:00:00Z"), None);
/// ```
pub fn rfc3339(input: &str) -> Option<SystemTime> {
    let s = input.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = s.get(range)?;
        let mut n = 0u32;
        for &b in digits {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(b - b'0');
        }
        Some(n)
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if s.get(4) != Some(&b'-')
        || s.get(7) != Some(&b'-')
        || !matches!(s.get(10), Some(b'T' | b't' | b' '))
        || s.get(13) != Some(&b':')
        || s.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000u64;
        while let Some(b) = s.get(i).filter(|b| b.is_ascii_digit()) {
            nanos += u64::from(b - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s.get(i + 3) == Some(&b':') => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, 0) + Duration::from_nanos(nanos))
}

// ===== helpers =====

/// A header's value as trimmed text, if present and UTF-8. Only the first value is read.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?;
    let text = std::str::from_utf8(value.as_bytes()).ok()?.trim();
    (!text.is_empty()).then_some(text)
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

/// Positive float seconds; [`Duration::MAX`] when too large to represent.
fn seconds(value: &str) -> Option<Duration> {
    positive_float(value)
        .map(saturating_secs)
        .filter(|d| !d.is_zero())
}

/// Positive float milliseconds; [`Duration::MAX`] when too large to represent.
fn millis(value: &str) -> Option<Duration> {
    positive_float(value)
        .map(|ms| saturating_secs(ms / 1000.0))
        .filter(|d| !d.is_zero())
}

/// `secs` (positive, not NaN) as a duration, saturating at [`Duration::MAX`]: a value beyond it
/// (including `+∞`, which here only comes from a digit string too long for an `f64`) means
/// "longer than any cap", not "absent".
fn saturating_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// A positive number written with digits (no `inf`, `NaN`, hex or exponents). Being digits, it
/// is finite as written; `+∞` is returned when it has too many digits for an `f64` (over 308).
fn positive_float(value: &str) -> Option<f64> {
    let bytes = value.as_bytes();
    let mut digits = 0;
    let mut dots = 0;
    for &b in bytes {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return None,
        }
    }
    if digits == 0 || dots > 1 {
        return None;
    }
    let n: f64 = value.parse().ok()?;
    (n > 0.0).then_some(n)
}

const fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
