//! Classifiers for OpenAI and the providers that speak its error format: Azure OpenAI, Groq and
//! DeepSeek.

use http::{HeaderMap, StatusCode};
use tollgate_core::{ErrorClass, RetryAdvice, headers};

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier};
use crate::signals::{content_policy, context_window_exceeded, request_too_large};

/// OpenAI's quota and spend signals (PROVIDERS.md §2): retrying will not restore access.
const OPENAI_QUOTA_CODES: &[&str] = &[
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
];

fn openai_quota(body: &ErrorBody<'_>) -> bool {
    body.kind() == Some("insufficient_quota")
        || body
            .code_text()
            .is_some_and(|code| OPENAI_QUOTA_CODES.contains(&code))
}

/// The rules every OpenAI-shaped provider shares.
fn openai_shaped(status: StatusCode, body: &ErrorBody<'_>) -> Option<Failure> {
    let class = ErrorClass::of_status(status)?;
    let failure = if openai_quota(body) {
        Failure::new(ErrorClass::QuotaExhausted)
    } else if matches!(status.as_u16(), 429 | 413) && request_too_large(body) {
        // Larger than the whole TPM bucket: it can never fit here, but a target with a higher
        // limit may take it.
        Failure::new(ErrorClass::PayloadTooLarge).advice(RetryAdvice::Elsewhere)
    } else if status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && context_window_exceeded(body)
    {
        Failure::new(ErrorClass::ContextWindowExceeded)
    } else if status.is_client_error() && content_policy(body) {
        Failure::new(ErrorClass::ContentPolicy)
    } else {
        Failure::new(class)
    };
    Some(failure)
}

/// The OpenAI classifier (Chat Completions, Responses and the other OpenAI APIs).
///
/// | response | class | advice |
/// |---|---|---|
/// | 429 `rate_limit_exceeded`, `slow_down` | RateLimited | same target, after the delay |
/// | 429 `insufficient_quota` family, spend and usage limits | QuotaExhausted | elsewhere |
/// | 429 "Request too large … Limit 30000, Requested 34307" | PayloadTooLarge | elsewhere |
/// | 400 `context_length_exceeded`, "maximum context length" | ContextWindowExceeded | elsewhere |
/// | 400 `content_filter`, `content_policy_violation` | ContentPolicy | elsewhere |
/// | 503 (`server_is_overloaded`) | Overloaded | same target |
/// | 500, 502 / 504 | ServerError / Timeout | same target |
/// | 401 / 403 / 404 | Unauthorized / PermissionDenied / NotFound | elsewhere |
/// | 408 / 409 | Timeout / Conflict | same target |
///
/// `x-should-retry: false` forbids a same-target retry; `true` allows one even for a 4xx,
/// except for quota, oversized requests and context-window errors. The delay comes from
/// `retry-after-ms`, `retry-after`, the message ("Please try again in 1.146s"), then the reset
/// header of an exhausted `x-ratelimit-*` dimension. The rate-limit snapshot comes from
/// [`headers::openai`].
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{DelaySource, ErrorClass, RetryAdvice};
/// use tollgate_providers::OpenAi;
///
/// let body = br#"{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29500, Requested 1200. Please try again in 1.4s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
/// let verdict = OpenAi::new().verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
/// assert_eq!(verdict.delay_source(), DelaySource::BodyHint);
///
/// let quota = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
/// let verdict = OpenAi::new().verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), quota);
/// assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted));
/// assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct OpenAi {}

impl OpenAi {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Relative(headers::openai),
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        OpenAi {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        openai_shaped(status, body)
    }
}

classifier!(OpenAi);

/// The Azure OpenAI classifier: OpenAI's rules, plus Azure's own.
///
/// - A 403 from the API Management gateway saying the call-volume quota is used up
///   ("Out of call volume quota") is QuotaExhausted.
/// - A 429 that merely *mentions* quota ("…exceeded token rate limit of your current AIServices
///   S0 pricing tier… Please retry after 37 seconds.") is an ordinary rate limit, with the
///   message's delay.
/// - The delay may also come from `x-ms-retry-after-ms`; the snapshot from
///   [`headers::azure_openai`] (integer seconds; `-1` means unknown).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::AzureOpenAi;
///
/// let body = br#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded token rate limit of your current AIServices S0 pricing tier. Please retry after 37 seconds."}}"#;
/// let verdict = AzureOpenAi::new().verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
/// assert_eq!(verdict.delay(), Some(Duration::from_secs(37)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct AzureOpenAi {}

impl AzureOpenAi {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Relative(headers::azure_openai),
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        AzureOpenAi {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        if status == StatusCode::FORBIDDEN && body.mentions("quota") {
            return Some(Failure::new(ErrorClass::QuotaExhausted));
        }
        openai_shaped(status, body)
    }
}

classifier!(AzureOpenAi);

/// The Groq classifier: OpenAI's rules, plus Groq's own.
///
/// - 413 "Request too large … tokens per minute" (sent with `x-should-retry: false`) can never
///   fit the TPM bucket: PayloadTooLarge, advice elsewhere.
/// - 498 `capacity_exceeded` and 503 are Overloaded.
/// - 400 `blocked_api_access` is QuotaExhausted (the organization cannot use the API).
/// - The snapshot comes from [`headers::groq`]: the request headers are per **day**.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{ErrorClass, RetryAdvice};
/// use tollgate_providers::Groq;
///
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-should-retry", "false".parse().unwrap());
/// let body = br#"{"error":{"message":"Request too large for model `llama-3.3-70b-versatile` on tokens per minute (TPM): Limit 12000, Requested 15234, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}"#;
/// let verdict = Groq::new().verdict(StatusCode::PAYLOAD_TOO_LARGE, &headers, body);
/// assert_eq!(verdict.class(), Some(ErrorClass::PayloadTooLarge));
/// assert!(!verdict.is_retryable());
/// assert_eq!(verdict.advice(), RetryAdvice::Elsewhere); // a target with a higher limit may take it
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Groq {}

impl Groq {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Relative(headers::groq),
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Groq {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        if body.code_text() == Some("blocked_api_access") {
            return Some(Failure::new(ErrorClass::QuotaExhausted));
        }
        openai_shaped(status, body)
    }
}

classifier!(Groq);

/// The DeepSeek classifier (OpenAI-shaped bodies, no rate-limit headers).
///
/// 402 "Insufficient Balance" is QuotaExhausted; 429 (rate or concurrency limit) is RateLimited;
/// 503 "Server Overloaded" is Overloaded; 500 is ServerError; 400, 401 and 422 are not
/// retried. DeepSeek's limit is concurrency: pair this classifier with a concurrency limit.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::DeepSeek;
///
/// let body = br#"{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}"#;
/// let verdict = DeepSeek::new().verdict(StatusCode::PAYMENT_REQUIRED, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted));
/// assert!(!verdict.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DeepSeek {}

impl DeepSeek {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::None,
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        DeepSeek {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        openai_shaped(status, body)
    }
}

classifier!(DeepSeek);
