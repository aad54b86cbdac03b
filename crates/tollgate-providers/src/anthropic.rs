//! The Anthropic classifier.

use http::{HeaderMap, StatusCode};
use tollgate_core::{ErrorClass, headers};

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier};
use crate::signals::context_window_exceeded;

/// The Anthropic classifier (Messages API), by `error.type` first and status second.
///
/// | response | class |
/// |---|---|
/// | 429 `rate_limit_error` (RPM, ITPM, OTPM, acceleration limits) | RateLimited |
/// | 429 with `error.details.error_code: "enforced_spend_limit_reached"` | QuotaExhausted |
/// | 402 `billing_error`; 400 "You have reached your specified API usage limits"; "credit balance is too low" | QuotaExhausted |
/// | 529 `overloaded_error` | Overloaded |
/// | 400 "prompt is too long", "input length and `max_tokens` exceed context limit" | ContextWindowExceeded |
/// | 413 `request_too_large` | PayloadTooLarge |
/// | 500 `api_error` / 504 `timeout_error` | ServerError / Timeout |
/// | 401 / 403 / 404 | Unauthorized / PermissionDenied / NotFound |
///
/// `x-should-retry` is honoured (quota wins over `true`); the snapshot comes from
/// [`headers::anthropic`] (requests, tokens, input and output tokens, RFC 3339 resets).
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{ErrorClass, RetryAdvice};
/// use tollgate_providers::Anthropic;
///
/// let classifier = Anthropic::new();
/// let overloaded = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#;
/// let verdict = classifier.verdict(StatusCode::from_u16(529).unwrap(), &HeaderMap::new(), overloaded);
/// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
/// assert!(verdict.is_retryable());
///
/// let spend = br#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
/// let verdict = classifier.verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), spend);
/// assert_eq!(verdict.class(), Some(ErrorClass::QuotaExhausted));
/// assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Anthropic {}

impl Anthropic {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Absolute(headers::anthropic),
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Anthropic {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        let by_status = ErrorClass::of_status(status)?;
        let quota = body.detail_code.as_deref() == Some("enforced_spend_limit_reached")
            || body.kind() == Some("billing_error")
            || body.mentions("reached your specified api usage limits")
            || body.mentions("credit balance is too low");
        let class = if quota {
            ErrorClass::QuotaExhausted
        } else if status.is_client_error()
            && status != StatusCode::TOO_MANY_REQUESTS
            && context_window_exceeded(body)
        {
            ErrorClass::ContextWindowExceeded
        } else {
            match body.kind() {
                Some("rate_limit_error") => ErrorClass::RateLimited,
                Some("overloaded_error") => ErrorClass::Overloaded,
                Some("api_error") => ErrorClass::ServerError,
                Some("timeout_error") => ErrorClass::Timeout,
                Some("authentication_error") => ErrorClass::Unauthorized,
                Some("permission_error") => ErrorClass::PermissionDenied,
                Some("not_found_error") => ErrorClass::NotFound,
                Some("request_too_large") => ErrorClass::PayloadTooLarge,
                Some("invalid_request_error") => ErrorClass::BadRequest,
                _ => by_status,
            }
        };
        Some(Failure::new(class))
    }
}

classifier!(Anthropic);
