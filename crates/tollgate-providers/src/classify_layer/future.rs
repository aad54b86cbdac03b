//! [`ResponseFuture`] of [`ClassifyService`](super::ClassifyService).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Buf;
use http::Response;
use http::response::Parts;
use http_body::Body;
use pin_project_lite::pin_project;
use tollgate_core::{BoxError, Classified, Classify, ResponseView, StreamReport, Verdict};

use super::PeekedBody;
use super::body::Replay;
use crate::rules::is_event_stream;

/// At most this many frames are read ahead, whatever their size: a body of endless empty
/// frames cannot make the peek grow without bound.
const MAX_PEEK_FRAMES: usize = 1024;

pin_project! {
    /// The response future of [`ClassifyService`](super::ClassifyService).
    ///
    /// It waits for the inner response; when the classifier needs the body (every error status)
    /// it then reads the body ahead, up to the peek limit, before classifying and returning the
    /// response. A successful event stream is returned at once, its body followed as it passes
    /// (see the [module docs](super#event-streams)).
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the inner future, or the response being peeked, with its body.
    pub struct ResponseFuture<F, C, B: Body> {
        #[pin]
        state: State<F, B>,
        classifier: C,
        peek_limit: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B: Body> {
        Calling { #[pin] future: F },
        Peeking { parts: Option<Parts>, replay: Option<Replay<B>>, peek: Vec<u8> },
        Done,
    }
}

impl<F, C, B: Body> ResponseFuture<F, C, B> {
    pub(crate) const fn new(future: F, classifier: C, peek_limit: usize) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            classifier,
            peek_limit,
        }
    }
}

impl<F, C, B, E> Future for ResponseFuture<F, C, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    C: Classify + Clone + Send + Sync + 'static,
{
    type Output = Result<Response<PeekedBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let mut response = match ready!(future.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(classify_error(this.classifier, error.into())));
                        }
                    };
                    // Classified once, nearest the wire: a verdict already attached stands.
                    let classified = response.extensions().get::<Verdict>().is_some();
                    if classified
                        || *this.peek_limit == 0
                        || !this
                            .classifier
                            .needs_body(response.status(), response.headers())
                        || response.body().is_end_stream()
                    {
                        let followed = !classified && attach(this.classifier, &mut response);
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(if followed {
                            follow(this.classifier, response)
                        } else {
                            response.map(PeekedBody::direct)
                        }));
                    }
                    let (parts, body) = response.into_parts();
                    this.state.set(State::Peeking {
                        parts: Some(parts),
                        replay: Some(Replay {
                            frames: VecDeque::new(),
                            buffered: 0,
                            error: None,
                            rest: Some(Box::pin(body)),
                        }),
                        peek: Vec::new(),
                    });
                }
                StateProj::Peeking {
                    parts,
                    replay,
                    peek,
                } => {
                    let Some(state) = replay.as_mut() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    ready!(read_ahead(state, peek, *this.peek_limit, cx));
                    let (Some(mut parts), Some(replay)) = (parts.take(), replay.take()) else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let view = ResponseView::new(parts.status, &parts.headers, peek);
                    insert(
                        &mut parts.extensions,
                        parts.status,
                        this.classifier.classify(&view),
                    );
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(Response::from_parts(
                        parts,
                        PeekedBody::replayed(replay),
                    )));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

/// Classifies `response` from its status and headers (no body) and attaches the verdict; says
/// whether its body is to be followed: a successful event stream.
fn attach<C: Classify, B>(classifier: &C, response: &mut Response<B>) -> bool {
    let view = ResponseView::new(response.status(), response.headers(), &[]);
    let verdict = classifier.classify(&view);
    let status = response.status();
    insert(response.extensions_mut(), status, verdict);
    response.status().is_success()
        && !response.headers().is_empty()
        && is_event_stream(response.headers())
}

/// Attaches `verdict` to a response of `status`, unless it is a plain success on a status
/// below 400, which says what no verdict says ([`Verdict::is_plain_success`]).
fn insert(extensions: &mut http::Extensions, status: http::StatusCode, verdict: Verdict) {
    if !(status.as_u16() < 400 && verdict.is_plain_success()) {
        extensions.insert(verdict);
    }
}

/// `response` with its body followed as it passes, and a [`StreamReport`] attached that says,
/// for the layers above, how the stream ends.
fn follow<C, B>(classifier: &C, mut response: Response<B>) -> Response<PeekedBody<B>>
where
    C: Classify + Clone + Send + Sync + 'static,
    B: Body,
{
    let shared = Arc::new(classifier.clone());
    let report = StreamReport::new();
    response.extensions_mut().insert(report.clone());
    response.map(|body| PeekedBody::followed(body, shared, report))
}

/// Reads frames into `replay` until `limit` bytes were copied into `peek`, the body ends or
/// fails, trailers arrive, or [`MAX_PEEK_FRAMES`] frames were read.
fn read_ahead<B: Body>(
    replay: &mut Replay<B>,
    peek: &mut Vec<u8>,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<()> {
    while peek.len() < limit && replay.frames.len() < MAX_PEEK_FRAMES {
        let Some(rest) = replay.rest.as_mut() else {
            break;
        };
        if rest.is_end_stream() {
            break;
        }
        match ready!(rest.as_mut().poll_frame(cx)) {
            None => {
                replay.rest = None;
            }
            Some(Err(error)) => {
                replay.error = Some(error);
                replay.rest = None;
            }
            Some(Ok(frame)) => {
                let is_trailers = frame.is_trailers();
                if let Some(data) = frame.data_ref() {
                    copy_prefix(data, peek, limit);
                    replay.buffered += data.remaining() as u64;
                }
                replay.frames.push_back(frame);
                if is_trailers {
                    break;
                }
            }
        }
    }
    Poll::Ready(())
}

/// Appends the first bytes of `data` to `peek`, up to `limit` in all, without consuming `data`.
fn copy_prefix(data: &impl Buf, peek: &mut Vec<u8>, limit: usize) {
    let mut slices = [IoSlice::new(&[]); 16];
    let filled = data.chunks_vectored(&mut slices);
    for slice in &slices[..filled] {
        let take = slice.len().min(limit - peek.len());
        if take == 0 {
            break;
        }
        peek.reserve_exact(take);
        peek.extend_from_slice(&slice[..take]);
    }
}

fn classify_error<C: Classify>(classifier: &C, error: BoxError) -> BoxError {
    if error.is::<Classified>() {
        return error;
    }
    let verdict = classifier.classify_error(&*error);
    Classified::new(verdict, error).into()
}

impl<F, C: fmt::Debug, B: Body> fmt::Debug for ResponseFuture<F, C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Peeking { .. } => "peeking",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("classifier", &self.classifier)
            .field("peek_limit", &self.peek_limit)
            .finish()
    }
}
