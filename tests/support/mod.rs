//! Fixtures shared by the ready-stack tests (`stack_builder.rs`, `stack_config.rs`): a
//! stand-in transport, [`Wire`], that answers from a script per host (or per host and
//! credentials) like OpenAI would and logs what it was sent, the error bodies it answers with,
//! a backoff without randomness, and a scenario for stacks with a cache.
//!
//! Each test file is its own crate and includes this with `mod support;`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::cache::CacheStatus;
use tollgate::retry::{Backoff, Jitter, RetryPolicy, Spread};
use tollgate::stack::Stack;
use tower::{Service, ServiceExt};

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// OpenAI's 429 body for a spent request quota.
pub(crate) const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
/// OpenAI's 503 body when it is overloaded.
pub(crate) const OVERLOADED: &str = r#"{"error":{"message":"The server is overloaded","type":"server_error","code":"server_is_overloaded"}}"#;
/// OpenAI's 400 body for a prompt longer than the model's context window.
pub(crate) const TOO_LONG: &str = r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;

/// OpenAI's 401 body for a key it does not accept.
#[allow(dead_code)] // not every test crate asks
pub(crate) const INVALID_KEY: &str = r#"{"error":{"message":"Incorrect API key provided: sk-revo*****. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

/// One scripted answer of the [`Wire`].
pub(crate) type Answer = Box<dyn Fn() -> Response<Full<Bytes>> + Send + Sync>;

/// An answer with `status`, `headers` and `body`.
pub(crate) fn answer(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Answer {
    Box::new(move || {
        let mut response = Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    })
}

/// A successful chat completion (with no choices).
pub(crate) fn ok() -> Answer {
    answer(200, &[], r#"{"choices":[]}"#)
}

/// What the transport was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) at: Duration,
    pub(crate) uri: String,
    pub(crate) authorization: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) model: Option<String>,
}

/// A transport answering from a script per host, logging each request. A script for a host
/// and credentials ([`script_key`](Wire::script_key)) comes before the host's.
#[derive(Clone)]
pub(crate) struct Wire {
    answers: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    start: Instant,
}

impl Wire {
    /// A wire with nothing scripted; its clock starts now.
    pub(crate) fn new() -> Self {
        Wire {
            answers: Arc::default(),
            seen: Arc::default(),
            start: Instant::now(),
        }
    }

    /// Answers the next requests to `host` with `answers`, in order.
    pub(crate) fn script(self, host: &str, answers: Vec<Answer>) -> Self {
        self.answers
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_default()
            .extend(answers);
        self
    }

    /// Answers the next requests to `host` sent with `credentials` (the `authorization` or
    /// `api-key` header's value) with `answers`, in order, before the host's own script.
    #[allow(dead_code)] // not every test crate asks
    pub(crate) fn script_key(self, host: &str, credentials: &str, answers: Vec<Answer>) -> Self {
        self.script(&format!("{host} {credentials}"), answers)
    }

    /// Every request sent so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// When each request was sent, since the wire was made.
    #[allow(dead_code)] // not every test crate asks
    pub(crate) fn times(&self) -> Vec<Duration> {
        self.seen().into_iter().map(|s| s.at).collect()
    }
}

impl Service<Request<BufferedBody>> for Wire {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let model = serde_json::from_slice::<serde_json::Value>(request.body().bytes())
            .ok()
            .and_then(|body| body.get("model")?.as_str().map(str::to_owned));
        self.seen.lock().unwrap().push(Seen {
            at: self.start.elapsed(),
            uri: request.uri().to_string(),
            authorization: header("authorization"),
            api_key: header("api-key"),
            model,
        });
        let host = request.uri().host().unwrap_or_default().to_owned();
        let credentials = header("authorization").or_else(|| header("api-key"));
        let mut answers = self.answers.lock().unwrap();
        let for_key = credentials.and_then(|credentials| {
            answers
                .get_mut(&format!("{host} {credentials}"))
                .and_then(VecDeque::pop_front)
        });
        let answer = for_key
            .or_else(|| answers.get_mut(&host).and_then(VecDeque::pop_front))
            .unwrap_or_else(|| panic!("no answer scripted for {host}"));
        std::future::ready(Ok(answer()))
    }
}

/// Backoff without randomness, so that times are exact: 0.5 s, 1 s, 2 s, …
pub(crate) fn steady() -> RetryPolicy {
    RetryPolicy::default()
        .with_backoff(
            Backoff::exponential(Duration::from_millis(500), Duration::from_secs(8))
                .with_jitter(Jitter::None),
        )
        .with_server_delay_spread(Spread::None)
}

/// A chat request saying `content`, opted in to the cache (`x-tollgate-cache: on`) or not.
#[allow(dead_code)] // not every test crate asks
pub(crate) fn cache_chat(content: &str, opt_in: bool) -> Request<BufferedBody> {
    let mut request = Request::post("/v1/chat/completions");
    if opt_in {
        request = request.header("x-tollgate-cache", "on");
    }
    let body = format!(
        r#"{{"model":"caller-model","max_tokens":10,"messages":[{{"role":"user","content":"{content}"}}]}}"#
    );
    request.body(BufferedBody::from(body)).unwrap()
}

/// How a request of [`cache_scenario`] was answered: when, with which `x-tollgate-cache`
/// header and [`CacheStatus`], and with which body.
#[allow(dead_code)] // not every test crate asks
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answered {
    pub(crate) at: Duration,
    pub(crate) header: Option<String>,
    pub(crate) status: Option<CacheStatus>,
    pub(crate) body: Bytes,
}

/// Sends `requests` (content, opted in) one after the other through `stack`, on the paused
/// clock, and says how each was answered.
#[allow(dead_code)] // not every test crate asks
pub(crate) async fn cache_scenario(stack: &Stack, requests: &[(&str, bool)]) -> Vec<Answered> {
    let start = Instant::now();
    let mut answered = Vec::new();
    for &(content, opt_in) in requests {
        let response = stack
            .clone()
            .oneshot(cache_chat(content, opt_in))
            .await
            .unwrap();
        let header = response
            .headers()
            .get("x-tollgate-cache")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = CacheStatus::of(&response);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        answered.push(Answered {
            at: start.elapsed(),
            header,
            status,
            body,
        });
    }
    answered
}
