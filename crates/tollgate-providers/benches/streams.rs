//! What following an event stream costs: an OpenAI chat stream of 1,000 chunks (one event a
//! frame, then `data: [DONE]`) read to its end through `ClassifyLayer` — as `text/event-stream`
//! (followed) and as `application/octet-stream` (passed through untouched) — beside the raw
//! body in the same run. Run with `cargo bench -p tollgate-providers`.
//!
//! Two groups, throughput in chunks:
//! - **in memory**: every frame ready at once, the bodies built in the untimed setup — the
//!   follower's own cost, with nothing else to hide it;
//! - **over loopback**: the same stream from a hyper server on 127.0.0.1, one event per write
//!   as an LLM API sends them, read by a hyper client — what a caller pays for following a
//!   real stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body::{Body, Frame};
use tollgate_providers::{ClassifyLayer, OpenAi};
use tower::{Layer, Service};

#[path = "../../../benches/support/mod.rs"]
#[allow(dead_code)] // `Bare` answers with no body; this bench answers with a stream
mod support;
use support::send;

const CHUNKS: usize = 1_000;

/// A body of ready frames.
struct Frames(VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
    }
}

fn stream() -> Vec<Bytes> {
    let mut frames: Vec<Bytes> = (0..CHUNKS)
        .map(|i| {
            Bytes::from(format!(
                "data: {{\"id\":\"chatcmpl-9x2Lq\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" token{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            ))
        })
        .collect();
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// Reads `body` to its end, every frame ready at once.
fn drain<B: Body + Unpin>(mut body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut frames = 0;
    while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
        frame.expect("the stream reads without error");
        frames += 1;
    }
    frames
}

fn streams(c: &mut Criterion) {
    let frames = stream();
    let raw = || Frames(frames.iter().cloned().collect());
    let through = |content_type: &'static str| {
        let frames = frames.clone();
        move || {
            let frames = frames.clone();
            let mut service =
                ClassifyLayer::new(OpenAi::new()).layer(tower::service_fn(move |_: Request<()>| {
                    let body = Frames(frames.iter().cloned().collect());
                    let response = Response::builder()
                        .header("content-type", content_type)
                        .body(body)
                        .expect("a response");
                    std::future::ready(Ok::<_, Infallible>(response))
                }));
            send(&mut service, Request::new(())).into_body()
        }
    };
    let passed = through("application/octet-stream");
    let followed = through("text/event-stream");

    let mut group = c.benchmark_group("1,000-chunk event stream");
    group.throughput(Throughput::Elements(CHUNKS as u64 + 1));
    group.bench_function("raw body", |b| {
        b.iter_batched(raw, drain, BatchSize::SmallInput);
    });
    group.bench_function("ClassifyLayer, passed through", |b| {
        b.iter_batched(&passed, drain, BatchSize::SmallInput);
    });
    group.bench_function("ClassifyLayer, followed", |b| {
        b.iter_batched(&followed, drain, BatchSize::SmallInput);
    });
    group.finish();
}

/// A body that hands on one frame per poll after a pending one, so that a server writes (and
/// flushes) each event on its own, as an LLM API does.
struct Paced {
    frames: VecDeque<Bytes>,
    ready: bool,
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !std::mem::replace(&mut self.ready, false) {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.frames.pop_front().map(|c| Ok(Frame::data(c))))
    }
}

/// Serves the stream on loopback: `/sse` as `text/event-stream`, anything else as
/// `application/octet-stream`.
async fn serve(frames: Vec<Bytes>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let frames = frames.clone();
            let service = hyper::service::service_fn(move |request: Request<_>| {
                let content_type = if request.uri().path() == "/sse" {
                    "text/event-stream"
                } else {
                    "application/octet-stream"
                };
                let body = Paced {
                    frames: frames.iter().cloned().collect(),
                    ready: false,
                };
                let response = Response::builder()
                    .header("content-type", content_type)
                    .body(body);
                std::future::ready(response)
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    addr
}

/// Reads `body` to its end; the number of frames.
async fn read<B: Body + Unpin>(mut body: B) -> usize
where
    B::Error: std::fmt::Debug,
{
    let mut frames = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame.expect("the stream reads without error");
        frames += 1;
    }
    frames
}

fn over_loopback(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addr = runtime.block_on(serve(stream()));
    let mut sender = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connected");
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("a handshake");
        tokio::spawn(connection);
        sender
    });
    let request = |path: &str| {
        Request::get(format!("http://{addr}{path}"))
            .body(http_body_util::Empty::<Bytes>::new())
            .expect("a request")
    };

    let mut group = c.benchmark_group("1,000-chunk event stream over loopback");
    group.throughput(Throughput::Elements(CHUNKS as u64 + 1));
    group.sample_size(60);
    group.bench_function("hyper body", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = sender.send_request(request("/raw")).await.expect("sent");
                read(response.into_body()).await
            })
        });
    });
    for (name, path) in [
        ("ClassifyLayer, passed through", "/raw"),
        ("ClassifyLayer, followed", "/sse"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut service = ClassifyLayer::new(OpenAi::new())
                        .layer(tower::service_fn(|request| sender.send_request(request)));
                    let response = tower::ServiceExt::ready(&mut service)
                        .await
                        .expect("ready")
                        .call(request(path))
                        .await
                        .expect("sent");
                    read(response.into_body()).await
                })
            });
        });
    }
    group.finish();
}

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::streams, super::over_loopback);
}
criterion_main!(harness::benches);
