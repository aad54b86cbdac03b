//! Fixtures shared by the layer tests: a transport that records when each request reached
//! it, requests with a cost, and responses carrying a verdict.

#![allow(dead_code)] // not every test crate uses every fixture

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tollgate_core::{BoxError, Cost, Dimension, Verdict};
use tower::{Service, ServiceExt};

pub(crate) const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A request named `name` costing `requests` and `tokens`.
pub(crate) fn request(name: &str, tokens: u64) -> Request<String> {
    let mut request = Request::new(name.to_owned());
    request
        .extensions_mut()
        .insert(Cost::requests(1).with(Dimension::Tokens, tokens));
    request
}

pub(crate) type Log = Arc<Mutex<Vec<(String, Duration)>>>;
pub(crate) type Respond = Arc<dyn Fn(&Request<String>) -> Response<()> + Send + Sync>;

/// A transport that records when each request reached it, answering with `respond`.
#[derive(Clone)]
pub(crate) struct Recorder {
    start: Instant,
    log: Log,
    respond: Respond,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder::answering(|_| Response::new(()))
    }

    pub(crate) fn answering(
        respond: impl Fn(&Request<String>) -> Response<()> + Send + Sync + 'static,
    ) -> Self {
        Recorder {
            start: Instant::now(),
            log: Log::default(),
            respond: Arc::new(respond),
        }
    }

    pub(crate) fn log(&self) -> Vec<(String, Duration)> {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.log().into_iter().map(|(name, _)| name).collect()
    }
}

impl Service<Request<String>> for Recorder {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        self.log
            .lock()
            .unwrap()
            .push((request.body().clone(), self.start.elapsed()));
        std::future::ready(Ok((self.respond)(&request)))
    }
}

/// Sends `request` through `service` in a task of its own, returning its result.
pub(crate) fn spawn<S>(
    service: &S,
    request: Request<String>,
) -> tokio::task::JoinHandle<Result<(), BoxError>>
where
    S: Service<Request<String>, Response = Response<()>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send,
{
    let service = service.clone();
    tokio::spawn(async move { service.oneshot(request).await.map(drop) })
}

pub(crate) fn verdict_response(verdict: Verdict) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = verdict.status().unwrap_or(StatusCode::OK);
    response.extensions_mut().insert(verdict);
    response
}
