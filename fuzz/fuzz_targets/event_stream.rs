//! The event-stream (`text/event-stream`) follower of `ClassifyLayer`, through the public
//! service: the SSE parser itself is private to `tollgate-providers`.
//!
//! Input layout:
//!
//! | bytes | meaning |
//! |---|---|
//! | 0 | the classifier: `ProviderClassifier::ALL[b % 10]` |
//! | 1 | bits 0–3: how many cut points follow (0–15); bit 4: the body ends with a read error (a reset connection) after its last frame; bit 5: each cut frame is a two-piece `Chain` |
//! | 3 bytes per cut point | a little-endian `u24`, taken modulo the body's length + 1 |
//! | the rest | the body, expanded: `0xfe k` stands for `k × 512 + 1` copies of the byte before it (`a` at the start), up to 80 KiB in all, so a short input can hold a line beyond the 64 KiB the follower keeps |
//!
//! Each input gets new services: a `ClassifyLayer` over an always-ready upstream answering
//! `200` with `content-type: text/event-stream` and the body in frames, polled with a no-op
//! waker (no runtime: every frame is ready at once; the stream report reads tokio's clock,
//! which is the system clock outside a runtime). The body is sent in one frame; cut at the cut
//! points (equal points give empty frames), each frame whole or, as bit 5 says, a two-piece
//! `Chain` (the follower's vectored path); and, for bodies up to 256 bytes, one byte a frame.
//!
//! Checks: no panic; the response is judged a success and carries a `StreamReport`, its body follows
//! events; every way gives the same end — completed, or the same error (the same verdict, the
//! same `StreamFailed` type, message and event name, the same `StreamTruncated` terminal event,
//! or the same read error) — the same usage and the same "first data passed": where the body
//! is cut never matters; every error is a `Classified` with a failure verdict and ends the body
//! (the next poll is `None`); the bytes handed on are a prefix of the body, and all of it when
//! the body completes; the report ends exactly once, `Completed` (with the usage) when the
//! body ends cleanly, `Failed` with the error's class otherwise.

#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::buf::Chain;
use bytes::{Buf, Bytes};
use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame};
use libfuzzer_sys::fuzz_target;
use tollgate_core::{StreamEnd, StreamOutcome, StreamReport, Usage, Verdict};
use tollgate_providers::classify_layer::error::{StreamFailed, StreamTruncated};
use tollgate_providers::{ClassifyLayer, ProviderClassifier};
use tower_layer::Layer;
use tower_service::Service;

/// The most bytes a body expands to: room for a line or an event over the 64 KiB the
/// follower keeps, and not much more (every line costs the fuzzer's comparison tracing).
const MAX_BODY: usize = 80 * 1024;

/// Bodies up to this long are also sent one byte a frame.
const BYTEWISE: usize = 256;

/// A body of ready frames, then optionally a read error.
struct Frames<D> {
    frames: VecDeque<D>,
    fail: bool,
}

impl<D: Buf + Unpin> Body for Frames<D> {
    type Data = D;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<D>, io::Error>>> {
        if let Some(data) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::take(&mut self.fail) {
            return Poll::Ready(Some(Err(io::Error::from(io::ErrorKind::ConnectionReset))));
        }
        Poll::Ready(None)
    }
}

/// An always-ready upstream answering one event stream (once).
struct Upstream<D>(Option<Frames<D>>);

impl<D: Buf + Unpin> Service<Request<()>> for Upstream<D> {
    type Response = Response<Frames<D>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        let body = self.0.take().expect("called once");
        let mut response = Response::new(body);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        std::future::ready(Ok(response))
    }
}

/// Polls `future` once: everything here answers at once.
fn now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("pending without a runtime"),
    }
}

/// How a body ended, comparable across the ways it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Completed,
    Failed {
        verdict: Verdict,
        /// `StreamFailed`'s type, message and event; `StreamTruncated`'s terminal event; or the
        /// read error's kind.
        what: String,
    },
}

/// What one way of sending gave.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    end: End,
    /// The report's outcome, usage and whether first data passed.
    outcome: StreamOutcome,
    usage: Option<Usage>,
    first_data: bool,
}

/// Sends `frames` (which make up `body`) through a `ClassifyLayer` of `classifier` and reads
/// the answer to its end.
fn follow<D: Buf + Unpin + Send + 'static>(
    classifier: ProviderClassifier,
    body: &[u8],
    frames: VecDeque<D>,
    fail: bool,
) -> Seen {
    let mut service = ClassifyLayer::new(classifier).layer(Upstream(Some(Frames { frames, fail })));
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("always ready"),
    }
    let response = now(service.call(Request::new(()))).expect("a 200 is an answer");
    assert!(
        Verdict::of_outcome(Ok(&response)).is_success(),
        "a 200 head is a success"
    );
    let report = StreamReport::of(&response).expect("a followed stream has a report");
    let ends: Arc<Mutex<Vec<StreamEnd>>> = Arc::default();
    let sink = Arc::clone(&ends);
    report.on_end(move |end| sink.lock().expect("not poisoned").push(*end));
    assert!(
        response.body().follows_events(),
        "a 200 event stream is followed"
    );

    let mut body_out = response.into_body();
    let mut handed = Vec::new();
    let end = loop {
        match Pin::new(&mut body_out).poll_frame(&mut cx) {
            Poll::Pending => panic!("pending without a runtime"),
            Poll::Ready(None) => break End::Completed,
            Poll::Ready(Some(Ok(frame))) => {
                let Ok(mut data) = frame.into_data() else {
                    panic!("only data frames were sent");
                };
                while data.has_remaining() {
                    let chunk = data.chunk();
                    handed.extend_from_slice(chunk);
                    let n = chunk.len();
                    data.advance(n);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                let verdict = Verdict::of_error(error.as_ref())
                    .expect("every body error is Classified")
                    .clone();
                assert!(!verdict.is_success(), "an error with a success verdict");
                let inner = error
                    .downcast_ref::<tollgate_core::Classified>()
                    .expect("a Classified")
                    .inner();
                let what = if let Some(failed) = inner.downcast_ref::<StreamFailed>() {
                    let _ = failed.to_string();
                    format!(
                        "failed {:?} {:?} {:?}",
                        failed.kind(),
                        failed.message(),
                        failed.event()
                    )
                } else if let Some(truncated) = inner.downcast_ref::<StreamTruncated>() {
                    let _ = truncated.to_string();
                    format!("truncated {:?}", truncated.expected())
                } else if let Some(io) = inner.downcast_ref::<io::Error>() {
                    format!("read {:?}", io.kind())
                } else {
                    panic!("unexpected body error: {error:?}")
                };
                // After an error, the body ends.
                assert!(
                    matches!(
                        Pin::new(&mut body_out).poll_frame(&mut cx),
                        Poll::Ready(None)
                    ),
                    "a frame after the error"
                );
                break End::Failed { verdict, what };
            }
        }
    };
    assert!(
        body.starts_with(&handed),
        "handed on bytes that are not the body's"
    );
    if end == End::Completed {
        assert_eq!(handed.len(), body.len(), "a completed stream handed on all");
    }
    let ends = ends.lock().expect("not poisoned");
    assert_eq!(ends.len(), 1, "the report ends once");
    let told = ends[0];
    match &end {
        End::Completed => assert_eq!(told.outcome, StreamOutcome::Completed),
        End::Failed { verdict, .. } => {
            assert_eq!(told.usage, None, "a failed stream reports no usage");
            assert_eq!(
                told.outcome,
                StreamOutcome::Failed(verdict.class().expect("a failure has a class"))
            );
        }
    }
    drop(ends);
    Seen {
        end,
        outcome: told.outcome,
        usage: told.usage,
        first_data: told.first_data_at.is_some(),
    }
}

/// The body, with `0xfe k` expanded.
fn expand(script: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(script.len());
    let mut bytes = script.iter();
    while let Some(&byte) = bytes.next() {
        if byte == 0xfe {
            let Some(&k) = bytes.next() else { break };
            let copies = usize::from(k) * 512 + 1;
            let copies = copies.min(MAX_BODY.saturating_sub(body.len()));
            let last = body.last().copied().unwrap_or(b'a');
            body.resize(body.len() + copies, last);
        } else if body.len() < MAX_BODY {
            body.push(byte);
        }
    }
    body
}

fuzz_target!(|data: &[u8]| {
    let [selector, control, rest @ ..] = data else {
        return;
    };
    let classifier =
        ProviderClassifier::ALL[usize::from(*selector) % ProviderClassifier::ALL.len()];
    let fail = control & 0x10 != 0;
    let cuts = usize::from(control & 0x0f);
    let Some((points, script)) = rest.split_at_checked(cuts * 3) else {
        return;
    };
    let body = Bytes::from(expand(script));
    let mut cuts: Vec<usize> = points
        .chunks_exact(3)
        .map(|p| {
            let n = usize::from(p[0]) | usize::from(p[1]) << 8 | usize::from(p[2]) << 16;
            n % (body.len() + 1)
        })
        .collect();
    cuts.sort_unstable();

    let mut pieces = VecDeque::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([body.len()].iter()) {
        pieces.push_back(body.slice(from..cut));
        from = cut;
    }

    let whole = follow(classifier, &body, VecDeque::from([body.clone()]), fail);
    if control & 0x20 == 0 {
        let cut = follow(classifier, &body, pieces, fail);
        assert_eq!(whole, cut, "cut at {cuts:?}");
    } else {
        let chained: VecDeque<Chain<Bytes, Bytes>> = pieces
            .into_iter()
            .map(|piece| {
                let mid = piece.len() / 2;
                piece.slice(..mid).chain(piece.slice(mid..))
            })
            .collect();
        let chain = follow(classifier, &body, chained, fail);
        assert_eq!(whole, chain, "chained, cut at {cuts:?}");
    }

    if body.len() <= BYTEWISE {
        let bytewise = (0..body.len()).map(|i| body.slice(i..=i)).collect();
        let bytewise = follow(classifier, &body, bytewise, fail);
        assert_eq!(whole, bytewise, "one byte a frame");
    }
});
