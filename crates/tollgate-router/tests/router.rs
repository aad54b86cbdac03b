//! `RouterLayer` on tokio's paused clock: aggregate throughput over several keys, a revoked
//! key, context-window routing, each strategy's distribution, and waiting or refusing when no
//! deployment can take a request. Every duration is exact.

use std::collections::HashMap;
use std::convert::Infallible;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{self, Instant};
use tollgate_core::body::BufferedBody;
use tollgate_core::observe::{Event, Observe, Observer};
use tollgate_core::{BoxError, Cost, Deadline, Dimension, ErrorClass};
use tollgate_providers::rewrite::Credentials;
use tollgate_providers::{ClassifyLayer, OpenAi};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{
    AnyStore, Estimator, Limit, Limits, MemoryStore, OpenAiChat, QuotaDecision, Store,
};
use tollgate_router::error::{ContextWindowTooSmall, NoDeployment};
use tollgate_router::{Deployment, RouterConfig, RouterLayer, Strategy};
use tower::{Layer, Service, ServiceExt};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn per_minute(n: u64) -> Limits {
    Limits::new([Limit::requests(Quota::per_minute(
        NonZeroU64::new(n).unwrap(),
    ))])
}

/// A chat request with `chars` of prompt and 100 tokens of output.
fn chat(chars: usize) -> Request<BufferedBody> {
    let body = format!(
        r#"{{"model":"gpt-4o","max_tokens":100,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(chars)
    );
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(body))
        .unwrap()
}

/// Fake provider accounts behind one transport, told apart by the bearer key: each has its
/// own server-side quota (a token bucket, as the client's), answers 429 beyond it and 401 once
/// revoked; every call is logged with the key, the model asked for and the time.
#[derive(Clone)]
struct Accounts {
    quotas: Arc<HashMap<String, MemoryStore>>,
    revoked_at: Arc<Mutex<HashMap<String, Duration>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    start: Instant,
    latency: Arc<HashMap<String, Duration>>,
}

#[derive(Debug, Clone)]
struct Call {
    key: String,
    model: String,
    status: StatusCode,
}

impl Accounts {
    fn new(keys: &[&str], quota: Option<u64>) -> Self {
        Accounts {
            quotas: Arc::new(
                keys.iter()
                    .filter_map(|k| Some((k.to_string(), MemoryStore::new(per_minute(quota?)))))
                    .collect(),
            ),
            revoked_at: Arc::default(),
            calls: Arc::default(),
            start: Instant::now(),
            latency: Arc::default(),
        }
    }

    fn with_latency(mut self, latency: &[(&str, u64)]) -> Self {
        self.latency = Arc::new(
            latency
                .iter()
                .map(|&(k, ms)| (k.to_owned(), Duration::from_millis(ms)))
                .collect(),
        );
        self
    }

    fn revoke(&self, key: &str, at: Duration) {
        self.revoked_at.lock().unwrap().insert(key.to_owned(), at);
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, key: &str, status: StatusCode) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.key == key && c.status == status)
            .count()
    }

    fn answer(&self, request: &Request<BufferedBody>) -> (String, StatusCode) {
        let key = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned();
        let now = self.start.elapsed();
        let revoked = self.revoked_at.lock().unwrap().get(&key).copied();
        let status = if revoked.is_some_and(|at| now >= at) {
            StatusCode::UNAUTHORIZED
        } else {
            match self.quotas.get(&key) {
                Some(store) => match store
                    .admit(None, &Cost::requests(1), None, now)
                    .into_inner()
                    .unwrap()
                {
                    QuotaDecision::Admitted => StatusCode::OK,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                },
                None => StatusCode::OK,
            }
        };
        (key, status)
    }
}

impl Service<Request<BufferedBody>> for Accounts {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<String>, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<BufferedBody>) -> Self::Future {
        let (key, status) = self.answer(&request);
        let model = serde_json_model(request.body().bytes());
        self.calls.lock().unwrap().push(Call {
            key: key.clone(),
            model,
            status,
        });
        let latency = self.latency.get(&key).copied().unwrap_or_default();
        Box::pin(async move {
            time::sleep(latency).await;
            let body = match status {
                StatusCode::UNAUTHORIZED => {
                    r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#
                }
                StatusCode::TOO_MANY_REQUESTS => {
                    r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#
                }
                _ => r#"{"choices":[]}"#,
            };
            Ok(Response::builder()
                .status(status)
                .body(body.to_owned())
                .unwrap())
        })
    }
}

/// The `model` field of a JSON body.
fn serde_json_model(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split(r#""model":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_owned()
}

fn key(name: &str) -> Deployment {
    Deployment::new(name).with_rewrite(Credentials::bearer(name).unwrap())
}

/// Three keys of 500 requests per minute each serve 1,500 requests per minute, a steady
/// stream for two minutes, with no 429: round-robin gives each key every third request.
#[tokio::test(start_paused = true)]
async fn three_keys_serve_the_sum_of_their_quotas_without_a_429() {
    let keys = ["a", "b", "c"];
    let accounts = Accounts::new(&keys, Some(500));
    let router = RouterLayer::new(RouterConfig::new(
        keys.map(|k| key(k).with_limits(per_minute(500))),
    ))
    .unwrap();
    let client = ClassifyLayer::new(OpenAi::new()).layer(accounts.clone());
    let client = router.layer(client);
    let start = Instant::now();
    let mut pending = Vec::new();
    for _ in 0..3_000 {
        pending.push(tokio::spawn(client.clone().oneshot(chat(100))));
        time::sleep(Duration::from_millis(40)).await; // 1,500 a minute
    }
    for request in pending {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Never a wait: the last request was sent, and answered, at 119.96 s.
    assert_eq!(start.elapsed(), Duration::from_millis(120_000));
    for k in keys {
        assert_eq!(accounts.count(k, StatusCode::OK), 1_000, "key {k}");
        assert_eq!(accounts.count(k, StatusCode::TOO_MANY_REQUESTS), 0);
    }
}

/// Two routers (two replicas) whose deployments keep their quotas in stores they share
/// (`Deployment::with_store`, as with a Redis store per key): together they send each key's
/// quota once, not twice, with no 429, and choose by each shared store's headroom.
#[tokio::test(start_paused = true)]
async fn routers_sharing_each_deployments_store_share_its_quota() {
    let keys = ["a", "b"];
    let accounts = Accounts::new(&keys, Some(10));
    let stores: Vec<AnyStore> = keys
        .iter()
        .map(|_| AnyStore::new(AnyStore::from(MemoryStore::new(per_minute(10)))))
        .collect();
    let replica = || {
        let deployments = keys
            .iter()
            .zip(&stores)
            .map(|(k, store)| key(k).with_limits(per_minute(10)).with_store(store.clone()));
        let config = RouterConfig::new(deployments).with_max_wait(Duration::ZERO);
        let client = ClassifyLayer::new(OpenAi::new()).layer(accounts.clone());
        RouterLayer::new(config).unwrap().layer(client)
    };
    let (one, two) = (replica(), replica());
    let mut sent = Vec::new();
    for i in 0..30 {
        let router = if i % 2 == 0 { &one } else { &two };
        sent.push(router.clone().oneshot(chat(100)).await.is_ok());
    }
    assert_eq!(sent.iter().filter(|ok| **ok).count(), 20);
    for k in keys {
        assert_eq!(accounts.count(k, StatusCode::OK), 10, "key {k}");
        assert_eq!(accounts.count(k, StatusCode::TOO_MANY_REQUESTS), 0);
    }
}

/// At most `max_queue` requests wait for a deployment (and in each deployment's quota queue);
/// the others are refused at once, told when to come back and how many were waiting.
#[tokio::test(start_paused = true)]
async fn the_routers_wait_queue_is_capped() {
    let accounts = Accounts::new(&["a"], Some(1));
    let config = RouterConfig::new([key("a").with_limits(per_minute(1))])
        .with_max_queue(2)
        .with_max_wait(secs(600));
    assert_eq!(RouterConfig::new([key("a")]).max_queue, 1_024);
    let client = ClassifyLayer::new(OpenAi::new()).layer(accounts.clone());
    let router = RouterLayer::new(config).unwrap().layer(client);
    let calls: Vec<_> = (0..10)
        .map(|_| tokio::spawn(router.clone().oneshot(chat(100))))
        .collect();
    let mut refused = 0;
    for call in calls {
        if let Err(error) = call.await.unwrap() {
            // Refused by the router, or by the deployment's own quota queue (requests that
            // chose it at the same moment wait there): either way told when, and how many wait.
            let (waiting, retry_after) = match error.downcast_ref::<NoDeployment>() {
                Some(error) => (error.waiting(), error.retry_after().unwrap()),
                None => {
                    let error = error
                        .downcast_ref::<tollgate_ratelimit::error::RateLimited>()
                        .unwrap_or_else(|| panic!("{error}"));
                    (error.waiting(), error.retry_after())
                }
            };
            assert_eq!(waiting, Some(2));
            assert!(retry_after > secs(59), "{retry_after:?}");
            refused += 1;
        }
    }
    // One at once, two after waiting a minute each.
    assert_eq!(refused, 7);
    assert_eq!(accounts.count("a", StatusCode::OK), 3);
}

/// Collects the router's events.
#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Observer for Events {
    fn observe(&self, event: &Event<'_>) {
        if let Event::DeploymentEjected {
            deployment,
            class,
            duration,
        } = event
        {
            self.0
                .lock()
                .unwrap()
                .push(format!("{deployment} out: {class:?} for {duration:?}"));
        }
    }
}

/// A key revoked mid-run answers one 401: that request goes on to another key at once, the
/// key leaves the rotation for the configured time, and no request is lost.
#[tokio::test(start_paused = true)]
async fn a_revoked_key_loses_no_request() {
    let keys = ["a", "b", "c"];
    let accounts = Accounts::new(&keys, Some(500));
    accounts.revoke("b", secs(30));
    let router = RouterLayer::new(
        RouterConfig::new(keys.map(|k| key(k).with_limits(per_minute(500))))
            .with_eject_for(secs(600)),
    )
    .unwrap();
    let client = router.layer(ClassifyLayer::new(OpenAi::new()).layer(accounts.clone()));
    let events = Arc::new(Events::default());
    for _ in 0..1_200 {
        let mut request = chat(100);
        request
            .extensions_mut()
            .insert(Observe::new(Arc::clone(&events) as Arc<dyn Observer>));
        let response = client.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        time::sleep(Duration::from_millis(50)).await; // 1,200 a minute
    }
    assert_eq!(accounts.count("b", StatusCode::UNAUTHORIZED), 1);
    assert_eq!(*events.0.lock().unwrap(), ["b out: Unauthorized for 600s"]);
    // Before 30 s, every third request went to b; after, a and c shared everything.
    let b_ok = accounts.count("b", StatusCode::OK);
    assert_eq!(b_ok, 200);
    assert_eq!(
        accounts.count("a", StatusCode::OK) + accounts.count("c", StatusCode::OK),
        1_200 - b_ok
    );
    assert_eq!(accounts.count("a", StatusCode::TOO_MANY_REQUESTS), 0);
    assert_eq!(accounts.count("c", StatusCode::TOO_MANY_REQUESTS), 0);
}

/// A prompt too long for gpt-4o (128K) goes to the gpt-4.1 deployment (1M), before anything
/// is sent; one too long for both fails at once with both sizes.
#[tokio::test(start_paused = true)]
async fn the_context_window_check_picks_the_larger_model() {
    let accounts = Accounts::new(&[], None);
    let router = RouterLayer::new(RouterConfig::new([
        Deployment::new("small").with_model("gpt-4o"),
        Deployment::new("large").with_model("gpt-4.1"),
    ]))
    .unwrap();
    let client = router.layer(accounts.clone());

    // 600,000 characters: 150,000 tokens of prompt, and 100 of output.
    for _ in 0..3 {
        client.clone().oneshot(chat(600_000)).await.unwrap();
    }
    // Short prompts still take turns.
    for _ in 0..2 {
        client.clone().oneshot(chat(100)).await.unwrap();
    }
    let models: Vec<String> = accounts.calls().into_iter().map(|c| c.model).collect();
    assert_eq!(models[..3], ["gpt-4.1", "gpt-4.1", "gpt-4.1"]);
    let mut short = models[3..].to_vec();
    short.sort();
    assert_eq!(short, ["gpt-4.1", "gpt-4o"]);

    // 5,000,000 characters: some 1.25M tokens, more than any window here.
    let huge = chat(5_000_000);
    let needed = OpenAiChat::new().estimate(&huge).get(Dimension::Tokens);
    assert!(needed > 1_250_000);
    let error = client.clone().oneshot(huge).await.unwrap_err();
    let too_small = error.downcast_ref::<ContextWindowTooSmall>().unwrap();
    assert_eq!(
        (too_small.needed(), too_small.largest()),
        (needed, 1_047_576)
    );
    assert_eq!(accounts.calls().len(), 5, "never sent");
}

/// The order each strategy sends ten requests in, to deployments a, b (and c).
async fn order(strategy: Strategy, deployments: Vec<Deployment>, accounts: &Accounts) -> String {
    let router = RouterLayer::new(RouterConfig::new(deployments).with_strategy(strategy)).unwrap();
    let client = router.layer(accounts.clone());
    for _ in 0..10 {
        client.clone().oneshot(chat(100)).await.unwrap();
    }
    accounts.calls().iter().map(|c| c.key.as_str()).collect()
}

#[tokio::test(start_paused = true)]
async fn round_robin_takes_turns() {
    let accounts = Accounts::new(&[], None);
    let order = order(
        Strategy::RoundRobin,
        vec![key("a"), key("b"), key("c")],
        &accounts,
    )
    .await;
    assert_eq!(order, "abcabcabca");
}

#[tokio::test(start_paused = true)]
async fn weighted_spreads_by_weight() {
    let accounts = Accounts::new(&[], None);
    let three = NonZeroU32::new(3).unwrap();
    let order = order(
        Strategy::Weighted,
        vec![key("a").with_weight(three), key("b")],
        &accounts,
    )
    .await;
    assert_eq!(order, "aabaaabaaa");
}

/// Least-loaded: the key with the most headroom, so a quota of 10 and one of 20 fill up
/// together — 10 and 20 of 30 requests sent at once, none waiting.
#[tokio::test(start_paused = true)]
async fn least_loaded_follows_headroom() {
    let accounts = Accounts::new(&[], None);
    let router = RouterLayer::new(
        RouterConfig::new([
            key("a").with_limits(per_minute(10)),
            key("b").with_limits(per_minute(20)),
        ])
        .with_strategy(Strategy::LeastLoaded),
    )
    .unwrap();
    let client = router.layer(accounts.clone());
    let start = Instant::now();
    for _ in 0..30 {
        client.clone().oneshot(chat(100)).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(accounts.count("a", StatusCode::OK), 10);
    assert_eq!(accounts.count("b", StatusCode::OK), 20);
    assert_eq!(accounts.calls()[0].key, "b", "the most headroom first");
}

/// Latency-aware: once both are measured, the faster deployment takes everything sent one at
/// a time.
#[tokio::test(start_paused = true)]
async fn latency_aware_prefers_the_faster() {
    let accounts = Accounts::new(&[], None).with_latency(&[("a", 100), ("b", 10)]);
    let order = order(Strategy::LatencyAware, vec![key("a"), key("b")], &accounts).await;
    assert_eq!(order, "abbbbbbbbb");
}

/// When no deployment can take a request now, it waits in the quota of the one free soonest,
/// within its deadline and the router's maximum wait; beyond, it fails at once with the wait.
#[tokio::test(start_paused = true)]
async fn waits_for_the_soonest_within_the_deadline_or_refuses() {
    let accounts = Accounts::new(&[], None);
    let router = RouterLayer::new(
        RouterConfig::new([
            key("a").with_limits(per_minute(1)),
            key("b").with_limits(per_minute(2)),
        ])
        .with_max_wait(secs(40)),
    )
    .unwrap();
    let client = router.layer(accounts.clone());
    for _ in 0..3 {
        client.clone().oneshot(chat(100)).await.unwrap();
    }
    // a is free again in 60 s, b in 30 s: beyond the request's deadline of 10 s.
    let mut request = chat(100);
    request.extensions_mut().insert(Deadline::after(secs(10)));
    let error = client.clone().oneshot(request).await.unwrap_err();
    let refused = error.downcast_ref::<NoDeployment>().unwrap();
    assert_eq!(refused.retry_after(), Some(secs(30)));
    assert_eq!(accounts.calls().len(), 3);

    // Within the router's 40 s, it waits in b's queue and goes at 30 s.
    let start = Instant::now();
    client.clone().oneshot(chat(100)).await.unwrap();
    assert_eq!(start.elapsed(), secs(30));
    assert_eq!(accounts.calls().last().unwrap().key, "b");
}

/// Construction errors are typed, and the router's errors never carry a key.
#[test]
fn bad_configurations_are_refused() {
    use tollgate_router::error::BuildError;
    assert_eq!(
        RouterLayer::new(RouterConfig::new(Vec::new())).unwrap_err(),
        BuildError::NoDeployments
    );
    assert_eq!(
        RouterLayer::new(RouterConfig::new([key("a"), key("a")])).unwrap_err(),
        BuildError::DuplicateName("a".to_owned())
    );
    let many = (0..65).map(|i| Deployment::new(&i.to_string()));
    assert_eq!(
        RouterLayer::new(RouterConfig::new(many)).unwrap_err(),
        BuildError::TooManyDeployments(65)
    );
}

/// A rejected quota also takes a key out of rotation; an error class the router does not act
/// on comes back unchanged.
#[tokio::test(start_paused = true)]
async fn other_failures_come_back() {
    let failing = tower::service_fn(|_: Request<BufferedBody>| async {
        Ok::<_, BoxError>(
            Response::builder()
                .status(400)
                .body(
                    r#"{"error":{"message":"bad","type":"invalid_request_error","code":null}}"#
                        .to_owned(),
                )
                .unwrap(),
        )
    });
    let router = RouterLayer::new(RouterConfig::new([key("a"), key("b")])).unwrap();
    let client = router.layer(ClassifyLayer::new(OpenAi::new()).layer(failing));
    let response = client.oneshot(chat(100)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let verdict = tollgate_core::Verdict::of_response(&response).unwrap();
    assert_eq!(verdict.class(), Some(ErrorClass::BadRequest));
}

/// A request of `chars` of prompt asking for `max_tokens` of output, `n` times.
fn chat_n(chars: usize, max_tokens: u64, n: u64) -> Request<BufferedBody> {
    let body = format!(
        r#"{{"model":"gpt-4o","max_tokens":{max_tokens},"n":{n},"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(chars)
    );
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(body))
        .unwrap()
}

/// The context window holds one completion: `n` completions of 300 tokens after a prompt of
/// about 110 tokens need about 410 tokens of window each, not 110 + 4 × 300 (the quota's
/// charge). Both deployments fit, so they take turns.
#[tokio::test(start_paused = true)]
async fn the_context_window_counts_one_completion_not_n() {
    let accounts = Accounts::new(&[], None);
    let router = RouterLayer::new(RouterConfig::new([
        key("small").with_context_window(1_000),
        key("large").with_context_window(1_000_000),
    ]))
    .unwrap();
    let client = router.layer(accounts.clone());
    let request = chat_n(400, 300, 4);
    assert!(OpenAiChat::new().estimate(&request).get(Dimension::Tokens) > 1_000);
    client.clone().oneshot(request).await.unwrap();
    client.clone().oneshot(chat_n(400, 300, 4)).await.unwrap();
    let mut keys: Vec<String> = accounts.calls().into_iter().map(|c| c.key).collect();
    keys.sort();
    assert_eq!(keys, ["large", "small"]);
}

/// With Anthropic-style estimates, which do not charge `max_tokens` to the quota, the output
/// asked for still counts against the context window: a short prompt asking for 5,000 tokens
/// never goes to a 1,000-token window, and with only that one it fails at once.
#[tokio::test(start_paused = true)]
async fn the_context_window_counts_the_requested_output_of_anthropic_estimates() {
    use tollgate_ratelimit::AnthropicMessages;
    let accounts = Accounts::new(&[], None);
    let request = || {
        Request::post("https://api.anthropic.com/v1/messages")
            .body(BufferedBody::from(
                r#"{"model":"claude-x","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}"#,
            ))
            .unwrap()
    };
    let input = AnthropicMessages::new()
        .estimate(&request())
        .get(Dimension::InputTokens);
    let router = RouterLayer::new(RouterConfig::new([
        key("small").with_context_window(1_000),
        key("large").with_context_window(1_000_000),
    ]))
    .unwrap()
    .with_estimator(AnthropicMessages::new());
    let client = router.layer(accounts.clone());
    for _ in 0..3 {
        client.clone().oneshot(request()).await.unwrap();
    }
    assert!(accounts.calls().iter().all(|c| c.key == "large"));

    let only_small = RouterLayer::new(RouterConfig::new([key("small").with_context_window(1_000)]))
        .unwrap()
        .with_estimator(AnthropicMessages::new())
        .layer(accounts.clone());
    let error = only_small.oneshot(request()).await.unwrap_err();
    let too_small = error.downcast_ref::<ContextWindowTooSmall>().unwrap();
    assert_eq!(
        (too_small.needed(), too_small.largest()),
        (input + 5_000, 1_000)
    );
    assert_eq!(accounts.calls().len(), 3, "never sent");
}

/// Latency-aware: a deployment whose calls fail after 100 ms is measured too, so it does not
/// stay "not yet measured" — the fastest — and take every request.
#[tokio::test(start_paused = true)]
async fn latency_aware_measures_failed_calls() {
    let calls: Arc<Mutex<String>> = Arc::default();
    let log = Arc::clone(&calls);
    let transport = tower::service_fn(move |request: Request<BufferedBody>| {
        let slow = request.headers()[http::header::AUTHORIZATION] == "Bearer a";
        log.lock().unwrap().push(if slow { 'a' } else { 'b' });
        async move {
            if slow {
                time::sleep(Duration::from_millis(100)).await;
                Err::<Response<String>, BoxError>("connection reset".into())
            } else {
                time::sleep(Duration::from_millis(10)).await;
                Ok(Response::new(String::new()))
            }
        }
    });
    let client = RouterLayer::new(
        RouterConfig::new([key("a"), key("b")]).with_strategy(Strategy::LatencyAware),
    )
    .unwrap()
    .layer(transport);
    for _ in 0..10 {
        let _ = client.clone().oneshot(chat(100)).await;
    }
    let order = calls.lock().unwrap().clone();
    assert_eq!(order.matches('a').count(), 1, "{order}");
}

/// A request whose first deployment rejects its key, and whose other deployment cannot take
/// it within the wait allowed, fails with `NoDeployment` and the wait — not with the other
/// key's 401, which says nothing of when to try again.
#[tokio::test(start_paused = true)]
async fn a_rejected_key_then_no_room_gives_retry_after() {
    let accounts = Accounts::new(&[], None);
    accounts.revoke("a", secs(10));
    let router = RouterLayer::new(
        RouterConfig::new([key("a"), key("b").with_limits(per_minute(1))]).with_max_wait(secs(5)),
    )
    .unwrap();
    let client = router.layer(ClassifyLayer::new(OpenAi::new()).layer(accounts.clone()));
    // Round-robin: a, then b, whose one request of the minute this is.
    for _ in 0..2 {
        let response = client.clone().oneshot(chat(100)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    time::advance(secs(10)).await;
    // a's turn: 401, so a leaves the rotation; b is free again only in 50 s.
    let error = client.clone().oneshot(chat(100)).await.unwrap_err();
    let refused = error.downcast_ref::<NoDeployment>().unwrap();
    assert_eq!(refused.retry_after(), Some(secs(50)));
    assert_eq!(accounts.count("a", StatusCode::UNAUTHORIZED), 1);
    assert_eq!(accounts.calls().len(), 3);
}

/// Several requests in flight at a deployment whose key is revoked: each answered 401 moves
/// on, but the deployment is taken out of rotation once, and one event says so.
#[tokio::test(start_paused = true)]
async fn concurrent_rejections_eject_once() {
    let accounts = Accounts::new(&[], None).with_latency(&[("a", 100)]);
    accounts.revoke("a", Duration::ZERO);
    let router =
        RouterLayer::new(RouterConfig::new([key("a"), key("b")]).with_eject_for(secs(60))).unwrap();
    let client = router.layer(ClassifyLayer::new(OpenAi::new()).layer(accounts.clone()));
    let events = Arc::new(Events::default());
    let mut pending = Vec::new();
    for _ in 0..4 {
        let mut request = chat(100);
        request
            .extensions_mut()
            .insert(Observe::new(Arc::clone(&events) as Arc<dyn Observer>));
        pending.push(tokio::spawn(client.clone().oneshot(request)));
    }
    for request in pending {
        assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(accounts.count("a", StatusCode::UNAUTHORIZED), 2);
    assert_eq!(*events.0.lock().unwrap(), ["a out: Unauthorized for 60s"]);
}

/// 64 deployments, the most a router takes: round-robin reaches the last, and ejecting it
/// moves its share to the others.
#[tokio::test(start_paused = true)]
async fn sixty_four_deployments() {
    let names: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
    let accounts = Accounts::new(&[], None);
    accounts.revoke("k63", secs(1));
    let router = RouterLayer::new(RouterConfig::new(names.iter().map(|n| key(n)))).unwrap();
    let client = router.layer(ClassifyLayer::new(OpenAi::new()).layer(accounts.clone()));
    for _ in 0..64 {
        client.clone().oneshot(chat(10)).await.unwrap();
    }
    assert_eq!(accounts.count("k63", StatusCode::OK), 1);
    time::advance(secs(1)).await;
    for _ in 0..128 {
        let response = client.clone().oneshot(chat(10)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(accounts.count("k63", StatusCode::UNAUTHORIZED), 1);
    assert_eq!(accounts.calls().len(), 64 + 128 + 1);
}

/// Least-loaded with no quotas: every deployment ties, and ties go in turn.
#[tokio::test(start_paused = true)]
async fn least_loaded_ties_go_in_turn() {
    let accounts = Accounts::new(&[], None);
    let order = order(
        Strategy::LeastLoaded,
        vec![key("a"), key("b"), key("c")],
        &accounts,
    )
    .await;
    assert_eq!(order, "abcabcabca");
}
