//! Property tests: no header bytes make a parser panic, and what the parsers accept obeys the
//! spec (a delay is never zero; `retry_after` agrees with `server_delay`; `go_duration` reads
//! back what it is given).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use tollgate_core::headers::{
    anthropic, azure_openai, go_duration, groq, mistral, openai, openrouter, retry_after, rfc3339,
    server_delay, should_retry,
};

/// Every header name a parser in `tollgate_core::headers` reads.
const NAMES: &[&str] = &[
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "retry-after",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-limit-tokens_usage_based",
    "x-ratelimit-remaining-tokens_usage_based",
    "x-ratelimit-reset-tokens_usage_based",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "x-ratelimitbysize-limit-minute",
    "x-ratelimitbysize-remaining-minute",
    "x-ratelimitbysize-limit-month",
    "x-ratelimitbysize-remaining-month",
    "ratelimitbysize-limit",
    "ratelimitbysize-remaining",
    "ratelimitbysize-reset",
    "ratelimitbysize-query-cost",
];

/// A value: arbitrary bytes, or text that looks almost right.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        "[ \t]{0,2}[-+]?[0-9]{0,22}(\\.[0-9]{0,12})?(e[-+]?[0-9]{1,4})?(h|m|s|ms|us|µs|ns)?[ \t]{0,2}"
            .prop_map(String::into_bytes),
        "[A-Za-z]{3}, [0-9]{2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
            .prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[-+][0-9]{2}:[0-9]{2})"
            .prop_map(String::into_bytes),
        Just(b"NaN".to_vec()),
        Just(b"inf".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"18446744073709551616".to_vec()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((0..NAMES.len(), value()), 0..12).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, bytes) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(NAMES[name], value);
            }
        }
        map
    })
}

fn time() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        Just(UNIX_EPOCH),
        (0u64..4_102_444_800).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        Just(UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
    ]
}

proptest! {
    #[test]
    fn header_parsers_never_panic(headers in headers(), now in time()) {
        let delay = server_delay(&headers, now);
        prop_assert_eq!(retry_after(&headers, now), delay.map(|(d, _)| d));
        if let Some((d, _)) = delay {
            prop_assert!(!d.is_zero());
        }
        let _ = should_retry(&headers);
        for family in [openai, azure_openai, groq, anthropic, mistral, openrouter] {
            let snapshot = family(&headers, now);
            let mut seen = Vec::new();
            for entry in snapshot.entries() {
                prop_assert!(!seen.contains(&(entry.dimension, entry.window)));
                seen.push((entry.dimension, entry.window));
            }
        }
    }

    #[test]
    fn text_parsers_never_panic(text in any::<String>()) {
        let _ = go_duration(&text);
        let _ = rfc3339(&text);
    }

    #[test]
    fn go_duration_reads_back_what_it_is_given(
        h in 0u64..10_000,
        m in 0u64..60,
        s in 0u64..60,
        millis in 0u64..1000,
    ) {
        let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + millis);
        prop_assert_eq!(go_duration(&format!("{h}h{m}m{s}.{millis:03}s")), Some(want));
        prop_assert_eq!(go_duration(&format!("{}ms", want.as_millis())), Some(want));
        prop_assert_eq!(go_duration(&format!("{}us", want.as_micros())), Some(want));
    }

    #[test]
    fn retry_after_ms_reads_back_what_it_is_given(millis in 1u64..10_000_000) {
        let mut map = HeaderMap::new();
        map.insert("retry-after-ms", HeaderValue::from(millis));
        prop_assert_eq!(retry_after(&map, UNIX_EPOCH), Some(Duration::from_millis(millis)));
    }
}
