//! Three replicas of one service share one provider quota through Redis, end to end: three
//! tower stacks, each a `RateLimitLayer` over its own `RedisStore` (its own connection) over
//! its own hyper-util client, against `tollgate-mock` on loopback; next to the same three
//! stacks each on its own `MemoryStore`; and with Redis killed and restarted mid-run.
//!
//! The provider's quota is the mock's reverse-proxy limiter (GCRA, one bucket for requests
//! without an API key, bare 429s with `retry-after: 1`): [`RATE`] a second with a burst of
//! [`BURST`], which lets `BURST + 1` requests through back to back. The replicas hold requests
//! to the same figures, [`RATE`] a second with a bucket of [`BURST`]: the one request between
//! the two (50 ms at 20/s) is the margin for the time a request takes from its admission to the
//! mock (scheduling, loopback), which varies. Nobody retries: every 429 the mock sends is
//! counted once.
//!
//! These tests run on the real clock: Redis's clock is the one the replicas share, which
//! tokio's paused clock knows nothing about. Each takes 8–12 s. Run with `--nocapture` for
//! the tables. Skipped, loudly, where `redis-server` is not installed (unless
//! `TOLLGATE_REQUIRE_REDIS=1`).

mod support;

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tollgate_core::body::BufferedBody;
use tollgate_core::{BoxError, Cost, Deadline, Dimension, RouteKey};
use tollgate_mock::{MockConfig, MockServer, ProxyLimit};
use tollgate_ratelimit::adaptive::Adaptive;
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::error::RateLimited;
use tollgate_ratelimit::{
    Feedback, Limit, Limits, MemoryStore, Outlook, PerRequest, QuotaDecision, RateLimit,
    RateLimitConfig, RateLimitLayer, Store, Unkeyed,
};
use tollgate_redis::{Mode, RedisConfig, RedisStore};
use tower::{Layer, Service, ServiceExt};

/// The provider's quota, requests a second.
const RATE: u64 = 20;
/// Its burst: the mock lets `BURST + 1` through back to back, the replicas' bucket holds
/// `BURST`.
const BURST: u64 = 2;
/// Replicas, and concurrent callers on each.
const REPLICAS: usize = 3;
const CALLERS: usize = 16;
/// Long enough that the layer always waits: at most `REPLICAS × CALLERS` requests are ever
/// queued, 2.4 s at the full rate, 2.7 s at a replica's local share.
const MAX_WAIT: Duration = Duration::from_secs(30);

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn limits() -> Limits {
    Limits::new([Limit::requests(
        Quota::per_second(n(RATE)).with_burst(n(BURST)),
    )])
}

/// The provider: the reverse-proxy limiter only, no latency, no faults.
fn provider() -> MockConfig {
    MockConfig::openai()
        .with_proxy_limit(ProxyLimit::per_second(RATE).with_burst(BURST))
        .with_seed(17)
}

/// What the provider admits over `span` from a full bucket: the rate, and the requests that
/// pass back to back.
fn provider_quota(span: Duration) -> f64 {
    RATE as f64 * span.as_secs_f64() + (BURST + 1) as f64
}

type Transport = Client<HttpConnector, BufferedBody>;
type Replica<St> = RateLimit<Transport, Unkeyed, PerRequest, St>;

/// One replica: the rate-limit layer over `store`, waiting (up to [`MAX_WAIT`]) rather than
/// refusing, over its own HTTP client. No retries, no classifier: a 429 reaches the caller as
/// it is (and pauses the layer's quota for its `retry-after`, as any 429 does).
fn replica<St: Store>(store: St) -> Replica<St> {
    replica_held_to(store, limits())
}

/// One replica as [`replica`], its layer holding requests to `limits`.
fn replica_held_to<St: Store>(store: St, limits: Limits) -> Replica<St> {
    let config = RateLimitConfig::new(limits).with_max_wait(MAX_WAIT);
    RateLimitLayer::from_store(store, config)
        .layer(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>())
}

/// A small chat request.
fn chat(base_url: &str, replica: usize, i: usize) -> Request<BufferedBody> {
    let body = format!(
        r#"{{"model":"gpt-4o-mini","max_tokens":5,"messages":[{{"role":"user","content":"replica {replica}, request {i}"}}]}}"#
    );
    Request::post(format!("{base_url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(BufferedBody::from(body))
        .unwrap()
}

// ===== timing the store =====

/// A store that times every admission it answers: how long a request spent asking the store
/// (for Redis, the round trip; while Redis is away, the fallback).
struct Timed<St> {
    inner: St,
    origin: Instant,
    /// (when it was asked, since `origin`; how long the answer took)
    calls: Calls,
}

/// When each store call started, and how long it took.
type Calls = Arc<Mutex<Vec<(Duration, Duration)>>>;

type TimedFuture = Pin<Box<dyn Future<Output = Result<QuotaDecision, BoxError>> + Send>>;

impl<St: Store> Store for Timed<St> {
    type Future = TimedFuture;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> TimedFuture {
        let asked = Instant::now();
        let answer = self.inner.admit(key, cost, ahead, now);
        let (origin, calls) = (self.origin, Arc::clone(&self.calls));
        Box::pin(async move {
            let answer = answer.await;
            let took = asked.elapsed();
            calls.lock().unwrap().push((asked - origin, took));
            answer
        })
    }

    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        self.inner.feedback(key, feedback, now);
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        self.inner.set_limits(key, limits);
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.inner.limits(key)
    }

    fn keys(&self) -> usize {
        self.inner.keys()
    }

    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        self.inner.outlook(key, cost, now)
    }

    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        self.inner.utilization(key, now)
    }
}

// ===== driving the replicas =====

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The provider answered with this status.
    Status(u16),
    /// The layer gave up at the end of the span (the request's deadline), spending nothing.
    Cut,
    /// Anything else: a failure.
    Failed(String),
}

/// One request, from its caller's point of view.
#[derive(Debug, Clone)]
struct Record {
    replica: usize,
    /// When it was sent and when it ended, since the run's origin.
    sent: Duration,
    done: Duration,
    outcome: Outcome,
}

impl Record {
    fn latency(&self) -> Duration {
        self.done - self.sent
    }
}

/// Sends requests from [`CALLERS`] callers on each replica, each as soon as its previous one
/// ended, until `origin + span`. With `cut`, a request not admitted by then is given up (its
/// deadline is the end of the span) and its caller stops; without, every request sent runs
/// to its end. Panics in a caller propagate.
async fn drive<St: Store>(
    replicas: Vec<Replica<St>>,
    base_url: &str,
    origin: Instant,
    span: Duration,
    cut: bool,
) -> Vec<Record> {
    let end = origin + span;
    let mut callers = JoinSet::new();
    for (r, service) in replicas.into_iter().enumerate() {
        for c in 0..CALLERS {
            let mut service = service.clone();
            let base_url = base_url.to_owned();
            callers.spawn(async move {
                let mut records = Vec::new();
                let mut i = c;
                while Instant::now() < end {
                    let mut request = chat(&base_url, r, i);
                    if cut {
                        request.extensions_mut().insert(Deadline::at(end));
                    }
                    i += CALLERS;
                    let sent = origin.elapsed();
                    let ready = service.ready().await.expect("the client is always ready");
                    let outcome = match ready.call(request).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            match response.into_body().collect().await {
                                Ok(_) => Outcome::Status(status),
                                Err(error) => Outcome::Failed(format!("body: {error}")),
                            }
                        }
                        Err(error) if cut && error.downcast_ref::<RateLimited>().is_some() => {
                            Outcome::Cut
                        }
                        Err(error) => Outcome::Failed(error.to_string()),
                    };
                    let cut_here = outcome == Outcome::Cut;
                    records.push(Record {
                        replica: r,
                        sent,
                        done: origin.elapsed(),
                        outcome,
                    });
                    if cut_here {
                        break;
                    }
                }
                records
            });
        }
    }
    let mut records = Vec::new();
    while let Some(done) = callers.join_next().await {
        records.extend(done.expect("a caller panicked"));
    }
    records
}

fn count(records: &[Record], keep: impl Fn(&Record) -> bool) -> usize {
    records.iter().filter(|r| keep(r)).count()
}

/// What one run of the three replicas came to.
struct Run {
    name: &'static str,
    span: Duration,
    /// What the provider saw: requests, 2xx answers, 429s.
    requests: u64,
    accepted: u64,
    rate_limited: u64,
    /// The 2xx answers each replica got.
    per_replica: Vec<usize>,
    /// Requests given up at the end of the span, and requests that failed otherwise.
    cut: usize,
    failed: Vec<String>,
    /// The longest a request took, and the longest one admission took to answer.
    max_latency: Duration,
    max_store_call: Option<Duration>,
}

impl Run {
    fn used(&self) -> f64 {
        self.accepted as f64 / provider_quota(self.span)
    }

    fn new(
        name: &'static str,
        span: Duration,
        mock: &MockServer,
        records: &[Record],
        calls: Option<&[(Duration, Duration)]>,
    ) -> Run {
        let stats = mock.stats();
        Run {
            name,
            span,
            requests: stats.requests,
            accepted: stats.ok,
            rate_limited: stats.rate_limited,
            per_replica: (0..REPLICAS)
                .map(|r| {
                    count(records, |x| {
                        x.replica == r && x.outcome == Outcome::Status(200)
                    })
                })
                .collect(),
            cut: count(records, |x| x.outcome == Outcome::Cut),
            failed: records
                .iter()
                .filter_map(|x| match &x.outcome {
                    Outcome::Failed(error) => Some(error.clone()),
                    _ => None,
                })
                .collect(),
            max_latency: records
                .iter()
                .map(Record::latency)
                .max()
                .unwrap_or_default(),
            max_store_call: calls.and_then(|calls| calls.iter().map(|c| c.1).max()),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// One row of [`print_runs`]'s table: a figure of a run.
type Figure<'a> = &'a dyn Fn(&Run) -> String;

fn print_runs(title: &str, runs: &[&Run]) {
    let cell = |f: Figure<'_>| {
        runs.iter()
            .map(|run| format!(" {} |", f(run)))
            .collect::<String>()
    };
    eprintln!("\n{title}\n");
    eprintln!("| |{}", cell(&|run| run.name.to_owned()));
    eprintln!("|---|{}", "---|".repeat(runs.len()));
    let rows: [(&str, Figure<'_>); 9] = [
        ("requests the provider saw", &|run| run.requests.to_string()),
        ("accepted (2xx)", &|run| run.accepted.to_string()),
        ("429s from the provider", &|run| {
            run.rate_limited.to_string()
        }),
        ("quota used: accepted / (rate × span + burst + 1)", &|run| {
            format!(
                "{:.1} % ({} / {:.0})",
                run.used() * 100.0,
                run.accepted,
                provider_quota(run.span)
            )
        }),
        ("accepted per replica", &|run| {
            let parts: Vec<String> = run.per_replica.iter().map(usize::to_string).collect();
            parts.join(" / ")
        }),
        ("given up at the end of the span", &|run| {
            run.cut.to_string()
        }),
        ("failed", &|run| run.failed.len().to_string()),
        ("longest request", &|run| ms(run.max_latency)),
        ("longest admission (store call)", &|run| {
            run.max_store_call.map_or_else(|| "-".to_owned(), ms)
        }),
    ];
    for (name, f) in rows {
        eprintln!("| {name} |{}", cell(f));
    }
}

/// One replica per store, each store call timed into the shared list.
fn timed_replicas(
    stores: &[RedisStore],
    origin: Instant,
) -> (Vec<Replica<Timed<RedisStore>>>, Calls) {
    let calls = Calls::default();
    let replicas = stores
        .iter()
        .map(|store| {
            replica(Timed {
                inner: store.clone(),
                origin,
                calls: Arc::clone(&calls),
            })
        })
        .collect();
    (replicas, calls)
}

async fn redis_replicas(
    redis: &support::RedisServer,
    prefix: &str,
    configure: impl Fn(RedisConfig) -> RedisConfig,
) -> Vec<RedisStore> {
    redis_replicas_held_to(redis, prefix, configure, limits()).await
}

async fn redis_replicas_held_to(
    redis: &support::RedisServer,
    prefix: &str,
    configure: impl Fn(RedisConfig) -> RedisConfig,
    limits: Limits,
) -> Vec<RedisStore> {
    let mut stores = Vec::new();
    for r in 0..REPLICAS {
        let config = RedisConfig::new(redis.url())
            .with_prefix(prefix)
            .with_replicas(REPLICAS as u32);
        let store = RedisStore::connect(configure(config), limits.clone())
            .await
            .unwrap();
        assert_eq!(store.mode(), Mode::Shared);
        // Loads the script (Redis keeps it for every connection) on a key of its own, so that
        // the run does not start with 48 callers each meeting NOSCRIPT at once.
        let warm_up = RouteKey::new(format!("warm-up-{r}"));
        let decision = store.admit(Some(&warm_up), &Cost::requests(1), None, Duration::ZERO);
        assert_eq!(decision.await.unwrap(), QuotaDecision::Admitted);
        stores.push(store);
    }
    stores
}

/// The three replicas, each with its own `MemoryStore` holding `limits`, against a fresh
/// provider for `span`.
async fn in_memory(name: &'static str, span: Duration, limits: Limits) -> Run {
    let mock = MockServer::start(provider()).await.unwrap();
    let replicas = (0..REPLICAS)
        .map(|_| replica_held_to(MemoryStore::new(limits.clone()), limits.clone()))
        .collect();
    let origin = Instant::now();
    let records = drive(replicas, &mock.base_url(), origin, span, true).await;
    let run = Run::new(name, span, &mock, &records, None);
    mock.shutdown().await;
    run
}

// ===== the tests =====

/// 48 callers over three replicas, as fast as they can for 4 s, against a provider allowing
/// 20 requests a second: through one shared Redis quota, the fleet uses the provider's quota
/// and draws no 429; with a quota in memory each, it draws 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_quota_where_local_stores_draw_429s() {
    const SPAN: Duration = Duration::from_secs(4);
    let Some(redis) = support::start() else {
        return;
    };

    // Through Redis.
    let mock = MockServer::start(provider()).await.unwrap();
    let stores = redis_replicas(&redis, "replicas", |config| config).await;
    let origin = Instant::now();
    let (replicas, calls) = timed_replicas(&stores, origin);
    let records = drive(replicas, &mock.base_url(), origin, SPAN, true).await;
    let calls = calls.lock().unwrap().clone();
    let shared = Run::new(
        "3 replicas, one RedisStore quota",
        SPAN,
        &mock,
        &records,
        Some(&calls),
    );
    mock.shutdown().await;

    // In memory, a quota each. (A 429 pauses the replica that drew it for its `retry-after`,
    // 1 s, while the others go on.)
    let local = in_memory("3 replicas, a MemoryStore each", SPAN, limits()).await;

    print_runs(
        &format!(
            "{REPLICAS} replicas × {CALLERS} callers for {SPAN:?}, provider {RATE}/s \
             (burst {BURST}: {} back to back), replicas' limit {RATE}/s burst {BURST}",
            BURST + 1
        ),
        &[&shared, &local],
    );

    for run in [&shared, &local] {
        assert!(run.failed.is_empty(), "{}: {:?}", run.name, run.failed);
    }
    // Redis answered every admission: the quota was shared throughout.
    for store in &stores {
        let stats = store.stats();
        assert_eq!((stats.mode, stats.failures), (Some(Mode::Shared), 0));
    }
    assert_eq!(shared.rate_limited, 0, "the shared quota drew 429s");
    assert!(
        shared.used() >= 0.95,
        "the shared quota used {:.1} % of the provider's",
        shared.used() * 100.0
    );
    // Each replica got some (Redis serves whichever asks first, so the split is uneven).
    assert!(shared.per_replica.iter().all(|&a| a > 0));
    assert!(local.rate_limited > 0, "three quotas in memory drew no 429");
}

/// The same three replicas, sending for 6 s; Redis is killed at 2 s and started again (empty)
/// at 4 s. Meanwhile each replica admits its local share (a third of the quota) without
/// waiting on Redis; afterwards every store is shared again, and every request was answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_the_stack_keeps_flowing_and_shares_again() {
    const SPAN: Duration = Duration::from_secs(6);
    const KILL_AT: Duration = Duration::from_secs(2);
    const RESTART_AT: Duration = Duration::from_secs(4);
    const TIMEOUT: Duration = Duration::from_millis(50);
    let Some(redis) = support::start() else {
        return;
    };
    let mock = MockServer::start(provider()).await.unwrap();
    let stores = redis_replicas(&redis, "outage", |config| {
        config
            .with_timeout(TIMEOUT)
            .with_reconnect_every(Duration::from_millis(100))
    })
    .await;

    let origin = Instant::now();
    // Every change of mode, per replica, with its time.
    let modes = Arc::new(Mutex::new(Vec::new()));
    for (r, store) in stores.iter().enumerate() {
        let modes = Arc::clone(&modes);
        store.on_mode_change(move |mode| modes.lock().unwrap().push((r, mode, origin.elapsed())));
    }
    let (replicas, calls) = timed_replicas(&stores, origin);

    let watched = stores.clone();
    let chaos = tokio::spawn(async move {
        let mut redis = redis;
        tokio::time::sleep_until(origin + KILL_AT).await;
        // Off the runtime's workers: stopping and starting a process blocks.
        redis = tokio::task::spawn_blocking(move || {
            redis.stop();
            redis
        })
        .await
        .unwrap();
        let killed = origin.elapsed();
        tokio::time::sleep_until(origin + RESTART_AT).await;
        redis = tokio::task::spawn_blocking(move || {
            redis.restart();
            redis
        })
        .await
        .unwrap();
        let restarted = origin.elapsed();
        while watched.iter().any(|store| store.mode() != Mode::Shared) {
            assert!(
                origin.elapsed() - restarted < Duration::from_secs(5),
                "not every store is shared again 5 s after the restart: {:?}",
                watched.iter().map(RedisStore::mode).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (redis, killed, restarted, origin.elapsed())
    });

    let records = drive(replicas, &mock.base_url(), origin, SPAN, false).await;
    let (_redis, killed, restarted, shared_again) = chaos.await.expect("the chaos task panicked");
    let calls = calls.lock().unwrap().clone();
    let modes = modes.lock().unwrap().clone();
    let stats = mock.stats();
    mock.shutdown().await;

    // ----- the report -----
    let ok = |r: &Record| r.outcome == Outcome::Status(200);
    let limited = |r: &Record| r.outcome == Outcome::Status(429);
    let within = |from: Duration, to: Duration| move |r: &Record| r.done >= from && r.done < to;
    eprintln!(
        "\nRedis killed at {}, restarted (answering PING) at {}, every store shared again at {} \
         ({} after the restart)",
        ms(killed),
        ms(restarted),
        ms(shared_again),
        ms(shared_again - restarted)
    );
    for (r, mode, at) in &modes {
        eprintln!("  replica {r}: {} at {}", mode.as_str(), ms(*at));
    }
    eprintln!(
        "\n| answered in | 200s | 429s | 200s/s | longest admission (store call) asked then |"
    );
    eprintln!("|---|---|---|---|---|");
    let step = Duration::from_millis(500);
    let last = records.iter().map(|r| r.done).max().unwrap_or_default();
    let mut from = Duration::ZERO;
    while from < last {
        let to = from + step;
        let window = within(from, to);
        let longest = calls
            .iter()
            .filter(|(asked, _)| *asked >= from && *asked < to)
            .map(|c| c.1)
            .max();
        eprintln!(
            "| {:.1}–{:.1} s | {} | {} | {:.0} | {} |",
            from.as_secs_f64(),
            to.as_secs_f64(),
            count(&records, |r| window(r) && ok(r)),
            count(&records, |r| window(r) && limited(r)),
            count(&records, |r| window(r) && ok(r)) as f64 / step.as_secs_f64(),
            longest.map_or_else(|| "-".to_owned(), ms),
        );
        from = to;
    }
    let phase = |from: Duration, to: Duration| {
        let window = within(from, to);
        let oks = count(&records, |r| window(r) && ok(r));
        let per_replica: Vec<usize> = (0..REPLICAS)
            .map(|i| count(&records, |r| window(r) && ok(r) && r.replica == i))
            .collect();
        let limited = count(&records, |r| window(r) && limited(r));
        let longest = records
            .iter()
            .filter(|r| r.sent >= from && r.sent < to)
            .map(Record::latency)
            .max()
            .unwrap_or_default();
        (oks, per_replica, limited, longest)
    };
    // Each replica's outage, as its store saw it: from its switch to the local share to its
    // switch back (the only changes of mode, checked below).
    let away: Vec<(Duration, Duration)> = (0..REPLICAS)
        .map(|r| {
            let at = |mode| {
                modes
                    .iter()
                    .find(|m| m.0 == r && m.1 == mode)
                    .map_or(Duration::MAX, |m| m.2)
            };
            (at(Mode::Unavailable), at(Mode::Shared))
        })
        .collect();
    let away_from = away.iter().map(|a| a.0).min().unwrap_or_default();
    let away_to = away.iter().map(|a| a.1).max().unwrap_or_default();
    let before = phase(Duration::ZERO, away_from);
    let outage = phase(away_from, away_to);
    let after = phase(away_to, last + step);
    eprintln!(
        "\n| phase | 200s | per replica | 200s/s | 429s | longest request sent then |\n|---|---|---|---|---|---|"
    );
    for (name, from, to, (oks, per_replica, limited, longest)) in [
        ("shared", Duration::ZERO, away_from, &before),
        ("Redis away (local shares)", away_from, away_to, &outage),
        ("shared again", away_to, last, &after),
    ] {
        eprintln!(
            "| {name} ({:.2}–{:.2} s) | {oks} | {per_replica:?} | {:.1} | {limited} | {} |",
            from.as_secs_f64(),
            to.as_secs_f64(),
            *oks as f64 / (to - from).as_secs_f64(),
            ms(*longest)
        );
    }
    let longest_call = calls.iter().map(|c| c.1).max().unwrap_or_default();
    eprintln!(
        "\n{} requests, {} answered 200, {} answered 429 (the provider saw {} requests, {} 429s); \
         {} admissions asked of the stores, the longest answered in {}",
        records.len(),
        count(&records, ok),
        count(&records, limited),
        stats.requests,
        stats.rate_limited,
        calls.len(),
        ms(longest_call)
    );
    for (r, store) in stores.iter().enumerate() {
        eprintln!("  replica {r}: {:?}", store.stats());
    }

    // ----- the assertions -----
    // Every request was answered by the provider: none failed, none was refused locally.
    let failed: Vec<&Record> = records
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Status(200 | 429)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    // No admission waited on Redis for longer than the timeout (plus scheduling): the first
    // call to notice the outage fails within it, and the rest do not ask Redis at all.
    assert!(
        longest_call <= TIMEOUT + Duration::from_millis(50),
        "an admission took {longest_call:?}"
    );
    // Every store noticed the outage once and came back once; every store is shared again.
    for (r, &(from, to)) in away.iter().enumerate() {
        let changes: Vec<Mode> = modes.iter().filter(|m| m.0 == r).map(|m| m.1).collect();
        assert_eq!(changes, [Mode::Unavailable, Mode::Shared], "replica {r}");
        assert!(
            from >= KILL_AT && to >= RESTART_AT,
            "replica {r}: {from:?}–{to:?}"
        );
    }
    assert!(stores.iter().all(|store| store.mode() == Mode::Shared));
    // While its store could not reach Redis, every replica kept admitting at its local share's
    // pace (a third of the quota: 6 a second, a bucket of 1), without waiting on Redis: no gap
    // between two of its answers longer than the pace plus one Redis timeout (and
    // scheduling), except the pause a 429 imposes (its `retry-after`, 1 s). And it admitted no
    // more than its share.
    let local_rate = (RATE / REPLICAS as u64) as f64;
    let pace = Duration::from_secs_f64(1.0 / local_rate);
    for (r, &(from, to)) in away.iter().enumerate() {
        let mut answered: Vec<&Record> = records
            .iter()
            .filter(|x| x.replica == r && x.done >= from && x.done < to)
            .collect();
        answered.sort_by_key(|x| x.done);
        let oks = count(&records, |x| {
            x.replica == r && x.done >= from && x.done < to && ok(x)
        });
        let pauses = count(&records, |x| {
            x.replica == r && x.done >= from && x.done < to && limited(x)
        });
        let window = (to - from).as_secs_f64();
        let unpaused = (window - pauses as f64).max(0.0);
        assert!(
            oks > 0 && oks as f64 >= 0.7 * local_rate * unpaused,
            "replica {r} answered {oks} in its {window:.2} s without Redis ({pauses} 429s)"
        );
        assert!(
            oks as f64 <= local_rate * window + 2.0,
            "replica {r} answered {oks} in its {window:.2} s without Redis: more than its share"
        );
        for pair in answered.windows(2) {
            let gap = pair[1].done - pair[0].done;
            assert!(
                limited(pair[0]) || gap <= pace + TIMEOUT + Duration::from_millis(150),
                "replica {r}: nothing answered for {gap:?} without Redis: {pair:?}"
            );
        }
    }
    // 429s stay near 0: the local shares start full, so at the switch each replica may send
    // its bucket of 1 at once on top of what the shared quota let through; the provider's
    // margin of 1 absorbs one of the three.
    assert!(
        stats.rate_limited <= REPLICAS as u64,
        "{} 429s",
        stats.rate_limited
    );
}

/// The same three replicas, told nothing of the quota: each layer learns the rate (the
/// adaptive limit, slow start from 10/s). Through Redis the fleet learns one rate together;
/// in memory each replica learns its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_learn_one_rate() {
    const SPAN: Duration = Duration::from_secs(6);
    let Some(redis) = support::start() else {
        return;
    };
    let learning = || Limits::adaptive(Adaptive::new());

    let mock = MockServer::start(provider()).await.unwrap();
    let stores = redis_replicas_held_to(&redis, "learning", |config| config, learning()).await;
    let origin = Instant::now();
    let replicas = stores
        .iter()
        .map(|store| replica_held_to(store.clone(), learning()))
        .collect();
    let records = drive(replicas, &mock.base_url(), origin, SPAN, true).await;
    let shared = Run::new(
        "3 replicas, one learned rate in Redis",
        SPAN,
        &mock,
        &records,
        None,
    );
    mock.shutdown().await;

    let local = in_memory("3 replicas, each learning alone", SPAN, learning()).await;

    print_runs(
        &format!(
            "{REPLICAS} replicas × {CALLERS} callers for {SPAN:?}, provider {RATE}/s \
             (burst {BURST}), nothing configured: the rate is learned"
        ),
        &[&shared, &local],
    );
    for run in [&shared, &local] {
        assert!(run.failed.is_empty(), "{}: {:?}", run.name, run.failed);
    }
    // One rate learned together draws fewer 429s than three learned apart (5 against 14–17
    // here), for most of the quota.
    assert!(
        shared.rate_limited < local.rate_limited,
        "shared learning drew {} 429s, learning apart {}",
        shared.rate_limited,
        local.rate_limited
    );
    assert!(
        shared.used() >= 0.85,
        "the learned rate used {:.1} % of the provider's",
        shared.used() * 100.0
    );
}
