//! The HTTP server: accept loop, per-connection tasks, and the request pipeline.
//!
//! Pipeline for each request, in order:
//!
//! 1. route (`POST /v1/chat/completions`, `POST /v1/messages`; anything else 404);
//! 2. read the body (at most 10 MiB, else 413);
//! 3. the reverse-proxy limiter, if configured (a bare 429, `text/plain`, fixed `Retry-After`;
//!    nothing consumed when refused). A real proxy decides on the headers alone; the mock reads
//!    the bounded body first so that a refused HTTP/1.1 connection stays reusable;
//! 4. API key (401);
//! 5. outage, manual or scheduled (the flavor's outage status; no quota consumed);
//! 6. parse the JSON (400);
//! 7. prepaid credit (OpenAI 429 `insufficient_quota`, Anthropic 400);
//! 8. context window (400; no quota consumed);
//! 9. admission against the quotas (429; nothing consumed when refused);
//! 10. fault draw: reset, hang or an error status (quota already consumed, as providers count
//!     failed requests);
//! 11. latency, then the answer; output tokens are charged to OTPM (and Anthropic's TPM/TPD) and
//!     to the credit. A streamed answer that step 10 left alone draws its stream faults
//!     (first-token delay; stall, error event or cut after N events), which change only its
//!     body: the head is a 200, counted and charged as a complete answer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::answer::Answer;
use crate::body::{ConnectionReset, Ending, Guard, MockBody};
use crate::config::{ConfigError, Flavor, MockConfig, check_tenant_share};
use crate::faults::{
    Fault, Rng, StreamEnd, StreamPlan, draw_fault, draw_stream_faults, sample_latency,
};
use crate::proxy::ProxyLimiter;
use crate::quota::{Charge, QuotaState, Rejection};
use crate::stats::{Bucket, MockStats, Outcome, Recorder, StreamFault};
use crate::{anthropic, openai};

/// Request bodies above this get a 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The body of the reverse proxy's 429.
const PROXY_REFUSAL_BODY: &[u8] = b"429 Too Many Requests\n";

/// How long [`MockServer::shutdown`] lets open requests finish before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A running mock provider on a local TCP port.
///
/// Start it with [`MockServer::start`] (127.0.0.1, a free port) and point a client at
/// [`MockServer::base_url`]. Dropping it stops the server task and cuts every connection;
/// [`MockServer::shutdown`] does the same gracefully.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tollgate_mock::{MockConfig, MockServer};
/// let server = MockServer::start(MockConfig::openai().with_requests_per_minute(60)).await?;
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("flavor", &self.shared.config.flavor)
            .finish_non_exhaustive()
    }
}

/// State shared by every connection.
struct Shared {
    config: MockConfig,
    start: Instant,
    wall_start: SystemTime,
    quota: Mutex<QuotaState>,
    /// The reverse-proxy limiter, when configured.
    proxy: Option<Mutex<ProxyLimiter>>,
    recorder: Mutex<Recorder>,
    rng: Mutex<Rng>,
    manual_outage: AtomicBool,
    in_flight: AtomicU64,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn second(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Wall-clock time that follows tokio's (possibly paused) clock.
    fn wall_now(&self) -> SystemTime {
        self.wall_start + self.start.elapsed()
    }

    fn record(&self, outcome: Outcome, input: u64, output: u64) {
        self.recorder
            .lock()
            .outcome(self.second(), outcome, input, output);
    }

    /// Whether the reverse-proxy limiter refuses a request with these headers now.
    fn proxy_refuses(&self, headers: &HeaderMap) -> bool {
        let Some(proxy) = &self.proxy else {
            return false;
        };
        let key = api_key(headers).filter(|k| !k.is_empty());
        proxy.lock().admit(key.as_deref(), Instant::now()).is_err()
    }

    fn outage_status(&self) -> Option<u16> {
        if self.manual_outage.load(Ordering::Relaxed) {
            return Some(self.config.flavor.outage_status());
        }
        if self.config.faults.outages.is_empty() {
            return None;
        }
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.config
            .faults
            .outages
            .iter()
            .find(|o| now_ms >= o.start_ms && now_ms - o.start_ms < o.duration_ms)
            .map(|o| {
                if o.status == 0 {
                    self.config.flavor.outage_status()
                } else {
                    o.status
                }
            })
    }
}

// ===== impl MockServer =====

impl MockServer {
    /// Starts a server on `127.0.0.1` with a free port.
    ///
    /// # Errors
    ///
    /// An invalid configuration ([`std::io::ErrorKind::InvalidInput`], see
    /// [`MockConfig::validate`]) or a failure to bind.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        MockServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts a server on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// An invalid configuration ([`std::io::ErrorKind::InvalidInput`]) or a failure to bind.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockServer> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let now = Instant::now();
        let shared = Arc::new(Shared {
            quota: Mutex::new(QuotaState::new(
                config.flavor,
                &config.quota,
                config.credit_tokens,
                now,
            )),
            proxy: config
                .proxy_limit
                .as_ref()
                .map(|limit| Mutex::new(ProxyLimiter::new(limit, now))),
            rng: Mutex::new(Rng::new(config.seed)),
            config,
            start: now,
            wall_start: SystemTime::now(),
            recorder: Mutex::new(Recorder::default()),
            manual_outage: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            shutdown: rx.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), rx));
        Ok(MockServer {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        let mut stats = self.shared.recorder.lock().stats();
        stats.max_in_flight = stats
            .max_in_flight
            .max(self.shared.in_flight.load(Ordering::Relaxed));
        stats
    }

    /// Per-second buckets from the start (or the last 24 hours) up to the current second.
    pub fn timeline(&self) -> Vec<Bucket> {
        self.shared.recorder.lock().timeline(self.shared.second())
    }

    /// Turns a manual outage on or off: while on, every request gets the flavor's outage status
    /// (503 OpenAI, 529 Anthropic) and consumes no quota.
    pub fn set_outage(&self, on: bool) {
        self.shared.manual_outage.store(on, Ordering::Relaxed);
    }

    /// Sets the share of the [reverse-proxy limit](crate::ProxyLimit) another tenant consumes,
    /// from now on: the client is left `rate_per_second × (1 − share)`. It holds until the next
    /// entry of the configured `tenant_schedule` starts, or the next call.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`], and nothing changes, if `share` is not in `[0, 0.99]`
    /// ([`ProxyLimit::MAX_TENANT_SHARE`](crate::ProxyLimit::MAX_TENANT_SHARE); NaN included) or
    /// the server has no `proxy_limit`. Out-of-range shares are refused rather than clamped, so
    /// that a test never runs with a share it did not ask for.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tollgate_mock::{MockConfig, MockServer, ProxyLimit};
    /// let config = MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(10));
    /// let server = MockServer::start(config).await?;
    /// server.set_tenant_share(0.5).unwrap(); // the client now gets 5 requests per second
    /// assert_eq!(server.tenant_share(), 0.5);
    /// assert!(server.set_tenant_share(1.0).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_tenant_share(&self, share: f64) -> Result<(), ConfigError> {
        check_tenant_share("tenant_share", share)?;
        let proxy = self.shared.proxy.as_ref().ok_or_else(|| {
            ConfigError::invalid(
                "proxy_limit",
                "not configured; a tenant share applies to the reverse-proxy limiter",
            )
        })?;
        proxy.lock().set_tenant_share(share, Instant::now());
        Ok(())
    }

    /// The share of the reverse-proxy limit another tenant consumes now (from the schedule or
    /// [`MockServer::set_tenant_share`]); 0 without a `proxy_limit`.
    pub fn tenant_share(&self) -> f64 {
        self.shared
            .proxy
            .as_ref()
            .map_or(0.0, |proxy| proxy.lock().tenant_share(Instant::now()))
    }

    /// Stops accepting, lets open requests finish for up to a second (hanging ones end at once
    /// with a reset, stalled streams with a cut), then closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            // The accept task owns the connection tasks (a JoinSet): aborting it aborts them.
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(
                        builder.clone(),
                        stream,
                        shared.clone(),
                        shutdown.clone(),
                    ));
                }
                // Out of file descriptors and the like: back off briefly, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

async fn serve_connection(
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let svc = service_fn(move |req| handle(shared.clone(), req));
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown was requested (or the server was dropped).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        let n = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rec = shared.recorder.lock();
        rec.request();
        rec.in_flight(n);
        drop(rec);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An admitted request's concurrency slot, released when dropped.
struct Admitted(Arc<Shared>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.quota.lock().release();
    }
}

/// Which API shape the request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    Chat,
    Messages,
}

/// What the server needs from a request body.
#[derive(Debug)]
struct Parsed {
    model: String,
    input: u64,
    /// As sent (`max_tokens` / `max_completion_tokens`).
    max_tokens: Option<u64>,
    stream: bool,
    include_usage: bool,
}

/// A response under construction.
struct Reply<'a> {
    shared: &'a Shared,
    request_id: String,
}

impl Reply<'_> {
    fn flavor(&self) -> Flavor {
        self.shared.config.flavor
    }

    /// A JSON response with the common and rate-limit headers; records the outcome.
    fn json(&self, status: u16, body: Bytes, extra: &[(&str, String)]) -> Response<MockBody> {
        self.shared.record(Outcome::Status(status), 0, 0);
        self.build(status, MockBody::full(body), "application/json", extra)
    }

    fn build(
        &self,
        status: u16,
        body: MockBody,
        content_type: &'static str,
        extra: &[(&str, String)],
    ) -> Response<MockBody> {
        let mut res = Response::new(body);
        *res.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        self.common_headers(headers);
        for (name, value) in extra {
            openai::insert(headers, name, value.clone());
        }
        res
    }

    fn common_headers(&self, headers: &mut HeaderMap) {
        let snap = self.shared.quota.lock().snapshot(Instant::now());
        match self.flavor() {
            Flavor::OpenAi => {
                openai::insert(headers, "x-request-id", self.request_id.clone());
                openai::rate_limit_headers(&snap, headers);
            }
            Flavor::Anthropic => {
                openai::insert(headers, "request-id", self.request_id.clone());
                anthropic::rate_limit_headers(&snap, self.shared.wall_now(), headers);
            }
        }
    }

    /// The reverse proxy's refusal: 429, a fixed `Retry-After`, a plain-text body, and none of
    /// the provider's headers (no request id, no rate-limit headers).
    fn proxy_refusal(&self) -> Response<MockBody> {
        self.shared.record(Outcome::ProxyLimited, 0, 0);
        let retry_after_secs = self
            .shared
            .config
            .proxy_limit
            .as_ref()
            .map_or(1, |limit| limit.retry_after_secs);
        let mut res = Response::new(MockBody::full(Bytes::from_static(PROXY_REFUSAL_BODY)));
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = res.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
        res
    }

    /// The flavor's body for an error status (faults and outages).
    fn status_error(&self, status: u16) -> Response<MockBody> {
        let (body, mut extra) = match self.flavor() {
            Flavor::OpenAi => (openai::status_error(status), Vec::new()),
            Flavor::Anthropic => (
                anthropic::status_error(status, &self.request_id),
                Vec::new(),
            ),
        };
        if status == 429 {
            extra.extend(retry_after(self.flavor(), Duration::from_secs(1)));
        }
        if status == 529 {
            extra.push(("x-should-retry", "true".to_owned()));
        }
        self.json(status, body, &extra)
    }

    fn invalid_request(&self, status: u16, message: &str) -> Response<MockBody> {
        let body = match self.flavor() {
            Flavor::OpenAi => openai::error(message, "invalid_request_error", None, None),
            Flavor::Anthropic => {
                let kind = match status {
                    404 => "not_found_error",
                    413 => "request_too_large",
                    _ => "invalid_request_error",
                };
                anthropic::error(kind, message, &self.request_id)
            }
        };
        self.json(status, body, &[])
    }

    fn rate_limited(&self, model: &str, r: &Rejection) -> Response<MockBody> {
        let body = match self.flavor() {
            Flavor::OpenAi => openai::rate_limit_error(model, r),
            Flavor::Anthropic => anthropic::rate_limit_error(r, &self.request_id),
        };
        let extra = r
            .wait
            .map(|w| retry_after(self.flavor(), w))
            .unwrap_or_default();
        self.json(429, body, &extra)
    }
}

/// `retry-after` (whole seconds, rounded up, at least 1) and, for OpenAI, `retry-after-ms`.
fn retry_after(flavor: Flavor, wait: Duration) -> Vec<(&'static str, String)> {
    let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
    let secs = ms.div_ceil(1000);
    let mut v = vec![("retry-after", secs.to_string())];
    if flavor == Flavor::OpenAi {
        v.push(("retry-after-ms", ms.to_string()));
    }
    v
}

fn request_id(shared: &Shared) -> String {
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(shared.config.seed ^ n.rotate_left(32));
    format!("req_{:016x}{:08x}", rng.next_u64(), n & 0xffff_ffff)
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, ConnectionReset> {
    let in_flight = InFlight::enter(&shared);
    let reply = Reply {
        shared: &shared,
        request_id: request_id(&shared),
    };
    let flavor = shared.config.flavor;

    // 1. Route.
    let api = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Api::Chat,
        (&Method::POST, "/v1/messages") => Api::Messages,
        (method, path) => {
            let message = match flavor {
                Flavor::OpenAi => format!("Invalid URL ({method} {path})"),
                Flavor::Anthropic => "Not Found".to_owned(),
            };
            return Ok(reply.invalid_request(404, &message));
        }
    };

    // 2. Body, bounded.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = "Request exceeds the maximum allowed number of bytes.";
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Ok(reply.invalid_request(413, too_large));
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(reply.invalid_request(413, too_large));
        }
        // The client went away mid-body.
        Err(_) => return Err(ConnectionReset),
    };

    // 3. Reverse-proxy limit.
    if shared.proxy_refuses(&parts.headers) {
        return Ok(reply.proxy_refusal());
    }

    // 4. API key.
    if let Some(expected) = &shared.config.api_key {
        let presented = api_key(&parts.headers);
        if presented.as_deref() != Some(expected.as_str()) {
            let body = match flavor {
                Flavor::OpenAi => openai::unauthorized(presented.as_deref()),
                Flavor::Anthropic => {
                    let message = if presented.is_some() {
                        "invalid x-api-key"
                    } else {
                        "x-api-key header is required"
                    };
                    anthropic::error("authentication_error", message, &reply.request_id)
                }
            };
            return Ok(reply.json(401, body, &[]));
        }
    }

    // 5. Outage.
    if let Some(status) = shared.outage_status() {
        return Ok(reply.status_error(status));
    }

    // 6. Parse.
    let parsed = match parse(api, flavor, &bytes) {
        Ok(p) => p,
        Err(message) => return Ok(reply.invalid_request(400, &message)),
    };

    // 7. Credit.
    if shared.quota.lock().credit_exhausted() {
        return Ok(match flavor {
            Flavor::OpenAi => reply.json(429, openai::insufficient_quota(), &[]),
            Flavor::Anthropic => reply.json(
                400,
                anthropic::credit_exhausted(&reply.request_id),
                &[("x-should-retry", "false".to_owned())],
            ),
        });
    }

    // 8. Context window.
    let window = shared.config.context_window;
    let over = match parsed.max_tokens {
        Some(m) => parsed.input.saturating_add(m) > window,
        None => parsed.input > window,
    };
    if over {
        let body = match flavor {
            Flavor::OpenAi => {
                openai::context_length_exceeded(window, parsed.input, parsed.max_tokens)
            }
            Flavor::Anthropic => anthropic::context_too_long(
                window,
                parsed.input,
                parsed.max_tokens.unwrap_or(0),
                &reply.request_id,
            ),
        };
        return Ok(reply.json(400, body, &[]));
    }

    // 9. Admission.
    let completion = shared.config.completion_tokens;
    let charged_max = parsed.max_tokens.unwrap_or(completion);
    let charge = Charge::admission(flavor, parsed.input, charged_max);
    let admitted = {
        let mut quota = shared.quota.lock();
        quota.admit(Instant::now(), charge)
    };
    if let Err(r) = admitted {
        return Ok(reply.rate_limited(&parsed.model, &r));
    }
    let slot = Admitted(shared.clone());

    // 10. Faults and latency, one locked draw; then the stream faults of a streamed answer.
    let (fault, latency, plan) = {
        let mut rng = shared.rng.lock();
        let fault = draw_fault(&shared.config.faults, &mut rng);
        let latency = sample_latency(&shared.config.latency, &mut rng);
        let plan = if fault.is_none() && parsed.stream {
            draw_stream_faults(&shared.config.faults.stream, &mut rng)
        } else {
            StreamPlan::default()
        };
        (fault, latency, plan)
    };
    match fault {
        Some(Fault::Reset) => {
            shared.record(Outcome::Reset, 0, 0);
            return Err(ConnectionReset);
        }
        Some(Fault::Hang) => {
            shared.record(Outcome::Hang, 0, 0);
            stopped(&mut shared.shutdown.clone()).await;
            return Err(ConnectionReset);
        }
        Some(Fault::Status(status)) => {
            tokio::time::sleep(latency).await;
            return Ok(reply.status_error(status));
        }
        None => {}
    }

    // 11. Answer.
    let cap = match parsed.max_tokens {
        Some(m) => m,
        None => window - parsed.input,
    };
    let output = completion.min(cap);
    let created = reply
        .shared
        .wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answer = Answer {
        id: reply.request_id.trim_start_matches("req_").to_owned(),
        model: parsed.model.clone(),
        created,
        input: parsed.input,
        output,
        truncated: completion > cap,
    };
    if !parsed.stream {
        tokio::time::sleep(latency).await;
        shared
            .quota
            .lock()
            .complete(Instant::now(), answer.input, answer.output);
        shared.record(Outcome::Status(200), answer.input, answer.output);
        let body = match api {
            Api::Chat => openai::completion(&answer),
            Api::Messages => anthropic::message(&answer),
        };
        drop(slot);
        return Ok(reply.build(200, MockBody::full(body), "application/json", &[]));
    }
    // Streaming: half the latency before the headers, half spread over the frames.
    let first = latency / 2;
    tokio::time::sleep(first).await;
    shared
        .quota
        .lock()
        .complete(Instant::now(), answer.input, answer.output);
    shared.record(Outcome::Status(200), answer.input, answer.output);
    let mut frames = match api {
        Api::Chat => openai::stream(&answer, parsed.include_usage),
        Api::Messages => anthropic::stream(&answer),
    };
    let interval = (latency - first) / u32::try_from(frames.len().max(1)).unwrap_or(u32::MAX);
    let ending = match plan.end {
        None => Ending::Clean,
        Some((end, after)) => {
            // Never as far as the terminal event.
            let keep = usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(frames.len() - 1);
            frames.truncate(keep);
            let (ending, counted) = match end {
                StreamEnd::Stall => (Ending::stall(shared.shutdown.clone()), StreamFault::Stalled),
                StreamEnd::Error => {
                    frames.push(match api {
                        Api::Chat => openai::stream_error(),
                        Api::Messages => anthropic::stream_error(),
                    });
                    (Ending::Clean, StreamFault::Errored)
                }
                StreamEnd::Cut => (Ending::cut(), StreamFault::Cut),
            };
            shared.recorder.lock().stream_fault(counted);
            ending
        }
    };
    if !plan.first_token_delay.is_zero() {
        shared.recorder.lock().stream_fault(StreamFault::Delayed);
    }
    let guards: Vec<Guard> = vec![Box::new(slot), Box::new(in_flight)];
    let body = MockBody::stream(frames, interval, guards)
        .with_first_delay(plan.first_token_delay)
        .with_ending(ending);
    let mut res = reply.build(200, body, "text/event-stream", &[]);
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// `Authorization: Bearer KEY` or `x-api-key: KEY`.
fn api_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

/// Reads what matters from a request body; the error is a message for a 400.
fn parse(api: Api, flavor: Flavor, bytes: &[u8]) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| match flavor {
        Flavor::OpenAi => format!(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.) {e}"
        ),
        Flavor::Anthropic => format!("There was an issue with the formatting of your request: {e}"),
    })?;
    let Some(obj) = v.as_object() else {
        return Err("The request body must be a JSON object.".to_owned());
    };
    let missing = |field: &str| match flavor {
        Flavor::OpenAi => format!("Missing required parameter: '{field}'."),
        Flavor::Anthropic => format!("{field}: Field required"),
    };
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(missing("messages"));
    };
    let mut chars = 0u64;
    for m in messages {
        chars = chars.saturating_add(content_chars(m.get("content")));
    }
    if api == Api::Messages {
        chars = chars.saturating_add(content_chars(obj.get("system")));
    }
    let max_field = |name: &str| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{name}: must be a positive integer")),
        }
    };
    let max_tokens = match api {
        Api::Messages => Some(max_field("max_tokens")?.ok_or_else(|| missing("max_tokens"))?),
        Api::Chat => match max_field("max_completion_tokens")? {
            Some(m) => Some(m),
            None => max_field("max_tokens")?,
        },
    };
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(flavor.default_model())
        .to_owned();
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Parsed {
        model,
        input: chars.div_ceil(4),
        max_tokens,
        stream,
        include_usage,
    })
}

/// Characters of a `content` (a string, or an array of parts with `text`).
fn content_chars(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => s.chars().count() as u64,
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => s.chars().count() as u64,
                _ => p
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.chars().count() as u64),
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chat_and_messages() {
        let p = parse(
            Api::Chat,
            Flavor::OpenAi,
            br#"{"model":"m","messages":[{"role":"user","content":"abcdefghi"}],"max_tokens":7,"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        assert_eq!(
            (p.input, p.max_tokens, p.stream, p.include_usage),
            (3, Some(7), true, true)
        );
        let p = parse(
            Api::Messages,
            Flavor::Anthropic,
            br#"{"system":"abcd","messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}],"max_tokens":5}"#,
        )
        .unwrap();
        assert_eq!((p.input, p.max_tokens), (2, Some(5)));
        assert!(
            parse(Api::Messages, Flavor::Anthropic, br#"{"messages":[]}"#)
                .unwrap_err()
                .contains("max_tokens")
        );
        assert!(parse(Api::Chat, Flavor::OpenAi, b"{nope").is_err());
        assert!(parse(Api::Chat, Flavor::OpenAi, b"[]").is_err());
        assert!(
            parse(
                Api::Chat,
                Flavor::OpenAi,
                br#"{"messages":[],"max_tokens":-1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(
            retry_after(Flavor::OpenAi, Duration::from_millis(1200)),
            vec![
                ("retry-after", "2".to_owned()),
                ("retry-after-ms", "1200".to_owned())
            ]
        );
        assert_eq!(
            retry_after(Flavor::Anthropic, Duration::from_nanos(1)),
            vec![("retry-after", "1".to_owned())]
        );
    }

    #[test]
    fn api_keys() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer sk-1"));
        assert_eq!(api_key(&h).as_deref(), Some("sk-1"));
        h.insert("x-api-key", HeaderValue::from_static("ak"));
        assert_eq!(api_key(&h).as_deref(), Some("ak"));
    }
}
