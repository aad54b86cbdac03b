//! `ClassifyLayer` following event streams: error events become body errors carrying their
//! verdict, a stream without its terminal event is truncated, and every chunk is handed on as
//! read, unchanged.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use proptest::prelude::*;
use tokio::sync::mpsc;
use tokio_test::{assert_pending, assert_ready};
use tollgate_core::{
    BoxError, Classified, Classify, ErrorClass, RetryAdvice, StreamOutcome, Verdict,
};
use tollgate_providers::classify_layer::error::{StreamFailed, StreamTruncated};
use tollgate_providers::{
    Anthropic, ClassifyLayer, Gemini, Generic, OpenAi, OpenRouter, PeekedBody, ProviderClassifier,
};
use tower::{Layer, ServiceExt, service_fn};

// ===== helpers =====

/// A body of scripted chunks and errors.
struct Chunks(VecDeque<Result<Bytes, io::Error>>);

impl Chunks {
    fn new<I: IntoIterator<Item = T>, T: AsRef<[u8]>>(chunks: I) -> Self {
        Chunks(
            chunks
                .into_iter()
                .map(|c| Ok(Bytes::copy_from_slice(c.as_ref())))
                .collect(),
        )
    }

    /// `stream` cut at each of `cuts` (byte offsets).
    fn split(stream: &[u8], cuts: &[usize]) -> Self {
        let mut chunks = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            let cut = cut.clamp(start, stream.len());
            chunks.push(&stream[start..cut]);
            start = cut;
        }
        chunks.push(&stream[start..]);
        Chunks::new(chunks)
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(self.0.pop_front().map(|c| c.map(Frame::data)))
    }
}

/// A body fed through a channel, so a test decides when each chunk arrives.
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

fn sse<B>(body: B) -> Response<B> {
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(body)
        .unwrap()
}

/// Runs one request through a `ClassifyLayer` over a service that answers `reply`.
async fn through<C, B>(classifier: C, reply: Response<B>) -> Response<PeekedBody<B>>
where
    C: Classify + Clone + Send + Sync + 'static,
    B: Body,
{
    let mut reply = Some(reply);
    let inner = service_fn(move |_: Request<Empty<Bytes>>| {
        let reply = reply.take().expect("one request");
        async move { Ok::<_, Infallible>(reply) }
    });
    ClassifyLayer::new(classifier)
        .layer(inner)
        .oneshot(Request::new(Empty::new()))
        .await
        .unwrap()
}

/// Reads a whole body: the chunks it yielded, and the error that ended it, if any.
async fn read_all<B>(mut body: B) -> (Vec<Bytes>, Option<BoxError>)
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => chunks.push(frame.into_data().unwrap()),
            Err(error) => {
                assert!(
                    body.frame().await.is_none(),
                    "the body ends after its error"
                );
                return (chunks, Some(error));
            }
        }
    }
    (chunks, None)
}

async fn follow<C>(classifier: C, body: Chunks) -> (Vec<u8>, Option<BoxError>)
where
    C: Classify + Clone + Send + Sync + 'static,
{
    let response = through(classifier, sse(body)).await;
    assert!(Verdict::of_outcome(Ok(&response)).is_success());
    assert!(response.body().follows_events());
    let (chunks, error) = read_all(response.into_body()).await;
    (chunks.concat(), error)
}

fn class(error: &BoxError) -> Option<ErrorClass> {
    Verdict::of_error(error.as_ref()).and_then(Verdict::class)
}

fn failed(error: &BoxError) -> &StreamFailed {
    let classified = error.downcast_ref::<Classified>().expect("classified");
    classified.inner().downcast_ref().expect("StreamFailed")
}

fn truncated(error: &BoxError) -> &StreamTruncated {
    let classified = error.downcast_ref::<Classified>().expect("classified");
    classified.inner().downcast_ref().expect("StreamTruncated")
}

const CHAT: &[u8] = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Say \\\"error\\\": it is fine\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

const ANTHROPIC: &[u8] = b"event: message_start\r\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n\
event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n\
event: content_block_delta\r\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\r\n\r\n\
event: message_delta\r\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n\
event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

const GEMINI: &[u8] = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 4,\"candidatesTokenCount\": 2}}\r\n\r\n";

const RESPONSES: &[u8] = b"event: response.created\n\
data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}\n\n\
event: response.output_text.delta\n\
data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n\
event: response.completed\n\
data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"status\":\"completed\"}}\n\n";

/// Where `needle` starts in `haystack`.
fn at(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

// ===== complete streams =====

#[tokio::test]
async fn complete_streams_pass_through_frame_for_frame() {
    for (name, stream) in [
        ("chat", CHAT),
        ("anthropic", ANTHROPIC),
        ("gemini", GEMINI),
        ("responses", RESPONSES),
    ] {
        // Awkward cuts: mid-field name, between CR and LF (or just after a line), mid-JSON, one
        // byte at the end.
        let cuts = [3, 7, at(stream, b"\n"), stream.len() / 2, stream.len() - 1];
        let mut cuts = cuts.to_vec();
        cuts.sort_unstable();
        let response = through(
            ProviderClassifier::OpenAi,
            sse(Chunks::split(stream, &cuts)),
        )
        .await;
        let (chunks, error) = read_all(response.into_body()).await;
        assert!(error.is_none(), "{name}: {error:?}");
        let expected: Vec<Bytes> = Chunks::split(stream, &cuts)
            .0
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(chunks, expected, "{name}: frames unchanged");
    }
}

#[tokio::test]
async fn crlf_split_between_cr_and_lf_is_one_line_end() {
    let cut = at(ANTHROPIC, b"\r\n") + 1;
    let (bytes, error) = follow(Anthropic::new(), Chunks::split(ANTHROPIC, &[cut])).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, ANTHROPIC);
}

#[tokio::test]
async fn a_non_stream_body_is_not_followed() {
    let body = b"data: {\"error\":{\"type\":\"server_error\"}}\n\n";
    let reply = Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Chunks::new([&body[..]]))
        .unwrap();
    let response = through(OpenAi::new(), reply).await;
    assert!(!response.body().follows_events());
    let (chunks, error) = read_all(response.into_body()).await;
    assert!(error.is_none());
    assert_eq!(chunks.concat(), body);
}

#[tokio::test]
async fn an_error_status_stream_is_peeked_not_followed() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let reply = Response::builder()
        .status(529)
        .header("content-type", "text/event-stream")
        .body(Chunks::new([&body[..]]))
        .unwrap();
    let response = through(Anthropic::new(), reply).await;
    assert!(!response.body().follows_events());
    assert_eq!(
        Verdict::of_response(&response).unwrap().class(),
        Some(ErrorClass::Overloaded)
    );
    let (chunks, error) = read_all(response.into_body()).await;
    assert!(error.is_none());
    assert_eq!(chunks.concat(), body);
}

#[tokio::test]
async fn chunks_are_handed_on_as_soon_as_read() {
    let (tx, rx) = mpsc::unbounded_channel();
    let response = through(OpenAi::new(), sse(Channel(rx))).await;
    let mut body = response.into_body();
    let mut cx = Context::from_waker(std::task::Waker::noop());

    assert_pending!(Pin::new(&mut body).poll_frame(&mut cx));
    // Half a line: handed on at once, not held until the line ends.
    tx.send(Bytes::from_static(b"data: {\"id\":\"x\",\"obj"))
        .unwrap();
    let frame = assert_ready!(Pin::new(&mut body).poll_frame(&mut cx));
    let frame = frame.unwrap().unwrap().into_data().unwrap();
    assert_eq!(frame, "data: {\"id\":\"x\",\"obj");
    assert_pending!(Pin::new(&mut body).poll_frame(&mut cx));

    tx.send(Bytes::from_static(
        b"ect\":\"chat.completion.chunk\",\"choices\":[]}\n\ndata: [DONE]\n\n",
    ))
    .unwrap();
    let frame = assert_ready!(Pin::new(&mut body).poll_frame(&mut cx));
    assert!(frame.unwrap().unwrap().is_data());
    drop(tx);
    let end = assert_ready!(Pin::new(&mut body).poll_frame(&mut cx));
    assert!(end.is_none());
}

#[tokio::test]
async fn an_event_over_the_cap_is_passed_on_uninspected() {
    let mut stream = b"data: {\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\ndata: {\"error\":{\"message\":\"".to_vec();
    stream.extend(std::iter::repeat_n(b'x', 100 * 1024));
    stream.extend_from_slice(b"\",\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n");
    let cuts: Vec<usize> = (1..stream.len()).step_by(4096).collect();
    let (bytes, error) = follow(OpenAi::new(), Chunks::split(&stream, &cuts)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, stream);

    // One huge line in one chunk, too.
    let (bytes, error) = follow(OpenAi::new(), Chunks::new([&stream[..]])).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, stream);
}

#[tokio::test]
async fn keep_alives_and_comments_are_not_events() {
    let stream = b": keep-alive\n\n\n: keep-alive\n\ndata: {\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\ndata: [DONE]\n\n";
    let (bytes, error) = follow(OpenAi::new(), Chunks::split(stream, &[5, 20])).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, stream);
}

// ===== error events =====

#[tokio::test]
async fn an_openai_error_event_ends_the_body_with_its_verdict() {
    let error_event = b"data: {\"error\":{\"message\":\"The server is overloaded.\",\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}\n\n";
    let head = &CHAT[..at(CHAT, b"data: [DONE]")];
    let stream = [head, &error_event[..], b"data: [DONE]\n\n"].concat();
    // Cut mid-`data:`, mid-JSON of the error event, and right after it.
    let start = head.len();
    let cuts = [2, start + 3, start + 40, start + error_event.len()];
    let (bytes, error) = follow(OpenAi::new(), Chunks::split(&stream, &cuts)).await;

    // Everything before the error event, and the error event itself; nothing after.
    assert_eq!(bytes, [head, &error_event[..]].concat());
    let error = error.expect("error event");
    assert_eq!(class(&error), Some(ErrorClass::Overloaded));
    let failed = failed(&error);
    assert_eq!(failed.kind(), Some("server_is_overloaded"));
    assert_eq!(failed.message(), Some("The server is overloaded."));
    assert_eq!(failed.event(), None);
    assert_eq!(
        failed.to_string(),
        "event stream failed: server_is_overloaded"
    );
}

#[tokio::test]
async fn an_anthropic_error_event_is_overloaded() {
    let head = &ANTHROPIC[..at(ANTHROPIC, b"event: message_delta")];
    let error_event = b"event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n";
    let stream = [head, &error_event[..]].concat();
    let cuts = [head.len() + 5, head.len() + 13, stream.len() - 1];
    let (bytes, error) = follow(Anthropic::new(), Chunks::split(&stream, &cuts)).await;

    assert_eq!(bytes, stream);
    let error = error.expect("error event");
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert!(verdict.is_retryable());
    assert_eq!(failed(&error).kind(), Some("overloaded_error"));
    assert_eq!(failed(&error).event(), Some("error"));
}

#[tokio::test]
async fn an_anthropic_rate_limit_event_is_rate_limited() {
    let stream = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Number of request tokens has exceeded your per-minute rate limit\"}}\n\n";
    let (_, error) = follow(Anthropic::new(), Chunks::new([&stream[..]])).await;
    assert_eq!(class(&error.unwrap()), Some(ErrorClass::RateLimited));
}

#[tokio::test]
async fn an_openrouter_error_chunk_moves_on() {
    let stream = b"data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":502,\"message\":\"Provider disconnected\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
    let (bytes, error) = follow(OpenRouter::new(), Chunks::split(stream, &[60, 200])).await;
    assert_eq!(bytes, stream);
    let error = error.unwrap();
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Overloaded));
    assert_eq!(verdict.advice(), RetryAdvice::Elsewhere);
    assert_eq!(failed(&error).kind(), Some("502"));
}

#[tokio::test]
async fn a_finish_reason_error_alone_is_a_failure() {
    let stream = b"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}\n\n";
    let (_, error) = follow(OpenRouter::new(), Chunks::new([&stream[..]])).await;
    assert_eq!(class(&error.unwrap()), Some(ErrorClass::ServerError));
}

#[tokio::test]
async fn a_gemini_error_chunk_is_classified_by_its_status() {
    let stream = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\"}]}}]}\r\n\r\n\
data: {\"error\": {\"code\": 429, \"message\": \"Resource has been exhausted (e.g. check quota).\", \"status\": \"RESOURCE_EXHAUSTED\"}}\r\n\r\n";
    let (_, error) = follow(Gemini::new(), Chunks::split(stream, &[70])).await;
    let error = error.unwrap();
    assert_eq!(class(&error), Some(ErrorClass::RateLimited));
    assert_eq!(failed(&error).kind(), Some("RESOURCE_EXHAUSTED"));
}

#[tokio::test]
async fn a_responses_failure_is_classified_by_its_code() {
    let stream = b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n\
event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"server_is_overloaded\",\"message\":\"Overloaded\"}}}\n\n";
    let (_, error) = follow(OpenAi::new(), Chunks::new([&stream[..]])).await;
    let error = error.unwrap();
    assert_eq!(class(&error), Some(ErrorClass::Overloaded));
    assert_eq!(failed(&error).kind(), Some("server_is_overloaded"));
    assert_eq!(failed(&error).event(), Some("response.failed"));
}

#[tokio::test]
async fn a_generic_error_event_is_classified_by_its_implied_status() {
    let stream = b"data: {\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\n\
data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"rate_limit_error\"}}\n\n";
    let (_, error) = follow(Generic::new(), Chunks::new([&stream[..]])).await;
    assert_eq!(class(&error.unwrap()), Some(ErrorClass::RateLimited));

    let stream = b"data: {\"error\":\"something broke\"}\n\n";
    let (_, error) = follow(Generic::new(), Chunks::new([&stream[..]])).await;
    let error = error.unwrap();
    assert_eq!(class(&error), Some(ErrorClass::ServerError));
    assert_eq!(failed(&error).message(), Some("something broke"));
}

#[tokio::test]
async fn an_error_event_without_its_blank_line_still_counts_at_the_end() {
    let stream = b"data: {\"error\":{\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}";
    let (_, error) = follow(OpenAi::new(), Chunks::new([&stream[..]])).await;
    assert_eq!(class(&error.unwrap()), Some(ErrorClass::Overloaded));
}

// ===== truncation =====

#[tokio::test]
async fn a_chat_stream_without_done_is_truncated() {
    let head = &CHAT[..at(CHAT, b"data: [DONE]")];
    let (bytes, error) = follow(OpenAi::new(), Chunks::split(head, &[10])).await;
    assert_eq!(bytes, head);
    let error = error.expect("truncated");
    let verdict = Verdict::of_error(error.as_ref()).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::Truncated));
    assert!(verdict.class().unwrap().counts_against_health());
    assert_eq!(truncated(&error).expected(), Some("data: [DONE]"));
    assert_eq!(
        truncated(&error).to_string(),
        "event stream truncated; expected data: [DONE]"
    );
}

#[tokio::test]
async fn each_format_expects_its_own_terminal_event() {
    let cases: [(&[u8], &[u8], &str); 3] = [
        (ANTHROPIC, b"event: message_stop", "event: message_stop"),
        (
            RESPONSES,
            b"event: response.completed",
            "event: response.completed",
        ),
        (
            GEMINI,
            b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"lo\"",
            "a chunk with a finishReason",
        ),
    ];
    for (stream, terminal, expected) in cases {
        let head = &stream[..at(stream, terminal)];
        let (bytes, error) = follow(ProviderClassifier::Generic, Chunks::new([head])).await;
        assert_eq!(bytes, head);
        let error = error.expect(expected);
        assert_eq!(class(&error), Some(ErrorClass::Truncated));
        assert_eq!(truncated(&error).expected(), Some(expected));
    }
}

#[tokio::test]
async fn a_stream_ended_mid_line_is_truncated() {
    let cut = at(CHAT, b"[DONE]") + 3;
    let (_, error) = follow(OpenAi::new(), Chunks::new([&CHAT[..cut]])).await;
    assert!(truncated(&error.unwrap()).expected().is_some());
}

#[tokio::test]
async fn an_empty_stream_is_truncated() {
    let (_, error) = follow(OpenAi::new(), Chunks::new(Vec::<&[u8]>::new())).await;
    let error = error.unwrap();
    assert_eq!(truncated(&error).expected(), None);

    let (_, error) = follow(OpenAi::new(), Chunks::new([": keep-alive\n\n"])).await;
    assert_eq!(truncated(&error.unwrap()).expected(), None);
}

#[tokio::test]
async fn a_stream_of_unknown_format_may_end_anywhere() {
    let stream = b"event: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n";
    let (bytes, error) = follow(OpenAi::new(), Chunks::new([&stream[..]])).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, stream);
}

#[tokio::test]
async fn an_inner_body_error_passes_through_with_a_verdict() {
    let mut body = Chunks::new([&CHAT[..40]]);
    body.0
        .push_back(Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")));
    let (bytes, error) = follow(OpenAi::new(), body).await;
    assert_eq!(bytes, &CHAT[..40]);
    // Wrapped with what the transport rules say of it; the original inside.
    let error = error.unwrap();
    assert!(Verdict::of_error(error.as_ref()).is_some());
    let classified = error.downcast_ref::<tollgate_core::Classified>().unwrap();
    assert_eq!(
        classified
            .inner()
            .downcast_ref::<io::Error>()
            .unwrap()
            .kind(),
        io::ErrorKind::ConnectionReset
    );
}

#[tokio::test]
async fn end_of_stream_is_reported_only_when_complete() {
    let response = through(OpenAi::new(), sse(Chunks::new([CHAT]))).await;
    let mut body = response.into_body();
    assert!(!body.is_end_stream());
    body.frame().await.unwrap().unwrap();
    // The terminal event was seen, but the inner body has not said it ended.
    assert!(!body.is_end_stream());
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
}

#[test]
fn followed_bodies_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PeekedBody<Chunks>>();
    assert_send_sync::<StreamFailed>();
    assert_send_sync::<StreamTruncated>();
}

// ===== any chunking =====

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_of_a_valid_stream_passes_unchanged(
        which in 0..4usize,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let stream = [CHAT, ANTHROPIC, GEMINI, RESPONSES][which];
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let (bytes, error) = run(follow(ProviderClassifier::OpenAi, Chunks::split(stream, &cuts)));
        prop_assert!(error.is_none(), "{:?}", error);
        prop_assert_eq!(bytes, stream);
    }

    #[test]
    fn any_chunking_finds_the_error_event(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let head = &ANTHROPIC[..at(ANTHROPIC, b"event: message_delta")];
        let stream = [head, b"event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n"].concat();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.sort_unstable();
        let (bytes, error) = run(follow(Anthropic::new(), Chunks::split(&stream, &cuts)));
        prop_assert_eq!(bytes, stream);
        prop_assert_eq!(error.as_ref().and_then(class), Some(ErrorClass::Overloaded));
    }
}

/// A `Buf` in two pieces, as some bodies yield: the follower reads every piece.
#[tokio::test]
async fn frames_of_several_pieces_are_read_whole() {
    struct Pieces(VecDeque<bytes::buf::Chain<Bytes, Bytes>>);
    impl Body for Pieces {
        type Data = bytes::buf::Chain<Bytes, Bytes>;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }
    let cut = at(CHAT, b"data: [DONE]") + 3;
    let one = Bytes::from_static(&CHAT[..cut]).chain(Bytes::from_static(&CHAT[cut..cut + 4]));
    let two = Bytes::from_static(&CHAT[cut + 4..]).chain(Bytes::new());
    let response = through(OpenAi::new(), sse(Pieces([one, two].into()))).await;
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let mut data = frame
            .unwrap()
            .into_data()
            .unwrap_or_else(|_| panic!("data"));
        bytes.extend_from_slice(&data.copy_to_bytes(data.remaining()));
    }
    assert_eq!(bytes, CHAT);
}

/// An error event as the stream's very first event: the error, and no byte of it, so that a
/// layer above may still retry without the caller seeing anything (the zero-chunk rule).
#[tokio::test]
async fn an_error_as_the_first_event_hands_on_nothing() {
    let stream: &[u8] = b"data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"server_is_overloaded\"}}\n\n";
    let (bytes, error) = follow(OpenAi::new(), Chunks::new([stream])).await;
    assert!(bytes.is_empty(), "{bytes:?}");
    assert!(error.is_some());
}

/// How a followed stream ended, once its body has been read to the end.
async fn ended(response: http::Response<impl Body<Data = Bytes>>) -> tollgate_core::StreamEnd {
    let report = tollgate_core::StreamReport::of(&response)
        .expect("a report")
        .clone();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sink = std::sync::Arc::clone(&seen);
    report.on_end(move |end| *sink.lock().unwrap() = Some(*end));
    assert!(seen.lock().unwrap().is_none(), "not before the end");
    let _ = response.into_body().collect().await;
    seen.lock().unwrap().expect("told at the end")
}

/// The usage a stream reports — Anthropic's `message_start` input and cumulative
/// `message_delta` output — is told to the response's `StreamReport` when the stream ends.
#[tokio::test]
async fn a_streams_usage_is_reported_at_its_end() {
    let response = through(Anthropic::new(), sse(Chunks::split(ANTHROPIC, &[7, 200]))).await;
    let end = ended(response).await;
    assert_eq!(end.outcome, StreamOutcome::Completed);
    assert!(end.first_data_at.is_some());
    let usage = end.usage.expect("usage");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens),
        (Some(25), Some(15))
    );
}

/// A truncated stream is reported failed, with no usage: its estimate stays charged.
#[tokio::test]
async fn a_truncated_stream_reports_no_usage() {
    let head = &ANTHROPIC[..at(ANTHROPIC, b"event: message_delta")];
    let response = through(Anthropic::new(), sse(Chunks::new([head]))).await;
    let end = ended(response).await;
    assert_eq!(end.outcome, StreamOutcome::Failed(ErrorClass::Truncated));
    assert_eq!(end.usage, None);
}

/// An error event after the first is reported as a failure of its class, so the breaker and
/// the metrics above count a stream that fails half-way.
#[tokio::test]
async fn an_error_event_mid_stream_is_reported_failed() {
    let stream: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let response = through(Anthropic::new(), sse(Chunks::split(stream, &[60]))).await;
    let end = ended(response).await;
    assert_eq!(end.outcome, StreamOutcome::Failed(ErrorClass::Overloaded));
    assert!(end.first_data_at.is_some());
}
