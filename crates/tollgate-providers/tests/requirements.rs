//! PROVIDERS.md §2 (error bodies and their quirks, every context-window signature), §3 (delay
//! headers, their formats and sources; the rate-limit header families) and the numbered
//! classifier requirements of §7, as recorded responses with the exact verdict each must give:
//! class, retryable or not, delay and its `DelaySource`.
//!
//! Responses are classified at a fixed time (`NOW`) so HTTP-dates and absolute resets give
//! exact delays.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tollgate_core::DelaySource::{
    self, BodyHint, ResetHeader, RetryAfterDate, RetryAfterMs, RetryAfterSeconds,
};
use tollgate_core::ErrorClass::{
    self, BadRequest, ContextWindowExceeded, Overloaded, PermissionDenied, QuotaExhausted,
    RateLimited, ServerError,
};
use tollgate_core::{Classify, Dimension, LimitReading, ResponseView, Verdict, Window};
use tollgate_providers::ProviderClassifier::{
    self, Anthropic, AzureOpenAi, Bedrock, DeepSeek, Gemini, Generic, Groq, Mistral, OpenAi,
    OpenRouter,
};

/// 2025-06-15T15:06:40Z.
const NOW_SECS: u64 = 1_750_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            )
        })
        .collect()
}

fn classify(
    provider: ProviderClassifier,
    status: u16,
    pairs: &[(&str, &str)],
    body: &str,
) -> Verdict {
    let headers = headers(pairs);
    let status = StatusCode::from_u16(status).unwrap();
    provider.classify(&ResponseView::new(status, &headers, body.as_bytes()).received_at(now()))
}

/// One recorded response and the verdict it must give.
struct Row {
    name: &'static str,
    provider: ProviderClassifier,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    class: ErrorClass,
    retryable: bool,
    delay: Option<Duration>,
    source: DelaySource,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    provider: ProviderClassifier,
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    class: ErrorClass,
    retryable: bool,
    delay: Option<Duration>,
    source: DelaySource,
) -> Row {
    Row {
        name,
        provider,
        status,
        headers,
        body,
        class,
        retryable,
        delay,
        source,
    }
}

const NONE: Option<Duration> = None;
const fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}
const fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o.","type":"requests","code":"rate_limit_exceeded"}}"#;
const HINTED: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29500, Requested 900. Please try again in 1.146s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
const QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
/// IMF-fixdate 30 s after `NOW`.
const DATE_IN_30S: &str = "Sun, 15 Jun 2025 15:07:10 GMT";
/// RFC 3339, 20 s after `NOW`.
const RFC3339_IN_20S: &str = "2025-06-15T15:07:00Z";

const ROWS: &[Row] = &[
    // ----- §7.2 x-should-retry -----
    row(
        "§7.2 `true` makes a 400 retryable",
        OpenAi,
        400,
        &[("x-should-retry", "true")],
        r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#,
        BadRequest,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.2 `false` stops a 429",
        OpenAi,
        429,
        &[("x-should-retry", "false")],
        RATE_LIMITED,
        RateLimited,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.2 `false` stops a 500",
        Anthropic,
        500,
        &[("x-should-retry", "false")],
        "",
        ServerError,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.2 quota outranks `true`",
        OpenAi,
        429,
        &[("x-should-retry", "true")],
        QUOTA,
        QuotaExhausted,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.2 spend outranks `true` (Anthropic)",
        Anthropic,
        429,
        &[("x-should-retry", "true")],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#,
        QuotaExhausted,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.2 only exact `true`/`false` count",
        OpenAi,
        400,
        &[("x-should-retry", "yes")],
        "",
        BadRequest,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§2 Anthropic zero balance: 400 + `false` is quota",
        Anthropic,
        400,
        &[("x-should-retry", "false")],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
        QuotaExhausted,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§3 Groq 413 with `false`",
        Groq,
        413,
        &[("x-should-retry", "false")],
        "",
        ErrorClass::PayloadTooLarge,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§3 Anthropic 529 with `true` and retry-after",
        Anthropic,
        529,
        &[("x-should-retry", "true"), ("retry-after", "10")],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        Overloaded,
        true,
        secs(10),
        RetryAfterSeconds,
    ),
    // ----- §7.3 delay precedence and §3 formats -----
    row(
        "§7.3.1 retry-after-ms wins over retry-after",
        OpenAi,
        429,
        &[("retry-after-ms", "1500"), ("retry-after", "5")],
        HINTED,
        RateLimited,
        true,
        ms(1500),
        RetryAfterMs,
    ),
    row(
        "§3 retry-after-ms is a float",
        OpenAi,
        429,
        &[("retry-after-ms", "250.5")],
        RATE_LIMITED,
        RateLimited,
        true,
        Some(Duration::from_micros(250_500)),
        RetryAfterMs,
    ),
    row(
        "§7.3.1 x-ms-retry-after-ms (Azure)",
        AzureOpenAi,
        429,
        &[("x-ms-retry-after-ms", "2500"), ("retry-after", "5")],
        "",
        RateLimited,
        true,
        ms(2500),
        RetryAfterMs,
    ),
    row(
        "§7.3.2 retry-after seconds win over a body hint",
        OpenAi,
        429,
        &[("retry-after", "2")],
        HINTED,
        RateLimited,
        true,
        secs(2),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 retry-after float seconds",
        Groq,
        429,
        &[("retry-after", "2.5")],
        "",
        RateLimited,
        true,
        ms(2500),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 whitespace is trimmed",
        OpenAi,
        429,
        &[("retry-after", " 4 ")],
        "",
        RateLimited,
        true,
        secs(4),
        RetryAfterSeconds,
    ),
    row(
        "§7.3.3 retry-after HTTP-date",
        Anthropic,
        429,
        &[("retry-after", DATE_IN_30S)],
        "",
        RateLimited,
        true,
        secs(30),
        RetryAfterDate,
    ),
    row(
        "§7.3 a malformed retry-after-ms falls through",
        OpenAi,
        429,
        &[("retry-after-ms", "soon"), ("retry-after", "3")],
        HINTED,
        RateLimited,
        true,
        secs(3),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 zero counts as absent",
        OpenAi,
        429,
        &[("retry-after", "0")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.4 negative counts as absent",
        OpenAi,
        429,
        &[("retry-after", "-3")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.4 NaN counts as absent",
        OpenAi,
        429,
        &[("retry-after-ms", "NaN")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.4 infinity counts as absent",
        OpenAi,
        429,
        &[("retry-after", "inf")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.4 a number too large to represent is longer than any cap, not absent",
        OpenAi,
        429,
        &[("retry-after", "99999999999999999999999")],
        HINTED,
        RateLimited,
        true,
        Some(Duration::MAX),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 the SDK's 1e35 s saturates",
        OpenAi,
        429,
        &[("retry-after", "99999999999999999999999999999999999")],
        HINTED,
        RateLimited,
        true,
        Some(Duration::MAX),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 an overflowing retry-after-ms saturates, and wins over retry-after",
        AzureOpenAi,
        429,
        &[
            ("retry-after-ms", "99999999999999999999999999999999999"),
            ("retry-after", "2"),
        ],
        RATE_LIMITED,
        RateLimited,
        true,
        Some(Duration::MAX),
        RetryAfterMs,
    ),
    row(
        "§7.4 a very large representable retry-after is kept exactly",
        Anthropic,
        429,
        &[("retry-after", "1000000000000")],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        RateLimited,
        true,
        secs(1_000_000_000_000),
        RetryAfterSeconds,
    ),
    row(
        "§7.4 `abc` counts as absent",
        OpenAi,
        429,
        &[("retry-after", "abc")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.3 a past HTTP-date counts as absent",
        OpenAi,
        429,
        &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.3.4 body hint in seconds (OpenAI)",
        OpenAi,
        429,
        &[],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.3.4 body hint in ms (OpenAI)",
        OpenAi,
        429,
        &[],
        r#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 84ms.","type":"requests","code":"rate_limit_exceeded"}}"#,
        RateLimited,
        true,
        ms(84),
        BodyHint,
    ),
    row(
        "§7.3.4 body hint (Groq)",
        Groq,
        429,
        &[],
        r#"{"error":{"message":"Rate limit reached for model `llama3-8b`. Please try again in 5.289s.","type":"tokens","code":"rate_limit_exceeded"}}"#,
        RateLimited,
        true,
        ms(5289),
        BodyHint,
    ),
    row(
        "§7.3.4 body hint (Azure retry after N seconds)",
        AzureOpenAi,
        429,
        &[],
        r#"{"error":{"code":"429","message":"Requests have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 37 seconds."}}"#,
        RateLimited,
        true,
        secs(37),
        BodyHint,
    ),
    row(
        "§7.3.4 Gemini retryDelay",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Resource has been exhausted","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaValue":"250000"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}"#,
        RateLimited,
        true,
        secs(30),
        BodyHint,
    ),
    row(
        "§2 Gemini retryDelay with a fraction",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Please retry in 57.219397761s.","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"57.219397761s"}]}}"#,
        RateLimited,
        true,
        Some(Duration::new(57, 219_397_761)),
        BodyHint,
    ),
    row(
        "§2 Gemini message hint without RetryInfo",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded. Please retry in 57.219397761s."}}"#,
        RateLimited,
        true,
        Some(Duration::new(57, 219_397_761)),
        BodyHint,
    ),
    row(
        "§7.3.4 Gemini PerDay ignores its short retryDelay",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"50"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39s"}]}}"#,
        QuotaExhausted,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.3.5 reset of the exhausted dimension (OpenAI)",
        OpenAi,
        429,
        &[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-ratelimit-remaining-requests", "10"),
            ("x-ratelimit-reset-requests", "1s"),
        ],
        RATE_LIMITED,
        RateLimited,
        true,
        secs(360),
        ResetHeader,
    ),
    row(
        "§7.3.5 the max over exhausted dimensions",
        OpenAi,
        429,
        &[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "8.64s"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "12ms"),
        ],
        RATE_LIMITED,
        RateLimited,
        true,
        ms(8640),
        ResetHeader,
    ),
    row(
        "§7.3.5 Anthropic RFC 3339 reset",
        Anthropic,
        429,
        &[
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
            ("anthropic-ratelimit-input-tokens-reset", RFC3339_IN_20S),
        ],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"rate limited"}}"#,
        RateLimited,
        true,
        secs(20),
        ResetHeader,
    ),
    row(
        "§7.3.5 a body hint wins over reset headers",
        OpenAi,
        429,
        &[
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ],
        HINTED,
        RateLimited,
        true,
        ms(1146),
        BodyHint,
    ),
    row(
        "§7.3.6 nothing: backoff decides",
        OpenAi,
        429,
        &[],
        RATE_LIMITED,
        RateLimited,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.3 header-less DeepSeek 429",
        DeepSeek,
        429,
        &[],
        "",
        RateLimited,
        true,
        NONE,
        DelaySource::None,
    ),
    // ----- §7.6 "quota" in the message alone is a rate limit -----
    row(
        "§7.6 Azure 429 that says quota stays R",
        AzureOpenAi,
        429,
        &[("retry-after", "6")],
        r#"{"error":{"code":"429","message":"Requests to the Embeddings_Create Operation have exceeded the call rate limit of your current quota. Please retry after 6 seconds."}}"#,
        RateLimited,
        true,
        secs(6),
        RetryAfterSeconds,
    ),
    row(
        "§7.6 Gemini 429 that says quota stays R",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"You exceeded your current quota, please check your plan and billing details."}}"#,
        RateLimited,
        true,
        NONE,
        DelaySource::None,
    ),
    // ----- §7.7 too large for the bucket -----
    row(
        "§7.7 Requested > Limit without Used (the delay stays, for the cooldown)",
        OpenAi,
        429,
        &[("retry-after", "1")],
        r#"{"error":{"message":"Rate limit for gpt-4o on tokens per min (TPM): Limit 30000, Requested 34307.","type":"tokens","code":"rate_limit_exceeded"}}"#,
        ErrorClass::PayloadTooLarge,
        false,
        secs(1),
        RetryAfterSeconds,
    ),
    // ----- §7.8 overloads -----
    row(
        "§7.8 Groq 498",
        Groq,
        498,
        &[],
        "",
        Overloaded,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.8 OpenRouter 503 moves on now",
        OpenRouter,
        503,
        &[],
        "",
        Overloaded,
        false,
        NONE,
        DelaySource::None,
    ),
    // ----- §2 quirks -----
    row(
        "§2 Gemini quotaValue 0: no access, not a rate limit",
        Gemini,
        429,
        &[],
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded for metric: generate_content_free_tier_requests, limit: 0","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"0"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20s"}]}}"#,
        PermissionDenied,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§2 Gemini FAILED_PRECONDITION",
        Gemini,
        400,
        &[],
        r#"{"error":{"code":400,"message":"User location is not supported for the API use without a billing account linked.","status":"FAILED_PRECONDITION"}}"#,
        PermissionDenied,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§2 Bedrock exception name from x-amzn-ErrorType",
        Bedrock,
        400,
        &[(
            "x-amzn-ErrorType",
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        )],
        r#"{"message":"Too many tokens, please wait before trying again."}"#,
        RateLimited,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§2 OpenRouter upstream 429 via metadata.provider_code",
        OpenRouter,
        429,
        &[],
        r#"{"error":{"code":429,"message":"Provider returned error","metadata":{"provider_code":429,"raw":"Please try again in 2s."}}}"#,
        RateLimited,
        true,
        secs(2),
        BodyHint,
    ),
    row(
        "§2 Mistral body shape",
        Mistral,
        429,
        &[],
        r#"{"object":"error","message":"Requests rate limit exceeded","type":"rate_limit_error","param":null,"code":"1300"}"#,
        RateLimited,
        true,
        NONE,
        DelaySource::None,
    ),
    // ----- §7.12 generic status rules -----
    row(
        "§7.12 408 is retryable",
        Generic,
        408,
        &[],
        "",
        ErrorClass::Timeout,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 409 is retryable",
        Generic,
        409,
        &[],
        "",
        ErrorClass::Conflict,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 429 is retryable",
        Generic,
        429,
        &[("retry-after", "1")],
        "",
        RateLimited,
        true,
        secs(1),
        RetryAfterSeconds,
    ),
    row(
        "§7.12 502 is retryable",
        Generic,
        502,
        &[],
        "",
        ServerError,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 529 is retryable",
        Generic,
        529,
        &[],
        "",
        Overloaded,
        true,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 422 is not",
        Generic,
        422,
        &[],
        "",
        BadRequest,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 413 is not",
        Generic,
        413,
        &[],
        "",
        ErrorClass::PayloadTooLarge,
        false,
        NONE,
        DelaySource::None,
    ),
    row(
        "§7.12 404 is not unless x-should-retry: true",
        Generic,
        404,
        &[("x-should-retry", "true")],
        "",
        ErrorClass::NotFound,
        true,
        NONE,
        DelaySource::None,
    ),
];

#[test]
fn every_requirement_row() {
    let mut failures = Vec::new();
    for row in ROWS {
        let verdict = classify(row.provider, row.status, row.headers, row.body);
        let got = (
            verdict.class(),
            verdict.is_retryable(),
            verdict.delay(),
            verdict.delay_source(),
        );
        let want = (Some(row.class), row.retryable, row.delay, row.source);
        if got != want {
            failures.push(format!("{}: expected {want:?}, got {got:?}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

/// §2 "Context-window signatures": every signature, through every classifier (OpenAI-compatible
/// servers and aggregators pass other providers' texts through), is ContextWindowExceeded and
/// never retried on the same target.
#[test]
fn every_context_window_signature() {
    const SIGNATURES: &[&str] = &[
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens.",
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "prompt is too long: 215000 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 195000 + 8192 > 200000, decrease input length or `max_tokens` and try again",
        "The input token count (1250000) exceeds the maximum number of tokens allowed (1048576).",
        "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
        "Input is too long for requested model.",
        "The request has too many input tokens.",
        "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130000. Try using a shorter prompt",
        "Please reduce the length of the messages or completion.",
        "This model's maximum prompt length is 131072 but the request contains 140000 tokens.",
        "The total length of all messages is too long.",
        "The input (140000 tokens) is longer than the model's context length (131072 tokens).",
    ];
    let mut failures = Vec::new();
    for signature in SIGNATURES {
        let message = serde_json::to_string(signature).unwrap();
        let bodies = [
            format!(r#"{{"error":{{"message":{message},"type":"invalid_request_error"}}}}"#),
            format!(
                r#"{{"type":"error","error":{{"type":"invalid_request_error","message":{message}}}}}"#
            ),
            format!(
                r#"{{"error":{{"code":400,"message":{message},"status":"INVALID_ARGUMENT"}}}}"#
            ),
            format!(r#"{{"object":"error","message":{message},"type":"invalid_request_error"}}"#),
            format!(r#"{{"message":{message}}}"#),
        ];
        for provider in ProviderClassifier::ALL {
            if provider == Generic {
                continue;
            }
            let found = bodies.iter().any(|body| {
                let verdict = classify(provider, 400, &[], body);
                verdict.class() == Some(ContextWindowExceeded) && !verdict.is_retryable()
            });
            if !found {
                failures.push(format!("{provider}: {signature}"));
            }
        }
    }
    // OpenAI's code alone is enough.
    let by_code = classify(
        OpenAi,
        400,
        &[],
        r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
    );
    assert_eq!(by_code.class(), Some(ContextWindowExceeded));
    assert!(
        failures.is_empty(),
        "not recognised:\n{}",
        failures.join("\n")
    );
}

/// §7.1: the status alone never decides where the body says more; and "Request too large" for
/// the TPM bucket is not confused with a context-window error.
#[test]
fn request_too_large_is_not_a_context_window() {
    let verdict = classify(
        OpenAi,
        429,
        &[],
        r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 34307.","type":"tokens","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(verdict.class(), Some(ErrorClass::PayloadTooLarge));
    assert!(!verdict.is_retryable());
}

fn reading(limit: Option<u64>, remaining: Option<u64>, reset: Option<Duration>) -> LimitReading {
    let mut reading = LimitReading::default();
    reading.limit = limit;
    reading.remaining = remaining;
    reading.reset = reset;
    reading
}

/// §3 header families and §7.14: every response, successes included, carries the snapshot.
#[test]
fn every_family_fills_the_snapshot_on_success() {
    type Case = (
        ProviderClassifier,
        &'static [(&'static str, &'static str)],
        Dimension,
        Window,
        LimitReading,
    );
    let cases: &[Case] = &[
        (
            OpenAi,
            &[
                ("x-ratelimit-limit-tokens", "30000"),
                ("x-ratelimit-remaining-tokens", "29000"),
                ("x-ratelimit-reset-tokens", "2s"),
            ],
            Dimension::Tokens,
            Window::Minute,
            reading(Some(30_000), Some(29_000), secs(2)),
        ),
        (
            AzureOpenAi,
            &[
                ("x-ratelimit-remaining-requests", "99"),
                ("x-ratelimit-reset-requests", "7"),
            ],
            Dimension::Requests,
            Window::Minute,
            reading(None, Some(99), secs(7)),
        ),
        (
            Groq,
            &[
                ("x-ratelimit-limit-requests", "14400"),
                ("x-ratelimit-remaining-requests", "14370"),
                ("x-ratelimit-reset-requests", "2m59.56s"),
            ],
            Dimension::Requests,
            Window::Day,
            reading(Some(14_400), Some(14_370), ms(179_560)),
        ),
        (
            Anthropic,
            &[
                ("anthropic-ratelimit-output-tokens-limit", "80000"),
                ("anthropic-ratelimit-output-tokens-remaining", "78000"),
                ("anthropic-ratelimit-output-tokens-reset", RFC3339_IN_20S),
            ],
            Dimension::OutputTokens,
            Window::Minute,
            reading(Some(80_000), Some(78_000), secs(20)),
        ),
        (
            Mistral,
            &[
                ("x-ratelimitbysize-limit-minute", "500000"),
                ("x-ratelimitbysize-remaining-minute", "467993"),
            ],
            Dimension::Tokens,
            Window::Minute,
            reading(Some(500_000), Some(467_993), None),
        ),
        (
            OpenRouter,
            &[
                ("X-RateLimit-Limit", "20"),
                ("X-RateLimit-Remaining", "19"),
                ("X-RateLimit-Reset", "1750000012000"),
            ],
            Dimension::Requests,
            Window::Unspecified,
            reading(Some(20), Some(19), secs(12)),
        ),
    ];
    let mut failures = Vec::new();
    for (provider, pairs, dimension, window, want) in cases {
        let verdict = classify(*provider, 200, pairs, "");
        assert!(verdict.is_success(), "{provider}");
        let got = verdict.rate_limits().get(*dimension, *window);
        if got != Some(want) {
            failures.push(format!(
                "{provider} {dimension} {window}: expected {want:?}, got {got:?}; snapshot {:?}",
                verdict.rate_limits()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// §3: Azure's -1 and reset 0 mean unknown; missing headers give an empty snapshot.
#[test]
fn unknown_and_missing_readings() {
    let verdict = classify(
        AzureOpenAi,
        200,
        &[
            ("x-ratelimit-remaining-tokens", "-1"),
            ("x-ratelimit-reset-tokens", "0"),
        ],
        "",
    );
    let tokens = verdict.rate_limits().get(Dimension::Tokens, Window::Minute);
    assert!(
        tokens.is_none_or(|r| r.remaining.is_none() && r.reset.is_none()),
        "{tokens:?}"
    );
    for provider in ProviderClassifier::ALL {
        assert!(
            classify(provider, 200, &[], "").rate_limits().is_empty(),
            "{provider}"
        );
    }
}

/// §7.15 (reconcile with reported usage): a success body that reports usage carries it, in
/// each provider's shape.
#[test]
fn usage_is_read_from_a_success_body() {
    let cases: &[(ProviderClassifier, &str, u64, u64)] = &[
        (
            OpenAi,
            r#"{"id":"chatcmpl-1","usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150}}"#,
            120,
            30,
        ),
        (
            Anthropic,
            r#"{"id":"msg_1","type":"message","usage":{"input_tokens":2095,"output_tokens":503}}"#,
            2095,
            503,
        ),
        (
            Gemini,
            r#"{"candidates":[],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":7,"totalTokenCount":18}}"#,
            11,
            7,
        ),
    ];
    for (provider, body, input, output) in cases {
        let verdict = classify(*provider, 200, &[], body);
        assert!(verdict.is_success(), "{provider}");
        let usage = verdict
            .usage()
            .unwrap_or_else(|| panic!("{provider}: no usage"));
        assert_eq!(usage.input_tokens, Some(*input), "{provider}");
        assert_eq!(usage.output_tokens, Some(*output), "{provider}");
    }
}

/// An OpenRouter event stream is never read (`needs_body` is false), so bytes that look like an
/// error inside it cannot change the verdict: the one a body-less view gives. Found by the
/// `any_input` property test.
#[test]
fn openrouter_event_stream_bytes_do_not_decide() {
    let pairs = [("content-type", "text/event-stream")];
    let body = r#"{"error":{"code":403,"message":"flagged","metadata":{"reasons":["x"],"flagged_input":"x","provider_name":"p","model_slug":"m"}}}"#;
    assert!(!OpenRouter.needs_body(StatusCode::OK, &headers(&pairs)));
    let verdict = classify(OpenRouter, 200, &pairs, body);
    assert!(verdict.is_success(), "{verdict:?}");
    let plain = classify(OpenRouter, 200, &[], body);
    assert_eq!(plain.class(), Some(ErrorClass::ContentPolicy));
}
