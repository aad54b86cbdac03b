//! [`ErrorClass`] and [`RetryAdvice`]: what went wrong, and what may help.

use std::fmt;

/// What kind of failure a response or transport error is.
///
/// The class is the provider-independent name for a failure. Classifiers map each provider's
/// status codes, headers and error bodies onto it, and every layer decides from the class (and
/// the rest of the [`Verdict`](crate::Verdict)) rather than from raw status codes.
///
/// # Examples
///
/// ```
/// use tollgate_core::ErrorClass;
///
/// assert!(ErrorClass::Overloaded.counts_against_health());
/// assert!(!ErrorClass::RateLimited.counts_against_health());
/// assert_eq!(ErrorClass::QuotaExhausted.as_str(), "quota_exhausted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The caller exceeded a rate limit (requests or tokens per window). Retry after a delay.
    RateLimited,
    /// The account's quota, credit or spend limit is used up. Retrying will not help until a
    /// human or the billing period acts.
    QuotaExhausted,
    /// The provider is overloaded (Anthropic 529, 503 `server_is_overloaded`, Groq 498). Not the
    /// caller's quota.
    Overloaded,
    /// A server-side failure (500, 502, other 5xx).
    ServerError,
    /// The request timed out, at the provider (408, 504) or in transport.
    Timeout,
    /// The connection could not be made or was reset before a response arrived.
    Connect,
    /// The prompt plus the requested output does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider's content policy refused the request.
    ContentPolicy,
    /// The API key is missing, malformed or revoked (401; Gemini's 400 `API_KEY_INVALID`).
    Unauthorized,
    /// The key is valid but may not use this resource, model or region (403).
    PermissionDenied,
    /// The model, deployment or endpoint does not exist (404).
    NotFound,
    /// The request is malformed or invalid (400, 422).
    BadRequest,
    /// The request is larger than the target will ever accept (413; a request larger than the
    /// whole tokens-per-minute bucket).
    PayloadTooLarge,
    /// A conflicting concurrent operation (409); the SDKs retry it.
    Conflict,
    /// Nothing more specific fits.
    Unknown,
    /// A response body that ended before it was complete: an event stream cut off without its
    /// terminal event (`data: [DONE]`, `message_stop`). A fault of the target, like a server
    /// error; retried only while no byte of it reached the caller.
    Truncated,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 16] = [
        ErrorClass::RateLimited,
        ErrorClass::QuotaExhausted,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::ContextWindowExceeded,
        ErrorClass::ContentPolicy,
        ErrorClass::Unauthorized,
        ErrorClass::PermissionDenied,
        ErrorClass::NotFound,
        ErrorClass::BadRequest,
        ErrorClass::PayloadTooLarge,
        ErrorClass::Conflict,
        ErrorClass::Unknown,
        ErrorClass::Truncated,
    ];

    /// A stable `snake_case` name, suitable for metric labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::ContextWindowExceeded => "context_window_exceeded",
            ErrorClass::ContentPolicy => "content_policy",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::NotFound => "not_found",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::PayloadTooLarge => "payload_too_large",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Unknown => "unknown",
            ErrorClass::Truncated => "truncated",
        }
    }

    /// Whether this failure says the *target* is unhealthy, so a circuit breaker should count it.
    ///
    /// Server errors, overloads, timeouts, connection failures and truncated streams count. Rate
    /// limits, quota, context-window, policy and other 4xx errors say something about the caller or
    /// the request, not the target's health, and do not.
    pub const fn counts_against_health(self) -> bool {
        matches!(
            self,
            ErrorClass::ServerError
                | ErrorClass::Overloaded
                | ErrorClass::Timeout
                | ErrorClass::Connect
                | ErrorClass::Truncated
        )
    }

    /// The class the official SDKs' status rules give a status (PROVIDERS.md §4, §7 item 12),
    /// with 503, 529 and 498 as overloads and 504 as a timeout; `None` for a success (below
    /// 400).
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// use tollgate_core::ErrorClass;
    ///
    /// assert_eq!(ErrorClass::of_status(StatusCode::from_u16(529).unwrap()), Some(ErrorClass::Overloaded));
    /// assert_eq!(ErrorClass::of_status(StatusCode::OK), None);
    /// ```
    pub const fn of_status(status: http::StatusCode) -> Option<ErrorClass> {
        let class = match status.as_u16() {
            0..=399 => return None,
            400 | 422 => ErrorClass::BadRequest,
            401 => ErrorClass::Unauthorized,
            402 => ErrorClass::QuotaExhausted,
            403 => ErrorClass::PermissionDenied,
            404 => ErrorClass::NotFound,
            408 => ErrorClass::Timeout,
            409 => ErrorClass::Conflict,
            413 => ErrorClass::PayloadTooLarge,
            429 => ErrorClass::RateLimited,
            503 | 529 | 498 => ErrorClass::Overloaded,
            504 => ErrorClass::Timeout,
            500..=599 => ErrorClass::ServerError,
            _ => ErrorClass::Unknown,
        };
        Some(class)
    }

    /// Whether a failure of this class is decided by the request or the account, so that no
    /// hint (`x-should-retry: true`) can make it retryable: an exhausted quota, and a request
    /// or context too large, never fit however often they are sent.
    pub const fn is_deterministic(self) -> bool {
        matches!(
            self,
            ErrorClass::QuotaExhausted
                | ErrorClass::ContextWindowExceeded
                | ErrorClass::PayloadTooLarge
        )
    }

    /// The retry advice a classifier gives for this class when nothing else (a header such as
    /// `x-should-retry`, a provider quirk) says otherwise.
    ///
    /// | advice | classes |
    /// |---|---|
    /// | [`SameTarget`](RetryAdvice::SameTarget) | RateLimited, Overloaded, ServerError, Timeout, Connect, Conflict |
    /// | [`Elsewhere`](RetryAdvice::Elsewhere) | QuotaExhausted, ContextWindowExceeded, ContentPolicy, Unauthorized, PermissionDenied, NotFound |
    /// | [`Never`](RetryAdvice::Never) | BadRequest, PayloadTooLarge, Unknown |
    pub const fn default_advice(self) -> RetryAdvice {
        match self {
            ErrorClass::RateLimited
            | ErrorClass::Overloaded
            | ErrorClass::ServerError
            | ErrorClass::Timeout
            | ErrorClass::Connect
            | ErrorClass::Conflict
            | ErrorClass::Truncated => RetryAdvice::SameTarget,
            ErrorClass::QuotaExhausted
            | ErrorClass::ContextWindowExceeded
            | ErrorClass::ContentPolicy
            | ErrorClass::Unauthorized
            | ErrorClass::PermissionDenied
            | ErrorClass::NotFound => RetryAdvice::Elsewhere,
            ErrorClass::BadRequest | ErrorClass::PayloadTooLarge | ErrorClass::Unknown => {
                RetryAdvice::Never
            }
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What may help after a failure.
///
/// # Examples
///
/// ```
/// use tollgate_core::RetryAdvice;
///
/// assert!(RetryAdvice::SameTarget.retry_same_target());
/// assert!(!RetryAdvice::Elsewhere.retry_same_target());
/// assert!(RetryAdvice::Elsewhere.try_elsewhere());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RetryAdvice {
    /// Sending the request again will not help anywhere: the request itself is at fault, or the
    /// response was a success.
    #[default]
    Never,
    /// The failure is transient: the same request to the same target may succeed after a delay
    /// (the verdict's delay when the server gave one, backoff otherwise).
    SameTarget,
    /// This target cannot serve the request now, but another may (another key, deployment, model
    /// or provider); this target should cool down.
    Elsewhere,
}

impl RetryAdvice {
    /// Whether the retry layer may send the request to the same target again.
    pub const fn retry_same_target(self) -> bool {
        matches!(self, RetryAdvice::SameTarget)
    }

    /// Whether another target may succeed where this one failed. True for
    /// [`SameTarget`](RetryAdvice::SameTarget) too: a transient failure is worth moving on
    /// from when another target is healthy.
    pub const fn try_elsewhere(self) -> bool {
        matches!(self, RetryAdvice::SameTarget | RetryAdvice::Elsewhere)
    }

    /// A stable `snake_case` name for labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            RetryAdvice::Never => "never",
            RetryAdvice::SameTarget => "same_target",
            RetryAdvice::Elsewhere => "elsewhere",
        }
    }
}

impl fmt::Display for RetryAdvice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorClass::ALL.len());
    }

    #[test]
    fn breaker_counts_only_target_health() {
        let counted: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|c| c.counts_against_health())
            .collect();
        assert_eq!(
            counted,
            [
                ErrorClass::Overloaded,
                ErrorClass::ServerError,
                ErrorClass::Timeout,
                ErrorClass::Connect,
                ErrorClass::Truncated
            ]
        );
    }
}
