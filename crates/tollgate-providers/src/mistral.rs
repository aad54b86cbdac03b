//! The Mistral classifier.

use http::{HeaderMap, StatusCode};
use tollgate_core::{ErrorClass, headers};

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier};
use crate::signals::context_window_exceeded;

/// The Mistral classifier (`{"object":"error","message","type","param","code"}` bodies).
///
/// 429 `rate_limit_error` and 500/502/503/504 are retried; a context overflow ("Prompt contains
/// X tokens … too large for model with Y maximum context length") is ContextWindowExceeded;
/// 402 is taken as QuotaExhausted (listed by Mistral but undocumented); 400, 401, 403, 404 and
/// 422 are not retried. The snapshot comes from [`headers::mistral`], and the tokens Mistral
/// charged (`ratelimitbysize-query-cost`) become the verdict's usage.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::Mistral;
///
/// let body = br#"{"object":"error","message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_error","param":null,"code":null}"#;
/// let verdict = Mistral::new().verdict(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::ContextWindowExceeded));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Mistral {}

impl Mistral {
    const SPEC: Spec = Spec {
        should_retry: false,
        snapshot: Snapshot::Relative(headers::mistral),
        body_hints: true,
        query_cost: true,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Mistral {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, body: &ErrorBody<'_>) -> Option<Failure> {
        let class = ErrorClass::of_status(status)?;
        if status.is_client_error()
            && status != StatusCode::TOO_MANY_REQUESTS
            && context_window_exceeded(body)
        {
            return Some(Failure::new(ErrorClass::ContextWindowExceeded));
        }
        Some(Failure::new(class))
    }
}

classifier!(Mistral);
