//! `headers::go_duration` and `headers::rfc3339` on arbitrary text.
//!
//! Input: any bytes; `&str`'s `Arbitrary` impl takes the longest valid UTF-8 prefix.
//! Besides "never panics", each accepted value is re-formatted canonically and must parse back
//! to the same duration or time.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use tollgate_core::headers::{go_duration, rfc3339};

fuzz_target!(|s: &str| {
    if let Some(d) = go_duration(s) {
        let canonical = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
        assert_eq!(go_duration(&canonical), Some(d), "{s:?} -> {canonical:?}");
        // Surrounding whitespace is ignored.
        assert_eq!(go_duration(&format!(" {s}\t")), Some(d), "{s:?}");
    }

    if let Some(t) = rfc3339(s) {
        let since = t
            .duration_since(UNIX_EPOCH)
            .expect("rfc3339 gave a time before 1970");
        if let Some(canonical) = format_rfc3339(since) {
            assert_eq!(rfc3339(&canonical), Some(t), "{s:?} -> {canonical:?}");
        }
    }
});

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, or `None` past year 9999 (a `-hh:mm` offset can push a
/// 9999-12-31 time into year 10000).
fn format_rfc3339(since_epoch: Duration) -> Option<String> {
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since_epoch.subsec_nanos(),
    ))
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
