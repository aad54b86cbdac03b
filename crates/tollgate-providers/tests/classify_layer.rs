//! `ClassifyLayer`: the verdict it attaches, the body it hands on untouched, the peek bound, and
//! the verdicts of transport errors.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::mpsc;
use tokio_test::{assert_pending, assert_ready};
use tollgate_core::{
    BoxError, Classified, Classify, DelaySource, ErrorClass, ResponseView, Verdict, classify_fn,
};
use tollgate_providers::classify_layer::future::ResponseFuture;
use tollgate_providers::{
    Anthropic, ClassifyLayer, ClassifyService, OpenAi, OpenRouter, PeekedBody, ProviderClassifier,
};
use tower::{Layer, Service, ServiceExt, service_fn};

// ===== helpers =====

/// A body made of scripted frames and errors; counts how often it is polled.
struct Script {
    steps: VecDeque<Result<Frame<Bytes>, io::Error>>,
    polls: Arc<AtomicUsize>,
}

impl Script {
    fn new(steps: impl IntoIterator<Item = Result<Frame<Bytes>, io::Error>>) -> Self {
        Script {
            steps: steps.into_iter().collect(),
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Body for Script {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(self.steps.pop_front())
    }
}

/// A body fed through a channel, so a test decides when each frame arrives.
struct Channel(mpsc::UnboundedReceiver<Bytes>);

impl Body for Channel {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// A body of endless empty data frames.
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
    }
}

fn data(bytes: &'static [u8]) -> Result<Frame<Bytes>, io::Error> {
    Ok(Frame::data(Bytes::from_static(bytes)))
}

fn response<B>(status: u16, body: B) -> Response<B> {
    Response::builder().status(status).body(body).unwrap()
}

/// A classifier that records every body it is shown, then classifies as OpenAI.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Classify for Recorder {
    fn classify(&self, view: &ResponseView<'_>) -> Verdict {
        self.seen.lock().unwrap().push(view.body().to_vec());
        OpenAi::new().classify(view)
    }
}

impl Recorder {
    fn bodies(&self) -> Vec<Vec<u8>> {
        self.seen.lock().unwrap().clone()
    }
}

/// Runs one request through `layer` over a service that answers `reply`.
async fn through<C, B>(
    layer: ClassifyLayer<C>,
    reply: Response<B>,
) -> Result<Response<PeekedBody<B>>, BoxError>
where
    C: Classify + Clone + Send + Sync + 'static,
    B: Body,
{
    let mut reply = Some(reply);
    let inner = service_fn(move |_: Request<Empty<Bytes>>| {
        let reply = reply.take().expect("one request");
        async move { Ok::<_, Infallible>(reply) }
    });
    layer.layer(inner).oneshot(Request::new(Empty::new())).await
}

/// Runs one request through `layer` over a service that fails with `error`.
async fn failing<C: Classify + Clone + Send + Sync + 'static>(
    layer: ClassifyLayer<C>,
    error: BoxError,
) -> BoxError {
    let mut error = Some(error);
    let inner = service_fn(move |_: Request<Empty<Bytes>>| {
        let error = error.take().expect("one request");
        async move { Err::<Response<Empty<Bytes>>, _>(error) }
    });
    layer
        .layer(inner)
        .oneshot(Request::new(Empty::new()))
        .await
        .unwrap_err()
}

/// Reads a whole body: its bytes, its trailers, and the error that ended it, if any.
async fn read_all<B: Body + Unpin>(mut body: B) -> (Vec<u8>, Option<HeaderMap>, Option<B::Error>) {
    let mut bytes = Vec::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(chunk) => bytes.extend_from_slice(chunk.chunk()),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Err(error) => return (bytes, trailers, Some(error)),
        }
    }
    (bytes, trailers, None)
}

// ===== responses =====

#[tokio::test]
async fn success_is_classified_from_headers_and_passed_through() {
    let recorder = Recorder::default();
    let reply = Response::builder()
        .status(200)
        .header("x-ratelimit-remaining-requests", "41")
        .body(Full::new(Bytes::from_static(b"{\"id\":\"chatcmpl-1\"}")))
        .unwrap();
    let response = through(ClassifyLayer::new(recorder.clone()), reply)
        .await
        .unwrap();

    let verdict = Verdict::of_response(&response).unwrap();
    assert!(verdict.is_success());
    assert_eq!(
        recorder.bodies(),
        vec![Vec::<u8>::new()],
        "a success body is not peeked"
    );
    assert!(!response.body().was_peeked());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "{\"id\":\"chatcmpl-1\"}");
}

#[tokio::test]
async fn a_plain_success_gets_no_verdict() {
    // Nothing read beyond a 200: its verdict would tell the layers above what the absence of
    // one tells them, so none is attached (and the empty extensions stay unallocated).
    let reply = response(200, Full::new(Bytes::from_static(b"{}")));
    let response = through(ClassifyLayer::new(OpenAi::new()), reply)
        .await
        .unwrap();
    assert!(Verdict::of_response(&response).is_none());
    assert!(response.extensions().is_empty());
    assert!(Verdict::of_outcome(Ok(&response)).is_success());
}

#[tokio::test]
async fn a_success_on_an_error_status_keeps_its_verdict() {
    // A classifier may call a 404 a success; without the verdict a reader would judge the
    // status, so it stays attached.
    #[derive(Clone)]
    struct AllFine;
    impl Classify for AllFine {
        fn classify(&self, _: &ResponseView<'_>) -> Verdict {
            Verdict::success()
        }
        fn needs_body(&self, _: http::StatusCode, _: &http::HeaderMap) -> bool {
            false
        }
    }
    let response = through(
        ClassifyLayer::new(AllFine),
        response(404, Empty::<Bytes>::new()),
    )
    .await
    .unwrap();
    assert!(Verdict::of_response(&response).unwrap().is_plain_success());
    assert!(Verdict::of_outcome(Ok(&response)).is_success());
}

#[tokio::test]
async fn rate_limit_gets_its_verdict_and_the_whole_body() {
    const BODY: &[u8] = br#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.146s.","type":"requests","code":"rate_limit_exceeded"}}"#;
    let reply = Response::builder()
        .status(429)
        .header("retry-after", "2")
        .body(Full::new(Bytes::from_static(BODY)))
        .unwrap();
    let response = through(ClassifyLayer::new(OpenAi::new()), reply)
        .await
        .unwrap();

    let verdict = Verdict::of_response(&response).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));
    assert_eq!(verdict.delay(), Some(Duration::from_secs(2)));
    assert_eq!(verdict.delay_source(), DelaySource::RetryAfterSeconds);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.body().was_peeked());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, BODY);
}

#[tokio::test]
async fn the_body_hint_is_read_when_no_header_gives_a_delay() {
    const BODY: &[u8] = br#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.146s.","type":"requests","code":"rate_limit_exceeded"}}"#;
    let response = through(
        ClassifyLayer::new(OpenAi::new()),
        response(429, Full::new(Bytes::from_static(BODY))),
    )
    .await
    .unwrap();
    let verdict = Verdict::of_response(&response).unwrap();
    assert_eq!(verdict.delay(), Some(Duration::from_millis(1146)));
    assert_eq!(verdict.delay_source(), DelaySource::BodyHint);
}

#[tokio::test]
async fn overload_body_decides_the_class() {
    const BODY: &[u8] =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let response = through(
        ClassifyLayer::new(Anthropic::new()),
        response(529, Full::new(Bytes::from_static(BODY))),
    )
    .await
    .unwrap();
    let verdict = Verdict::of_response(&response).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
}

#[tokio::test]
async fn peek_stops_at_the_limit_and_every_frame_is_replayed() {
    let recorder = Recorder::default();
    let frames: Vec<_> = (0..100)
        .map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 1000]))))
        .collect();
    let body = Script::new(frames);
    let polls = body.polls.clone();
    let response = through(
        ClassifyLayer::new(recorder.clone()).with_peek_limit(2500),
        response(500, body),
    )
    .await
    .unwrap();

    // Three frames were read to peek 2500 bytes; the classifier saw exactly 2500.
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    let bodies = recorder.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].len(), 2500);
    assert_eq!(response.body().size_hint().lower(), 3000);

    let (bytes, trailers, error) = read_all(response.into_body()).await;
    assert_eq!(bytes.len(), 100_000, "nothing is lost");
    assert!(bytes.iter().all(|&b| b == b'x'));
    assert!(trailers.is_none());
    assert!(error.is_none());
}

#[tokio::test]
async fn default_peek_is_64_kib() {
    let recorder = Recorder::default();
    let big = Bytes::from(vec![b'{'; 200 * 1024]);
    let response = through(
        ClassifyLayer::new(recorder.clone()),
        response(400, Full::new(big.clone())),
    )
    .await
    .unwrap();
    assert_eq!(recorder.bodies()[0].len(), 64 * 1024);
    assert_eq!(response.body().size_hint().exact(), Some(200 * 1024));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, big);
}

#[tokio::test]
async fn trailers_and_frame_boundaries_are_replayed() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-request-id", "req_123".parse().unwrap());
    let body = Script::new([
        data(b"{\"error\":"),
        data(b"{\"code\":\"rate_limit_exceeded\"}}"),
        Ok(Frame::trailers(trailers.clone())),
    ]);
    let response = through(ClassifyLayer::new(OpenAi::new()), response(429, body))
        .await
        .unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::RateLimited)
    );

    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "{\"error\":");
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(second, "{\"code\":\"rate_limit_exceeded\"}}");
    let last = body
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_trailers()
        .unwrap();
    assert_eq!(last, trailers);
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
}

#[tokio::test]
async fn a_body_error_while_peeking_is_replayed_in_its_place() {
    let body = Script::new([
        data(b"{\"error\":{\"type\":\"insufficient_quota\""),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")),
        data(b"never read"),
    ]);
    let response = through(ClassifyLayer::new(OpenAi::new()), response(429, body))
        .await
        .unwrap();
    // Truncated JSON still gets a verdict.
    assert!(Verdict::of_response(&response).unwrap().class().is_some());

    let (bytes, _, error) = read_all(response.into_body()).await;
    assert_eq!(bytes, b"{\"error\":{\"type\":\"insufficient_quota\"");
    // The body's error carries a verdict now, the original inside.
    let error = error.unwrap();
    assert!(Verdict::of_error(&*error).is_some());
    let classified = error.downcast_ref::<tollgate_core::Classified>().unwrap();
    let error = classified.inner().downcast_ref::<io::Error>().unwrap();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn endless_empty_frames_do_not_hang_the_peek() {
    let response = through(ClassifyLayer::new(OpenAi::new()), response(500, Endless))
        .await
        .unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::ServerError)
    );
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().unwrap().is_data());
}

#[tokio::test]
async fn non_utf8_garbage_gets_a_verdict_and_is_handed_on() {
    let garbage = Bytes::from_static(b"\xff\xfe{\"error\":\x00\xc3(");
    let response = through(
        ClassifyLayer::new(OpenAi::new()),
        response(418, Full::new(garbage.clone())),
    )
    .await
    .unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::Unknown)
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        garbage
    );
}

#[tokio::test]
async fn an_empty_error_body_is_not_read() {
    let response = through(
        ClassifyLayer::new(OpenAi::new()),
        response(401, Empty::<Bytes>::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::Unauthorized)
    );
    assert!(!response.body().was_peeked());
    assert!(response.body().is_end_stream());
}

#[tokio::test]
async fn zero_peek_limit_classifies_from_status_and_headers() {
    let recorder = Recorder::default();
    let body = Script::new([data(b"{\"error\":{\"code\":\"insufficient_quota\"}}")]);
    let polls = body.polls.clone();
    let response = through(
        ClassifyLayer::new(recorder.clone()).with_peek_limit(0),
        response(429, body),
    )
    .await
    .unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(recorder.bodies(), vec![Vec::<u8>::new()]);
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::RateLimited)
    );
}

#[test]
fn peek_limit_is_capped_at_64_kib() {
    assert_eq!(ClassifyLayer::new(OpenAi::new()).peek_limit(), 64 * 1024);
    let huge = ClassifyLayer::new(OpenAi::new()).with_peek_limit(10 * 1024 * 1024);
    assert_eq!(huge.peek_limit(), 64 * 1024);
    let small = ClassifyLayer::new(OpenAi::new()).with_peek_limit(100);
    assert_eq!(small.peek_limit(), 100);
}

#[tokio::test]
async fn an_existing_verdict_stands() {
    let recorder = Recorder::default();
    let mut reply = response(500, Full::new(Bytes::from_static(b"oops")));
    reply
        .extensions_mut()
        .insert(Verdict::failure(ErrorClass::Overloaded));
    let response = through(ClassifyLayer::new(recorder.clone()), reply)
        .await
        .unwrap();
    assert!(recorder.bodies().is_empty(), "classified once");
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::Overloaded)
    );
}

#[tokio::test]
async fn the_response_waits_for_the_peeked_frames() {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut body = Some(Channel(rx));
    let mut service =
        ClassifyLayer::new(OpenAi::new()).layer(service_fn(move |_: Request<Empty<Bytes>>| {
            let body = body.take().expect("one request");
            async move { Ok::<_, Infallible>(response(429, body)) }
        }));
    service.ready().await.unwrap();
    let mut future = tokio_test::task::spawn(service.call(Request::new(Empty::new())));

    assert_pending!(future.poll());
    tx.send(Bytes::from_static(
        b"{\"error\":{\"type\":\"insufficient_quota\",",
    ))
    .unwrap();
    assert!(future.is_woken());
    assert_pending!(future.poll());
    tx.send(Bytes::from_static(b"\"code\":\"insufficient_quota\"}}"))
        .unwrap();
    drop(tx);
    let response = assert_ready!(future.poll()).unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::QuotaExhausted)
    );
}

#[tokio::test]
async fn openrouter_errors_inside_a_200_are_found() {
    const BODY: &[u8] = br#"{"error":{"code":503,"message":"Provider returned error","metadata":{"provider_name":"Example"}}}"#;
    for classifier in [
        ProviderClassifier::OpenRouter,
        "openrouter".parse().unwrap(),
    ] {
        let reply = Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        let response = through(ClassifyLayer::new(classifier), reply)
            .await
            .unwrap();
        let verdict = Verdict::of_response(&response).unwrap();
        assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
        assert!(response.body().was_peeked());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, BODY);
    }
}

#[tokio::test]
async fn openrouter_success_is_read_and_handed_on() {
    const BODY: &[u8] = br#"{"id":"gen-1","choices":[{"message":{"content":"hi"}}]}"#;
    let response = through(
        ClassifyLayer::new(OpenRouter::new()),
        response(200, Full::new(Bytes::from_static(BODY))),
    )
    .await
    .unwrap();
    assert!(Verdict::of_outcome(Ok(&response)).is_success());
    assert!(response.body().was_peeked());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, BODY);
}

#[tokio::test]
async fn streams_are_never_held_back() {
    // An OpenRouter event stream and any other provider's success are passed through at once,
    // even though their first frame has not arrived.
    for classifier in [
        ProviderClassifier::OpenRouter,
        ProviderClassifier::OpenAi,
        ProviderClassifier::Anthropic,
    ] {
        let (tx, rx) = mpsc::unbounded_channel();
        let reply = Response::builder()
            .status(200)
            .header("content-type", "text/event-stream; charset=utf-8")
            .body(Channel(rx))
            .unwrap();
        let response = through(ClassifyLayer::new(classifier), reply)
            .await
            .unwrap();
        assert!(Verdict::of_outcome(Ok(&response)).is_success());
        assert!(!response.body().was_peeked(), "{classifier}");
        drop(tx);
    }
}

#[test]
fn needs_body_defaults_to_error_statuses() {
    let headers = HeaderMap::new();
    let closure = classify_fn(|_: &ResponseView<'_>| Verdict::success());
    for status in [200, 204, 302, 399] {
        let status = StatusCode::from_u16(status).unwrap();
        assert!(!closure.needs_body(status, &headers), "{status}");
        assert!(!OpenAi::new().needs_body(status, &headers), "{status}");
    }
    for status in [400, 413, 429, 500, 529] {
        let status = StatusCode::from_u16(status).unwrap();
        assert!(closure.needs_body(status, &headers), "{status}");
        for provider in ProviderClassifier::ALL {
            assert!(provider.needs_body(status, &headers), "{provider} {status}");
        }
    }
    assert!(OpenRouter::new().needs_body(StatusCode::OK, &headers));
    assert!(ProviderClassifier::OpenRouter.needs_body(StatusCode::OK, &headers));
    assert!(Arc::new(OpenRouter::new()).needs_body(StatusCode::OK, &headers));
    let mut sse = HeaderMap::new();
    sse.insert("content-type", "Text/Event-Stream".parse().unwrap());
    assert!(!OpenRouter::new().needs_body(StatusCode::OK, &sse));
}

// ===== transport errors =====

#[tokio::test]
async fn connect_failure_is_classified() {
    let error = failing(
        ClassifyLayer::new(OpenAi::new()),
        io::Error::from(io::ErrorKind::ConnectionRefused).into(),
    )
    .await;
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Connect));
    assert!(verdict.is_retryable());
    let classified = error.downcast_ref::<Classified>().unwrap();
    let io = classified.inner().downcast_ref::<io::Error>().unwrap();
    assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
}

#[tokio::test(start_paused = true)]
async fn timeout_is_classified() {
    let elapsed = tokio::time::timeout(Duration::from_secs(1), std::future::pending::<()>())
        .await
        .unwrap_err();
    let error = failing(ClassifyLayer::new(Anthropic::new()), elapsed.into()).await;
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Timeout));
}

#[tokio::test]
async fn a_classified_error_is_not_wrapped_twice() {
    let inner: BoxError = Classified::new(
        Verdict::failure(ErrorClass::Overloaded),
        io::Error::other("busy"),
    )
    .into();
    let error = failing(ClassifyLayer::new(OpenAi::new()), inner).await;
    let classified = error.downcast_ref::<Classified>().unwrap();
    assert_eq!(classified.verdict().class(), Some(ErrorClass::Overloaded));
    assert!(classified.inner().downcast_ref::<io::Error>().is_some());
}

#[tokio::test]
async fn a_custom_classifier_sees_transport_errors() {
    #[derive(Clone)]
    struct EverythingOverloaded;
    impl Classify for EverythingOverloaded {
        fn classify(&self, _: &ResponseView<'_>) -> Verdict {
            Verdict::failure(ErrorClass::Overloaded)
        }
        fn classify_error(&self, _: &(dyn std::error::Error + 'static)) -> Verdict {
            Verdict::failure(ErrorClass::Overloaded)
        }
    }
    let error = failing(
        ClassifyLayer::new(EverythingOverloaded),
        io::Error::other("boom").into(),
    )
    .await;
    assert_eq!(
        Verdict::of_error(error.as_ref()).unwrap().class(),
        Some(ErrorClass::Overloaded)
    );
}

#[tokio::test]
async fn closures_classify_through_classify_fn() {
    let layer = ClassifyLayer::new(classify_fn(|view: &ResponseView<'_>| {
        if view.status() == StatusCode::BAD_GATEWAY {
            Verdict::failure(ErrorClass::Overloaded)
        } else {
            Verdict::success()
        }
    }));
    let response = through(layer, response(502, Full::new(Bytes::from_static(b"bad"))))
        .await
        .unwrap();
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::Overloaded)
    );
}

// ===== types =====

#[test]
fn layers_services_and_futures_are_send_sync_and_clone() {
    type Inner = tower::util::ServiceFn<
        fn(Request<Empty<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
    >;
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_clone<T: Clone>() {}
    assert_send_sync::<ClassifyLayer<OpenAi>>();
    assert_clone::<ClassifyLayer<OpenAi>>();
    assert_send_sync::<ClassifyService<Inner, OpenAi>>();
    assert_clone::<ClassifyService<Inner, OpenAi>>();
    assert_send_sync::<
        ResponseFuture<
            std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
            OpenAi,
            Full<Bytes>,
        >,
    >();
    assert_send_sync::<PeekedBody<Full<Bytes>>>();
}
