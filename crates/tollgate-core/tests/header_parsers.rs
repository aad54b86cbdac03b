//! `tollgate_core::headers`, table-driven: `retry_after` and `server_delay` (precedence,
//! milliseconds, float seconds, HTTP-dates, boundaries, garbage, huge values), `should_retry`,
//! `go_duration`, `rfc3339`, and every rate-limit header family of PROVIDERS.md §3.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::headers::{
    anthropic, azure_openai, go_duration, groq, mistral, openai, openrouter, retry_after, rfc3339,
    server_delay, should_retry,
};
use tollgate_core::{DelaySource, Dimension, LimitReading, RateLimitSnapshot, Window};

/// Wed, 21 Oct 2015 07:27:40 GMT.
const NOW_SECS: u64 = 1_445_412_460;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

const fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

const fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

// ===== retry_after / server_delay =====

#[test]
fn retry_after_table() {
    use DelaySource::{RetryAfterDate, RetryAfterMs, RetryAfterSeconds};
    type Case = (
        &'static str,
        &'static [(&'static str, &'static [u8])],
        Option<(Duration, DelaySource)>,
    );
    let d = |n: u64, source| Some((Duration::from_millis(n), source));
    let cases: &[Case] = &[
        ("nothing", &[], None),
        ("ms", &[("retry-after-ms", b"1500")], d(1500, RetryAfterMs)),
        (
            "ms float",
            &[("retry-after-ms", b"1500.5")],
            Some((Duration::from_micros(1_500_500), RetryAfterMs)),
        ),
        (
            "ms below one",
            &[("retry-after-ms", b"0.5")],
            Some((Duration::from_micros(500), RetryAfterMs)),
        ),
        (
            "azure ms",
            &[("x-ms-retry-after-ms", b"250")],
            d(250, RetryAfterMs),
        ),
        (
            "seconds",
            &[("retry-after", b"2")],
            d(2000, RetryAfterSeconds),
        ),
        (
            "float seconds",
            &[("retry-after", b"2.5")],
            d(2500, RetryAfterSeconds),
        ),
        (
            "whitespace",
            &[("retry-after", b"  3 ")],
            d(3000, RetryAfterSeconds),
        ),
        ("tab", &[("retry-after-ms", b"\t40\t")], d(40, RetryAfterMs)),
        (
            "IMF-fixdate",
            &[("retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")],
            d(20_000, RetryAfterDate),
        ),
        (
            "RFC 850 date",
            &[("retry-after", b"Wednesday, 21-Oct-15 07:28:00 GMT")],
            d(20_000, RetryAfterDate),
        ),
        (
            "asctime date",
            &[("retry-after", b"Wed Oct 21 07:28:00 2015")],
            d(20_000, RetryAfterDate),
        ),
        (
            "date now",
            &[("retry-after", b"Wed, 21 Oct 2015 07:27:40 GMT")],
            None,
        ),
        (
            "date in the past",
            &[("retry-after", b"Sun, 06 Nov 1994 08:49:37 GMT")],
            None,
        ),
        // precedence
        (
            "ms wins over seconds",
            &[("retry-after", b"5"), ("retry-after-ms", b"1500")],
            d(1500, RetryAfterMs),
        ),
        (
            "ms wins over azure ms",
            &[("x-ms-retry-after-ms", b"9"), ("retry-after-ms", b"7")],
            d(7, RetryAfterMs),
        ),
        (
            "azure ms wins over seconds",
            &[("retry-after", b"5"), ("x-ms-retry-after-ms", b"9")],
            d(9, RetryAfterMs),
        ),
        (
            "ms wins over a date",
            &[
                ("retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT"),
                ("retry-after-ms", b"100"),
            ],
            d(100, RetryAfterMs),
        ),
        // malformed values fall through
        (
            "garbage ms falls through",
            &[("retry-after-ms", b"soon"), ("retry-after", b"4")],
            d(4000, RetryAfterSeconds),
        ),
        (
            "zero ms falls through",
            &[("retry-after-ms", b"0"), ("retry-after", b"4")],
            d(4000, RetryAfterSeconds),
        ),
        (
            "negative ms falls through",
            &[("retry-after-ms", b"-100"), ("x-ms-retry-after-ms", b"60")],
            d(60, RetryAfterMs),
        ),
        (
            "NaN ms falls through",
            &[("retry-after-ms", b"NaN"), ("retry-after", b"1")],
            d(1000, RetryAfterSeconds),
        ),
        (
            "inf ms falls through",
            &[("retry-after-ms", b"inf"), ("retry-after", b"1")],
            d(1000, RetryAfterSeconds),
        ),
        (
            "empty ms falls through",
            &[("retry-after-ms", b""), ("retry-after", b"1")],
            d(1000, RetryAfterSeconds),
        ),
        (
            "non-UTF-8 ms falls through",
            &[("retry-after-ms", b"\xff\xfe"), ("retry-after", b"1")],
            d(1000, RetryAfterSeconds),
        ),
        // absent
        ("zero", &[("retry-after", b"0")], None),
        ("zero float", &[("retry-after", b"0.0")], None),
        ("negative", &[("retry-after", b"-1")], None),
        ("NaN", &[("retry-after", b"NaN")], None),
        ("inf", &[("retry-after", b"inf")], None),
        ("infinity", &[("retry-after", b"-Infinity")], None),
        // Exponents are not numbers here.
        ("overflowing float", &[("retry-after", b"1e400")], None),
        ("huge float", &[("retry-after", b"1e300")], None),
        ("huge ms", &[("retry-after-ms", b"1e300")], None),
        // A number too large to represent is longer than any cap, not absent.
        (
            "beyond u64",
            &[("retry-after", b"18446744073709551616")],
            Some((Duration::MAX, RetryAfterSeconds)),
        ),
        (
            "35 digits (the SDK's 1e35 s)",
            &[("retry-after", b"99999999999999999999999999999999999")],
            Some((Duration::MAX, RetryAfterSeconds)),
        ),
        (
            "35 digits with a fraction",
            &[("retry-after", b" 99999999999999999999999999999999999.5 ")],
            Some((Duration::MAX, RetryAfterSeconds)),
        ),
        (
            "400 digits: beyond f64",
            &[("retry-after", &[b'9'; 400])],
            Some((Duration::MAX, RetryAfterSeconds)),
        ),
        (
            "overflowing ms",
            &[("retry-after-ms", b"99999999999999999999999999999999999")],
            Some((Duration::MAX, RetryAfterMs)),
        ),
        (
            "overflowing azure ms",
            &[(
                "x-ms-retry-after-ms",
                b"99999999999999999999999999999999999",
            )],
            Some((Duration::MAX, RetryAfterMs)),
        ),
        (
            "overflowing ms wins over seconds",
            &[
                ("retry-after", b"2"),
                ("retry-after-ms", b"99999999999999999999999999999999999"),
            ],
            Some((Duration::MAX, RetryAfterMs)),
        ),
        (
            "u64::MAX seconds in ms",
            &[("retry-after-ms", b"18446744073709551615000")],
            Some((Duration::MAX, RetryAfterMs)),
        ),
        ("Infinity", &[("retry-after", b"Infinity")], None),
        ("abc", &[("retry-after", b"abc")], None),
        ("unit suffix", &[("retry-after", b"5s")], None),
        ("words", &[("retry-after", b"tomorrow")], None),
        ("empty", &[("retry-after", b"")], None),
        ("hex", &[("retry-after", b"0x10")], None),
        ("non-UTF-8", &[("retry-after", b"\xc3\x28")], None),
        (
            "bad date",
            &[("retry-after", b"Wed, 32 Oct 2015 07:28:00 GMT")],
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (name, pairs, want) in cases {
        let headers = map(pairs);
        let got = server_delay(&headers, now());
        if got != *want {
            failures.push(format!("{name}: expected {want:?}, got {got:?}"));
        }
        if retry_after(&headers, now()) != want.map(|(delay, _)| delay) {
            failures.push(format!("{name}: retry_after disagrees with server_delay"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn retry_after_accepts_the_largest_representable_values() {
    // u64::MAX seconds fits in a Duration, but rounds up past it as an `f64`: it saturates,
    // and is never absent.
    let headers = map(&[("retry-after", b"18446744073709551615")]);
    let got = retry_after(&headers, now());
    assert!(
        got.is_some_and(|d| d >= Duration::from_secs(u64::MAX)),
        "{got:?}"
    );
    // A large but representable value is exact (and far above any cap).
    let headers = map(&[("retry-after", b"1000000000000")]);
    assert_eq!(retry_after(&headers, now()), secs(1_000_000_000_000));
    // A date in the year 9999 from the epoch.
    let headers = map(&[("retry-after", b"Fri, 31 Dec 9999 23:59:59 GMT")]);
    assert_eq!(
        retry_after(&headers, UNIX_EPOCH),
        secs(253_402_300_799),
        "the far future is exact"
    );
}

#[test]
fn should_retry_table() {
    let cases: &[(&[u8], Option<bool>)] = &[
        (b"true", Some(true)),
        (b"false", Some(false)),
        (b" true ", Some(true)),
        (b"TRUE", None),
        (b"yes", None),
        (b"1", None),
        (b"", None),
        (b"\xff", None),
    ];
    for (value, want) in cases {
        let headers = map(&[("x-should-retry", value)]);
        assert_eq!(should_retry(&headers), *want, "{value:?}");
    }
    assert_eq!(should_retry(&HeaderMap::new()), None);
}

// ===== go_duration / rfc3339 =====

#[test]
fn go_duration_table() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("6m0s", secs(360)),
        ("8.64s", ms(8640)),
        ("12ms", ms(12)),
        ("1h2m3.5s", ms(3_723_500)),
        ("0s", Some(Duration::ZERO)),
        ("250us", Some(Duration::from_micros(250))),
        ("250µs", Some(Duration::from_micros(250))),
        ("5ns", Some(Duration::from_nanos(5))),
        ("1s", secs(1)),
        ("1m12s", secs(72)),
        ("2m59.56s", ms(179_560)),
        ("7.66s", ms(7660)),
        ("9ms", ms(9)),
        (" 3s ", secs(3)),
        ("1.5h", secs(5400)),
        ("0.000000001s", Some(Duration::from_nanos(1))),
        // garbage
        ("", None),
        ("s", None),
        ("5", None),
        ("1x", None),
        ("1.2.3s", None),
        ("-1s", None),
        ("+1s", secs(1)), // Go accepts a leading sign
        ("1h-2m", None),
        ("ms", None),
        (".s", None),
        ("1 s", None),
        ("soon", None),
        ("99999999999999999999h", None),
        ("9223372036854775807h", None),
    ];
    let mut failures = Vec::new();
    for (input, want) in cases {
        let got = go_duration(input);
        if got != *want {
            failures.push(format!("{input:?}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rfc3339_table() {
    let at = |secs: u64, nanos: u32| Some(UNIX_EPOCH + Duration::new(secs, nanos));
    let cases: &[(&str, Option<SystemTime>)] = &[
        ("2025-02-24T22:25:32Z", at(1_740_435_932, 0)),
        ("2025-02-24T22:25:32.5Z", at(1_740_435_932, 500_000_000)),
        ("2025-02-24T22:25:32+01:00", at(1_740_432_332, 0)),
        ("2025-02-24T22:25:32-00:30", at(1_740_437_732, 0)),
        ("1970-01-01T00:00:00Z", at(0, 0)),
        ("2024-02-29T00:00:00Z", at(1_709_164_800, 0)),
        ("2023-02-29T00:00:00Z", None),
        ("2025-02-30T00:00:00Z", None),
        ("2025-13-01T00:00:00Z", None),
        ("2025-02-24T24:00:00Z", None),
        ("2025-02-24 22:25:32", None),
        ("1969-12-31T23:59:59Z", None),
        ("", None),
        ("garbage", None),
    ];
    for (input, want) in cases {
        assert_eq!(rfc3339(input), *want, "{input:?}");
    }
}

// ===== rate-limit header families =====

fn reading(limit: Option<u64>, remaining: Option<u64>, reset: Option<Duration>) -> LimitReading {
    let mut reading = LimitReading::default();
    reading.limit = limit;
    reading.remaining = remaining;
    reading.reset = reset;
    reading
}

type Family = fn(&HeaderMap, SystemTime) -> RateLimitSnapshot;

fn check(
    family: Family,
    pairs: &[(&str, &[u8])],
    want: &[(Dimension, Window, LimitReading)],
) -> RateLimitSnapshot {
    let snapshot = family(&map(pairs), now());
    for (dimension, window, reading) in want {
        assert_eq!(
            snapshot.get(*dimension, *window),
            Some(reading),
            "{dimension} {window} in {snapshot:?}"
        );
    }
    snapshot
}

#[test]
fn openai_family() {
    let snapshot = check(
        openai,
        &[
            ("x-ratelimit-limit-requests", b"10000"),
            ("x-ratelimit-remaining-requests", b"9999"),
            ("x-ratelimit-reset-requests", b"6ms"),
            ("x-ratelimit-limit-tokens", b"200000"),
            ("x-ratelimit-remaining-tokens", b"199978"),
            ("x-ratelimit-reset-tokens", b"6m0s"),
        ],
        &[
            (
                Dimension::Requests,
                Window::Minute,
                reading(Some(10_000), Some(9_999), ms(6)),
            ),
            (
                Dimension::Tokens,
                Window::Minute,
                reading(Some(200_000), Some(199_978), secs(360)),
            ),
        ],
    );
    assert_eq!(snapshot.entries().len(), 2);
}

#[test]
fn azure_family_unknowns() {
    check(
        azure_openai,
        &[
            ("x-ratelimit-remaining-requests", b"99"),
            ("x-ratelimit-reset-requests", b"7"),
            ("x-ratelimit-remaining-tokens", b"-1"),
            ("x-ratelimit-reset-tokens", b"0"),
            ("x-ratelimit-limit-tokens", b"120000"),
        ],
        &[
            (
                Dimension::Requests,
                Window::Minute,
                reading(None, Some(99), secs(7)),
            ),
            (
                Dimension::Tokens,
                Window::Minute,
                reading(Some(120_000), None, None),
            ),
        ],
    );
    // Azure's reset is integer seconds; a Go duration (an OpenAI-format pass-through) is read too.
    let snapshot = azure_openai(&map(&[("x-ratelimit-reset-tokens", b"6m0s")]), now());
    let tokens = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
    assert_eq!(tokens.reset, secs(360));
}

#[test]
fn groq_requests_are_per_day() {
    check(
        groq,
        &[
            ("x-ratelimit-limit-requests", b"14400"),
            ("x-ratelimit-remaining-requests", b"14370"),
            ("x-ratelimit-reset-requests", b"2m59.56s"),
            ("x-ratelimit-limit-tokens", b"18000"),
            ("x-ratelimit-remaining-tokens", b"17997"),
            ("x-ratelimit-reset-tokens", b"7.66s"),
        ],
        &[
            (
                Dimension::Requests,
                Window::Day,
                reading(Some(14_400), Some(14_370), ms(179_560)),
            ),
            (
                Dimension::Tokens,
                Window::Minute,
                reading(Some(18_000), Some(17_997), ms(7_660)),
            ),
        ],
    );
}

#[test]
fn anthropic_family_with_rfc3339_resets() {
    check(
        anthropic,
        &[
            ("anthropic-ratelimit-requests-limit", b"50"),
            ("anthropic-ratelimit-requests-remaining", b"49"),
            (
                "anthropic-ratelimit-requests-reset",
                b"2015-10-21T07:27:41Z",
            ),
            ("anthropic-ratelimit-tokens-limit", b"80000"),
            ("anthropic-ratelimit-tokens-remaining", b"78000"),
            ("anthropic-ratelimit-tokens-reset", b"2015-10-21T07:28:00Z"),
            ("anthropic-ratelimit-input-tokens-limit", b"40000"),
            ("anthropic-ratelimit-input-tokens-remaining", b"39000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                b"2015-10-21T07:27:50.5Z",
            ),
            ("anthropic-ratelimit-output-tokens-limit", b"16000"),
            ("anthropic-ratelimit-output-tokens-remaining", b"0"),
            // a reset already past is a reset of zero
            (
                "anthropic-ratelimit-output-tokens-reset",
                b"2015-10-21T07:00:00Z",
            ),
        ],
        &[
            (
                Dimension::Requests,
                Window::Minute,
                reading(Some(50), Some(49), secs(1)),
            ),
            (
                Dimension::Tokens,
                Window::Minute,
                reading(Some(80_000), Some(78_000), secs(20)),
            ),
            (
                Dimension::InputTokens,
                Window::Minute,
                reading(Some(40_000), Some(39_000), ms(10_500)),
            ),
            (
                Dimension::OutputTokens,
                Window::Minute,
                reading(Some(16_000), Some(0), Some(Duration::ZERO)),
            ),
        ],
    );
}

#[test]
fn mistral_family() {
    check(
        mistral,
        &[
            ("x-ratelimitbysize-limit-minute", b"500000"),
            ("x-ratelimitbysize-remaining-minute", b"467993"),
            ("x-ratelimitbysize-limit-month", b"1000000000"),
            ("x-ratelimitbysize-remaining-month", b"999000000"),
            ("ratelimitbysize-reset", b"40"),
            ("ratelimitbysize-query-cost", b"32007"),
        ],
        &[
            (
                Dimension::Tokens,
                Window::Minute,
                reading(Some(500_000), Some(467_993), secs(40)),
            ),
            (
                Dimension::Tokens,
                Window::Month,
                reading(Some(1_000_000_000), Some(999_000_000), None),
            ),
        ],
    );
}

#[test]
fn openrouter_family_epoch_resets() {
    // milliseconds
    check(
        openrouter,
        &[
            ("X-RateLimit-Limit", b"20"),
            ("X-RateLimit-Remaining", b"0"),
            ("X-RateLimit-Reset", b"1445412464500"),
        ],
        &[(
            Dimension::Requests,
            Window::Unspecified,
            reading(Some(20), Some(0), ms(4_500)),
        )],
    );
    // seconds, and a reset in the past
    check(
        openrouter,
        &[("x-ratelimit-reset", b"1445412470")],
        &[(
            Dimension::Requests,
            Window::Unspecified,
            reading(None, None, secs(10)),
        )],
    );
    check(
        openrouter,
        &[("x-ratelimit-reset", b"1000")],
        &[(
            Dimension::Requests,
            Window::Unspecified,
            reading(None, None, Some(Duration::ZERO)),
        )],
    );
}

#[test]
fn missing_headers_give_empty_snapshots() {
    let families: [(&str, Family); 6] = [
        ("openai", openai),
        ("azure_openai", azure_openai),
        ("groq", groq),
        ("anthropic", anthropic),
        ("mistral", mistral),
        ("openrouter", openrouter),
    ];
    for (name, family) in families {
        assert!(family(&HeaderMap::new(), now()).is_empty(), "{name}");
    }
}

#[test]
fn garbage_values_leave_their_field_absent() {
    let garbage: &[&[u8]] = &[
        b"",
        b"-5",
        b"lots",
        b"1e9",
        b"\xff",
        b"99999999999999999999999",
        b"1.5",
    ];
    for value in garbage {
        let snapshot = openai(
            &map(&[
                ("x-ratelimit-limit-tokens", value),
                ("x-ratelimit-remaining-tokens", b"10"),
                ("x-ratelimit-reset-tokens", value),
            ]),
            now(),
        );
        let tokens = snapshot.get(Dimension::Tokens, Window::Minute).unwrap();
        assert_eq!(tokens.limit, None, "{value:?}");
        assert_eq!(tokens.remaining, Some(10), "{value:?}");
        assert_eq!(tokens.reset, None, "{value:?}");

        let snapshot = anthropic(&map(&[("anthropic-ratelimit-tokens-reset", value)]), now());
        assert!(
            snapshot
                .get(Dimension::Tokens, Window::Minute)
                .is_none_or(|r| r.reset.is_none()),
            "{value:?}"
        );
    }
}
