//! [`Judge`]: the verdict on one attempt, and the request's deadline.

use std::fmt;

use tokio::time::Instant;
use tollgate_core::observe::Observe;
use tollgate_core::{BoxError, Classify, Deadline, ResponseView, Verdict, transport_verdict};
use tollgate_providers::Generic;

use tollgate_core::packed::PackedHeaders;

/// Judges each attempt's outcome, for requests of type `Req` and responses of type `Res`.
pub trait Judge<Req, Res> {
    /// The verdict: [`Verdict::success`] for a success.
    fn judge(&self, outcome: Result<&Res, &BoxError>) -> Verdict;

    /// When the request must be done by, if it says.
    fn deadline(&self, request: &Req) -> Option<Instant> {
        let _ = request;
        None
    }

    /// The observer to report retries to, if the request carries one.
    fn observe(&self, request: &Req) -> Option<Observe> {
        let _ = request;
        None
    }

    /// A copy of `request` kept for the attempts after the first, taken before the first
    /// attempt consumes it (which gets `request` itself, as it was). By default a clone;
    /// [`HttpJudge`] keeps the headers packed in one buffer, a cheaper copy than a `HeaderMap`
    /// clone, rebuilt only when a retry is made.
    fn keep(&self, request: &mut Req) -> Kept<Req>
    where
        Req: Clone,
    {
        Kept::new(request.clone())
    }

    /// The request for another attempt, from the copy [`keep`](Self::keep) made: equal to the
    /// original. By default a clone of the copy.
    fn replay(&self, kept: &Kept<Req>) -> Req
    where
        Req: Clone,
    {
        kept.request.clone()
    }
}

/// A request kept for a retry by [`Judge::keep`].
pub struct Kept<Req> {
    /// The request, without its headers when they are packed.
    request: Req,
    headers: Option<PackedHeaders>,
}

impl<Req> Kept<Req> {
    /// `request`, kept whole.
    pub fn new(request: Req) -> Self {
        Kept {
            request,
            headers: None,
        }
    }
}

impl<Req> fmt::Debug for Kept<Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The request's headers may hold secrets.
        f.debug_struct("Kept")
            .field("packed", &self.headers.is_some())
            .finish_non_exhaustive()
    }
}

/// Judges HTTP responses: the [`Verdict`] a `ClassifyLayer` below attached, or else the
/// classifier's verdict on the status and headers (by default [`Generic`], the official SDKs'
/// rules); errors by the verdict they carry ([`Classified`](tollgate_core::Classified)), or as
/// transport errors ([`transport_verdict`]). The deadline is the request's
/// [`Deadline`] extension.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpJudge<C = Generic> {
    classifier: C,
}

impl HttpJudge {
    /// With the generic classifier.
    pub const fn new() -> Self {
        HttpJudge {
            classifier: Generic::new(),
        }
    }
}

impl<C> HttpJudge<C> {
    /// With `classifier` for responses that carry no verdict.
    pub const fn with_classifier(classifier: C) -> Self {
        HttpJudge { classifier }
    }
}

impl<B, ResBody, C: Classify> Judge<http::Request<B>, http::Response<ResBody>> for HttpJudge<C> {
    fn judge(&self, outcome: Result<&http::Response<ResBody>, &BoxError>) -> Verdict {
        match outcome {
            Ok(response) => match Verdict::of_response(response) {
                // A success is the common case: no clone of its snapshot.
                Some(verdict) if verdict.is_success() => Verdict::success(),
                Some(verdict) => verdict.clone(),
                None if response.status().as_u16() < 400 => Verdict::success(),
                None => self.classifier.classify(&ResponseView::new(
                    response.status(),
                    response.headers(),
                    b"",
                )),
            },
            Err(error) => transport_verdict(&**error),
        }
    }

    fn deadline(&self, request: &http::Request<B>) -> Option<Instant> {
        Deadline::of(request).map(Deadline::instant)
    }

    fn observe(&self, request: &http::Request<B>) -> Option<Observe> {
        Observe::of(request).cloned()
    }

    /// Keeps the headers packed in one buffer and the rest of the request cloned (the URI's and
    /// the body's bytes are shared, not copied); headers that cannot be packed are cloned.
    #[inline(always)]
    fn keep(&self, request: &mut http::Request<B>) -> Kept<http::Request<B>>
    where
        http::Request<B>: Clone,
    {
        let packed = match request.headers().is_empty() {
            true => None,
            false => PackedHeaders::pack(request.headers()),
        };
        let Some(headers) = packed else {
            return Kept::new(request.clone());
        };
        // The clone without the headers; the first attempt gets them back.
        let taken = std::mem::take(request.headers_mut());
        let copy = request.clone();
        *request.headers_mut() = taken;
        Kept {
            request: copy,
            headers: Some(headers),
        }
    }

    fn replay(&self, kept: &Kept<http::Request<B>>) -> http::Request<B>
    where
        http::Request<B>: Clone,
    {
        let mut request = kept.request.clone();
        if let Some(headers) = &kept.headers {
            *request.headers_mut() = headers.unpack();
        }
        request
    }
}

/// A judge from a closure; see [`judge_fn`].
#[derive(Clone, Copy)]
pub struct JudgeFn<F> {
    f: F,
}

/// A [`Judge`] from a closure over the outcome, for any request type (no deadline).
///
/// # Examples
///
/// ```
/// use tollgate_core::{BoxError, ErrorClass, Verdict};
/// use tollgate_retry::{Judge, judge_fn};
///
/// // A service answering with a number of seconds to wait, zero for done.
/// let judge = judge_fn(|outcome: Result<&u32, &BoxError>| match outcome {
///     Ok(0) => Verdict::success(),
///     Ok(_) => Verdict::failure(ErrorClass::RateLimited),
///     Err(_) => Verdict::failure(ErrorClass::Connect),
/// });
/// assert!(Judge::<(), u32>::judge(&judge, Ok(&0)).is_success());
/// ```
pub const fn judge_fn<F>(f: F) -> JudgeFn<F> {
    JudgeFn { f }
}

impl<F> fmt::Debug for JudgeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JudgeFn").finish_non_exhaustive()
    }
}

impl<Req, Res, F> Judge<Req, Res> for JudgeFn<F>
where
    F: Fn(Result<&Res, &BoxError>) -> Verdict,
{
    fn judge(&self, outcome: Result<&Res, &BoxError>) -> Verdict {
        (self.f)(outcome)
    }
}
