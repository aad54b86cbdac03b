//! `TimeoutLayer` on tokio's paused clock: each limit runs out after exactly its length, with
//! a `Timeout` verdict; failures before the first chunk are errors of the attempt, after it
//! errors of the body; keep-alives are not data; the request's deadline bounds everything.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};
use tollgate_core::{BoxError, Deadline, ErrorClass, Verdict};
use tollgate_timeout::{TimeLimit, TimedOut, TimeoutBody, TimeoutConfig, TimeoutLayer};
use tower::{Layer, Service, ServiceExt};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One step of a [`Script`] body, after its delay.
#[derive(Clone)]
enum Step {
    Data(&'static str),
    Error,
    /// Nothing more, ever.
    Stall,
}

/// A response body that plays its steps, each after its delay; it ends after the last.
struct Script {
    steps: VecDeque<(Duration, Step)>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Script {
    fn new(steps: impl IntoIterator<Item = (u64, Step)>) -> Self {
        Script {
            steps: steps.into_iter().map(|(s, step)| (secs(s), step)).collect(),
            sleep: None,
        }
    }
}

impl Body for Script {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        let Some((delay, step)) = this.steps.front().cloned() else {
            return Poll::Ready(None);
        };
        if let Step::Stall = step {
            return Poll::Pending;
        }
        if !delay.is_zero() {
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        this.steps.pop_front();
        Poll::Ready(Some(match step {
            Step::Data(text) => Ok(Frame::data(Bytes::from_static(text.as_bytes()))),
            Step::Error => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            Step::Stall => unreachable!("stalls return above"),
        }))
    }
}

/// A transport answering every call with a head after `head` seconds (never, for `None`) and a
/// body playing `steps`; it counts its calls.
#[derive(Clone)]
struct Upstream {
    head: Option<u64>,
    event_stream: bool,
    steps: Vec<(u64, Step)>,
    calls: Arc<AtomicUsize>,
}

impl Upstream {
    fn new(head: Option<u64>, steps: impl IntoIterator<Item = (u64, Step)>) -> Self {
        Upstream {
            head,
            event_stream: false,
            steps: steps.into_iter().collect(),
            calls: Arc::default(),
        }
    }

    fn event_stream(mut self) -> Self {
        self.event_stream = true;
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Service<Request<()>> for Upstream {
    type Response = Response<Script>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Script>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (head, steps, event_stream) = (self.head, self.steps.clone(), self.event_stream);
        Box::pin(async move {
            match head {
                Some(s) => tokio::time::sleep(secs(s)).await,
                None => std::future::pending().await,
            }
            let mut response = Response::new(Script::new(steps));
            if event_stream {
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    "text/event-stream; charset=utf-8".parse().unwrap(),
                );
            }
            Ok(response)
        })
    }
}

fn limits() -> TimeoutConfig {
    TimeoutConfig::none()
        .with_response_head(secs(60))
        .with_first_chunk(secs(30))
        .with_idle(secs(20))
        .with_total(secs(300))
}

async fn call(
    upstream: &Upstream,
    config: TimeoutConfig,
    request: Request<()>,
) -> Result<Response<TimeoutBody<Script>>, BoxError> {
    TimeoutLayer::new(config)
        .layer(upstream.clone())
        .oneshot(request)
        .await
}

/// Reads `body` to its end: the chunks, and the error that ended it, if any.
async fn read(mut body: TimeoutBody<Script>) -> (Vec<String>, Option<BoxError>) {
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                let data = frame.into_data().unwrap();
                chunks.push(String::from_utf8(data.to_vec()).unwrap());
            }
            Err(error) => return (chunks, Some(error)),
        }
    }
    (chunks, None)
}

fn assert_timed_out(error: &BoxError, limit: TimeLimit, after: Duration) {
    let timed_out = TimedOut::find(&**error).expect("a TimedOut");
    assert_eq!((timed_out.limit(), timed_out.after()), (limit, after));
    let verdict = Verdict::of_error(&**error).expect("a verdict");
    assert_eq!(verdict.class(), Some(ErrorClass::Timeout));
}

/// An upstream that never answers: the attempt fails after exactly the head limit.
#[tokio::test(start_paused = true)]
async fn no_head_times_out_after_the_head_limit() {
    let upstream = Upstream::new(None, []);
    let start = Instant::now();
    let error = call(&upstream, limits(), Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(60));
    assert_timed_out(&error, TimeLimit::ResponseHead, secs(60));
}

/// A head, then nothing: the attempt (not the body) fails after exactly the first-chunk limit,
/// counted from the head — so a retry or a fallback above can take over unseen.
#[tokio::test(start_paused = true)]
async fn no_first_token_fails_the_attempt() {
    let upstream = Upstream::new(Some(5), [(0, Step::Stall)]);
    let start = Instant::now();
    let error = call(&upstream, limits(), Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(35));
    assert_timed_out(&error, TimeLimit::FirstChunk, secs(30));
}

/// The response is handed on with its first chunk; a stall after it ends the body with an
/// idle timeout, exactly the idle limit after the last chunk.
#[tokio::test(start_paused = true)]
async fn a_stall_after_the_first_chunk_ends_the_body() {
    let upstream = Upstream::new(
        Some(1),
        [
            (2, Step::Data("data: one\n\n")),
            (3, Step::Data("data: two\n\n")),
            (0, Step::Stall),
        ],
    )
    .event_stream();
    let start = Instant::now();
    let response = call(&upstream, limits(), Request::new(())).await.unwrap();
    assert_eq!(start.elapsed(), secs(3), "handed on with its first chunk");
    let (chunks, error) = read(response.into_body()).await;
    assert_eq!(chunks, ["data: one\n\n", "data: two\n\n"]);
    assert_eq!(start.elapsed(), secs(6 + 20));
    assert_timed_out(&error.unwrap(), TimeLimit::Idle, secs(20));
    assert_eq!(upstream.calls(), 1, "nothing is re-sent");
}

/// Keep-alive comments are not data: they neither answer the wait for the first token nor
/// reset the idle limit.
#[tokio::test(start_paused = true)]
async fn keep_alives_are_not_data() {
    let keep_alive = || (7, Step::Data(": keep-alive\n\n"));
    let stall = (0, Step::Stall);
    let upstream = Upstream::new(
        Some(0),
        [
            keep_alive(),
            keep_alive(),
            keep_alive(),
            keep_alive(),
            stall.clone(),
        ],
    )
    .event_stream();
    let start = Instant::now();
    let error = call(&upstream, limits(), Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(30));
    assert_timed_out(&error, TimeLimit::FirstChunk, secs(30));

    let upstream = Upstream::new(
        Some(0),
        [
            (1, Step::Data("data: {}\n\n")),
            keep_alive(),
            keep_alive(),
            keep_alive(),
            stall,
        ],
    )
    .event_stream();
    let start = Instant::now();
    let response = call(&upstream, limits(), Request::new(())).await.unwrap();
    let (chunks, error) = read(response.into_body()).await;
    // The keep-alives (at 8 s and 15 s) are handed on, but the idle limit counts from the
    // data at 1 s.
    assert_eq!(chunks.len(), 3);
    assert_eq!(start.elapsed(), secs(21));
    assert_timed_out(&error.unwrap(), TimeLimit::Idle, secs(20));
}

/// A stream that never stops is ended at the total limit, counted from the call.
#[tokio::test(start_paused = true)]
async fn the_total_limit_bounds_a_long_stream() {
    let chunks = (0..100).map(|_| (10, Step::Data("data: more\n\n")));
    let upstream = Upstream::new(Some(2), chunks);
    let config = limits().with_total(secs(95));
    let start = Instant::now();
    let response = call(&upstream, config, Request::new(())).await.unwrap();
    let (chunks, error) = read(response.into_body()).await;
    assert_eq!(chunks.len(), 9);
    assert_eq!(start.elapsed(), secs(95));
    assert_timed_out(&error.unwrap(), TimeLimit::Total, secs(95));
}

/// The request's deadline bounds the attempt as a whole; past it, nothing is sent.
#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_attempt() {
    let upstream = Upstream::new(None, []);
    let mut request = Request::new(());
    request.extensions_mut().insert(Deadline::after(secs(7)));
    let start = Instant::now();
    let error = call(&upstream, limits(), request).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(7));
    assert_timed_out(&error, TimeLimit::Deadline, secs(7));

    let mut late = Request::new(());
    late.extensions_mut()
        .insert(Deadline::after(Duration::ZERO));
    let calls = upstream.calls();
    let error = call(&upstream, limits(), late).await.unwrap_err();
    assert_timed_out(&error, TimeLimit::Deadline, Duration::ZERO);
    assert_eq!(upstream.calls(), calls, "not sent");
}

/// A body error before any data is an error of the attempt, with a verdict; after data, the
/// body's.
#[tokio::test(start_paused = true)]
async fn a_cut_before_the_first_chunk_fails_the_attempt() {
    let upstream = Upstream::new(Some(0), [(1, Step::Error)]);
    let error = call(&upstream, limits(), Request::new(()))
        .await
        .unwrap_err();
    assert!(Verdict::of_error(&*error).is_some(), "{error}");

    let upstream = Upstream::new(Some(0), [(1, Step::Data("{")), (1, Step::Error)]);
    let response = call(&upstream, limits(), Request::new(())).await.unwrap();
    let (chunks, error) = read(response.into_body()).await;
    assert_eq!(chunks, ["{"]);
    assert!(error.is_some());
}

/// A response ready at once passes through whole, with nothing held back or added.
#[tokio::test(start_paused = true)]
async fn a_ready_response_passes_through() {
    let upstream = Upstream::new(Some(0), [(0, Step::Data("{\"ok\":true}"))]);
    let response = call(&upstream, TimeoutConfig::default(), Request::new(()))
        .await
        .unwrap();
    let (chunks, error) = read(response.into_body()).await;
    assert_eq!(chunks, ["{\"ok\":true}"]);
    assert!(error.is_none());
    // An empty body is fine too.
    let upstream = Upstream::new(Some(0), []);
    let response = call(&upstream, TimeoutConfig::default(), Request::new(()))
        .await
        .unwrap();
    assert!(response.body().is_end_stream());
}

#[test]
fn layers_services_futures_and_bodies_are_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn clone<T: Clone>() {}
    send_sync::<TimeoutLayer>();
    clone::<TimeoutLayer>();
    send_sync::<tollgate_timeout::Timeout<Upstream>>();
    clone::<tollgate_timeout::Timeout<Upstream>>();
    send_sync::<TimeoutBody<Script>>();
}
