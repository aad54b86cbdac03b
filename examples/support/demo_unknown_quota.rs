//! A mock behind a reverse-proxy limiter nobody told the client about, the naive loop and
//! the default stack with nothing configured, at the same time.

use std::sync::Arc;
use std::time::Duration;

use indicatif::MultiProgress;
use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate::BoxError;
use tollgate::metrics::MetricsLayer;
use tollgate::stack::{Provider, StackBuilder};
use tollgate_mock::{Latency, MockConfig, MockServer, ProxyLimit};

use super::{
    Client, Counting, NaiveClient, ReqwestTransport, RunReport, Sender, Settings, Upstream,
    Workload,
};

/// The limiter's rate per API key, requests per second.
pub(super) const RATE: u64 = 50;
/// How many more requests it lets through back to back.
const BURST: u64 = 10;
/// When the other tenant comes and goes, and its share of the rate meanwhile.
pub(super) const TENANT_FROM: Duration = Duration::from_secs(10);
pub(super) const TENANT_UNTIL: Duration = Duration::from_secs(20);
pub(super) const TENANT_SHARE: f64 = 0.5;
const KEY: &str = "sk-demo-unknown-quota";

/// The rate the server has available for the client at `t` seconds into the run: what
/// the other tenant leaves.
pub(super) fn available_rate(t: f64) -> f64 {
    let shared = (TENANT_FROM.as_secs_f64()..TENANT_UNTIL.as_secs_f64()).contains(&t);
    RATE as f64 * if shared { 1.0 - TENANT_SHARE } else { 1.0 }
}

/// How many requests the server could answer in the first `elapsed` of a run: the burst at
/// once, then the available rate.
fn capacity(elapsed: Duration) -> f64 {
    let t = elapsed.as_secs_f64();
    let shared = (t.min(TENANT_UNTIL.as_secs_f64()) - TENANT_FROM.as_secs_f64()).max(0.0);
    (BURST + 1) as f64 + RATE as f64 * (t - TENANT_SHARE * shared)
}

/// One run of part 2: its report, and the stack's learned rate, in requests per second,
/// at each whole second of the run.
pub(super) struct Run {
    pub(super) report: RunReport,
    pub(super) learned: Vec<(u64, f64)>,
}

/// Runs part 2 and prints its report; writes its chart next to part 1's.
pub(super) async fn run(settings: &Settings) -> Result<(), BoxError> {
    let requests = (settings.requests * 2 / 5).max(1);
    println!(
        "tollgate demo, part 2: nobody knows the quota. {requests} chat requests from {} \
         concurrent callers, through the naive loop and through the default stack with \
         nothing configured, at the same time, each to a mock of its own behind a \
         reverse-proxy limiter: {RATE} requests a second per key, {BURST} more back to back, a \
         bare 429 with `retry-after: 1` and no rate-limit headers; another tenant takes {:.0} % \
         of the rate from {} s to {} s.",
        settings.callers,
        TENANT_SHARE * 100.0,
        TENANT_FROM.as_secs(),
        TENANT_UNTIL.as_secs(),
    );
    let bars = MultiProgress::new();
    let (naive, stack) = tokio::join!(
        one(settings, Client::Naive, requests, &bars),
        one(settings, Client::Tollgate, requests, &bars),
    );
    let (naive, stack) = (naive?, stack?);

    println!();
    print_report(&naive, &stack);
    let path = chart_path(&settings.chart);
    super::report_chart(
        "Chart of successes, 429s and the learned rate per second",
        &path,
        super::chart::unknown_quota(&path, &naive, &stack),
    );
    Ok(())
}

/// The client's name in part 2.
pub(super) fn name(client: Client) -> &'static str {
    match client {
        Client::Naive => Client::Naive.name(),
        Client::Tollgate => "tollgate defaults",
    }
}

/// One client's run against a mock of its own.
async fn one(
    settings: &Settings,
    client: Client,
    requests: usize,
    bars: &MultiProgress,
) -> Result<Run, BoxError> {
    let mock = MockServer::start(
        MockConfig::openai()
            .with_proxy_limit(
                ProxyLimit::per_second(RATE)
                    .with_burst(BURST)
                    .with_tenant_share(TENANT_FROM, TENANT_SHARE)
                    .with_tenant_share(TENANT_UNTIL, 0.0),
            )
            .with_latency(Latency::LogNormal {
                median_ms: 60,
                p99_ms: 400,
            })
            .with_api_key(KEY)
            .with_seed(13),
    )
    .await?;
    let workload = Workload {
        base_url: mock.base_url(),
        key: KEY.to_owned(),
        model: "gpt-4o-mini".to_owned(),
        long_prompts: false,
    };
    let upstream = Upstream::new(&workload.base_url);
    let transport = Counting::new(ReqwestTransport::new(reqwest::Client::new()), &upstream);
    let learned = Arc::new(Mutex::new(Vec::new()));
    let (sender, sampler) = match client {
        Client::Naive => (Sender::Naive(NaiveClient::new(transport)), None),
        Client::Tollgate => {
            // Nothing configured: no quota, no model, no limits; the rate is learned.
            let metrics = MetricsLayer::new("demo-unknown-quota");
            let handle = metrics.handle();
            let stack = StackBuilder::new(
                Provider::openai_compatible(&workload.base_url).with_api_key(KEY),
            )
            .with_metrics(metrics)
            .build(transport)?;
            // The learned rate, once a second of the run.
            let sampler = tokio::spawn({
                let (handle, learned) = (handle.clone(), Arc::clone(&learned));
                async move {
                    let started = Instant::now();
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tick.tick().await;
                        if let Some(per_minute) = handle.snapshot().learned_rate_per_minute {
                            let second = started.elapsed().as_secs_f64().round() as u64;
                            learned.lock().push((second, per_minute as f64 / 60.0));
                        }
                    }
                }
            });
            (Sender::Tollgate { stack, handle }, Some(sampler))
        }
    };

    let progress = bars.add(super::progress_bar(requests, name(client))?);
    let driven = super::drive(settings, &sender, &workload, requests, &upstream, &progress).await;
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    if driven.cut_off {
        progress.println(format!(
            "  ({}: cut off after {:?}: the requests still out count as failed)",
            name(client),
            super::RUN_LIMIT
        ));
    }
    if std::env::var_os("DEMO_DEBUG").is_some() {
        progress.println(format!("{}: mock {:?}", name(client), mock.stats()));
    }
    mock.shutdown().await;
    let learned = std::mem::take(&mut *learned.lock());
    Ok(Run {
        report: driven.report(&sender, upstream, false),
        learned,
    })
}

fn print_report(naive: &Run, stack: &Run) {
    let (n, s) = (&naive.report, &stack.report);
    let share = |run: &RunReport| {
        format!(
            "{:.0} %",
            100.0 * run.succeeded as f64 / capacity(run.elapsed)
        )
    };
    let learned = |run: &Run| {
        run.learned
            .last()
            .map_or("—".to_owned(), |&(_, rate)| format!("{rate:.1}"))
    };
    let rows: [(&str, String, String); 11] = [
        (
            "requests succeeded",
            n.succeeded.to_string(),
            s.succeeded.to_string(),
        ),
        (
            "requests failed",
            n.failed.to_string(),
            s.failed.to_string(),
        ),
        (
            "429s received",
            n.upstream.rate_limited().to_string(),
            s.upstream.rate_limited().to_string(),
        ),
        (
            "upstream calls made",
            n.upstream.calls().to_string(),
            s.upstream.calls().to_string(),
        ),
        (
            "goodput (successes per second)",
            super::per_second(n),
            super::per_second(s),
        ),
        ("goodput / server's available rate", share(n), share(s)),
        (
            "p50 latency",
            super::millis(n.percentile(0.5)),
            super::millis(s.percentile(0.5)),
        ),
        (
            "p99 latency",
            super::millis(n.percentile(0.99)),
            super::millis(s.percentile(0.99)),
        ),
        ("retries", n.retries.to_string(), s.retries.to_string()),
        (
            "learned rate at the end (per s)",
            learned(naive),
            learned(stack),
        ),
        ("wall time", super::seconds(n), super::seconds(s)),
    ];
    super::print_table(name(Client::Naive), name(Client::Tollgate), &rows);
    let each_second: Vec<String> = stack
        .learned
        .iter()
        .map(|(_, rate)| format!("{rate:.0}"))
        .collect();
    println!(
        "\nThe default stack's learned rate, requests per second, once a second: {}",
        each_second.join(" ")
    );
    println!(
        "\n\"Available rate\" is what the limiter lets through over the run: {BURST} requests \
         at once, then {RATE} a second less the other\ntenant's share; latency runs from a \
         request's first attempt to its answer or failure."
    );
}

/// Part 2's chart: next to part 1's, its stem followed by `-unknown-quota`.
fn chart_path(known: &str) -> String {
    let path = std::path::Path::new(known);
    let stem = path
        .file_stem()
        .map_or("demo".into(), |stem| stem.to_string_lossy());
    let extension = path
        .extension()
        .map_or("svg".into(), |extension| extension.to_string_lossy());
    path.with_file_name(format!("{stem}-unknown-quota.{extension}"))
        .to_string_lossy()
        .into_owned()
}
