//! OpenAI flavor: quotas, headers and error bodies, end to end over loopback.

mod common;

use std::time::Duration;

use common::{Client, chat};
use tokio::time::Instant;
use tollgate_mock::{Latency, MockConfig, MockServer};

#[tokio::test(start_paused = true)]
async fn rpm_quota_refuses_then_refills() {
    let server = MockServer::start(MockConfig::openai().with_requests_per_minute(3))
        .await
        .unwrap();
    let client = Client::new(&server);
    let start = Instant::now();
    for (remaining, reset) in [("2", "20s"), ("1", "40s"), ("0", "1m0s")] {
        let r = client.chat(&chat(8, Some(10))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.h("x-ratelimit-limit-requests"), "3");
        assert_eq!(r.h("x-ratelimit-remaining-requests"), remaining);
        assert_eq!(r.h("x-ratelimit-reset-requests"), reset);
        assert!(r.header("x-ratelimit-limit-tokens").is_none());
        assert!(r.header("retry-after").is_none());
        assert!(r.h("x-request-id").starts_with("req_"));
    }
    let r = client.chat(&chat(8, Some(10))).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after"), "20");
    assert_eq!(r.h("retry-after-ms"), "20000");
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "0");
    let err = &r.json()["error"];
    assert_eq!(err["code"], "rate_limit_exceeded");
    assert_eq!(err["type"], "requests");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for gpt-4o in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
        ),
        "{message}"
    );

    tokio::time::sleep(Duration::from_millis(19_999)).await;
    assert_eq!(client.chat(&chat(8, Some(10))).await.status, 429);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let r = client.chat(&chat(8, Some(10))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "0");
    assert_eq!(start.elapsed(), Duration::from_secs(20));

    let stats = server.stats();
    assert_eq!((stats.requests, stats.ok, stats.rate_limited), (6, 4, 2));
}

#[tokio::test(start_paused = true)]
async fn tpm_charges_prompt_chars_over_4_plus_max_tokens() {
    let server = MockServer::start(MockConfig::openai().with_tokens_per_minute(1000))
        .await
        .unwrap();
    let client = Client::new(&server);

    // ceil(10 / 4) = 3 prompt tokens + 97 max_tokens = 100.
    let r = client.chat(&chat(10, Some(97))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("x-ratelimit-limit-tokens"), "1000");
    assert_eq!(r.h("x-ratelimit-remaining-tokens"), "900");
    assert_eq!(r.h("x-ratelimit-reset-tokens"), "6s");
    let usage = &r.json()["usage"];
    assert_eq!(usage["prompt_tokens"], 3);
    assert_eq!(usage["completion_tokens"], 50);
    assert_eq!(usage["total_tokens"], 53);

    // No max_tokens: the completion size (50) is charged: 3 + 50.
    let r = client.chat(&chat(10, None)).await;
    assert_eq!(r.h("x-ratelimit-remaining-tokens"), "847");
    assert_eq!(r.h("x-ratelimit-reset-tokens"), "9.18s");

    // 3 + 900 = 903 > 847 available: wait (153 + 903 - 1000) × 60 ms = 3.36 s.
    let r = client.chat(&chat(10, Some(900))).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.h("retry-after-ms"), "3360");
    assert_eq!(r.h("retry-after"), "4");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(
            "on tokens per min (TPM): Limit 1000, Used 153, Requested 903. Please try again in 3.36s."
        ),
        "{message}"
    );
    assert_eq!(r.json()["error"]["type"], "tokens");
    assert_eq!(r.h("x-ratelimit-remaining-tokens"), "847");

    // Above the whole bucket: "Request too large", never retryable, no retry-after.
    let r = client.chat(&chat(10, Some(2000))).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_none());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Request too large for gpt-4o in organization org-mock on tokens per min (TPM): Limit 1000, Requested 2003."),
        "{message}"
    );

    tokio::time::sleep(Duration::from_millis(3360)).await;
    assert_eq!(client.chat(&chat(10, Some(900))).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn answer_shape_and_truncation() {
    let server = MockServer::start(MockConfig::openai().with_completion_tokens(20))
        .await
        .unwrap();
    let client = Client::new(&server);
    let r = client.chat(&chat(4, None)).await;
    assert_eq!(r.h("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 20);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // max_completion_tokens wins over max_tokens and caps the answer.
    let mut body = chat(4, Some(100));
    body["max_completion_tokens"] = 5.into();
    let v = client.chat(&body).await.json();
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let stats = server.stats();
    assert_eq!((stats.input_tokens, stats.output_tokens), (2, 25));
}

#[tokio::test(start_paused = true)]
async fn insufficient_quota_after_credit_spent() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_credit_tokens(100)
            .with_requests_per_minute(100),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    // 10 prompt + 50 completion = 60 per request.
    assert_eq!(client.chat(&chat(40, None)).await.status, 200);
    assert_eq!(client.chat(&chat(40, None)).await.status, 200);
    let r = client.chat(&chat(40, None)).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_none());
    let err = &r.json()["error"];
    assert_eq!(err["type"], "insufficient_quota");
    assert_eq!(err["code"], "insufficient_quota");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("You exceeded your current quota")
    );
    // Refused: no request charged.
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "98");
}

#[tokio::test(start_paused = true)]
async fn context_length_exceeded_consumes_nothing() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_context_window(1000)
            .with_requests_per_minute(10)
            .with_tokens_per_minute(100_000),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let r = client.chat(&chat(4000, Some(10))).await;
    assert_eq!(r.status, 400);
    let err = &r.json()["error"];
    assert_eq!(err["code"], "context_length_exceeded");
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["param"], "messages");
    assert_eq!(
        err["message"],
        "This model's maximum context length is 1000 tokens. However, you requested 1010 tokens (1000 in the messages, 10 in the completion). Please reduce the length of the messages or completion."
    );
    let r = client.chat(&chat(4001, None)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "This model's maximum context length is 1000 tokens. However, your messages resulted in 1001 tokens. Please reduce the length of the messages."
    );
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "10");
    assert_eq!(r.h("x-ratelimit-remaining-tokens"), "100000");
    // Exactly at the window is fine.
    assert_eq!(client.chat(&chat(3960, Some(10))).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn api_key_required() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_api_key("sk-right-key-0000")
            .with_requests_per_minute(5),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let r = client.chat(&chat(4, None)).await;
    assert_eq!(r.status, 401);
    let err = &r.json()["error"];
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("You didn't provide an API key")
    );
    assert_eq!(err["code"], serde_json::Value::Null);

    let r = client
        .post_with(
            "/v1/chat/completions",
            &chat(4, None),
            &[("authorization", "Bearer sk-wrong-key-1234")],
        )
        .await;
    assert_eq!(r.status, 401);
    let err = &r.json()["error"];
    assert_eq!(err["code"], "invalid_api_key");
    assert_eq!(err["type"], "invalid_request_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Incorrect API key provided: sk-***1234.")
    );
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "5");

    let r = client
        .post_with(
            "/v1/chat/completions",
            &chat(4, None),
            &[("authorization", "Bearer sk-right-key-0000")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "4");
}

#[tokio::test(start_paused = true)]
async fn error_rate_one_gives_503_every_time() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_error_rate(503, 1.0)
            .with_requests_per_minute(10)
            .with_latency(Latency::Fixed { ms: 250 }),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let start = Instant::now();
    for i in 0..5 {
        let r = client.chat(&chat(4, None)).await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.json(),
            serde_json::json!({"error": {
                "message": "The server is overloaded or not ready yet.",
                "type": "server_error", "param": null, "code": "server_is_overloaded"
            }})
        );
        // A failed request still counts against the quota.
        assert_eq!(r.h("x-ratelimit-remaining-requests"), (9 - i).to_string());
    }
    // Latency applies to injected errors too.
    assert_eq!(start.elapsed(), Duration::from_millis(1250));
    let stats = server.stats();
    assert_eq!(stats.by_status.get(&503), Some(&5));
    assert_eq!(stats.ok, 0);
}

#[tokio::test]
async fn max_concurrency_refuses_the_extra_request() {
    // Real time: three requests must be in flight together.
    let server = MockServer::start(
        MockConfig::openai()
            .with_max_concurrency(2)
            .with_latency(Latency::Fixed { ms: 400 }),
    )
    .await
    .unwrap();
    let client = Client::new(&server);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.chat(&chat(4, None)).await })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 429]);
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on concurrent requests: Limit 2, Used 2, Requested 1.")
    );
    assert_eq!(refused.h("retry-after"), "1");
    assert_eq!(server.stats().max_in_flight, 3);
    // Slots are released afterwards.
    assert_eq!(client.chat(&chat(4, None)).await.status, 200);
}
