//! The Gemini / Vertex AI classifier.

use http::{HeaderMap, StatusCode};
use tollgate_core::ErrorClass;

use crate::body::{ErrorBody, contains_ignore_case};
use crate::rules::{Failure, Snapshot, Spec, classifier};
use crate::signals::context_window_exceeded;

/// The Gemini (and Vertex AI) classifier, reading `google.rpc.Status` bodies: `error.status`,
/// `QuotaFailure` violations, `RetryInfo.retryDelay` and `ErrorInfo.reason`.
///
/// | response | class |
/// |---|---|
/// | 429 `RESOURCE_EXHAUSTED`, per-minute quota | RateLimited, delay from `retryDelay` |
/// | 429 with a `…PerDay…` quota id | QuotaExhausted (its short `retryDelay` is ignored: the quota resets at midnight Pacific) |
/// | 429 with `quotaValue: "0"` or "limit: 0" | PermissionDenied (the key or tier has no access to the model) |
/// | 402 `RESOURCE_EXHAUSTED` (prepaid credit used up) | QuotaExhausted |
/// | 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID` | Unauthorized |
/// | 400 `FAILED_PRECONDITION` (region, billing) | PermissionDenied |
/// | 400, 500 or 504 "The input token count (N) exceeds the maximum number of tokens allowed (M)" | ContextWindowExceeded |
/// | 503 `UNAVAILABLE` / 504 `DEADLINE_EXCEEDED` / 500 `INTERNAL` | Overloaded / Timeout / ServerError |
///
/// Gemini sends no rate-limit headers and its SDK ignores `x-should-retry`; a `retry-after`
/// header, if one is ever sent, still comes first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{DelaySource, ErrorClass};
/// use tollgate_providers::Gemini;
///
/// let body = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[
///   {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
///   {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39s"}]}}"#;
/// let verdict = Gemini::new().verdict(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
/// assert_eq!(verdict.delay(), Some(Duration::from_secs(39)));
/// assert_eq!(verdict.delay_source(), DelaySource::BodyHint);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Gemini {}

impl Gemini {
    const SPEC: Spec = Spec {
        should_retry: false,
        snapshot: Snapshot::None,
        body_hints: true,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Gemini {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        let by_status = ErrorClass::of_status(status)?;
        let api_key_invalid =
            body.reason.as_deref() == Some("API_KEY_INVALID") || body.mentions("api key not valid");
        if api_key_invalid {
            return Some(Failure::new(ErrorClass::Unauthorized));
        }
        // Very long inputs can come back as 500 or 504 with the context-window message.
        if context_window_exceeded(body) && status != StatusCode::TOO_MANY_REQUESTS {
            return Some(Failure::new(ErrorClass::ContextWindowExceeded));
        }
        let exhausted = status == StatusCode::TOO_MANY_REQUESTS
            || body.status.as_deref() == Some("RESOURCE_EXHAUSTED");
        if exhausted {
            let per_day = body
                .quota_ids
                .iter()
                .any(|id| contains_ignore_case(id, "PerDay"));
            let failure = if status == StatusCode::PAYMENT_REQUIRED || per_day {
                Failure::new(ErrorClass::QuotaExhausted).no_hints()
            } else if body.zero_quota || body.mentions("limit: 0") {
                Failure::new(ErrorClass::PermissionDenied).no_hints()
            } else {
                Failure::new(ErrorClass::RateLimited)
            };
            return Some(failure);
        }
        let class = match body.status.as_deref() {
            Some("FAILED_PRECONDITION" | "PERMISSION_DENIED") => ErrorClass::PermissionDenied,
            Some("UNAUTHENTICATED") => ErrorClass::Unauthorized,
            Some("NOT_FOUND") => ErrorClass::NotFound,
            Some("INVALID_ARGUMENT") => ErrorClass::BadRequest,
            Some("UNAVAILABLE") => ErrorClass::Overloaded,
            Some("DEADLINE_EXCEEDED") => ErrorClass::Timeout,
            Some("INTERNAL") => ErrorClass::ServerError,
            _ => by_status,
        };
        Some(Failure::new(class))
    }
}

classifier!(Gemini);
