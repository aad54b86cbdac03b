//! [`CacheBody`]: a stored body, or the upstream body passed through, or a prefix already read
//! and the rest of the upstream body.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tollgate_core::BoxError;

pin_project! {
    /// The response body of [`Cache`](crate::Cache).
    ///
    /// One of: the stored bytes (a hit, a coalesced response, or a miss that was read to its
    /// end and stored); the upstream body passed through (a request that is not cacheable, or
    /// a response that is not storable); or what was already read of the upstream body followed
    /// by the rest of it (a response too large to store, or one whose body failed while being
    /// read — its bytes and its error still reach the caller, in order).
    pub struct CacheBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Stored { bytes: Option<Bytes> },
        Upstream { #[pin] body: B },
        Prefix {
            prefix: VecDeque<Frame<Bytes>>,
            error: Option<BoxError>,
            rest: Option<Pin<Box<B>>>,
        },
    }
}

impl<B> CacheBody<B> {
    pub(crate) fn stored(bytes: Bytes) -> Self {
        CacheBody {
            kind: Kind::Stored {
                bytes: (!bytes.is_empty()).then_some(bytes),
            },
        }
    }

    pub(crate) fn upstream(body: B) -> Self {
        CacheBody {
            kind: Kind::Upstream { body },
        }
    }

    /// A body read whole but not stored.
    pub(crate) fn read(bytes: Bytes) -> Self {
        let prefix = (!bytes.is_empty()).then(|| Frame::data(bytes));
        CacheBody {
            kind: Kind::Prefix {
                prefix: prefix.into_iter().collect(),
                error: None,
                rest: None,
            },
        }
    }

    /// `prefix`, then `error` if any (and nothing after it), else the rest of `rest`.
    pub(crate) fn prefix(
        prefix: VecDeque<Frame<Bytes>>,
        error: Option<BoxError>,
        rest: Pin<Box<B>>,
    ) -> Self {
        let rest = error.is_none().then_some(rest);
        CacheBody {
            kind: Kind::Prefix {
                prefix,
                error,
                rest,
            },
        }
    }

    /// Whether this body is the stored bytes.
    pub fn is_stored(&self) -> bool {
        matches!(self.kind, Kind::Stored { .. })
    }
}

impl<B> Body for CacheBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Stored { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            KindProj::Upstream { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Prefix {
                prefix,
                error,
                rest,
            } => {
                if let Some(frame) = prefix.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = error.take() {
                    return Poll::Ready(Some(Err(error)));
                }
                match rest {
                    Some(rest) => rest.as_mut().poll_frame(cx).map_err(Into::into),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stored { bytes } => bytes.is_none(),
            Kind::Upstream { body } => body.is_end_stream(),
            Kind::Prefix {
                prefix,
                error,
                rest,
            } => {
                prefix.is_empty()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|r| r.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stored { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Upstream { body } => body.size_hint(),
            Kind::Prefix {
                prefix,
                error,
                rest,
            } => {
                let read: u64 = prefix
                    .iter()
                    .filter_map(Frame::data_ref)
                    .map(|d| d.len() as u64)
                    .sum();
                match rest {
                    Some(rest) => {
                        let hint = rest.size_hint();
                        let mut out = SizeHint::new();
                        out.set_lower(hint.lower().saturating_add(read));
                        if let Some(upper) = hint.upper() {
                            out.set_upper(upper.saturating_add(read));
                        }
                        out
                    }
                    // Read to its end: exactly what is left of the prefix.
                    None if error.is_none() => SizeHint::with_exact(read),
                    None => SizeHint::new(),
                }
            }
        }
    }
}

impl<B> fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Stored { .. } => "stored",
            Kind::Upstream { .. } => "upstream",
            Kind::Prefix { .. } => "prefix",
        };
        f.debug_struct("CacheBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}
