//! The [`Classify`] trait: turn a response or a transport error into a [`Verdict`].

use std::error::Error;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, StatusCode};

use crate::{ErrorClass, Verdict};

/// What a classifier sees of a response: its status, its headers, a peek at its body (at most
/// [`ResponseView::PEEK_LIMIT`] bytes when [`Classify::needs_body`] asked for it, as it does for
/// every error status; empty otherwise) and the time it was received (to turn HTTP-dates and
/// absolute reset times into delays).
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::ResponseView;
///
/// let headers = HeaderMap::new();
/// let view = ResponseView::new(StatusCode::TOO_MANY_REQUESTS, &headers, b"{}");
/// assert_eq!(view.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(view.body(), b"{}");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    status: StatusCode,
    headers: &'a HeaderMap,
    body: &'a [u8],
    /// `None`: now, read from the clock when asked (most verdicts never ask).
    received_at: Option<SystemTime>,
}

impl<'a> ResponseView<'a> {
    /// How many bytes of an error body a classifier is given at most: 64 KiB.
    pub const PEEK_LIMIT: usize = 64 * 1024;

    /// A view received now (the clock is read only if [`time`](Self::time) is asked). A `body`
    /// longer than [`PEEK_LIMIT`](Self::PEEK_LIMIT) is cut to it.
    pub fn new(status: StatusCode, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        ResponseView {
            status,
            headers,
            body: &body[..body.len().min(Self::PEEK_LIMIT)],
            received_at: None,
        }
    }

    /// Sets the time the response was received (tests pin it).
    #[must_use]
    pub fn received_at(mut self, at: SystemTime) -> Self {
        self.received_at = Some(at);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The peeked body bytes (possibly empty, possibly not UTF-8, possibly truncated JSON).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// When the response was received: the time set by [`received_at`](Self::received_at),
    /// else the clock's time now (a classifier reads it once, as it classifies).
    pub fn time(&self) -> SystemTime {
        self.received_at.unwrap_or_else(SystemTime::now)
    }
}

/// Turns responses and transport errors into [`Verdict`]s.
///
/// Provider classifiers (in `tollgate-providers`) implement it; so do `&C`, `Arc<C>`,
/// `Box<C>` for any `C: Classify`, and closures through [`classify_fn`].
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{Classify, ErrorClass, ResponseView, Verdict};
///
/// /// Treats every 5xx as an overload and everything else as success.
/// struct FiveHundredsAreOverload;
///
/// impl Classify for FiveHundredsAreOverload {
///     fn classify(&self, response: &ResponseView<'_>) -> Verdict {
///         if response.status().is_server_error() {
///             Verdict::failure(ErrorClass::Overloaded)
///         } else {
///             Verdict::success()
///         }
///     }
/// }
///
/// let headers = HeaderMap::new();
/// let view = ResponseView::new(StatusCode::BAD_GATEWAY, &headers, b"");
/// assert_eq!(FiveHundredsAreOverload.classify(&view).class(), Some(ErrorClass::Overloaded));
/// ```
pub trait Classify {
    /// Classifies a response from its status, headers and peeked body.
    fn classify(&self, response: &ResponseView<'_>) -> Verdict;

    /// Classifies an error from the transport (no response arrived). The default is
    /// [`transport_verdict`].
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Verdict {
        transport_verdict(error)
    }

    /// Whether [`classify`](Self::classify) needs to see the body of a response with this status
    /// and these headers. A layer reads the body ahead (up to [`ResponseView::PEEK_LIMIT`]) only
    /// when this says so, and otherwise classifies with an empty body, so a streamed success is
    /// never held back.
    ///
    /// The default is every error status (400 and above). A provider that reports errors inside
    /// successful responses (OpenRouter) also asks for those bodies.
    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        let _ = headers;
        status.as_u16() >= 400
    }
}

impl<C: Classify + ?Sized> Classify for &C {
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        (**self).classify(response)
    }
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Verdict {
        (**self).classify_error(error)
    }
    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        (**self).needs_body(status, headers)
    }
}

impl<C: Classify + ?Sized> Classify for Box<C> {
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        (**self).classify(response)
    }
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Verdict {
        (**self).classify_error(error)
    }
    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        (**self).needs_body(status, headers)
    }
}

impl<C: Classify + ?Sized> Classify for Arc<C> {
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        (**self).classify(response)
    }
    fn classify_error(&self, error: &(dyn Error + 'static)) -> Verdict {
        (**self).classify_error(error)
    }
    fn needs_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        (**self).needs_body(status, headers)
    }
}

/// A [`Classify`] built from a closure over the response; transport errors get
/// [`transport_verdict`]. Made by [`classify_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifyFn")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}

/// Makes a [`Classify`] from a closure.
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tollgate_core::{classify_fn, Classify, ErrorClass, ResponseView, Verdict};
///
/// let classifier = classify_fn(|response: &ResponseView<'_>| match response.status().as_u16() {
///     429 => Verdict::failure(ErrorClass::RateLimited),
///     _ => Verdict::success(),
/// });
/// let headers = HeaderMap::new();
/// let view = ResponseView::new(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
/// assert_eq!(classifier.classify(&view).class(), Some(ErrorClass::RateLimited));
/// ```
pub const fn classify_fn<F>(f: F) -> ClassifyFn<F>
where
    F: Fn(&ResponseView<'_>) -> Verdict,
{
    ClassifyFn { f }
}

impl<F> Classify for ClassifyFn<F>
where
    F: Fn(&ResponseView<'_>) -> Verdict,
{
    fn classify(&self, response: &ResponseView<'_>) -> Verdict {
        (self.f)(response)
    }
}

/// The verdict for an error from the transport, found by walking its
/// [`source`](Error::source) chain:
///
/// - an existing verdict ([`Verdict::of_error`]) is returned as is;
/// - `tokio::time::error::Elapsed`, or an [`io::Error`] of kind `TimedOut`, is
///   [`Timeout`](ErrorClass::Timeout);
/// - an [`io::Error`] of kind `ConnectionRefused`, `ConnectionReset`, `ConnectionAborted`,
///   `NotConnected`, `AddrNotAvailable`, `BrokenPipe` or `UnexpectedEof` is
///   [`Connect`](ErrorClass::Connect);
/// - an error whose own message is "operation timed out" or ends in "timed out" (the private
///   timeout types of HTTP clients such as reqwest, which cannot be named) is a
///   [`Timeout`](ErrorClass::Timeout);
/// - anything else is [`Unknown`](ErrorClass::Unknown) and not retried, since it is not known
///   whether the request reached the provider.
///
/// Timeouts and connection failures are retryable on the same target, as in the official SDKs.
///
/// # Examples
///
/// ```
/// use std::io;
/// use tollgate_core::{transport_verdict, ErrorClass};
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert_eq!(transport_verdict(&refused).class(), Some(ErrorClass::Connect));
/// assert!(transport_verdict(&refused).is_retryable());
/// ```
pub fn transport_verdict(error: &(dyn Error + 'static)) -> Verdict {
    if let Some(verdict) = Verdict::of_error(error) {
        return verdict.clone();
    }
    let mut class = None;
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(found) = typed_transport_class(err) {
            class = Some(found);
            break;
        }
        if class.is_none() && says_timed_out(err) {
            class = Some(ErrorClass::Timeout);
        }
        current = err.source();
    }
    Verdict::failure(class.unwrap_or(ErrorClass::Unknown))
}

fn typed_transport_class(err: &(dyn Error + 'static)) -> Option<ErrorClass> {
    if err.is::<tokio::time::error::Elapsed>() {
        return Some(ErrorClass::Timeout);
    }
    let io = err.downcast_ref::<io::Error>()?;
    match io.kind() {
        io::ErrorKind::TimedOut => Some(ErrorClass::Timeout),
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Some(ErrorClass::Connect),
        _ => None,
    }
}

fn says_timed_out(err: &(dyn Error + 'static)) -> bool {
    use std::fmt::Write;

    // Format into a small fixed buffer: a long message is not a timeout marker.
    struct Bounded {
        buf: [u8; 64],
        len: usize,
        overflow: bool,
    }
    impl Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = self.buf.len() - self.len;
            if s.len() > room {
                self.overflow = true;
                return Err(std::fmt::Error);
            }
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            Ok(())
        }
    }
    let mut out = Bounded {
        buf: [0; 64],
        len: 0,
        overflow: false,
    };
    if write!(out, "{err}").is_err() || out.overflow {
        return false;
    }
    let msg = out.buf[..out.len].to_ascii_lowercase();
    msg.ends_with(b"timed out") || msg.ends_with(b"timeout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<io::Error>);
    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn walks_to_io_kind() {
        let err = Wrap(
            "client error (Connect)",
            Some(io::ErrorKind::ConnectionReset.into()),
        );
        assert_eq!(transport_verdict(&err).class(), Some(ErrorClass::Connect));
    }

    #[test]
    fn opaque_timeout_message() {
        let err = Wrap("operation timed out", None);
        let verdict = transport_verdict(&err);
        assert_eq!(verdict.class(), Some(ErrorClass::Timeout));
        assert!(verdict.is_retryable());
    }

    #[test]
    fn unknown_is_not_retried() {
        let err = Wrap("something odd happened", None);
        let verdict = transport_verdict(&err);
        assert_eq!(verdict.class(), Some(ErrorClass::Unknown));
        assert!(!verdict.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_elapsed_is_timeout() {
        let elapsed = tokio::time::timeout(
            std::time::Duration::from_millis(1),
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            transport_verdict(&elapsed).class(),
            Some(ErrorClass::Timeout)
        );
    }
}
