//! The Amazon Bedrock classifier.

use http::{HeaderMap, StatusCode};
use tollgate_core::ErrorClass;

use crate::body::ErrorBody;
use crate::rules::{Failure, Snapshot, Spec, classifier};
use crate::signals::context_window_exceeded;

/// The Amazon Bedrock classifier, by the exception name in `x-amzn-ErrorType` (or the body's
/// `__type`), then the status.
///
/// | exception | class |
/// |---|---|
/// | `ThrottlingException` | RateLimited |
/// | `ServiceQuotaExceededException` | QuotaExhausted |
/// | `ModelNotReadyException`, `ServiceUnavailableException` | Overloaded |
/// | `ModelTimeoutException` | Timeout |
/// | `InternalServerException`, `ModelErrorException`, `ModelStreamErrorException` | ServerError |
/// | `ValidationException` "Input is too long for requested model", "too many input tokens" | ContextWindowExceeded |
/// | `ValidationException` (other) | BadRequest |
/// | `AccessDeniedException` | PermissionDenied |
/// | `UnrecognizedClientException` | Unauthorized |
/// | `ResourceNotFoundException` | NotFound |
/// | `ConflictException` | Conflict |
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ErrorClass;
/// use tollgate_providers::Bedrock;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-amzn-errortype", "ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/".parse().unwrap());
/// let verdict = Bedrock::new().verdict(StatusCode::TOO_MANY_REQUESTS, &headers, br#"{"message":"Model is not ready"}"#);
/// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Bedrock {}

impl Bedrock {
    const SPEC: Spec = Spec {
        should_retry: false,
        snapshot: Snapshot::None,
        body_hints: false,
        query_cost: false,
        errors_in_success: false,
    };

    /// The classifier.
    pub const fn new() -> Self {
        Bedrock {}
    }

    fn failure(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &ErrorBody<'_>,
    ) -> Option<Failure> {
        let by_status = ErrorClass::of_status(status)?;
        let header = headers
            .get("x-amzn-errortype")
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
        // "ThrottlingException:http://…" in the header; "com.amazon.coral…#ThrottlingException" in
        // the body.
        let exception = header
            .map(|h| h.split(':').next().unwrap_or(h))
            .or_else(|| {
                body.aws_type
                    .as_deref()
                    .map(|t| t.rsplit('#').next().unwrap_or(t))
            })
            .map(str::trim);
        let class = match exception {
            Some("ThrottlingException") => ErrorClass::RateLimited,
            Some("ServiceQuotaExceededException") => ErrorClass::QuotaExhausted,
            Some("ModelNotReadyException" | "ServiceUnavailableException") => {
                ErrorClass::Overloaded
            }
            Some("ModelTimeoutException") => ErrorClass::Timeout,
            Some(
                "InternalServerException" | "ModelErrorException" | "ModelStreamErrorException",
            ) => ErrorClass::ServerError,
            Some("ValidationException") if context_window_exceeded(body) => {
                ErrorClass::ContextWindowExceeded
            }
            Some("ValidationException") => ErrorClass::BadRequest,
            Some("AccessDeniedException") => ErrorClass::PermissionDenied,
            Some("UnrecognizedClientException") => ErrorClass::Unauthorized,
            Some("ResourceNotFoundException") => ErrorClass::NotFound,
            Some("ConflictException") => ErrorClass::Conflict,
            _ if status == StatusCode::BAD_REQUEST && context_window_exceeded(body) => {
                ErrorClass::ContextWindowExceeded
            }
            _ => by_status,
        };
        Some(Failure::new(class))
    }
}

classifier!(Bedrock);
