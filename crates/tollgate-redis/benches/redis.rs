//! What one admission costs through `RedisStore` on loopback, next to `MemoryStore` (the
//! in-process baseline) and a bare `PING` (the round trip with no script), in the same run and
//! against the same limits: requests per minute, tokens per minute and tokens per day on one
//! key, each 10^12, so that nothing is ever refused (every admission is checked).
//!
//! The bench starts its own `redis-server` on a free loopback port (the tests' harness) and
//! prints `SKIPPED` and exits 0 where none is installed. Everything runs on a multi-thread tokio
//! runtime with 2 workers, from spawned tasks, as the layer does:
//!
//! 1. criterion's time per admission, one at a time from one task: the round-trip latency;
//! 2. 20,000 sequential admissions timed one by one: p50, p99, p99.9 and the maximum — then
//!    the same for `RedisStore` and `PING` on a current-thread runtime of their own, where the
//!    caller and the connection's driver share one thread;
//! 3. 64 and 256 tasks admitting at once on one store (its multiplexed connection pipelines
//!    them), 100,000 admissions in all, on one hot key and on a key per task: admissions/s
//!    (the median of three runs);
//!
//! then Redis's own `INFO commandstats`, the time the server spent per call. Run with
//! `cargo bench -p tollgate-redis --bench redis -- --warm-up-time 1 --measurement-time 4`.
//! Outside `cargo bench` (`cargo test --benches`), every loop is cut to a smoke test.
//!
//! On a small VM the round trip depends on where the threads run more than on the script: a
//! wake-up that crosses to an idle vCPU can cost tens of µs, and `PING` shows it too. Compare
//! with `taskset -c 0 cargo bench …` (everything on one vCPU), and read the store's cost as its
//! distance from `PING` in the same run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use redis::aio::MultiplexedConnection;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tollgate_core::{Cost, Dimension, RouteKey};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits, MemoryStore, QuotaDecision, Store};
use tollgate_redis::{Mode, RedisConfig, RedisStore};

/// Every limit's amount: far more than the bench spends.
const LIMIT: NonZeroU64 = NonZeroU64::new(1_000_000_000_000).unwrap();
/// What each admission spends: one request and 1,000 tokens.
const COST: Cost = Cost::requests(1).with(Dimension::Tokens, 1_000);
/// Admissions timed one by one for the percentiles.
const SEQUENTIAL: usize = 20_000;
/// Admissions in all for each throughput run.
const TOTAL: usize = 100_000;
/// Throughput runs of each kind; the median is reported.
const ROUNDS: usize = 3;

fn limits() -> Limits {
    Limits::new([
        Limit::requests(Quota::per_minute(LIMIT)),
        Limit::tokens(Quota::per_minute(LIMIT)),
        Limit::tokens(Quota::per_day(LIMIT)),
    ])
}

/// What one step of a loop does.
#[derive(Clone)]
enum Target {
    Memory(Arc<MemoryStore>),
    Redis(RedisStore),
    /// `PING` on a multiplexed connection like the store's: the round trip alone.
    Ping(MultiplexedConnection),
}

impl Target {
    /// One admission of [`COST`] for `key` (or one `PING`); panics unless admitted.
    async fn once(&mut self, key: &RouteKey, epoch: Instant) {
        let decision = match self {
            Target::Memory(store) => store.admit(Some(key), &COST, None, epoch.elapsed()).await,
            Target::Redis(store) => store.admit(Some(key), &COST, None, epoch.elapsed()).await,
            Target::Ping(connection) => {
                let pong: String = redis::cmd("PING")
                    .query_async(connection)
                    .await
                    .expect("PING failed");
                assert_eq!(pong, "PONG");
                return;
            }
        };
        match decision {
            Ok(QuotaDecision::Admitted) => {}
            other => panic!("the bench's limits must never refuse: {other:?}"),
        }
    }
}

/// Runs `iters` steps one after another in one task on the runtime; their total wall time.
fn sequential(runtime: &Runtime, target: &Target, key: &RouteKey, iters: u64) -> Duration {
    let (mut target, key) = (target.clone(), key.clone());
    let task = runtime.spawn(async move {
        let epoch = Instant::now();
        for _ in 0..iters {
            target.once(&key, epoch).await;
        }
        epoch.elapsed()
    });
    runtime.block_on(task).expect("the bench task panicked")
}

/// Times `count` steps one by one in one task, after a warm-up; sorted.
fn one_by_one(runtime: &Runtime, target: &Target, key: &RouteKey, count: usize) -> Vec<Duration> {
    let (mut target, key) = (target.clone(), key.clone());
    let task = runtime.spawn(async move {
        let epoch = Instant::now();
        for _ in 0..count / 10 {
            target.once(&key, epoch).await;
        }
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let start = Instant::now();
            target.once(&key, epoch).await;
            times.push(start.elapsed());
        }
        times
    });
    let mut times = runtime.block_on(task).expect("the bench task panicked");
    times.sort_unstable();
    times
}

/// Which key each task of [`concurrent`] admits on, by the task's number.
type KeyOf<'a> = &'a dyn Fn(usize) -> RouteKey;

/// `tasks` tasks at once, `total` steps in all, each task on `key(task)`; steps per second.
fn concurrent(
    runtime: &Runtime,
    target: &Target,
    tasks: usize,
    total: usize,
    key: KeyOf<'_>,
) -> f64 {
    let each = total / tasks;
    let keys: Vec<RouteKey> = (0..tasks).map(key).collect();
    let target = target.clone();
    let run = runtime.spawn(async move {
        let epoch = Instant::now();
        let handles: Vec<_> = keys
            .into_iter()
            .map(|key| {
                let mut target = target.clone();
                tokio::spawn(async move {
                    for _ in 0..each {
                        target.once(&key, epoch).await;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("a bench task panicked");
        }
        epoch.elapsed()
    });
    let elapsed = runtime.block_on(run).expect("the bench task panicked");
    (each * tasks) as f64 / elapsed.as_secs_f64()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `q` quantile of sorted `times` (nearest rank).
fn quantile(times: &[Duration], q: f64) -> Duration {
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}

/// One row of a latency table: `name`, then p50, p99, p99.9, the maximum and the mean of sorted
/// `times`, in µs.
fn print_latency(name: &str, times: &[Duration]) {
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "  {name:<12} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        micros(quantile(times, 0.50)),
        micros(quantile(times, 0.99)),
        micros(quantile(times, 0.999)),
        micros(times[times.len() - 1]),
        micros(mean),
    );
}

/// A `RedisStore` of the bench's limits and a bare connection for `PING`, both to `url`, their
/// connections driven by `runtime`; the store checked shared.
fn connect(runtime: &Runtime, url: &str) -> (RedisStore, MultiplexedConnection) {
    let store = runtime
        .block_on(RedisStore::connect(RedisConfig::new(url), limits()))
        .expect("the bench's configuration is valid");
    assert_shared(&store);
    let ping = runtime
        .block_on(async {
            let client = redis::Client::open(url)?;
            client.get_multiplexed_async_connection().await
        })
        .expect("cannot connect to redis-server");
    (store, ping)
}

/// Fails the bench when the store stopped talking to Redis: its fallback would admit from the
/// local share, and the figures would not be Redis's.
fn assert_shared(store: &RedisStore) {
    let stats = store.stats();
    assert!(
        store.mode() == Mode::Shared && stats.failures == 0,
        "RedisStore lost Redis during the bench ({stats:?}): the figures are not Redis's"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--list") {
        Criterion::default().configure_from_args().final_summary();
        return;
    }
    // Under `cargo test --benches` criterion runs each benchmark once; so do the loops here.
    let full = has("--bench") && !has("--test");
    let (sequential_count, total) = if full {
        (SEQUENTIAL, TOTAL)
    } else {
        (200, 2_560)
    };

    let Some(server) = support::start() else {
        println!("================================================================");
        println!("SKIPPED: redis-server is not installed; the Redis benchmark did not run.");
        println!("================================================================");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime");

    let (store, ping) = connect(&runtime, &server.url());
    let targets = [
        (
            "MemoryStore",
            Target::Memory(Arc::new(MemoryStore::new(limits()))),
        ),
        ("RedisStore", Target::Redis(store.clone())),
        ("PING", Target::Ping(ping.clone())),
    ];
    let hot = RouteKey::new("bench-hot");

    // 1. Criterion: time per admission, one at a time from one task.
    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("admission, one task");
        group.throughput(Throughput::Elements(1));
        for (name, target) in &targets {
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| sequential(&runtime, target, &hot, iters));
            });
        }
        group.finish();
    }
    criterion.final_summary();
    assert_shared(&store);

    // 2. Percentiles of single admissions.
    println!("\nlatency, one task, {sequential_count} sequential calls (µs):");
    println!(
        "  {:<12} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "p50", "p99", "p99.9", "max", "mean"
    );
    for (name, target) in &targets {
        let times = one_by_one(&runtime, target, &hot, sequential_count);
        print_latency(name, &times);
    }
    assert_shared(&store);

    // 2b. The same on a current-thread runtime: the caller, the connection's driver and the
    // reply's wake-up on one thread, redis-server on the other vCPU (no cross-thread wake-up
    // in the client).
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime");
    let (local_store, local_ping) = connect(&local, &server.url());
    println!(
        "\nlatency, one task on a current-thread runtime, {sequential_count} sequential calls (µs):"
    );
    for (name, target) in [
        ("RedisStore", Target::Redis(local_store.clone())),
        ("PING", Target::Ping(local_ping)),
    ] {
        let times = one_by_one(&local, &target, &hot, sequential_count);
        print_latency(name, &times);
    }
    assert_shared(&local_store);

    // 3. Throughput with many calls in flight on one connection: the median of three runs.
    println!("\nthroughput, {total} calls in all, median of {ROUNDS} runs [min, max] (calls/s):");
    let redis = &targets[1].1;
    let ping = &targets[2].1;
    let spread = |task: usize| RouteKey::new(format!("bench-{task}"));
    // Warm up the connection and the server before the first measured run.
    concurrent(&runtime, redis, 64, total / 10, &|_| hot.clone());
    for tasks in [64, 256] {
        let runs: [(&str, &Target, KeyOf<'_>); 3] = [
            ("RedisStore, one hot key", redis, &|_| hot.clone()),
            ("RedisStore, a key per task", redis, &spread),
            ("PING", ping, &|_| hot.clone()),
        ];
        for (name, target, key) in runs {
            let mut rates: Vec<f64> = (0..ROUNDS)
                .map(|_| concurrent(&runtime, target, tasks, total, key))
                .collect();
            rates.sort_by(f64::total_cmp);
            println!(
                "  {tasks:>3} tasks, {name:<27} {:>9.0}   [{:.0}, {:.0}]",
                rates[ROUNDS / 2],
                rates[0],
                rates[ROUNDS - 1]
            );
        }
    }
    assert_shared(&store);

    // Where the server's time went: microseconds per call, scripts' own commands included.
    let Target::Ping(mut connection) = ping.clone() else {
        unreachable!("targets[2] is PING")
    };
    let stats: String = runtime
        .block_on(
            redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut connection),
        )
        .expect("INFO commandstats failed");
    println!("\nredis-server INFO commandstats:");
    for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
        println!("  {line}");
    }
    drop(targets);
    drop(store);
    drop(runtime);
    drop(server);
}
