//! Stream faults through a real HTTP client: a delayed first token, a stall, an error event and a
//! cut connection after N events, on tokio's paused clock.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Client as Plain, chat, messages, sse};
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::time::Instant;
use tollgate_mock::{FirstTokenDelay, Latency, MockConfig, MockServer, StreamFault};

const OPENAI_ERROR_EVENT: &str = "data: {\"error\":{\"code\":null,\"message\":\"The server had an error while processing your request. Sorry about that!\",\"param\":null,\"type\":\"server_error\"}}\n\n";
const ANTHROPIC_ERROR_EVENT: &str = "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"},\"type\":\"error\"}\n\n";

/// A streamed answer read event by event.
struct Stream {
    status: u16,
    body: Incoming,
    buf: String,
}

impl Stream {
    async fn open(
        client: &Client<HttpConnector, Full<Bytes>>,
        server: &MockServer,
        path: &str,
        body: &Value,
    ) -> Stream {
        let mut body = body.clone();
        body["stream"] = true.into();
        let req = http::Request::post(format!("{}{path}", server.base_url()))
            .header("content-type", "application/json")
            .body(Full::from(body.to_string()))
            .unwrap();
        let res: Response<Incoming> = client.request(req).await.unwrap();
        Stream {
            status: res.status().as_u16(),
            body: res.into_body(),
            buf: String::new(),
        }
    }

    /// The next SSE event (with its blank line), `Ok(None)` at a clean end, or the body error.
    async fn next(&mut self) -> Result<Option<String>, hyper::Error> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let event = self.buf[..i + 2].to_owned();
                self.buf.drain(..i + 2);
                return Ok(Some(event));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    assert!(
                        self.buf.is_empty(),
                        "a partial event at the end: {:?}",
                        self.buf
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// Every event up to the end (or the error).
    async fn rest(&mut self) -> (Vec<String>, Option<hyper::Error>) {
        let mut events = Vec::new();
        loop {
            match self.next().await {
                Ok(Some(e)) => events.push(e),
                Ok(None) => return (events, None),
                Err(e) => return (events, Some(e)),
            }
        }
    }
}

/// The body error of a connection closed in the middle of the chunked encoding.
fn is_unexpected_eof(err: &hyper::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[tokio::test(start_paused = true)]
async fn first_token_arrives_exactly_after_the_delay() {
    let server = MockServer::start(
        MockConfig::openai().with_first_token_delay(FirstTokenDelay::new(Duration::from_secs(5))),
    )
    .await
    .unwrap();
    let client = client();
    let start = Instant::now();
    let mut s = Stream::open(&client, &server, "/v1/chat/completions", &chat(4, Some(5))).await;
    assert_eq!(s.status, 200);
    assert_eq!(start.elapsed(), Duration::ZERO, "the head is sent at once");
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(first.contains("\"role\":\"assistant\""), "{first}");
    let (events, err) = s.rest().await;
    assert!(err.is_none());
    assert_eq!(events.last().unwrap(), "data: [DONE]\n\n");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "the rest is not delayed"
    );
    let stats = server.stats();
    assert_eq!((stats.ok, stats.streams_delayed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn first_token_delay_adds_to_the_latency() {
    // 100 ms of latency: 50 before the head, 50 spread over the frames (before each one).
    async fn run(config: MockConfig) -> (Duration, Duration) {
        let server = MockServer::start(
            config
                .with_completion_tokens(3)
                .with_latency(Latency::Fixed { ms: 100 }),
        )
        .await
        .unwrap();
        let client = client();
        let start = Instant::now();
        let mut s = Stream::open(&client, &server, "/v1/messages", &messages(8, 100)).await;
        let head = start.elapsed();
        let (events, err) = s.rest().await;
        assert!(err.is_none());
        assert!(events.last().unwrap().starts_with("event: message_stop"));
        (head, start.elapsed())
    }
    let (head, clean) = run(MockConfig::anthropic()).await;
    let delay = FirstTokenDelay::new(Duration::from_secs(2));
    let (delayed_head, delayed) = run(MockConfig::anthropic().with_first_token_delay(delay)).await;
    assert_eq!(
        (head, delayed_head),
        (Duration::from_millis(50), Duration::from_millis(50))
    );
    assert_eq!(delayed - clean, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn stall_after_n_keeps_the_body_pending_until_the_client_leaves() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_max_concurrency(1)
            .with_stream_stall(StreamFault::after(2)),
    )
    .await
    .unwrap();
    let client = client();
    let mut s = Stream::open(&client, &server, "/v1/chat/completions", &chat(4, Some(5))).await;
    assert_eq!(s.status, 200);
    for _ in 0..2 {
        s.next().await.unwrap().unwrap();
    }
    let start = Instant::now();
    let pending = tokio::time::timeout(Duration::from_secs(60), s.body.frame()).await;
    assert!(pending.is_err(), "still pending after 60 s");
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert!(s.buf.is_empty(), "nothing after the 2 events: {:?}", s.buf);
    let stats = server.stats();
    assert_eq!((stats.ok, stats.streams_stalled), (1, 1));
    // The stalled stream holds its concurrency slot…
    let plain = Plain::new(&server);
    assert_eq!(plain.chat(&chat(4, Some(5))).await.status, 429);
    // …until the client goes away.
    drop(s);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(plain.chat(&chat(4, Some(5))).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn shutdown_cuts_a_stalled_stream() {
    let server =
        MockServer::start(MockConfig::anthropic().with_stream_stall(StreamFault::after(0)))
            .await
            .unwrap();
    let client = client();
    let mut s = Stream::open(&client, &server, "/v1/messages", &messages(8, 100)).await;
    assert_eq!(s.status, 200);
    let start = Instant::now();
    let stopping = tokio::spawn(server.shutdown());
    let (events, err) = s.rest().await;
    assert!(events.is_empty(), "{events:?}");
    assert!(
        is_unexpected_eof(&err.unwrap()),
        "a body error, not a clean end"
    );
    stopping.await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn openai_error_event_after_n_chunks() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_completion_tokens(10)
            .with_stream_error(StreamFault::after(3)),
    )
    .await
    .unwrap();
    let client = client();
    let mut s = Stream::open(&client, &server, "/v1/chat/completions", &chat(4, None)).await;
    assert_eq!(s.status, 200);
    let (events, err) = s.rest().await;
    assert!(err.is_none(), "a clean end: {err:?}");
    assert_eq!(events.len(), 4, "{events:?}");
    for e in &events[..3] {
        let c: Value = serde_json::from_str(e.strip_prefix("data: ").unwrap().trim()).unwrap();
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    assert_eq!(events[3], OPENAI_ERROR_EVENT);
    assert!(!events.iter().any(|e| e.contains("[DONE]")));
    let stats = server.stats();
    assert_eq!((stats.ok, stats.streams_errored), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn anthropic_error_event_after_n_events() {
    let config = MockConfig::anthropic().with_completion_tokens(10);
    // The same stream without the fault, for the events before it.
    let clean = MockServer::start(config.clone()).await.unwrap();
    let mut body = messages(8, 100);
    body["stream"] = true.into();
    let clean = Plain::new(&clean).messages(&body).await.body;
    let server = MockServer::start(config.with_stream_error(StreamFault::after(4)))
        .await
        .unwrap();
    let mut s = Stream::open(&client(), &server, "/v1/messages", &body).await;
    assert_eq!(s.status, 200);
    let (events, err) = s.rest().await;
    assert!(err.is_none(), "a clean end: {err:?}");
    let prefix: String = clean.split_inclusive("\n\n").take(4).collect();
    assert_eq!(events[..4].concat(), prefix);
    assert_eq!(events[4..], [ANTHROPIC_ERROR_EVENT]);
    assert!(!events.iter().any(|e| e.contains("message_stop")));
    assert_eq!(server.stats().streams_errored, 1);
}

#[tokio::test(start_paused = true)]
async fn a_fault_after_the_last_event_still_comes_before_the_terminal_one() {
    let server = MockServer::start(
        MockConfig::anthropic()
            .with_completion_tokens(3)
            .with_stream_error(StreamFault::after(1000)),
    )
    .await
    .unwrap();
    let r = Plain::new(&server)
        .post("/v1/messages", &{
            let mut b = messages(8, 100);
            b["stream"] = true.into();
            b
        })
        .await;
    let frames = sse(&r.body);
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(names[names.len() - 2..], ["message_delta", "error"]);
}

#[tokio::test(start_paused = true)]
async fn cut_after_n_events_is_a_body_error() {
    // Paced (20 ms of latency spread over the frames) or back to back (none).
    for (config, path, body, ms) in [
        (
            MockConfig::openai(),
            "/v1/chat/completions",
            chat(4, Some(5)),
            20,
        ),
        (
            MockConfig::openai(),
            "/v1/chat/completions",
            chat(4, Some(5)),
            0,
        ),
        (
            MockConfig::anthropic(),
            "/v1/messages",
            messages(8, 100),
            20,
        ),
        (MockConfig::anthropic(), "/v1/messages", messages(8, 100), 0),
    ] {
        let server = MockServer::start(
            config
                .with_latency(Latency::Fixed { ms })
                .with_stream_cut(StreamFault::after(3)),
        )
        .await
        .unwrap();
        let client = client();
        let mut s = Stream::open(&client, &server, path, &body).await;
        assert_eq!(s.status, 200);
        let (events, err) = s.rest().await;
        assert_eq!(events.len(), 3, "{path}: {events:?}");
        assert!(s.buf.is_empty(), "{path}: {:?}", s.buf);
        let err = err.unwrap_or_else(|| panic!("{path}: a clean end"));
        assert!(is_unexpected_eof(&err), "{path}: {err:?}");
        let stats = server.stats();
        assert_eq!((stats.ok, stats.streams_cut), (1, 1), "{path}");
    }
}

#[tokio::test(start_paused = true)]
async fn cut_after_zero_events_without_pacing() {
    let server = MockServer::start(MockConfig::openai().with_stream_cut(StreamFault::after(0)))
        .await
        .unwrap();
    let mut s = Stream::open(&client(), &server, "/v1/chat/completions", &chat(4, None)).await;
    assert_eq!(s.status, 200);
    let (events, err) = s.rest().await;
    assert!(events.is_empty(), "{events:?}");
    assert!(is_unexpected_eof(&err.unwrap()));
}

#[tokio::test(start_paused = true)]
async fn seeded_stream_faults_are_reproducible() {
    /// 'c' clean, 'e' error event, 'x' cut; and the stats' counts.
    async fn run(seed: u64) -> (String, [u64; 4]) {
        let server = MockServer::start(
            MockConfig::openai()
                .with_seed(seed)
                .with_first_token_delay(
                    FirstTokenDelay::new(Duration::from_millis(100)).with_rate(0.5),
                )
                .with_stream_error(StreamFault::after(1).with_rate(0.3))
                .with_stream_cut(StreamFault::after(2).with_rate(0.3)),
        )
        .await
        .unwrap();
        let client = client();
        let mut out = String::new();
        for _ in 0..30 {
            let mut s =
                Stream::open(&client, &server, "/v1/chat/completions", &chat(4, Some(3))).await;
            let (events, err) = s.rest().await;
            out.push(match (err, events.last().map(String::as_str)) {
                (Some(_), _) => 'x',
                (None, Some("data: [DONE]\n\n")) => 'c',
                (None, Some(OPENAI_ERROR_EVENT)) => 'e',
                other => panic!("{other:?}"),
            });
        }
        let st = server.stats();
        (
            out,
            [
                st.streams_delayed,
                st.streams_stalled,
                st.streams_errored,
                st.streams_cut,
            ],
        )
    }
    let (a, counts) = run(7).await;
    assert_eq!((a.clone(), counts), run(7).await);
    assert_ne!(a, run(8).await.0);
    for c in ['c', 'e', 'x'] {
        assert!(a.contains(c), "{a}");
    }
    let count = |c| a.chars().filter(|x| *x == c).count() as u64;
    assert_eq!(counts[1..], [0, count('e'), count('x')]);
    assert!((5..=25).contains(&counts[0]), "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn stream_faults_leave_unstreamed_answers_alone() {
    let server = MockServer::start(
        MockConfig::openai()
            .with_stream_cut(StreamFault::after(0))
            .with_first_token_delay(FirstTokenDelay::new(Duration::from_secs(9))),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let r = Plain::new(&server).chat(&chat(4, Some(5))).await;
    assert_eq!(r.status, 200);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(r.json()["object"], "chat.completion");
    let stats = server.stats();
    assert_eq!((stats.streams_cut, stats.streams_delayed), (0, 0));
}
