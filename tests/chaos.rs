//! Chaos: what callers and the upstream see when the upstream dies and comes back in the
//! middle of a load, when the gateway is flooded with connections that never send a request,
//! and when the upstream answers 503 to everything for a while.
//!
//! - [`an_upstream_killed_and_restarted_mid_load_loses_and_repeats_nothing`]: 200 callers
//!   through a ready stack; the `tollgate-mock` upstream is killed (every connection cut) and
//!   restarted on the same port two seconds later. Every request ends, a success or a typed
//!   error; none is answered twice, a request the upstream answered is never sent again, and
//!   successes resume once the breaker lets them.
//! - [`a_flood_of_silent_connections_does_not_lock_callers_out`]: 2,000 connections to the
//!   gateway of `examples/axum_gateway.rs` that send nothing or half a request line; callers
//!   are served at once while they are open, and each is closed by the gateway.
//! - [`a_503_storm_is_stopped_by_the_breaker`] and
//!   [`a_503_storm_is_absorbed_by_the_fallback`]: the upstream answers 503 to everything for
//!   90 s; what 200 callers get (typed errors that say when to come back, or the fallback's
//!   answers), how few requests the upstream sees, and the recovery.
//!
//! Every test runs on tokio's paused clock (`start_paused`, current-thread runtime), as
//! `e2e.rs` and `gateway.rs` do: the mock, the stack, the gateway and the callers share one
//! thread, a socket that became readable wakes its task before the clock may move, and the
//! clock jumps only when every task waits for a timer. So the kill, the restart, the storm and
//! the timeouts happen at exact virtual instants, no real time is slept, and a request that
//! hangs is caught by a virtual timeout ([`HANG`]) that can only fire when nothing else is left
//! to happen.

#![cfg(all(
    feature = "circuit-breaker",
    feature = "fallback",
    feature = "providers",
    feature = "ratelimit",
    feature = "retry",
    feature = "stack"
))]

#[path = "../examples/axum_gateway.rs"]
#[allow(dead_code)]
mod axum_gateway;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::circuit_breaker::{BreakerConfig, CircuitOpen};
use tollgate::fallback::AllTargetsFailed;
use tollgate::retry::{Backoff, Jitter, RetriesExhausted, RetryPolicy, Spread};
use tollgate::stack::{Provider, ProviderKind, Stack, StackBuilder};
use tollgate::transport::ReqwestTransport;
use tollgate::{BoxError, ErrorClass, Verdict};
use tollgate_mock::{Latency, MockConfig, MockServer, MockStats};
use tower::{Service, ServiceExt};

/// Longer than anything a request may take here: a request still unanswered after this much
/// virtual time is hung (the clock reaches it only when nothing else can happen).
const HANG: Duration = Duration::from_secs(3_600);

/// The header carrying each request's unique id, down to the transport.
const ID: &str = "x-chaos-id";

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

/// A chat request numbered `id` (in the [`ID`] header and the prompt).
fn chat(id: u64) -> Request<BufferedBody> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": format!("request {id}")}],
    });
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header(ID, id)
        .body(BufferedBody::from(body.to_string()))
        .unwrap()
}

/// Retries without randomness: 500 ms, 1 s, 2 s … (at most 8 s), a server's delay exactly.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_backoff(Backoff::exponential(ms(500), secs(8)).with_jitter(Jitter::None))
        .with_server_delay_spread(Spread::None)
}

/// An OpenAI provider at `mock`, without a client-side quota (the tests are about failures,
/// not pacing), with [`retry_policy`] and `breaker`.
fn provider(name: &str, mock: &MockServer, breaker: BreakerConfig) -> Provider {
    Provider::new(ProviderKind::OpenAi)
        .with_name(name)
        .with_base_url(&mock.base_url())
        .with_api_key(format!("sk-{name}"))
        .without_rate_limit()
        .with_retry(retry_policy())
        .with_breaker(breaker)
}

// ===== what the transport sent =====

/// How one attempt, as the transport saw it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sent {
    /// A response head with this status.
    Answered(u16),
    /// No connection (refused): the upstream cannot have seen it.
    Refused,
    /// The connection was closed after it was made, before a response head (hyper's
    /// `IncompleteMessage`): the upstream may have read the request, or not. Its class is
    /// `Unknown`, which is not retried: the stack cannot tell, so it does not risk a duplicate.
    Cut,
    /// Another transport failure the stack retries (a reset, a timeout: `Connect`, `Timeout`),
    /// as the official SDKs do.
    Reset,
}

/// One attempt: the request's id, when it ended, how.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    id: u64,
    at: Duration,
    sent: Sent,
}

/// The transport under the stack: reqwest on loopback, logging every attempt by request id.
#[derive(Clone)]
struct Logged {
    inner: ReqwestTransport,
    log: Arc<Mutex<Vec<Attempt>>>,
    start: Instant,
}

impl Logged {
    fn new(start: Instant) -> Self {
        Logged {
            inner: ReqwestTransport::new(reqwest::Client::new()),
            log: Arc::default(),
            start,
        }
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().unwrap().clone()
    }
}

type LoggedFuture =
    Pin<Box<dyn Future<Output = Result<Response<reqwest::Body>, BoxError>> + Send + 'static>>;

impl Service<Request<BufferedBody>> for Logged {
    type Response = Response<reqwest::Body>;
    type Error = BoxError;
    type Future = LoggedFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<BufferedBody>) -> LoggedFuture {
        let id = request.headers()[ID].to_str().unwrap().parse().unwrap();
        let future = self.inner.call(request);
        let (log, start) = (Arc::clone(&self.log), self.start);
        Box::pin(async move {
            let outcome = future.await;
            let sent = match &outcome {
                Ok(response) => Sent::Answered(response.status().as_u16()),
                Err(error) if refused(&**error) => Sent::Refused,
                Err(error) if tollgate::transport_verdict(&**error).is_retryable() => Sent::Reset,
                Err(_) => Sent::Cut,
            };
            let at = start.elapsed();
            log.lock().unwrap().push(Attempt { id, at, sent });
            outcome
        })
    }
}

/// Whether the connection could not be made at all.
fn refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect)
        {
            return true;
        }
        current = error.source();
    }
    false
}

// ===== what the callers got =====

/// What a caller got for one request.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    /// A 200 whose body is a chat completion.
    Answer,
    /// Another status (none is expected: every failure here is retryable, so it ends as an
    /// error of the stack's).
    Status(u16),
    /// A typed error: which layer's, its verdict's class and its wait.
    Error {
        kind: &'static str,
        class: Option<ErrorClass>,
        retry_after: Option<Duration>,
    },
}

/// One request of one caller: its id, when it was sent and how long it took.
#[derive(Debug, Clone)]
struct Call {
    id: u64,
    sent: Duration,
    took: Duration,
    got: Got,
}

/// The outermost of the stack's own error types in `error`'s chain, with its wait; panics on
/// an error no layer typed (no verdict) — an untyped failure.
fn typed(error: &BoxError) -> Got {
    let error: &(dyn std::error::Error + 'static) = &**error;
    let verdict =
        Verdict::of_error(error).unwrap_or_else(|| panic!("an error without a verdict: {error:?}"));
    let (kind, retry_after) = if let Some(e) = error.downcast_ref::<AllTargetsFailed>() {
        ("AllTargetsFailed", e.retry_after())
    } else if let Some(e) = error.downcast_ref::<RetriesExhausted>() {
        ("RetriesExhausted", e.retry_after())
    } else if let Some(e) = error.downcast_ref::<CircuitOpen>() {
        ("CircuitOpen", e.retry_after())
    } else if error.downcast_ref::<tollgate::Classified>().is_some() {
        ("Classified", verdict.delay())
    } else {
        panic!("an error of no known type: {error:?}")
    };
    Got::Error {
        kind,
        class: verdict.class(),
        retry_after,
    }
}

/// Sends `request` through `stack` and reads the answer's body; panics if it takes [`HANG`].
async fn call(stack: &Stack, request: Request<BufferedBody>, start: Instant) -> Call {
    let id = request.headers()[ID].to_str().unwrap().parse().unwrap();
    let sent = Instant::now();
    let got = tokio::time::timeout(HANG, async {
        match stack.clone().oneshot(request).await {
            Ok(response) if response.status() == StatusCode::OK => {
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(body["choices"][0]["message"]["content"].is_string());
                Got::Answer
            }
            Ok(response) => Got::Status(response.status().as_u16()),
            Err(error) => typed(&error),
        }
    })
    .await
    .unwrap_or_else(|_| panic!("request {id} hung"));
    Call {
        id,
        sent: sent - start,
        took: sent.elapsed(),
        got,
    }
}

/// What a caller got, without the wait: for tallies.
fn kind(call: &Call) -> String {
    match &call.got {
        Got::Answer => "answer".to_owned(),
        Got::Status(status) => status.to_string(),
        Got::Error { kind, class, .. } => format!("{kind} ({class:?})"),
    }
}

/// Counts of `items` by `key`, for assertion messages.
fn tally<T, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> BTreeMap<K, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(key(item)).or_insert(0) += 1;
    }
    counts
}

/// The sum of two mock incarnations' counters that matter here.
fn total(a: &MockStats, b: &MockStats) -> (u64, u64) {
    (a.requests + b.requests, a.ok + b.ok)
}

// ===== 1. the upstream killed and restarted mid-load =====

const CALLERS: u64 = 200;

/// Each caller's requests, one every [`PACE`] (later if the previous one took longer).
const ROUNDS: u64 = 30;
const PACE: Duration = Duration::from_millis(300);

/// The mock's latency: two thirds of the callers have a request in flight at any moment.
const LATENCY_MS: u64 = 200;

/// When the upstream is killed (dropped: its listener closed, every connection cut, requests
/// in flight unanswered) and when a new one is started on the same port.
const KILL_AT: Duration = Duration::from_millis(2_050);
const RESTART_AT: Duration = Duration::from_millis(4_050);

/// Open 1 s after five failures in a row, doubling per failed probe up to 2 s.
fn restart_breaker() -> BreakerConfig {
    BreakerConfig::default().with_open_for(secs(1), 2, secs(2))
}

/// 200 callers send 30 requests each, 300 ms apart, through a ready stack (retries, breaker,
/// the OpenAI classifier and time limits) over reqwest to a mock with 200 ms of latency. At
/// 2.05 s the mock is killed ([`MockServer::kill`]: listener closed, every connection cut,
/// requests in flight unanswered); at 4.05 s a new one is started on the same port.
///
/// Asserted, for the callers: every request ends (none reaches [`HANG`]) with a 200 carrying
/// a completion or a typed error of the stack's — never another status, never an error without
/// a verdict — within 5 s (the three retries' backoff, 3.5 s, and four latencies); every request
/// sent from 7 s on (the restart, plus the longest the breaker stays open, 2 s, plus a margin)
/// is answered.
///
/// For what was sent (the transport's log, by request id): each request was sent at most four
/// times (the policy's three retries), and every attempt but its last got no response and
/// cannot have been read by the upstream unanswered (the connection was refused, or failed in
/// a way the stack retries): a request the upstream answered is never sent again, and neither
/// is one whose connection was cut after it was written (hyper's `IncompleteMessage`, class
/// `Unknown`: the upstream may have read it) — its caller gets that typed error instead. A
/// caller got an answer exactly when the last attempt of its request got a 200; no attempt
/// was answered while the upstream was down.
///
/// For the upstream (the two incarnations' counters): the 200s they counted are exactly the
/// 200s the transport received — none lost on the way, none made twice; they received no
/// more requests than were answered or cut (none of the refused ones); the first incarnation
/// received requests it never answered (cut by the kill), and attempts were refused while it
/// was down — the test exercised what it claims; the second answered all it received.
#[tokio::test(start_paused = true)]
async fn an_upstream_killed_and_restarted_mid_load_loses_and_repeats_nothing() {
    let config = MockConfig::openai()
        .with_api_key("sk-upstream")
        .with_latency(Latency::Fixed { ms: LATENCY_MS });
    let mock = MockServer::start(config.clone()).await.unwrap();
    let addr = mock.addr();
    let start = Instant::now();
    let transport = Logged::new(start);
    let stack = StackBuilder::new(provider("upstream", &mock, restart_breaker()))
        .build(transport.clone())
        .unwrap();

    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let stack = stack.clone();
        callers.spawn(async move {
            let mut calls = Vec::new();
            for round in 0..ROUNDS {
                tokio::time::sleep_until(start + PACE * round as u32 + ms(caller)).await;
                let id = caller * ROUNDS + round;
                calls.push(call(&stack, chat(id), start).await);
            }
            calls
        });
    }

    tokio::time::sleep_until(start + KILL_AT).await;
    let before = mock.kill().await;
    tokio::time::sleep_until(start + RESTART_AT).await;
    let mock = MockServer::bind(addr, config).await.unwrap();

    let mut calls = Vec::new();
    while let Some(done) = callers.join_next().await {
        calls.extend(done.unwrap());
    }
    let after = mock.stats();
    let attempts = transport.attempts();
    let kinds = tally(&calls, kind);
    let sent = tally(&attempts, |a| a.sent);
    let longest = calls.iter().map(|c| c.took).max().unwrap();
    eprintln!(
        "callers got {kinds:?} (the longest took {longest:?})\n\
         the transport's attempts {sent:?}\n\
         the upstream before the kill {before:?}\nafter the restart {after:?}"
    );

    // The callers: one answer or one typed error per request, never a hang.
    assert_eq!(calls.len() as u64, CALLERS * ROUNDS);
    for c in &calls {
        match &c.got {
            Got::Answer | Got::Error { .. } => {}
            Got::Status(status) => panic!("request {} got a bare {status}", c.id),
        }
        assert!(c.took <= secs(5), "{c:?}");
        if c.sent >= secs(7) {
            assert_eq!(c.got, Got::Answer, "after the restart: {c:?}");
        }
    }

    // What was sent, by request id.
    let mut by_id: HashMap<u64, Vec<Attempt>> = HashMap::new();
    for a in &attempts {
        by_id.entry(a.id).or_default().push(*a);
    }
    for c in &calls {
        let tries = by_id.get(&c.id).map_or(&[][..], Vec::as_slice);
        assert!(tries.len() <= 4, "sent {} times: {tries:?}", tries.len());
        // Every attempt but the last got no response, and the only one that may have reached
        // the upstream unanswered (`Cut`) is never followed by another.
        for earlier in tries.iter().rev().skip(1) {
            assert!(
                matches!(earlier.sent, Sent::Refused | Sent::Reset),
                "re-sent after {earlier:?}: {tries:?}"
            );
        }
        let last = tries.last().map(|a| a.sent);
        match &c.got {
            Got::Answer => assert_eq!(last, Some(Sent::Answered(200)), "{c:?}: {tries:?}"),
            Got::Error { kind, class, .. } => {
                assert!(
                    !matches!(last, Some(Sent::Answered(_))),
                    "{c:?} after an answer: {tries:?}"
                );
                if last == Some(Sent::Cut) {
                    assert_eq!(
                        (*kind, *class),
                        ("Classified", Some(ErrorClass::Unknown)),
                        "{c:?}"
                    );
                }
            }
            Got::Status(_) => unreachable!(),
        }
    }

    // The upstream: the 200s the two incarnations counted are exactly those the stack
    // received, and it received nothing but those and the requests cut by the kill.
    let count = |sent: Sent| attempts.iter().filter(|a| a.sent == sent).count() as u64;
    let (answered, cut) = (count(Sent::Answered(200)), count(Sent::Cut));
    let (received, ok) = total(&before, &after);
    assert_eq!(
        ok, answered,
        "200s counted by the upstream, received by the stack"
    );
    assert_eq!(
        answered,
        calls.iter().filter(|c| c.got == Got::Answer).count() as u64
    );
    assert_eq!(
        answered + cut,
        attempts.len() as u64 - count(Sent::Refused) - count(Sent::Reset)
    );
    assert!(
        (answered..=answered + cut).contains(&received),
        "received {received}, answered {answered}, cut {cut}"
    );
    assert_eq!(
        after.requests, after.ok,
        "the new upstream answered all it got"
    );
    // The chaos happened: requests in flight at the kill were cut, later ones refused.
    assert!(before.requests > before.ok, "{before:?}");
    assert!(
        !attempts
            .iter()
            .any(|a| matches!(a.sent, Sent::Answered(_)) && a.at > KILL_AT && a.at < RESTART_AT),
        "answered while the upstream was down"
    );
    assert!(cut > 0 && count(Sent::Refused) > 0, "{sent:?}");
}

// ===== 2. a flood of connections that send nothing =====

/// Connections in the flood.
const FLOOD: usize = 2_000;

/// The soft limit on open descriptors, from `/proc/self/limits`, raised to the hard limit if
/// it is below `needed` (with util-linux's `prlimit`, as the workspace forbids the `unsafe`
/// a `setrlimit` call would need). Whether the process may now open `needed` descriptors.
fn enough_descriptors(needed: u64) -> bool {
    let soft = || -> Option<(u64, Option<u64>)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut fields = line["Max open files".len()..].split_whitespace();
        let soft = fields.next()?.parse().ok()?;
        Some((soft, fields.next()?.parse().ok()))
    };
    let Some((current, hard)) = soft() else {
        return false;
    };
    if current >= needed {
        return true;
    }
    let hard = hard.map_or("unlimited".to_owned(), |h| h.to_string());
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status();
    soft().is_some_and(|(now, _)| now >= needed)
}

/// Reads until the gateway closes `stream`: when it did.
async fn closed(mut stream: tokio::net::TcpStream) -> Instant {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0; 64];
    while let Ok(1..) = stream.read(&mut chunk).await {}
    Instant::now()
}

/// 2,000 connections to the gateway of `examples/axum_gateway.rs` (its own accept loop, the
/// default limits: at most 1,000 connections, 30 s idle, 10 s for a head from its first byte),
/// half of them silent, half having sent half a request line, all opened at once; then ten
/// callers, one after another, while they are open.
///
/// Asserted: each caller is answered (a 200) at once — no virtual time passes — and the
/// upstream sees exactly their ten requests. Every connection of the flood is closed by the
/// gateway, none later than the idle timeout: the oldest 1,000 at once, each to make room for
/// a newer one at the cap (the connection idle the longest is closed; nothing is in flight on
/// it), up to one more for each caller that found the gateway at its cap, and the rest exactly [`HEAD_TIMEOUT`](axum_gateway::gateway_server::HEAD_TIMEOUT)
/// (half a request line) or [`IDLE_TIMEOUT`](axum_gateway::gateway_server::IDLE_TIMEOUT)
/// (silent) after they were opened; so the gateway never holds more than its cap.
///
/// Needs about 4,500 descriptors: the soft limit is raised to the hard one if it is lower,
/// and the test is skipped, saying so, if that is not enough.
#[tokio::test(start_paused = true)]
async fn a_flood_of_silent_connections_does_not_lock_callers_out() {
    use axum_gateway::gateway_server::{HEAD_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS};
    use tokio::io::AsyncWriteExt;

    if !enough_descriptors(2 * FLOOD as u64 + 500) {
        eprintln!(
            "SKIPPED a_flood_of_silent_connections_does_not_lock_callers_out: fewer than {} \
             descriptors may be opened (ulimit -n)",
            2 * FLOOD + 500
        );
        return;
    }
    let mock = MockServer::start(MockConfig::openai().with_api_key("sk-primary"))
        .await
        .unwrap();
    let upstream = axum_gateway::Upstream {
        name: "primary".to_owned(),
        base_url: mock.base_url(),
        api: axum_gateway::Api::Chat,
        api_key: Some("sk-primary".to_owned()),
        model: None,
        provider: tollgate::providers::ProviderClassifier::OpenAi,
        limits: tollgate::ratelimit::Limits::unlimited(),
        max_wait: None,
        context_window: None,
    };
    let stack = axum_gateway::stack(
        &upstream,
        None,
        &axum_gateway::retry_policy(),
        &axum_gateway::Quotas::Local,
        ReqwestTransport::new(reqwest::Client::new()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum_gateway::serve_gateway(
        listener,
        axum_gateway::app(stack),
        axum_gateway::ConnectionLimits::default(),
        std::future::pending(),
        std::future::pending(),
    ));

    let opened = Instant::now();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..FLOOD {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            stream.write_all(b"POST /v1/chat/comp").await.unwrap();
        }
        flood.spawn(async move { (i, closed(stream).await) });
    }
    // Lets the gateway read everything sent (see `gateway.rs`).
    tokio::time::sleep(ms(1)).await;

    for _ in 0..10 {
        let sent = Instant::now();
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(r#"{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#)
            .send()
            .await
            .expect("served during the flood");
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.unwrap();
        assert_eq!(sent.elapsed(), Duration::ZERO, "answered at once");
    }
    assert_eq!(mock.stats().requests, 10);

    let mut closed_at = BTreeMap::new();
    while let Some(done) = flood.join_next().await {
        let (i, at) = done.unwrap();
        let after = at - opened;
        let expected = if i % 2 == 1 {
            HEAD_TIMEOUT
        } else {
            IDLE_TIMEOUT
        };
        assert!(
            after <= ms(1) || after == expected,
            "connection {i} closed after {after:?}"
        );
        *closed_at.entry(after).or_insert(0) += 1;
    }
    eprintln!("the flood's connections closed after {closed_at:?}");
    let held: usize = closed_at
        .iter()
        .filter(|(after, _)| **after > ms(1))
        .map(|(_, n)| n)
        .sum();
    assert!(
        (MAX_CONNECTIONS - 10..=MAX_CONNECTIONS).contains(&held),
        "{closed_at:?}"
    );
}

// ===== 3. a 503 storm =====

/// The storm: the upstream answers 503 (`server_is_overloaded`, no `retry-after`) to every
/// request from 0 s until it ends, at 90 s.
const STORM_END: Duration = Duration::from_secs(90);

/// The default breaker: open for 60 s after five failures in a row, doubling per failed probe
/// (120 s), three half-open probes.
fn storm_breaker() -> BreakerConfig {
    BreakerConfig::default()
}

/// Which provider answered: the model in the completion (each provider sets its own name).
async fn answered_by(response: Response<tollgate::stack::StackBody>) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body["choices"][0]["message"]["content"].is_string());
    body["model"].as_str().unwrap().to_owned()
}

/// Seconds of `mock`'s timeline in `range` in which it answered anything.
fn busy_seconds(mock: &MockServer, range: std::ops::Range<u64>) -> Vec<u64> {
    mock.timeline()
        .iter()
        .filter(|b| range.contains(&b.second) && b.ok + b.rate_limited + b.errors > 0)
        .map(|b| b.second)
        .collect()
}

/// A 503 storm with no fallback: 200 callers, all at once at 0 s, each retrying its request
/// when the error it got says to (`retry_after`; 1 s when it gives none) until answered, at most
/// ten times; the default breaker (five failures in a row, open 60 s, then 120 s).
///
/// Asserted, for the callers: every error is a typed overload (the stack's `CircuitOpen`,
/// `RetriesExhausted` or `AllTargetsFailed`, class `Overloaded`), and none is a bare 503; the
/// first wave's errors say to come back when the breaker will probe (59.5 s: 60 s from the
/// trip, less the 500 ms backoff of the retry that found it open); every caller is answered
/// once the storm is over and the breaker has probed again (180 s), within five tries.
///
/// For the upstream: it sees the first wave (at most one request per caller: the retries, after
/// 500 ms, find the breaker open and send nothing), then nothing until the probe at 60 s
/// (three requests, 503s), then nothing until the probes at 180 s: at most 203 503s in 90 s of
/// storm from 200 callers, against the 600 the retry policy alone would have sent (three
/// attempts each) and the 1,800 of callers retrying every 10 s on their own. Then exactly one
/// 200 per caller.
#[tokio::test(start_paused = true)]
async fn a_503_storm_is_stopped_by_the_breaker() {
    let mock = MockServer::start(MockConfig::openai().with_api_key("sk-primary"))
        .await
        .unwrap();
    let stack =
        StackBuilder::new(provider("primary", &mock, storm_breaker()).with_model("primary"))
            .build(ReqwestTransport::new(reqwest::Client::new()))
            .unwrap();
    let start = Instant::now();
    mock.set_outage(true);

    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let stack = stack.clone();
        callers.spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..10 {
                let got = call(&stack, chat(caller), start).await;
                match got.got {
                    Got::Answer => return (errors, Some(got)),
                    Got::Error { retry_after, .. } => {
                        tokio::time::sleep(retry_after.unwrap_or(secs(1))).await;
                    }
                    Got::Status(_) => {}
                }
                errors.push(got);
            }
            (errors, None)
        });
    }
    tokio::time::sleep_until(start + STORM_END).await;
    mock.set_outage(false);

    let (mut errors, mut answers) = (Vec::new(), Vec::new());
    while let Some(done) = callers.join_next().await {
        let (failed, answered) = done.unwrap();
        assert!(
            failed.len() <= 4,
            "answered on the fifth try at the latest: {failed:?}"
        );
        errors.extend(failed);
        answers.push(answered.expect("answered within ten tries"));
    }
    let stats = mock.stats();
    eprintln!(
        "callers' errors {:?}, answered by {:?} (the last at {:?})\nthe upstream {stats:?}",
        tally(&errors, kind),
        tally(&answers, |c| c.sent.as_secs()),
        answers.iter().map(|c| c.sent).max().unwrap(),
    );

    // The callers: typed overloads saying when to come back, then an answer each.
    for e in &errors {
        let Got::Error {
            kind,
            class,
            retry_after,
        } = &e.got
        else {
            panic!("not a typed error: {e:?}");
        };
        assert!(
            ["CircuitOpen", "RetriesExhausted", "AllTargetsFailed"].contains(kind),
            "{e:?}"
        );
        assert_eq!(*class, Some(ErrorClass::Overloaded), "{e:?}");
        if e.sent == Duration::ZERO {
            assert_eq!(*retry_after, Some(ms(59_500)), "the first wave: {e:?}");
        }
        assert!(retry_after.is_none_or(|wait| wait <= secs(120)), "{e:?}");
    }
    for a in &answers {
        // Once the breaker has probed after the storm: 60 s open, then 120 s after the probe
        // at 60 s failed; answered then, or a second later behind the probes.
        assert!(
            (secs(180)..=secs(182)).contains(&a.sent),
            "answered at {:?}",
            a.sent
        );
    }

    // The upstream: the first wave, three probes at 60 s, then one answer per caller.
    let storm_503s = stats.by_status.get(&503).copied().unwrap_or(0);
    assert!(
        (5 + 3..=CALLERS + 3).contains(&storm_503s),
        "503s: {storm_503s}"
    );
    assert_eq!(stats.ok, CALLERS, "one answer per caller");
    assert_eq!(stats.requests, storm_503s + stats.ok);
    assert_eq!(busy_seconds(&mock, 1..180), [60], "nothing but the probe");
}

/// The same storm with a healthy fallback behind the primary (the ready stack's shape: the
/// fallback layer above each provider's retries and breaker). 200 callers send a request each
/// every 10 s for 200 s (4,000 requests), all at once.
///
/// Asserted, for the callers: every request is answered — by the fallback during the storm
/// and while the primary's breaker stays open (to 180 s), by the primary from 190 s on —
/// none waits more than the one retry's 500 ms backoff.
///
/// For the upstreams: the primary sees the first wave (at most one request per caller), the
/// three probes at 60 s, and nothing else until the probes at 180 s: at most 203 503s out of
/// 4,000 requests; the fallback answers every other request of the storm and nothing after
/// 181 s; every 200 either counted is one a caller got.
#[tokio::test(start_paused = true)]
async fn a_503_storm_is_absorbed_by_the_fallback() {
    let primary = MockServer::start(MockConfig::openai().with_api_key("sk-primary"))
        .await
        .unwrap();
    let fallback = MockServer::start(MockConfig::openai().with_api_key("sk-fallback"))
        .await
        .unwrap();
    let stack =
        StackBuilder::new(provider("primary", &primary, storm_breaker()).with_model("primary"))
            .with_fallback(provider("fallback", &fallback, storm_breaker()).with_model("fallback"))
            .build(ReqwestTransport::new(reqwest::Client::new()))
            .unwrap();
    let start = Instant::now();
    primary.set_outage(true);

    const EVERY: Duration = Duration::from_secs(10);
    const ROUNDS: u32 = 20;
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let stack = stack.clone();
        callers.spawn(async move {
            let mut answers = Vec::new();
            for round in 0..ROUNDS {
                tokio::time::sleep_until(start + EVERY * round).await;
                let sent = Instant::now();
                let id = caller * u64::from(ROUNDS) + u64::from(round);
                let response = tokio::time::timeout(HANG, stack.clone().oneshot(chat(id)))
                    .await
                    .expect("hung")
                    .unwrap_or_else(|e| panic!("request {id}: {e:?}"));
                assert_eq!(response.status(), StatusCode::OK);
                let by = answered_by(response).await;
                answers.push((sent - start, sent.elapsed(), by));
            }
            answers
        });
    }
    tokio::time::sleep_until(start + STORM_END).await;
    primary.set_outage(false);

    let mut answers = Vec::new();
    while let Some(done) = callers.join_next().await {
        answers.extend(done.unwrap());
    }
    let (p, f) = (primary.stats(), fallback.stats());
    eprintln!(
        "answered by {:?}, the longest in {:?}\nthe primary {p:?}\nthe fallback {f:?}",
        tally(&answers, |a| a.2.clone()),
        answers.iter().map(|a| a.1).max().unwrap(),
    );

    assert_eq!(answers.len(), CALLERS as usize * ROUNDS as usize);
    for (sent, took, by) in &answers {
        assert!(*took <= ms(500), "{sent:?} took {took:?}");
        if *sent < secs(180) {
            assert_eq!(by, "fallback", "at {sent:?}");
        } else if *sent >= secs(190) {
            assert_eq!(by, "primary", "at {sent:?}");
        }
    }
    let storm_503s = p.by_status.get(&503).copied().unwrap_or(0);
    assert!(
        (5 + 3..=CALLERS + 3).contains(&storm_503s),
        "503s: {storm_503s}"
    );
    assert_eq!(p.requests, storm_503s + p.ok);
    assert_eq!(
        busy_seconds(&primary, 1..180),
        [60],
        "nothing but the probe"
    );
    assert!(busy_seconds(&fallback, 182..1_000).is_empty());
    let by = |name: &str| answers.iter().filter(|a| a.2 == name).count() as u64;
    assert_eq!((p.ok, f.ok), (by("primary"), by("fallback")));
    assert_eq!(f.requests, f.ok);
}
