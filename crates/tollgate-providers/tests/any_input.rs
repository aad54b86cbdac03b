//! Property tests: any status, header bytes and body bytes — valid error bodies cut short,
//! spliced with non-UTF-8, or plain noise — give every classifier a verdict, never a panic;
//! every error status gets a class, and a body a classifier does not ask for does not change
//! its verdict.

use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use tollgate_core::{Classify, ResponseView};
use tollgate_providers::ProviderClassifier;

/// The headers the classifiers read.
const NAMES: &[&str] = &[
    "retry-after-ms",
    "x-ms-retry-after-ms",
    "retry-after",
    "x-should-retry",
    "x-amzn-errortype",
    "content-type",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "x-ratelimit-reset",
    "ratelimitbysize-query-cost",
];

/// Real error bodies of each shape in PROVIDERS.md §2, to cut and splice.
const BODIES: &[&str] = &[
    r#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.146s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
    r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
    r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"}"#,
    r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"0"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39s"},{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
    r#"{"object":"error","message":"Prompt contains 40000 tokens, too large for model with 32768 maximum context length","type":"invalid_request_invalid_args","param":null,"code":"3051"}"#,
    r#"{"error":{"code":403,"message":"flagged","metadata":{"reasons":["violence"],"flagged_input":"x","provider_code":429,"raw":"try again in 2s"}}}"#,
    r#"{"message":"Input is too long for requested model."}"#,
    r#"{"id":"x","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"input_tokens":4,"output_tokens":5},"usageMetadata":{"promptTokenCount":1}}"#,
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..BODIES.len(), any::<prop::sample::Index>()).prop_map(|(i, cut)| {
            let body = BODIES[i].as_bytes();
            body[..cut.index(body.len() + 1)].to_vec()
        }),
        (
            0..BODIES.len(),
            any::<prop::sample::Index>(),
            proptest::collection::vec(any::<u8>(), 1..8)
        )
            .prop_map(|(i, at, noise)| {
                let mut body = BODIES[i].as_bytes().to_vec();
                let at = at.index(body.len() + 1);
                body.splice(at..at, noise);
                body
            }),
        (0..BODIES.len()).prop_map(|i| BODIES[i].as_bytes().to_vec()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..32),
        "[-+ ]?[0-9]{0,20}(\\.[0-9]{0,6})?(ms|s|m)?".prop_map(String::into_bytes),
        Just(b"true".to_vec()),
        Just(b"false".to_vec()),
        Just(b"text/event-stream".to_vec()),
        Just(b"ThrottlingException:http://internal.amazon.com/".to_vec()),
    ];
    proptest::collection::vec((0..NAMES.len(), value), 0..6).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, bytes) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(NAMES[name], value);
            }
        }
        map
    })
}

proptest! {
    #[test]
    fn every_classifier_gives_a_verdict(
        status in 100u16..=599,
        headers in headers(),
        body in body(),
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        for provider in ProviderClassifier::ALL {
            let verdict = provider.verdict(status, &headers, &body);
            prop_assert_eq!(verdict.status(), Some(status));
            if status.as_u16() >= 400 {
                prop_assert!(verdict.class().is_some(), "{} {}: no class", provider, status);
            }
            if let Some(delay) = verdict.delay() {
                prop_assert!(!delay.is_zero());
            }
            if !provider.needs_body(status, &headers) {
                let without = provider.classify(&ResponseView::new(status, &headers, b""));
                prop_assert_eq!(
                    (verdict.class(), verdict.advice()),
                    (without.class(), without.advice()),
                    "{} {}: a body it does not ask for changed the verdict", provider, status
                );
                prop_assert!(verdict.class().is_none(), "{} {}: not asked, yet failed", provider, status);
            }
        }
    }
}
