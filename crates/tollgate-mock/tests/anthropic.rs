//! Anthropic flavor: headers, 429/529/400/401 bodies and ITPM/OTPM accounting.

mod common;

use std::time::{Duration, SystemTime};

use common::{Client, chat, messages};
use tollgate_mock::{MockConfig, MockServer};

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn assert_rfc3339(s: &str) {
    let b = s.as_bytes();
    assert_eq!(b.len(), 20, "{s}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{s}"),
            10 => assert_eq!(*c, b'T', "{s}"),
            13 | 16 => assert_eq!(*c, b':', "{s}"),
            19 => assert_eq!(*c, b'Z', "{s}"),
            _ => assert!(c.is_ascii_digit(), "{s}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn headers_per_dimension() {
    let before = now();
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_requests_per_minute(50)
            .with_input_tokens_per_minute(10_000)
            .with_output_tokens_per_minute(2_000),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    // 400 chars = 100 input tokens; the answer is 50 tokens (max_tokens is not charged to OTPM).
    let r = client.messages(&messages(400, 1000)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.h("request-id").starts_with("req_"));
    assert_eq!(r.h("anthropic-ratelimit-requests-limit"), "50");
    assert_eq!(r.h("anthropic-ratelimit-requests-remaining"), "49");
    assert_eq!(r.h("anthropic-ratelimit-input-tokens-limit"), "10000");
    // 9900 remaining, rounded down to the thousand.
    assert_eq!(r.h("anthropic-ratelimit-input-tokens-remaining"), "9000");
    assert_eq!(r.h("anthropic-ratelimit-output-tokens-limit"), "2000");
    assert_eq!(r.h("anthropic-ratelimit-output-tokens-remaining"), "1000");
    // tokens-* is the more restrictive of the two.
    assert_eq!(r.h("anthropic-ratelimit-tokens-limit"), "2000");
    let after = now();
    // The instant of full refill, rounded up to the second: 1 request of 50 = 1.2 s, 100 of
    // 10 000 input tokens = 0.6 s, 50 of 2000 output tokens = 1.5 s.
    let ceil = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
    for (name, ms) in [
        ("requests", 1200),
        ("input-tokens", 600),
        ("output-tokens", 1500),
        ("tokens", 1500),
    ] {
        let reset = r.h(&format!("anthropic-ratelimit-{name}-reset"));
        assert_rfc3339(reset);
        let reset = epoch_secs(reset);
        let refill = Duration::from_millis(ms);
        let (lo, hi) = (ceil(before + refill), ceil(after + refill));
        assert!((lo..=hi).contains(&reset), "{name}: {reset} vs {lo}..={hi}");
    }
    assert!(r.header("x-ratelimit-limit-requests").is_none());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        50
    );
    assert_eq!(v["usage"]["input_tokens"], 100);
    assert_eq!(v["usage"]["output_tokens"], 50);
    assert_eq!(v["stop_reason"], "end_turn");
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch_secs(s: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as u64
}

/// Wall-clock time since the epoch.
fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn rate_limit_error_body_and_retry_after() {
    let server = MockServer::start(MockConfig::anthropic().with_requests_per_minute(2))
        .await
        .unwrap();
    let client = Client::new(&server);
    assert_eq!(client.messages(&messages(4, 10)).await.status, 200);
    assert_eq!(client.messages(&messages(4, 10)).await.status, 200);
    let r = client.messages(&messages(4, 10)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), "30");
    assert!(r.header("retry-after-ms").is_none());
    assert_eq!(r.h("anthropic-ratelimit-requests-remaining"), "0");
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("This request would exceed the rate limit for your organization (org-mock) of 2 requests per minute."));
    assert_eq!(v["request_id"].as_str(), r.header("request-id"));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(client.messages(&messages(4, 10)).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn otpm_charges_output_not_max_tokens() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_output_tokens_per_minute(100)
            .with_completion_tokens(60),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    // max_tokens 4000 would never fit a 100-token OTPM if it were charged.
    assert_eq!(client.messages(&messages(4, 4000)).await.status, 200);
    // 40 left: still admitted, and the 60 produced put the bucket in debt.
    let r = client.messages(&messages(4, 4000)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("anthropic-ratelimit-output-tokens-remaining"), "0");
    let r = client.messages(&messages(4, 4000)).await;
    assert_eq!(r.status, 429);
    // 120 charged = 72 s of debt; one token needs 0.6 s: 72.6 - 60 = 12.6 s.
    assert_eq!(r.h("retry-after"), "13");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("of 100 output tokens per minute")
    );
    tokio::time::sleep(Duration::from_millis(12_600)).await;
    assert_eq!(client.messages(&messages(4, 4000)).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn outage_answers_529_overloaded() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_outage(Duration::from_secs(5), Duration::from_secs(10))
            .with_requests_per_minute(10),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    assert_eq!(client.messages(&messages(4, 10)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = client.messages(&messages(4, 10)).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.h("x-should-retry"), "true");
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert_eq!(v["error"]["message"], "Overloaded");
    // Outages consume no quota (one request so far, refilled 5 s × 10/60 = 0.83).
    assert_eq!(r.h("anthropic-ratelimit-requests-remaining"), "9");
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    assert_eq!(client.messages(&messages(4, 10)).await.status, 529);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(client.messages(&messages(4, 10)).await.status, 200);

    server.set_outage(true);
    assert_eq!(client.chat(&chat(4, None)).await.status, 529);
    server.set_outage(false);
    assert_eq!(client.chat(&chat(4, None)).await.status, 200);
    assert_eq!(server.stats().by_status.get(&529), Some(&3));
}

#[tokio::test(start_paused = true)]
async fn context_window_messages() {
    let server = MockServer::start(MockConfig::anthropic().with_context_window(1000))
        .await
        .unwrap();
    let client = Client::new(&server);
    let r = client.messages(&messages(4004, 10)).await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "prompt is too long: 1001 tokens > 1000 maximum"
    );
    let r = client.messages(&messages(400, 950)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "input length and `max_tokens` exceed context limit: 100 + 950 > 1000, decrease input length or `max_tokens` and try again"
    );
}

#[tokio::test(start_paused = true)]
async fn credit_exhausted_is_a_400_that_must_not_be_retried() {
    let server = MockServer::start(MockConfig::anthropic().with_credit_tokens(50))
        .await
        .unwrap();
    let client = Client::new(&server);
    assert_eq!(client.messages(&messages(4, 100)).await.status, 200);
    let r = client.messages(&messages(4, 100)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.h("x-should-retry"), "false");
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Your credit balance is too low")
    );
}

#[tokio::test(start_paused = true)]
async fn authentication_error() {
    let server = MockServer::start(MockConfig::anthropic().with_api_key("ak-1"))
        .await
        .unwrap();
    let client = Client::new(&server);
    let r = client
        .post_with("/v1/messages", &messages(4, 10), &[("x-api-key", "nope")])
        .await;
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(v["error"]["message"], "invalid x-api-key");
    let r = client
        .post_with("/v1/messages", &messages(4, 10), &[("x-api-key", "ak-1")])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(start_paused = true)]
async fn openai_compatible_endpoint_with_anthropic_headers() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_requests_per_minute(5)
            .with_error_rate(500, 1.0),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let r = client.chat(&chat(4, None)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert_eq!(r.h("anthropic-ratelimit-requests-remaining"), "4");

    let server = MockServer::start(MockConfig::anthropic()).await.unwrap();
    let client = Client::new(&server);
    let r = client.chat(&chat(4, Some(7))).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert!(r.header("request-id").is_some());
}

#[tokio::test(start_paused = true)]
async fn messages_requires_max_tokens() {
    let server = MockServer::start(MockConfig::anthropic()).await.unwrap();
    let client = Client::new(&server);
    let r = client
        .messages(&serde_json::json!({"model": "m", "messages": []}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "max_tokens: Field required");
}

#[tokio::test(start_paused = true)]
async fn reset_is_never_before_the_bucket_is_full() {
    // The server's wall clock starts at or after `t0` and follows tokio's paused clock. Every
    // request costs 50 ms of a 1200-RPM bucket, so `requests-reset` is 50 ms after the server's
    // "now"; rounded to whole seconds it must not land before that instant. Requests are
    // 1.05 s apart, so the sub-second phase of the server's clock sweeps the whole second.
    let t0 = now();
    let server = MockServer::start(MockConfig::anthropic().with_requests_per_minute(1200))
        .await
        .unwrap();
    let t1 = now();
    let client = Client::new(&server);
    let start = tokio::time::Instant::now();
    for _ in 0..20 {
        let elapsed = start.elapsed();
        let r = client.messages(&messages(4, 10)).await;
        assert_eq!(r.status, 200);
        let reset = Duration::from_secs(epoch_secs(r.h("anthropic-ratelimit-requests-reset")));
        let full = t0 + elapsed + Duration::from_millis(50);
        assert!(
            reset >= full,
            "reset {reset:?} is before the bucket is full at {full:?}"
        );
        let latest = t1 + elapsed + Duration::from_millis(50) + Duration::from_secs(1);
        assert!(
            reset < latest,
            "reset {reset:?} rounded by more than a second"
        );
        tokio::time::sleep(Duration::from_millis(1050)).await;
    }
}
