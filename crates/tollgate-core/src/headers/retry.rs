//! What a server says about retrying: the delay it asks for ([`retry_after`], [`server_delay`])
//! and `x-should-retry` ([`should_retry`]).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::read::text;
use crate::DelaySource;

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

/// Positive float seconds; [`Duration::MAX`] when too large to represent.
fn seconds(value: &str) -> Option<Duration> {
    unsigned_float(value)
        .map(saturating_secs)
        .filter(|d| !d.is_zero())
}

/// Positive float milliseconds; [`Duration::MAX`] when too large to represent.
fn millis(value: &str) -> Option<Duration> {
    unsigned_float(value)
        .map(|ms| saturating_secs(ms / 1000.0))
        .filter(|d| !d.is_zero())
}

/// `secs` (not negative, not NaN) as a duration, saturating at [`Duration::MAX`]: a value
/// beyond it (including `+∞`, which here only comes from a digit string too long for an `f64`)
/// means "longer than any cap", not "absent".
fn saturating_secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// A number written with digits and at most one `.`: no sign, `inf`, `NaN`, hex or exponent,
/// all of which `f64`'s parser would take. Being digits, it is finite as written; `+∞` is
/// returned when it has too many digits for an `f64` (over 308). Zero is returned as zero: the
/// callers drop a delay that rounds to nothing.
fn unsigned_float(value: &str) -> Option<f64> {
    if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    // The parser refuses what is left that is not a number: "", ".", "1.2.3".
    value.parse().ok()
}
