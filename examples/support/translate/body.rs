//! The body of an answer on its way back to a caller of the other API: passed through, whole
//! (a non-streamed answer, translated once read), or translated frame by frame (an event
//! stream).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tollgate::BoxError;

use super::StreamTranslator;

pin_project! {
    /// An upstream's answer body as the caller receives it.
    #[project = Projected]
    pub(crate) enum TranslatedBody<B> {
        /// Same API, or an error answer (the gateway answers those itself): the frames as they
        /// come.
        Pass {
            #[pin]
            inner: B,
        },
        /// A non-streamed answer, read and translated: this one frame, then the end.
        Whole {
            bytes: Option<Bytes>,
        },
        /// An event stream: each frame through the translator, whose last bytes go at the end.
        Stream {
            #[pin]
            inner: B,
            translator: Box<StreamTranslator>,
            ended: bool,
        },
    }
}

impl<B> TranslatedBody<B> {
    /// `inner`, passed through unchanged.
    pub(crate) fn pass(inner: B) -> Self {
        TranslatedBody::Pass { inner }
    }

    /// `translated`: the whole answer, translated.
    pub(crate) fn whole(translated: Bytes) -> Self {
        TranslatedBody::Whole {
            bytes: Some(translated),
        }
    }

    /// `inner`'s events through `translator`.
    pub(crate) fn stream(inner: B, translator: StreamTranslator) -> Self {
        TranslatedBody::Stream {
            inner,
            translator: Box::new(translator),
            ended: false,
        }
    }
}

impl<B> Body for TranslatedBody<B>
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
        match self.project() {
            Projected::Pass { inner } => inner.poll_frame(cx).map_err(Into::into),
            Projected::Whole { bytes } => {
                Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes))))
            }
            Projected::Stream {
                mut inner,
                translator,
                ended,
            } => loop {
                if *ended {
                    return Poll::Ready(None);
                }
                let out = match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => translator.feed(&data),
                        // Trailers: an event stream has none worth translating.
                        Err(_) => continue,
                    },
                    Some(Err(error)) => return Poll::Ready(Some(Err(error.into()))),
                    None => {
                        *ended = true;
                        translator.finish()
                    }
                };
                if !out.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            TranslatedBody::Pass { inner } => inner.is_end_stream(),
            TranslatedBody::Whole { bytes } => bytes.is_none(),
            TranslatedBody::Stream { ended, .. } => *ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            TranslatedBody::Pass { inner } => inner.size_hint(),
            TranslatedBody::Whole { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
            TranslatedBody::Stream { .. } => SizeHint::default(),
        }
    }
}
