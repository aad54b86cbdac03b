//! The steps every classifier shares (`rules.rs`) where one provider differs: Mistral's tokens
//! charged from `ratelimitbysize-query-cost`, and the generic classifier reading OpenAI's
//! rate-limit headers, down to an exhausted limit's reset as the delay. Found by mutation
//! testing (CONTRIBUTING.md, "Mutation testing").

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use tollgate_core::{DelaySource, Dimension, ErrorClass, Window};
use tollgate_providers::{Generic, Mistral};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_static(value));
    }
    map
}

#[test]
fn mistral_reports_the_tokens_charged_in_its_query_cost_header() {
    let charged = headers(&[("ratelimitbysize-query-cost", " 1234 ")]);
    for status in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let verdict = Mistral::new().verdict(status, &charged, b"");
        assert_eq!(
            verdict.usage().and_then(|usage| usage.total_tokens),
            Some(1_234),
            "{status}"
        );
    }
    for garbage in ["", "many", "-5", "1.5"] {
        let mut map = HeaderMap::new();
        map.insert(
            "ratelimitbysize-query-cost",
            HeaderValue::from_str(garbage).unwrap(),
        );
        let verdict = Mistral::new().verdict(StatusCode::OK, &map, b"");
        assert_eq!(verdict.usage(), None, "{garbage:?}");
    }
    // Only Mistral reads it.
    let verdict = Generic::new().verdict(StatusCode::OK, &charged, b"");
    assert_eq!(verdict.usage(), None);
}

#[test]
fn the_generic_classifier_reads_openai_rate_limit_headers() {
    let map = headers(&[
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "6s"),
    ]);
    let verdict = Generic::new().verdict(StatusCode::TOO_MANY_REQUESTS, &map, b"");
    assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
    let requests = verdict
        .rate_limits()
        .get(Dimension::Requests, Window::Minute)
        .unwrap();
    assert_eq!(
        (requests.limit, requests.remaining, requests.reset),
        (Some(60), Some(0), Some(Duration::from_secs(6)))
    );
    // The exhausted limit's reset is the delay, with no retry-after.
    assert_eq!(verdict.delay(), Some(Duration::from_secs(6)));
    assert_eq!(verdict.delay_source(), DelaySource::ResetHeader);
}
