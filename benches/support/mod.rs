//! What every criterion benchmark of the workspace measures against: the bare, always-ready
//! service, and one request sent through a service and polled once. Included by each crate's
//! bench with `#[path]`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use tower::Service;

/// An always-ready service answering 200 at once, for any request body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bare;

impl<B> Service<Request<B>> for Bare {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

/// Readies `service`, calls it and polls the response once: every path measured here answers
/// at once.
pub(crate) fn send<S, B, R>(service: &mut S, request: Request<B>) -> Response<R>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("always ready"),
    }
    let future = pin!(service.call(request));
    match future.poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        _ => panic!("answered at once"),
    }
}
