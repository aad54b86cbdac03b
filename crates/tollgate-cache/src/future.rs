//! [`ResponseFuture`]: a hit, a pass-through, a leader's call and read, or a follower's wait.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tollgate_core::body::BufferedBody;
use tollgate_core::observe::Observe;
use tollgate_core::{BoxError, Verdict};
use tower_service::Service;

use crate::body::CacheBody;
use crate::policy::CacheStatus;
use crate::service::report_to;
use crate::store::{Join, LeaderGuard, Miss, Outcome, Shared, Stored, mark};

pin_project! {
    /// The response future of [`Cache`](crate::Cache).
    ///
    /// A leader (the first of concurrent identical requests to miss) resolves once the
    /// response's body has been read whole — or found not storable — so that it can be stored
    /// and handed to the followers.
    ///
    /// # Cancellation
    ///
    /// Dropping a leader drops its upstream call; its followers look again, and one of them
    /// becomes the next leader. Dropping a follower leaves the leader and the other followers
    /// unaffected.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, B>
    where
        S: Service<http::Request<BufferedBody>>,
    {
        #[pin]
        state: State<S::Future, B>,
        caching: Caching<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Ready { response: Option<http::Response<CacheBody<B>>> },
        Passthrough { #[pin] future: F },
        Calling { #[pin] future: F },
        Reading {
            body: Option<Pin<Box<B>>>,
            parts: Option<http::response::Parts>,
            chunks: Vec<Bytes>,
            len: usize,
        },
        Waiting { rx: oneshot::Receiver<Outcome> },
        Readying,
        Done,
    }
}

/// What the states share: the miss being filled, and a leader's guard or a follower's means to
/// go upstream itself.
struct Caching<S> {
    miss: Option<Miss>,
    shared: Option<Arc<Shared>>,
    guard: Option<LeaderGuard>,
    // A follower's: the service to go upstream with, the request, the observer.
    service: Option<S>,
    request: Option<http::Request<BufferedBody>>,
    observe: Option<Observe>,
}

/// Where polling a state leads: the next state, or the future's output.
enum Step<S: Service<http::Request<BufferedBody>>, B> {
    Next(State<S::Future, B>),
    Done(Result<http::Response<CacheBody<B>>, S::Error>),
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<http::Request<BufferedBody>>,
{
    fn with(state: State<S::Future, B>) -> Self {
        ResponseFuture {
            state,
            caching: Caching {
                miss: None,
                shared: None,
                guard: None,
                service: None,
                request: None,
                observe: None,
            },
        }
    }

    pub(crate) fn ready(response: http::Response<CacheBody<B>>) -> Self {
        Self::with(State::Ready {
            response: Some(response),
        })
    }

    pub(crate) fn passthrough(future: S::Future) -> Self {
        Self::with(State::Passthrough { future })
    }

    pub(crate) fn leading(
        future: S::Future,
        guard: LeaderGuard,
        miss: Miss,
        shared: Arc<Shared>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            caching: Caching {
                miss: Some(miss),
                shared: Some(shared),
                guard: Some(guard),
                service: None,
                request: None,
                observe: None,
            },
        }
    }

    pub(crate) fn following(
        rx: oneshot::Receiver<Outcome>,
        service: S,
        request: http::Request<BufferedBody>,
        miss: Miss,
        shared: Arc<Shared>,
        observe: Option<Observe>,
    ) -> Self {
        ResponseFuture {
            state: State::Waiting { rx },
            caching: Caching {
                miss: Some(miss),
                shared: Some(shared),
                guard: None,
                service: Some(service),
                request: Some(request),
                observe,
            },
        }
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<B>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<http::Response<CacheBody<B>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let step = match this.state.as_mut().project() {
                StateProj::Ready { response } => this.caching.poll_ready(response),
                StateProj::Passthrough { future } => this.caching.poll_passthrough(future, cx),
                StateProj::Calling { future } => this.caching.poll_calling(future, cx),
                StateProj::Reading {
                    body,
                    parts,
                    chunks,
                    len,
                } => this.caching.poll_reading(body, parts, chunks, len, cx),
                StateProj::Waiting { rx } => this.caching.poll_waiting(rx, cx),
                StateProj::Readying => this.caching.poll_readying(cx),
                StateProj::Done => return Poll::Pending,
            };
            match ready!(step) {
                Step::Next(state) => this.state.set(state),
                Step::Done(output) => {
                    this.state.set(State::Done);
                    return Poll::Ready(output);
                }
            }
        }
    }
}

impl<S, B> Caching<S>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<B>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    /// Ready: waits for nothing; hands back the response it holds (a hit).
    fn poll_ready(&self, response: &mut Option<http::Response<CacheBody<B>>>) -> Poll<Step<S, B>> {
        Poll::Ready(match response.take() {
            Some(response) => Step::Done(Ok(response)),
            None => Step::Next(State::Done),
        })
    }

    /// Passthrough: waits for the upstream response to a request the cache does not handle.
    fn poll_passthrough(
        &self,
        future: Pin<&mut S::Future>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S, B>> {
        let response = match ready!(future.poll(cx)) {
            Ok(response) => response,
            Err(error) => return Poll::Ready(Step::Done(Err(error))),
        };
        let mut response = response.map(CacheBody::upstream);
        response.extensions_mut().insert(CacheStatus::Bypass);
        Poll::Ready(Step::Done(Ok(response)))
    }

    /// Calling: waits for the upstream response's head, then reads a storable body.
    fn poll_calling(
        &mut self,
        future: Pin<&mut S::Future>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S, B>> {
        let response = match ready!(future.poll(cx)) {
            Ok(response) => response,
            Err(error) => {
                fail(&mut self.guard);
                return Poll::Ready(Step::Done(Err(error)));
            }
        };
        let max = self
            .shared
            .as_ref()
            .map_or(0, |s| s.config.max_entry_bytes.get());
        if !storable(&response, max) {
            fail(&mut self.guard);
            let mut response = response.map(CacheBody::upstream);
            mark(&mut response, CacheStatus::Miss);
            return Poll::Ready(Step::Done(Ok(response)));
        }
        let (parts, body) = response.into_parts();
        Poll::Ready(Step::Next(State::Reading {
            body: Some(Box::pin(body)),
            parts: Some(parts),
            chunks: Vec::new(),
            len: 0,
        }))
    }

    /// Reading: waits for the body's frames, to store it whole or hand it back as it goes.
    fn poll_reading(
        &mut self,
        body: &mut Option<Pin<Box<B>>>,
        parts: &mut Option<http::response::Parts>,
        chunks: &mut Vec<Bytes>,
        len: &mut usize,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S, B>> {
        let max = self
            .shared
            .as_ref()
            .map_or(0, |s| s.config.max_entry_bytes.get());
        let Some(stream) = body.as_mut() else {
            return Poll::Ready(Step::Next(State::Done));
        };
        let (frame, error) = loop {
            match ready!(stream.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        *len = len.saturating_add(data.len());
                        if !data.is_empty() {
                            chunks.push(data);
                        }
                        if *len > max {
                            break (None, None);
                        }
                    }
                    // Trailers cannot be stored.
                    Err(frame) => break (Some(frame), None),
                },
                Some(Err(error)) => break (None, Some(error.into())),
                None => {
                    let bytes = concat(std::mem::take(chunks), *len);
                    let Some(parts) = parts.take() else {
                        return Poll::Ready(Step::Next(State::Done));
                    };
                    // The finished body goes before the followers are told.
                    *body = None;
                    return Poll::Ready(Step::Done(Ok(self.read_whole(parts, bytes))));
                }
            }
        };
        // Not storable after all: what was read, then the rest or the error.
        let mut prefix: VecDeque<Frame<Bytes>> = chunks.drain(..).map(Frame::data).collect();
        prefix.extend(frame);
        let rest = body.take();
        let parts = parts.take();
        fail(&mut self.guard);
        let (Some(rest), Some(parts)) = (rest, parts) else {
            return Poll::Ready(Step::Next(State::Done));
        };
        let body = CacheBody::prefix(prefix, error, rest);
        let mut response = http::Response::from_parts(parts, body);
        mark(&mut response, CacheStatus::Miss);
        Poll::Ready(Step::Done(Ok(response)))
    }

    /// A body read whole: stored and handed to the followers, unless it is a failed stream.
    fn read_whole(
        &mut self,
        parts: http::response::Parts,
        bytes: Bytes,
    ) -> http::Response<CacheBody<B>> {
        if has_error_event(&parts.headers, &bytes) {
            // A 200 stream that failed mid-way: whole, but not a success.
            fail(&mut self.guard);
            let body = CacheBody::read(bytes);
            let mut response = http::Response::from_parts(parts, body);
            mark(&mut response, CacheStatus::Miss);
            return response;
        }
        let miss = self.miss.as_ref();
        let deterministic = miss.is_some_and(|m| m.deterministic);
        let stored = Arc::new(Stored::new(
            &parts,
            bytes.clone(),
            deterministic,
            Instant::now(),
        ));
        if let (Some(shared), Some(miss)) = (self.shared.as_ref(), miss) {
            shared.store(miss, Arc::clone(&stored));
        }
        if let Some(guard) = self.guard.take() {
            guard.finish(Outcome::Stored(stored));
        }
        let mut response = http::Response::from_parts(parts, CacheBody::stored(bytes));
        mark(&mut response, CacheStatus::Miss);
        response
    }

    /// Waiting: waits for the leader's outcome, as a follower.
    fn poll_waiting(
        &mut self,
        rx: &mut oneshot::Receiver<Outcome>,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S, B>> {
        let outcome = ready!(Pin::new(rx).poll(cx));
        Poll::Ready(match outcome {
            Ok(Outcome::Stored(stored)) => {
                if let Some(observe) = self.observe.as_ref() {
                    report_to(observe, CacheStatus::Coalesced);
                }
                Step::Done(Ok(stored.response(CacheStatus::Coalesced)))
            }
            // The leader's answer was not storable: go upstream alone, in parallel with the
            // other followers, rather than queue behind a new leader.
            Ok(Outcome::Failed) => {
                if let Some(observe) = self.observe.as_ref() {
                    report_to(observe, CacheStatus::Miss);
                }
                Step::Next(State::Readying)
            }
            // The leader was dropped: look again.
            Err(_) => {
                let (Some(shared), Some(miss)) = (self.shared.as_ref(), self.miss.as_ref()) else {
                    return Poll::Ready(Step::Next(State::Done));
                };
                match shared.claim(miss) {
                    Join::Hit(stored) => {
                        if let Some(observe) = self.observe.as_ref() {
                            report_to(observe, CacheStatus::Hit);
                        }
                        Step::Done(Ok(stored.response(CacheStatus::Hit)))
                    }
                    Join::Lead(guard) => {
                        self.guard = Some(guard);
                        if let Some(observe) = self.observe.as_ref() {
                            report_to(observe, CacheStatus::Miss);
                        }
                        Step::Next(State::Readying)
                    }
                    Join::Follow(rx) => Step::Next(State::Waiting { rx }),
                }
            }
        })
    }

    /// Readying: waits for the service to be ready, then goes upstream itself.
    fn poll_readying(&mut self, cx: &mut Context<'_>) -> Poll<Step<S, B>> {
        let Some(service) = self.service.as_mut() else {
            return Poll::Ready(Step::Next(State::Done));
        };
        if let Err(error) = ready!(service.poll_ready(cx)) {
            fail(&mut self.guard);
            return Poll::Ready(Step::Done(Err(error)));
        }
        let Some(request) = self.request.take() else {
            return Poll::Ready(Step::Next(State::Done));
        };
        let future = service.call(request);
        Poll::Ready(Step::Next(State::Calling { future }))
    }
}

/// Hands the followers a failure: each goes upstream itself.
fn fail(guard: &mut Option<LeaderGuard>) {
    if let Some(guard) = guard.take() {
        guard.finish(Outcome::Failed);
    }
}

/// A successful response whose announced size fits, and whose verdict (if classified) is a
/// success.
fn storable<B: Body>(response: &http::Response<B>, max: usize) -> bool {
    response.status().is_success()
        && Verdict::of_response(response).is_none_or(|v| v.class().is_none())
        && response.body().size_hint().lower() <= max as u64
}

/// Whether `body` is an event stream (`text/event-stream`) that reported an error mid-way:
/// an `event: error` (Anthropic), or a `data:` object with a non-null `error` (OpenAI,
/// OpenRouter, Gemini) or `"type": "error"`. Such a stream comes with status 200, and the
/// classifier below cannot see into it, so no failure verdict says so.
fn has_error_event(headers: &http::HeaderMap, body: &[u8]) -> bool {
    let event_stream = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().get(..17))
        .is_some_and(|v| v.eq_ignore_ascii_case("text/event-stream"));
    if !event_stream {
        return false;
    }
    body.split(|&b| b == b'\n' || b == b'\r').any(|line| {
        if let Some(event) = field(line, b"event") {
            return event == b"error".as_slice();
        }
        let Some(data) = field(line, b"data") else {
            return false;
        };
        // Only data that mentions an error is parsed.
        if !data.windows(7).any(|w| w == b"\"error\"") {
            return false;
        }
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(serde_json::Value::Object(object)) => {
                object.get("error").is_some_and(|e| !e.is_null())
                    || object.get("type").and_then(|t| t.as_str()) == Some("error")
            }
            _ => false,
        }
    })
}

/// The value of an event-stream line's field `name`, if the line is that field.
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

fn concat(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() <= 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(len);
    for chunk in chunks {
        out.extend_from_slice(&chunk);
    }
    out.freeze()
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<http::Request<BufferedBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready { .. } => "ready",
            State::Passthrough { .. } => "passthrough",
            State::Calling { .. } => "calling",
            State::Reading { .. } => "reading",
            State::Waiting { .. } => "waiting",
            State::Readying => "readying",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("leader", &self.caching.guard.is_some())
            .finish_non_exhaustive()
    }
}
