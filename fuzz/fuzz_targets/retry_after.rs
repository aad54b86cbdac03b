//! `headers::retry_after`, `headers::server_delay` and `headers::should_retry`.
//!
//! Input: values separated by `\n`. Value *i* goes to `DELAY_NAMES[i % 4]` (`retry-after-ms`,
//! `x-ms-retry-after-ms`, `retry-after`, `x-should-retry`), appended, so a fifth line gives
//! `retry-after-ms` a second value. Values `HeaderValue::from_bytes` rejects are skipped.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tollgate_core::DelaySource;
use tollgate_core::headers::{retry_after, server_delay, should_retry};
use tollgate_fuzz::{DELAY_NAMES, NOW_SECS, fixed_now};

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (i, part) in data.split(|&b| b == b'\n').take(8).enumerate() {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(DELAY_NAMES[i % DELAY_NAMES.len()], value);
        }
    }

    let fixed = fixed_now();
    for now in [fixed, UNIX_EPOCH] {
        let with_source = server_delay(&headers, now);
        assert_eq!(retry_after(&headers, now), with_source.map(|(d, _)| d));
        if let Some((delay, source)) = with_source {
            assert!(!delay.is_zero(), "zero delay from {source:?}: {headers:?}");
            assert!(
                matches!(
                    source,
                    DelaySource::RetryAfterMs
                        | DelaySource::RetryAfterSeconds
                        | DelaySource::RetryAfterDate
                ),
                "unexpected source {source:?}",
            );
        }
    }

    // Only an HTTP-date depends on `now`: the numeric forms give the same delay at both times, and
    // a date still ahead at the fixed time is exactly NOW_SECS further ahead at the epoch.
    let at_fixed = server_delay(&headers, fixed);
    let at_epoch = server_delay(&headers, UNIX_EPOCH);
    match at_fixed {
        Some((delay, DelaySource::RetryAfterDate)) => assert_eq!(
            at_epoch,
            Some((
                delay + Duration::from_secs(NOW_SECS),
                DelaySource::RetryAfterDate
            )),
            "{headers:?}",
        ),
        Some(numeric) => assert_eq!(at_epoch, Some(numeric), "{headers:?}"),
        None => assert!(
            matches!(at_epoch, None | Some((_, DelaySource::RetryAfterDate))),
            "{at_epoch:?} at the epoch but nothing at the fixed time: {headers:?}",
        ),
    }

    if let Some(answer) = should_retry(&headers) {
        let first = headers
            .get("x-should-retry")
            .expect("x-should-retry is present");
        let text = std::str::from_utf8(first.as_bytes()).expect("UTF-8").trim();
        assert_eq!(text, if answer { "true" } else { "false" });
    }
});
