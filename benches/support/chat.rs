//! The facade `peers` bench's request and transport, for the crate benches that measure the
//! same thing: a small chat request (two headers, a 62-byte JSON body) and an always-ready
//! service answering 200 with an empty `Full<Bytes>`, dropped inside the timing. Included
//! with `#[path]` beside `support/mod.rs` by the benches whose crates have `bytes`,
//! `http-body-util` and `tollgate-core` at hand.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tollgate_core::body::BufferedBody;

/// The always-ready service: 200 at once, with an empty `Full<Bytes>` body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire;

impl<B> tower::Service<Request<B>> for Wire {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::new(Bytes::new()))))
    }
}

/// A chat request as a client sends it: a JSON body, a couple of headers.
pub(crate) fn chat() -> Request<BufferedBody> {
    Request::post("https://api.openai.com/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(BufferedBody::from(
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}
