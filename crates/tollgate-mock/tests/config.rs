//! Configuration from TOML, validation, stats and the timeline.

mod common;

use std::time::Duration;

use common::{Client, chat};
use tollgate_mock::{
    Bucket, FirstTokenDelay, Flavor, Latency, MockConfig, MockServer, Outage, ProxyLimit,
    StreamFault,
};

const FULL: &str = r#"
flavor = "anthropic"
context_window = 100000
completion_tokens = 80
api_key = "ak-test"
credit_tokens = 1000000
seed = 42
latency = { kind = "uniform", min_ms = 10, max_ms = 30 }

[quota]
requests_per_minute = 50
tokens_per_minute = 90000
input_tokens_per_minute = 30000
output_tokens_per_minute = 8000
tokens_per_day = 5000000
max_concurrency = 20

[faults]
error_rates = { 500 = 0.01, "529" = 0.02 }
hang_rate = 0.001
reset_rate = 0.002

[faults.stream]
first_token_delay = { ms = 8000 }    # rate 1: every stream
stall = { after = 3, rate = 0.01 }
error = { after = 5, rate = 0.02 }
cut = { after = 7, rate = 0.05 }

[[faults.outages]]
start_ms = 60000
duration_ms = 10000

[[faults.outages]]
start_ms = 120000
duration_ms = 5000
status = 500

[proxy_limit]
rate_per_second = 50
burst = 10
retry_after_secs = 2

[[proxy_limit.tenant]]
from_ms = 20000
share = 0.5
"#;

#[test]
fn toml_round_trip() {
    let parsed = MockConfig::from_toml(FULL).unwrap();
    let built = MockConfig::anthropic()
        .with_context_window(100_000)
        .with_completion_tokens(80)
        .with_api_key("ak-test")
        .with_credit_tokens(1_000_000)
        .with_seed(42)
        .with_latency(Latency::Uniform {
            min_ms: 10,
            max_ms: 30,
        })
        .with_requests_per_minute(50)
        .with_tokens_per_minute(90_000)
        .with_input_tokens_per_minute(30_000)
        .with_output_tokens_per_minute(8_000)
        .with_tokens_per_day(5_000_000)
        .with_max_concurrency(20)
        .with_error_rate(500, 0.01)
        .with_error_rate(529, 0.02)
        .with_hang_rate(0.001)
        .with_reset_rate(0.002)
        .with_first_token_delay(FirstTokenDelay::new(Duration::from_secs(8)))
        .with_stream_stall(StreamFault::after(3).with_rate(0.01))
        .with_stream_error(StreamFault::after(5).with_rate(0.02))
        .with_stream_cut(StreamFault::after(7).with_rate(0.05))
        .with_outage(Duration::from_secs(60), Duration::from_secs(10))
        .with_outage_status(Duration::from_secs(120), Duration::from_secs(5), 500)
        .with_proxy_limit(
            ProxyLimit::per_second(50)
                .with_burst(10)
                .with_retry_after(Duration::from_secs(2))
                .with_tenant_share(Duration::from_secs(20), 0.5),
        );
    assert_eq!(parsed, built);
    assert_eq!(parsed.flavor, Flavor::Anthropic);
    assert_eq!(
        parsed.faults.outages[0],
        Outage {
            start_ms: 60_000,
            duration_ms: 10_000,
            status: 529
        }
    );
}

#[test]
fn errors_name_the_field() {
    for (toml, needle) in [
        ("[quota]\nrequests_per_min = 5\n", "requests_per_min"),
        (
            "[quota]\nrequests_per_minute = \"ten\"\n",
            "requests_per_minute",
        ),
        (
            "[quota]\nrequests_per_minute = 0\n",
            "quota.requests_per_minute",
        ),
        ("flavor = \"gemini\"\n", "gemini"),
        ("latency = { kind = \"fixed\", millis = 5 }\n", "millis"),
        (
            "latency = { kind = \"uniform\", min_ms = 9, max_ms = 5 }\n",
            "latency.min_ms",
        ),
        (
            "latency = { kind = \"log_normal\", median_ms = 9, p99_ms = 5 }\n",
            "latency.p99_ms",
        ),
        (
            "[faults]\nerror_rates = { 503 = 1.5 }\n",
            "faults.error_rates.503",
        ),
        (
            "[faults]\nerror_rates = { 200 = 0.5 }\n",
            "faults.error_rates.200",
        ),
        ("[faults]\nhang_rate = -0.1\n", "faults.hang_rate"),
        ("[faults]\nhang_rate = 0.6\nreset_rate = 0.6\n", "faults"),
        ("context_window = 0\n", "context_window"),
        ("[faults.stream]\nstal = { after = 1 }\n", "stal"),
        ("[faults.stream]\ncut = { after = 1, rat = 0.5 }\n", "rat"),
        ("[faults.stream]\ncut = { rate = 0.5 }\n", "after"),
        ("[faults.stream]\ncut = { after = -1 }\n", "after"),
        (
            "[faults.stream]\nfirst_token_delay = { rate = 0.5 }\n",
            "ms",
        ),
        (
            "[faults.stream]\ncut = { after = 1, rate = 1.5 }\n",
            "faults.stream.cut.rate",
        ),
        (
            "[faults.stream]\nstall = { after = 1, rate = -0.5 }\n",
            "faults.stream.stall.rate",
        ),
        (
            "[faults.stream]\nerror = { after = 1, rate = nan }\n",
            "faults.stream.error.rate",
        ),
        (
            "[faults.stream]\nfirst_token_delay = { ms = 1, rate = 2 }\n",
            "faults.stream.first_token_delay.rate",
        ),
        (
            "[faults.stream]\nfirst_token_delay = { ms = 3600001 }\n",
            "faults.stream.first_token_delay.ms",
        ),
        (
            "[faults.stream]\nstall = { after = 1, rate = 0.5 }\ncut = { after = 1, rate = 0.6 }\n",
            "the stall, error and cut rates add up to 1.1",
        ),
        ("bogus = 1\n", "bogus"),
        (
            "[[faults.outages]]\nstart_ms = 1\nduration_ms = 1\nstatus = 200\n",
            "faults.outages[0].status",
        ),
    ] {
        let err = MockConfig::from_toml(toml).unwrap_err();
        assert!(err.to_string().contains(needle), "{toml:?}: {err}");
    }
}

#[tokio::test]
async fn start_rejects_invalid_config() {
    let err = MockServer::start(MockConfig::openai().with_error_rate(503, 2.0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("faults.error_rates.503"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn stats_and_timeline() {
    let server = MockServer::start(MockConfig::openai().with_requests_per_minute(2))
        .await
        .unwrap();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(!server.base_url().ends_with('/'));
    assert_eq!(server.base_url(), format!("http://{}", server.addr()));
    let client = Client::new(&server);
    client.chat(&chat(8, None)).await; // 2 + 50 tokens
    client.chat(&chat(8, None)).await;
    client.chat(&chat(8, None)).await; // 429
    tokio::time::sleep(Duration::from_millis(2500)).await;
    client.post("/nope", &chat(8, None)).await; // 404
    tokio::time::sleep(Duration::from_secs(30)).await;
    client.chat(&chat(8, None)).await; // ok again, second 32

    let stats = server.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.ok, 3);
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.by_status.get(&404), Some(&1));
    assert_eq!(stats.by_status.get(&200), Some(&3));
    assert_eq!((stats.input_tokens, stats.output_tokens), (6, 150));
    assert_eq!(stats.max_in_flight, 1);

    let t = server.timeline();
    assert_eq!(t.len(), 33);
    assert_eq!(
        t[0],
        Bucket {
            second: 0,
            ok: 2,
            rate_limited: 1,
            errors: 0,
            tokens: 104
        }
    );
    assert_eq!(
        t[2],
        Bucket {
            second: 2,
            ok: 0,
            rate_limited: 0,
            errors: 1,
            tokens: 0
        }
    );
    assert_eq!(
        t[32],
        Bucket {
            second: 32,
            ok: 1,
            rate_limited: 0,
            errors: 0,
            tokens: 52
        }
    );
    assert_eq!(t.iter().map(|b| b.ok).sum::<u64>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers() {
    let server = MockServer::start(MockConfig::openai().with_latency(Latency::Uniform {
        min_ms: 0,
        max_ms: 5,
    }))
    .await
    .unwrap();
    let client = Client::new(&server);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    assert_eq!(c.chat(&chat(16, Some(8))).await.status, 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = server.stats();
    assert_eq!((stats.requests, stats.ok), (2560, 2560));
    assert!(stats.max_in_flight > 1);
    server.shutdown().await;
}
