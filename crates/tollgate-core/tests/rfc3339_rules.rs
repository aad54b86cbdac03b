//! `tollgate_core::headers::rfc3339`, rule by rule: every month's length (leap years by each
//! of the three Gregorian rules), the last valid hour, minute and second, every separator,
//! fractions and offsets, and each malformed form that must give `None`. Anthropic writes its
//! reset times this way: a date the parser drops is a reset the limiter never learns.
//!
//! Expected instants were computed with `date -u -d <time> +%s`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tollgate_core::headers::rfc3339;

fn at(secs: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn at_nanos(secs: u64, nanos: u32) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn check(cases: &[(&str, Option<SystemTime>)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(input, want)| {
            let got = rfc3339(input);
            (got != *want).then(|| format!("{input:?}: expected {want:?}, got {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_last_second_of_every_month_parses_and_the_day_after_does_not() {
    // 2025: not a leap year.
    let last_days: [(&str, u64, &str); 12] = [
        ("2025-01-31", 1_738_367_999, "2025-01-32"),
        ("2025-02-28", 1_740_787_199, "2025-02-29"),
        ("2025-03-31", 1_743_465_599, "2025-03-32"),
        ("2025-04-30", 1_746_057_599, "2025-04-31"),
        ("2025-05-31", 1_748_735_999, "2025-05-32"),
        ("2025-06-30", 1_751_327_999, "2025-06-31"),
        ("2025-07-31", 1_754_006_399, "2025-07-32"),
        ("2025-08-31", 1_756_684_799, "2025-08-32"),
        ("2025-09-30", 1_759_276_799, "2025-09-31"),
        ("2025-10-31", 1_761_955_199, "2025-10-32"),
        ("2025-11-30", 1_764_547_199, "2025-11-31"),
        ("2025-12-31", 1_767_225_599, "2025-12-32"),
    ];
    let mut cases = Vec::new();
    let mut inputs = Vec::new();
    for (last, secs, after) in last_days {
        inputs.push((format!("{last}T23:59:59Z"), at(secs)));
        inputs.push((format!("{after}T00:00:00Z"), None));
    }
    for (input, want) in &inputs {
        cases.push((input.as_str(), *want));
    }
    check(&cases);
}

#[test]
fn the_first_of_each_month_follows_the_last_of_the_one_before() {
    check(&[
        ("2025-01-01T00:00:00Z", at(1_735_689_600)),
        ("2025-02-01T00:00:00Z", at(1_738_368_000)),
        ("2025-03-01T00:00:00Z", at(1_740_787_200)),
        ("2025-04-01T00:00:00Z", at(1_743_465_600)),
        ("2025-05-01T00:00:00Z", at(1_746_057_600)),
        ("2025-07-01T00:00:00Z", at(1_751_328_000)),
        ("2025-10-01T00:00:00Z", at(1_759_276_800)),
        ("2025-12-01T00:00:00Z", at(1_764_547_200)),
    ]);
}

#[test]
fn february_29th_exists_in_exactly_the_gregorian_leap_years() {
    check(&[
        // divisible by 4
        ("2024-02-29T23:59:59Z", at(1_709_251_199)),
        ("2104-02-29T00:00:00Z", at(4_233_686_400)),
        // divisible by 400
        ("2000-02-29T23:59:59Z", at(951_868_799)),
        ("2400-02-29T00:00:00Z", at(13_574_563_200)),
        // not divisible by 4
        ("2023-02-29T00:00:00Z", None),
        ("2025-02-29T00:00:00Z", None),
        ("2026-02-29T00:00:00Z", None),
        // divisible by 100 but not by 400
        ("2100-02-29T00:00:00Z", None),
        ("2100-02-28T23:59:59Z", at(4_107_542_399)),
        // a leap year has no 30th of February either
        ("2024-02-30T00:00:00Z", None),
    ]);
}

#[test]
fn the_last_hour_minute_and_second_of_a_day_parse() {
    check(&[
        ("2025-06-15T23:00:00Z", at(1_750_028_400)),
        ("2025-06-15T00:59:00Z", at(1_749_949_140)),
        ("2025-06-15T12:34:56Z", at(1_749_990_896)),
        // A leap second is the next minute's first.
        ("2025-06-15T12:34:60Z", at(1_749_990_900)),
        ("2025-12-31T23:59:60Z", at(1_767_225_600)),
        ("9999-12-31T23:59:59Z", at(253_402_300_799)),
    ]);
}

#[test]
fn out_of_range_fields_give_none() {
    check(&[
        ("2025-00-10T00:00:00Z", None),
        ("2025-13-10T00:00:00Z", None),
        ("2025-06-00T00:00:00Z", None),
        ("2025-06-15T24:00:00Z", None),
        ("2025-06-15T12:60:00Z", None),
        ("2025-06-15T12:34:61Z", None),
        ("2025-06-15T99:99:99Z", None),
    ]);
}

#[test]
fn every_separator_is_checked() {
    check(&[
        ("2025-06-15T12:34:56Z", at(1_749_990_896)),
        ("2025-06-15t12:34:56Z", at(1_749_990_896)),
        ("2025-06-15 12:34:56Z", at(1_749_990_896)),
        ("2025-06-15T12:34:56z", at(1_749_990_896)),
        (" 2025-06-15T12:34:56Z\t", at(1_749_990_896)),
        ("2025/06-15T12:34:56Z", None),
        ("2025-06/15T12:34:56Z", None),
        ("2025-06-15X12:34:56Z", None),
        ("2025-06-15_12:34:56Z", None),
        ("2025-06-15T12.34:56Z", None),
        ("2025-06-15T12:34.56Z", None),
        ("2025-06-15T12:34:56", None),
        ("2025-06-15T12:34:56ZZ", None),
        ("2025-06-15T12:34:56Z0", None),
        ("2025-06-15T12:34:56Y", None),
    ]);
}

#[test]
fn non_digits_in_any_field_give_none() {
    check(&[
        ("202a-06-15T12:34:56Z", None),
        ("2025-0b-15T12:34:56Z", None),
        ("2025-06-1cT12:34:56Z", None),
        ("2025-06-15T1d:34:56Z", None),
        ("2025-06-15T12:3e:56Z", None),
        ("2025-06-15T12:34:5fZ", None),
        ("2025-06-15T12:34:56+0g:00", None),
        ("2025-06-15T12:34:56+00:0h", None),
        ("2025-06-15T12:34", None),
        ("2025-06-15", None),
    ]);
}

#[test]
fn fractions_of_a_second_are_kept_to_the_nanosecond() {
    check(&[
        (
            "2025-06-15T12:34:56.5Z",
            at_nanos(1_749_990_896, 500_000_000),
        ),
        (
            "2025-06-15T12:34:56.25Z",
            at_nanos(1_749_990_896, 250_000_000),
        ),
        (
            "2025-06-15T12:34:56.123456789Z",
            at_nanos(1_749_990_896, 123_456_789),
        ),
        // Past nanoseconds, digits are read and dropped.
        (
            "2025-06-15T12:34:56.9876543219Z",
            at_nanos(1_749_990_896, 987_654_321),
        ),
        (
            "2025-06-15T12:34:56.000000001+00:00",
            at_nanos(1_749_990_896, 1),
        ),
        // A dot needs digits.
        ("2025-06-15T12:34:56.Z", None),
        ("2025-06-15T12:34:56.", None),
        ("2025-06-15T12:34:56.x", None),
    ]);
}

#[test]
fn offsets_are_subtracted_to_the_minute() {
    check(&[
        ("2025-06-15T12:34:56+00:00", at(1_749_990_896)),
        ("2025-06-15T12:34:56-00:00", at(1_749_990_896)),
        ("2025-06-15T12:34:56+23:59", at(1_749_904_556)),
        ("2025-06-15T12:34:56-23:59", at(1_750_077_236)),
        ("2025-06-15T12:34:56+00:59", at(1_749_987_356)),
        (
            "2025-06-15T12:34:56.5-00:59",
            at_nanos(1_749_994_436, 500_000_000),
        ),
        ("2025-06-15T12:34:56+24:00", None),
        ("2025-06-15T12:34:56+00:60", None),
        ("2025-06-15T12:34:56+0100", None),
        ("2025-06-15T12:34:56+01:000", None),
        ("2025-06-15T12:34:56+01:0", None),
        ("2025-06-15T12:34:56*01:00", None),
    ]);
}

#[test]
fn an_offset_that_moves_a_time_before_1970_gives_none() {
    check(&[
        ("1970-01-01T00:00:00+00:01", None),
        ("1970-01-01T00:00:59+00:01", None),
        ("1970-01-01T00:01:00+00:01", at(0)),
        ("1969-12-31T23:59:00-00:01", at(0)),
        ("1969-12-31T23:58:59-00:01", None),
        ("0000-01-01T00:00:00Z", None),
        ("0000-03-01T00:00:00Z", None),
    ]);
}
