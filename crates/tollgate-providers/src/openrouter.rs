//! The OpenRouter classifier.

use http::{HeaderMap, StatusCode};
use tollgate_core::{ErrorClass, RetryAdvice, headers};

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier, is_event_stream};
use crate::signals::context_window_exceeded;

/// The OpenRouter classifier (`{"error":{"code":<int>,"message","metadata"?}}` bodies).
///
/// OpenRouter answers with a non-200 status only for invalid requests and missing credits; other
/// errors can arrive with **HTTP 200** and the error in the body, so a 200 whose body carries an
/// `error` object is classified by its `error.code`. For that, this classifier asks
/// [`ClassifyLayer`](crate::ClassifyLayer) for the body of every non-streaming success too
/// ([`Classify::needs_body`](tollgate_core::Classify::needs_body)); an event stream
/// (`text/event-stream`) is passed through at once; [`ClassifyLayer`](crate::ClassifyLayer)
/// follows it and classifies its mid-stream error chunks with this classifier.
///
/// | response | class | advice |
/// |---|---|---|
/// | 402 (credits used up, negative balance) | QuotaExhausted | elsewhere |
/// | 403 with moderation `metadata` | ContentPolicy | elsewhere |
/// | 502 / 503 (upstream down or overloaded) | Overloaded | **elsewhere**: switch now |
/// | 408 | Timeout | same target |
/// | 429 | RateLimited | same target |
/// | 400 with the upstream's context-window message | ContextWindowExceeded | elsewhere |
///
/// The snapshot comes from [`headers::openrouter`].
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{ErrorClass, RetryAdvice};
/// use tollgate_providers::OpenRouter;
///
/// let body = br#"{"error":{"code":503,"message":"Provider returned error","metadata":{"provider_name":"Example"}}}"#;
/// let verdict = OpenRouter::new().verdict(StatusCode::OK, &HeaderMap::new(), body);
/// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
/// assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct OpenRouter {}

impl OpenRouter {
    const SPEC: Spec = Spec {
        should_retry: true,
        snapshot: Snapshot::Absolute(headers::openrouter),
        body_hints: true,
        query_cost: false,
        errors_in_success: true,
    };

    /// The classifier.
    pub const fn new() -> Self {
        OpenRouter {}
    }

    fn failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &ErrorBody<'_>,
    ) -> Option<Failure> {
        // An error inside a 200 carries its status as `error.code`; an event stream is not read
        // (`needs_body` says so), so its bytes never decide the verdict either.
        let status = if status.is_success() && body.message.is_some() && !is_event_stream(headers) {
            body.code
                .as_ref()
                .and_then(|c| c.as_number())
                .and_then(|n| u16::try_from(n).ok())
                .and_then(|n| StatusCode::from_u16(n).ok())
                .filter(|s| s.as_u16() >= 400)
                .unwrap_or(status)
        } else {
            status
        };
        let class = ErrorClass::of_status(status)?;
        let failure = match status.as_u16() {
            403 if body.moderation => Failure::new(ErrorClass::ContentPolicy),
            502 | 503 => Failure::new(ErrorClass::Overloaded).advice(RetryAdvice::Elsewhere),
            400..=499 if status.as_u16() != 429 && context_window_exceeded(body) => {
                Failure::new(ErrorClass::ContextWindowExceeded)
            }
            _ => Failure::new(class),
        };
        Some(failure)
    }
}

classifier!(OpenRouter);
