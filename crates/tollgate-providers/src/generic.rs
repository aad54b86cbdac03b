//! The generic classifier: the official SDKs' status rules.

use http::{HeaderMap, StatusCode};
use tollgate_core::{ErrorClass, headers};

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier};

/// The classifier of last resort: the status rules of the official OpenAI and Anthropic SDKs,
/// for any HTTP API. It decides from the status and headers only, never from the body (a
/// success body still gives the verdict its usage).
///
/// | status | class | retried on the same target |
/// |---|---|---|
/// | 408 / 409 | Timeout / Conflict | yes |
/// | 429 | RateLimited | yes |
/// | 500, 502, other 5xx | ServerError | yes |
/// | 503, 529 | Overloaded | yes |
/// | 504 | Timeout | yes |
/// | 400, 422 | BadRequest | no |
/// | 401 / 403 / 404 | Unauthorized / PermissionDenied / NotFound | no (advice: elsewhere) |
/// | 402 | QuotaExhausted | no (advice: elsewhere) |
/// | 413 | PayloadTooLarge | no |
/// | other 4xx | Unknown | no |
///
/// `x-should-retry: true` / `false` overrides the status rule, as in the SDKs (except that a
/// 402 stays unretried). The delay comes from `retry-after-ms`, `x-ms-retry-after-ms` and
/// `retry-after`, then from OpenAI-style `x-ratelimit-*` reset headers, which many
/// OpenAI-compatible servers send and which also give the snapshot ([`headers::openai`]).
/// For a named provider, use its classifier: the generic one cannot tell a quota 429 from a
/// rate limit.
///
/// [`headers::openai`]: tollgate_core::headers::openai
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::Generic;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", "2".parse().unwrap());
/// let verdict = Generic::new().verdict(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
/// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
/// assert_eq!(verdict.delay(), Some(std::time::Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Generic {}

impl Generic {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Relative(headers::openai),
        body_hints: false,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Generic {}
    }

    fn failure(&self, status: StatusCode, _: &HeaderMap, _: &ErrorBody<'_>) -> Option<Failure> {
        ErrorClass::of_status(status).map(Failure::new)
    }
}

classifier!(Generic);
