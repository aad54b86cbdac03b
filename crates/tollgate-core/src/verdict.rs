//! [`Verdict`]: what one response or transport error means, said once for every layer.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::{BoxError, ErrorClass, RateLimitSnapshot, RetryAdvice};

/// Where a server-requested delay came from, in the order a classifier prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DelaySource {
    /// `retry-after-ms` or `x-ms-retry-after-ms`, in milliseconds.
    RetryAfterMs,
    /// `retry-after` as a number of seconds.
    RetryAfterSeconds,
    /// `retry-after` as an HTTP-date, minus the time the response was received.
    RetryAfterDate,
    /// A hint in the error body: Gemini's `RetryInfo.retryDelay`, "Please try again in 1.146s",
    /// "retry after 37 seconds".
    BodyHint,
    /// The reset header of a rate-limit dimension reported as used up.
    ResetHeader,
    /// Not the server: a client-side quota (`RateLimitLayer`) refused the request and computed
    /// when it would fit.
    LocalQuota,
    /// Not the server: a circuit breaker refused the request, open for this much longer.
    BreakerOpen,
    /// The server gave no delay; the retry layer's backoff decides.
    #[default]
    None,
}

impl DelaySource {
    /// A stable `snake_case` name for labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DelaySource::RetryAfterMs => "retry_after_ms",
            DelaySource::RetryAfterSeconds => "retry_after_seconds",
            DelaySource::RetryAfterDate => "retry_after_date",
            DelaySource::BodyHint => "body_hint",
            DelaySource::ResetHeader => "reset_header",
            DelaySource::LocalQuota => "local_quota",
            DelaySource::BreakerOpen => "breaker_open",
            DelaySource::None => "none",
        }
    }
}

impl fmt::Display for DelaySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token usage as the response reported it.
///
/// # Examples
///
/// ```
/// use tollgate_core::Usage;
///
/// let usage = Usage::new().with_input_tokens(1_200).with_output_tokens(300);
/// assert_eq!(usage.total_tokens(), Some(1_500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt (input) tokens.
    pub input_tokens: Option<u64>,
    /// Completion (output) tokens.
    pub output_tokens: Option<u64>,
    /// Input tokens served from the provider's prompt cache (included in `input_tokens`).
    pub cached_input_tokens: Option<u64>,
    /// Total tokens, when the provider reports a total rather than (or as well as) the parts,
    /// e.g. Mistral's `ratelimitbysize-query-cost`.
    pub total_tokens: Option<u64>,
}

impl Usage {
    /// Empty usage.
    pub const fn new() -> Self {
        Usage {
            input_tokens: None,
            output_tokens: None,
            cached_input_tokens: None,
            total_tokens: None,
        }
    }

    /// Sets the input tokens.
    #[must_use]
    pub const fn with_input_tokens(mut self, n: u64) -> Self {
        self.input_tokens = Some(n);
        self
    }

    /// Sets the output tokens.
    #[must_use]
    pub const fn with_output_tokens(mut self, n: u64) -> Self {
        self.output_tokens = Some(n);
        self
    }

    /// Sets the cached input tokens.
    #[must_use]
    pub const fn with_cached_input_tokens(mut self, n: u64) -> Self {
        self.cached_input_tokens = Some(n);
        self
    }

    /// Sets the reported total.
    #[must_use]
    pub const fn with_total_tokens(mut self, n: u64) -> Self {
        self.total_tokens = Some(n);
        self
    }

    /// The reported total, or input plus output when only the parts were reported.
    pub fn total_tokens(&self) -> Option<u64> {
        match (self.total_tokens, self.input_tokens, self.output_tokens) {
            (Some(total), _, _) => Some(total),
            (None, None, None) => None,
            (None, input, output) => Some(input.unwrap_or(0).saturating_add(output.unwrap_or(0))),
        }
    }

    /// Whether nothing was reported.
    pub const fn is_empty(&self) -> bool {
        self.input_tokens.is_none()
            && self.output_tokens.is_none()
            && self.cached_input_tokens.is_none()
            && self.total_tokens.is_none()
    }
}

/// What one response (or transport error) means: the [`ErrorClass`] (none for a success), the
/// [`RetryAdvice`], the server's requested delay and its [`DelaySource`], the
/// [`RateLimitSnapshot`] from the headers, and the [`Usage`] when reported.
///
/// A classifier computes the verdict once, nearest the wire, and attaches it to the response's
/// extensions (or wraps the transport error in a [`Classified`]); every layer above reads the same
/// verdict with [`Verdict::of_response`] or [`Verdict::of_error`], or judges the outcome with
/// [`Verdict::of_outcome`], which also covers the one verdict a classifier leaves out: a
/// [plain success](Verdict::is_plain_success) on a status below 400.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::{DelaySource, ErrorClass, RetryAdvice, Verdict};
///
/// let verdict = Verdict::failure(ErrorClass::RateLimited)
///     .with_delay(Duration::from_millis(1_146), DelaySource::BodyHint);
/// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
/// assert_eq!(verdict.advice(), RetryAdvice::SameTarget);
/// assert_eq!(verdict.delay(), Some(Duration::from_millis(1_146)));
/// assert_eq!(verdict.delay_source(), DelaySource::BodyHint);
///
/// let mut response = http::Response::new(());
/// response.extensions_mut().insert(verdict.clone());
/// assert_eq!(Verdict::of_response(&response), Some(&verdict));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    class: Option<ErrorClass>,
    advice: RetryAdvice,
    delay: Option<Duration>,
    delay_source: DelaySource,
    status: Option<StatusCode>,
    rate_limits: RateLimitSnapshot,
    usage: Option<Usage>,
    local: bool,
}

// ===== impl Verdict =====

impl Verdict {
    /// A success: no class, advice [`Never`](RetryAdvice::Never) (nothing to retry).
    #[inline]
    pub const fn success() -> Self {
        Verdict {
            class: None,
            advice: RetryAdvice::Never,
            delay: None,
            delay_source: DelaySource::None,
            status: None,
            rate_limits: RateLimitSnapshot::new(),
            usage: None,
            local: false,
        }
    }

    /// A failure of the given class, with the class's
    /// [default advice](ErrorClass::default_advice).
    pub const fn failure(class: ErrorClass) -> Self {
        Verdict {
            class: Some(class),
            advice: class.default_advice(),
            delay: None,
            delay_source: DelaySource::None,
            status: None,
            rate_limits: RateLimitSnapshot::new(),
            usage: None,
            local: false,
        }
    }

    /// Replaces the advice.
    #[must_use]
    pub const fn with_advice(mut self, advice: RetryAdvice) -> Self {
        self.advice = advice;
        self
    }

    /// Sets the server's requested delay and where it came from. A zero delay counts as absent,
    /// as do [`DelaySource::None`] and any delay given with it.
    #[must_use]
    pub const fn with_delay(mut self, delay: Duration, source: DelaySource) -> Self {
        if delay.is_zero() || matches!(source, DelaySource::None) {
            self.delay = None;
            self.delay_source = DelaySource::None;
        } else {
            self.delay = Some(delay);
            self.delay_source = source;
        }
        self
    }

    /// `wait` as the delay, keeping the verdict's own delay source (a server-given delay
    /// overridden by a layer's longer wait keeps where it came from); a verdict that had none
    /// gets [`DelaySource::LocalQuota`], a wait computed on this side. What a layer that gives
    /// up with a wait (a retry layer past its deadline, a fallback whose targets all cool
    /// down) hands on with its refusal.
    #[must_use]
    pub const fn with_wait(self, wait: Duration) -> Self {
        let source = match self.delay_source {
            DelaySource::None => DelaySource::LocalQuota,
            source => source,
        };
        self.with_delay(wait, source)
    }

    /// Removes any server delay.
    #[must_use]
    pub const fn without_delay(mut self) -> Self {
        self.delay = None;
        self.delay_source = DelaySource::None;
        self
    }

    /// Records the HTTP status the verdict was computed from.
    #[must_use]
    #[inline]
    pub const fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the rate-limit snapshot.
    #[must_use]
    #[inline]
    pub fn with_rate_limits(mut self, snapshot: RateLimitSnapshot) -> Self {
        self.rate_limits = snapshot;
        self
    }

    /// Sets the reported usage. Empty usage is stored as none.
    #[must_use]
    #[inline]
    pub const fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = if usage.is_empty() { None } else { Some(usage) };
        self
    }

    /// The failure class, or `None` for a success.
    pub const fn class(&self) -> Option<ErrorClass> {
        self.class
    }

    /// Whether the response was a success.
    pub const fn is_success(&self) -> bool {
        self.class.is_none()
    }

    /// Whether it is a success that says nothing more: no rate-limit readings, no usage, no
    /// delay. On a response with a status below 400 such a verdict tells a reader what the
    /// absence of a verdict tells it ([`of_outcome`](Self::of_outcome)), so a classifier does
    /// not attach it (an insertion into a response's empty extensions costs three allocations).
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_core::{Dimension, LimitReading, RateLimitSnapshot, Verdict, Window};
    ///
    /// let ok = Verdict::success().with_status(http::StatusCode::OK);
    /// assert!(ok.is_plain_success());
    /// let mut read = RateLimitSnapshot::new();
    /// read.set(Dimension::Requests, Window::Minute, LimitReading::new().with_remaining(9));
    /// assert!(!ok.with_rate_limits(read).is_plain_success());
    /// ```
    pub fn is_plain_success(&self) -> bool {
        self.class.is_none()
            && self.delay.is_none()
            && self.usage.is_none()
            && self.rate_limits.is_empty()
    }

    /// What may help.
    pub const fn advice(&self) -> RetryAdvice {
        self.advice
    }

    /// Whether the same request may be sent to the same target again
    /// (advice [`SameTarget`](RetryAdvice::SameTarget)).
    pub const fn is_retryable(&self) -> bool {
        self.advice.retry_same_target()
    }

    /// The delay the server asked for, if it gave a valid one. [`Duration::MAX`] when it asked
    /// for a number too large to represent (`retry-after: 99999999999999999999999999999999999`):
    /// longer than any cap, so a retry layer gives up at once rather than backing off.
    pub const fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// Where [`delay`](Self::delay) came from; [`DelaySource::None`] when there is none.
    pub const fn delay_source(&self) -> DelaySource {
        self.delay_source
    }

    /// The HTTP status, or `None` for a transport error or a verdict built by hand.
    pub const fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The provider's rate-limit headers, parsed.
    pub const fn rate_limits(&self) -> &RateLimitSnapshot {
        &self.rate_limits
    }

    /// The token usage the response reported, if any.
    pub const fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The verdict marked as a *local refusal*: a layer of this process refused the request,
    /// which was never sent — an open breaker, a spent quota, a full concurrency cap. It says
    /// nothing of the target's health (a breaker does not count it), and the layer that
    /// spreads requests over deployments moves on from it.
    #[must_use]
    pub const fn refused_locally(mut self) -> Self {
        self.local = true;
        self
    }

    /// Whether a layer of this process refused the request without sending it.
    pub const fn is_local_refusal(&self) -> bool {
        self.local
    }

    /// The verdict on a response that carries none, from its status and headers alone: the
    /// official SDKs' status rules (PROVIDERS.md §4: 408, 409, 429 and 5xx retryable; 503 and
    /// 529 overloads, 504 a timeout), `x-should-retry`, and the delay the headers ask for
    /// (`retry-after-ms`, `retry-after`). A provider's classifier knows more (its error bodies,
    /// its rate-limit headers); this is what is left without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use http::{HeaderMap, StatusCode};
    /// use tollgate_core::{ErrorClass, Verdict};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", "7".parse().unwrap());
    /// let verdict = Verdict::of_status(StatusCode::TOO_MANY_REQUESTS, &headers, SystemTime::now());
    /// assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
    /// assert_eq!(verdict.delay(), Some(Duration::from_secs(7)));
    /// assert!(Verdict::of_status(StatusCode::OK, &headers, SystemTime::now()).is_success());
    /// ```
    pub fn of_status(
        status: StatusCode,
        headers: &http::HeaderMap,
        now: std::time::SystemTime,
    ) -> Verdict {
        let Some(class) = ErrorClass::of_status(status) else {
            return Verdict::success().with_status(status);
        };
        let mut verdict = Verdict::failure(class).with_status(status);
        match crate::headers::should_retry(headers) {
            Some(false) if verdict.advice == RetryAdvice::SameTarget => {
                verdict.advice = RetryAdvice::Never;
            }
            Some(true) if !class.is_deterministic() => verdict.advice = RetryAdvice::SameTarget,
            _ => {}
        }
        match crate::headers::server_delay(headers, now) {
            Some((delay, source)) => verdict.with_delay(delay, source),
            None => verdict,
        }
    }

    /// The verdict on an outcome, for any layer that must judge one: a response's attached
    /// verdict (a `ClassifyLayer` below), else [`of_status`](Self::of_status); an error's
    /// verdict ([`of_error`](Self::of_error): a [`Classified`] or [`Judged`] in its source
    /// chain — every tollgate layer's refusal carries one), else the transport rules
    /// ([`transport_verdict`](crate::transport_verdict)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_core::{BoxError, ErrorClass, Judged, Verdict};
    ///
    /// let ok = http::Response::new(());
    /// assert!(Verdict::of_outcome(Ok(&ok)).is_success());
    /// let refused: BoxError = Judged::new(Verdict::failure(ErrorClass::Overloaded)).into();
    /// let verdict = Verdict::of_outcome::<()>(Err(&*refused));
    /// assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    /// ```
    pub fn of_outcome<B>(outcome: Result<&http::Response<B>, &(dyn Error + 'static)>) -> Verdict {
        match outcome {
            Ok(response) => match Verdict::of_response(response) {
                // A success is the common case: no clone of its snapshot.
                Some(verdict) if verdict.is_success() => Verdict::success(),
                Some(verdict) => verdict.clone(),
                None if response.status().as_u16() < 400 => Verdict::success(),
                None => Verdict::of_status(
                    response.status(),
                    response.headers(),
                    std::time::SystemTime::now(),
                ),
            },
            Err(error) => crate::transport_verdict(error),
        }
    }

    /// The verdict attached to a response's extensions, if a classifier ran and had more to say
    /// than a [plain success](Self::is_plain_success) (which it does not attach to a status below
    /// 400: use [`of_outcome`](Self::of_outcome) to judge any response).
    #[inline]
    pub fn of_response<B>(response: &http::Response<B>) -> Option<&Verdict> {
        response.extensions().get::<Verdict>()
    }

    /// The verdict attached to an error: the error itself or any error in its
    /// [`source`](Error::source) chain that is a [`Classified`] (an error with its verdict) or
    /// a [`Judged`] (a verdict alone: how every tollgate layer's own refusal carries one).
    pub fn of_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Verdict> {
        let mut current: Option<&'a (dyn Error + 'static)> = Some(error);
        while let Some(err) = current {
            if let Some(classified) = err.downcast_ref::<Classified>() {
                return Some(&classified.verdict);
            }
            if let Some(judged) = err.downcast_ref::<Judged>() {
                return Some(&judged.verdict);
            }
            current = err.source();
        }
        None
    }
}

/// A [`Verdict`] standing alone as an error, wrapping nothing: the
/// [`source`](Error::source) through which a layer's own refusal — an open breaker, a spent
/// quota, a full concurrency cap, a fallback out of targets — tells every layer above what it
/// means. [`Verdict::of_error`] finds it as it finds a [`Classified`], so no layer needs to know
/// another's error types.
///
/// # Examples
///
/// ```
/// use std::fmt;
/// use tollgate_core::{BoxError, ErrorClass, Judged, Verdict};
///
/// #[derive(Debug)]
/// struct Busy(Judged);
/// impl fmt::Display for Busy {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("busy")
///     }
/// }
/// impl std::error::Error for Busy {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// let verdict = Verdict::failure(ErrorClass::RateLimited).refused_locally();
/// let error: BoxError = Busy(Judged::new(verdict)).into();
/// let seen = Verdict::of_error(&*error).unwrap();
/// assert_eq!(seen.class(), Some(ErrorClass::RateLimited));
/// assert!(seen.is_local_refusal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    verdict: Verdict,
}

impl Judged {
    /// `verdict`, as an error.
    pub const fn new(verdict: Verdict) -> Self {
        Judged { verdict }
    }

    /// The verdict.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The verdict, by value.
    pub fn into_verdict(self) -> Verdict {
        self.verdict
    }
}

impl fmt::Display for Judged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verdict.class() {
            Some(class) => write!(f, "judged {class}")?,
            None => f.write_str("judged a success")?,
        }
        if self.verdict.is_local_refusal() {
            f.write_str(", refused locally")?;
        }
        match self.verdict.delay() {
            Some(delay) => write!(f, ", retry in {delay:?}"),
            None => Ok(()),
        }
    }
}

impl Error for Judged {}

/// A transport error together with its [`Verdict`].
///
/// `ClassifyLayer` wraps every error of the service below it in a `Classified`, so layers
/// above can read the verdict with [`Verdict::of_error`] and the original error with
/// [`source`](Error::source) or [`Classified::into_inner`].
///
/// # Examples
///
/// ```
/// use std::io;
/// use tollgate_core::{BoxError, Classified, ErrorClass, Verdict};
///
/// let io = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
/// let err: BoxError = Classified::new(Verdict::failure(ErrorClass::Connect), io).into();
/// let verdict = Verdict::of_error(err.as_ref()).unwrap();
/// assert_eq!(verdict.class(), Some(ErrorClass::Connect));
/// assert_eq!(err.to_string(), "connect: connection refused");
/// ```
#[derive(Debug)]
pub struct Classified {
    verdict: Verdict,
    source: BoxError,
}

impl Classified {
    /// Wraps an error with its verdict.
    pub fn new(verdict: Verdict, source: impl Into<BoxError>) -> Self {
        Classified {
            verdict,
            source: source.into(),
        }
    }

    /// `error` with a verdict: as it is when it carries one already, else wrapped with what
    /// the transport rules say of it ([`transport_verdict`](crate::transport_verdict): a reset
    /// connection, an I/O timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tollgate_core::{Classified, Verdict};
    ///
    /// let reset = Classified::transport(io::Error::from(io::ErrorKind::ConnectionReset));
    /// assert!(Verdict::of_error(&*reset).is_some());
    /// let again = Classified::transport(reset);
    /// assert!(again.downcast_ref::<Classified>().unwrap().inner().is::<io::Error>());
    /// ```
    pub fn transport(error: impl Into<BoxError>) -> BoxError {
        let error = error.into();
        if Verdict::of_error(&*error).is_some() {
            return error;
        }
        let verdict = crate::transport_verdict(&*error);
        Box::new(Classified::new(verdict, error))
    }

    /// The verdict.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The wrapped error.
    pub fn inner(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.source.as_ref()
    }

    /// The wrapped error, by value.
    pub fn into_inner(self) -> BoxError {
        self.source
    }
}

impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verdict.class() {
            Some(class) => write!(f, "{class}: {}", self.source),
            None => fmt::Display::fmt(&self.source, f),
        }
    }
}

impl Error for Classified {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(Classified);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn of_error_walks_the_source_chain() {
        let inner = Classified::new(Verdict::failure(ErrorClass::Timeout), "deadline");
        let outer = Outer(inner);
        assert_eq!(
            Verdict::of_error(&outer).and_then(Verdict::class),
            Some(ErrorClass::Timeout)
        );
        let plain = std::io::Error::other("x");
        assert!(Verdict::of_error(&plain).is_none());
    }

    #[test]
    fn zero_delay_counts_as_absent() {
        let v = Verdict::failure(ErrorClass::RateLimited)
            .with_delay(Duration::ZERO, DelaySource::RetryAfterSeconds);
        assert_eq!(v.delay(), None);
        assert_eq!(v.delay_source(), DelaySource::None);
    }

    #[test]
    fn usage_total_falls_back_to_parts() {
        assert_eq!(Usage::new().total_tokens(), None);
        assert_eq!(Usage::new().with_output_tokens(7).total_tokens(), Some(7));
        assert_eq!(
            Usage::new()
                .with_input_tokens(1)
                .with_total_tokens(10)
                .total_tokens(),
            Some(10)
        );
    }
}
