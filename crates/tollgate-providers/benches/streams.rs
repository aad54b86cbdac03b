//! What following an event stream costs: an OpenAI chat stream of 1,000 chunks (one event a
//! frame, then `data: [DONE]`) read to its end through `ClassifyLayer` — as `text/event-stream`
//! (followed) and as `application/octet-stream` (passed through untouched) — beside the raw
//! body in the same run. Run with `cargo bench -p tollgate-providers`.
//!
//! Criterion, one group, throughput in chunks; the bodies are built in the untimed setup.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body::{Body, Frame};
use tollgate_providers::{ClassifyLayer, OpenAi};
use tower::Layer;

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

// The harness functions `criterion_group!` writes carry no docs.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::streams);
}
criterion_main!(harness::benches);
