//! The reverse-proxy limiter: GCRA per API key, the bare 429, shared-quota mode, configuration.

mod common;

use std::time::Duration;

use common::{Client, Reply, chat, messages};
use tokio::time::{Instant, sleep};
use tollgate_mock::{MockConfig, MockServer, ProxyLimit, TenantShare};

async fn start(config: MockConfig) -> (MockServer, Client) {
    let server = MockServer::start(config).await.unwrap();
    let client = Client::new(&server);
    (server, client)
}

async fn chat_as(client: &Client, headers: &[(&str, &str)]) -> u16 {
    client
        .post_with("/v1/chat/completions", &chat(8, Some(10)), headers)
        .await
        .status
}

/// The proxy's refusal: 429, `retry-after: {secs}`, plain text, none of the provider's headers.
fn assert_proxy_refusal(r: &Reply, secs: &str) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.h("retry-after"), secs);
    assert!(r.h("content-type").starts_with("text/plain"), "{r:?}");
    assert_eq!(r.body.trim_end(), "429 Too Many Requests");
    let provider_headers: Vec<&str> = r
        .headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| {
            name.starts_with("x-ratelimit-")
                || name.starts_with("anthropic-ratelimit-")
                || *name == "retry-after-ms"
                || name.ends_with("request-id")
                || *name == "x-should-retry"
        })
        .collect();
    assert!(provider_headers.is_empty(), "{provider_headers:?}");
}

#[tokio::test(start_paused = true)]
async fn burst_plus_one_pass_then_one_per_interval() {
    let (server, client) = start(
        MockConfig::openai()
            .with_requests_per_minute(1000)
            .with_proxy_limit(ProxyLimit::per_second(10).with_burst(2)),
    )
    .await;
    let start = Instant::now();
    for _ in 0..3 {
        let r = client.chat(&chat(8, Some(10))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.header("x-ratelimit-remaining-requests").is_some());
    }
    assert_proxy_refusal(&client.chat(&chat(8, Some(10))).await, "1");

    sleep(Duration::from_millis(99)).await;
    assert_eq!(chat_as(&client, &[]).await, 429);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(chat_as(&client, &[]).await, 200);
    assert_eq!(chat_as(&client, &[]).await, 429);
    sleep(Duration::from_millis(100)).await;
    assert_eq!(chat_as(&client, &[]).await, 200);
    assert_eq!(start.elapsed(), Duration::from_millis(200));

    let stats = server.stats();
    assert_eq!((stats.requests, stats.ok), (8, 5));
    assert_eq!((stats.rate_limited, stats.proxy_limited), (3, 3));
    assert_eq!(stats.by_status.get(&429), Some(&3));
    let t = server.timeline();
    assert_eq!((t[0].ok, t[0].rate_limited, t[0].errors), (5, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn burst_zero_needs_a_whole_interval() {
    let (_server, client) =
        start(MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(10))).await;
    assert_eq!(chat_as(&client, &[]).await, 200);
    sleep(Duration::from_millis(99)).await;
    assert_eq!(chat_as(&client, &[]).await, 429);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(chat_as(&client, &[]).await, 200);
}

#[tokio::test(start_paused = true)]
async fn anthropic_refusal_has_no_provider_headers_and_a_fixed_retry_after() {
    let (_server, client) = start(
        MockConfig::anthropic()
            .with_requests_per_minute(1000)
            .with_proxy_limit(
                ProxyLimit::per_second(1).with_retry_after(Duration::from_millis(2500)),
            ),
    )
    .await;
    let ok = client.messages(&messages(8, 10)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.header("anthropic-ratelimit-requests-remaining")
            .is_some()
    );
    // The actual wait is 1 s; the header says 3 (2.5 s rounded up), whatever the wait.
    assert_proxy_refusal(&client.messages(&messages(8, 10)).await, "3");
    sleep(Duration::from_millis(500)).await;
    assert_proxy_refusal(&client.messages(&messages(8, 10)).await, "3");
}

#[tokio::test(start_paused = true)]
async fn a_bucket_per_api_key() {
    let (server, client) =
        start(MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(1))).await;
    let bearer_a = [("authorization", "Bearer sk-a")];
    assert_eq!(chat_as(&client, &bearer_a).await, 200);
    assert_eq!(chat_as(&client, &bearer_a).await, 429);
    // The same key in `x-api-key` is the same bucket.
    assert_eq!(chat_as(&client, &[("x-api-key", "sk-a")]).await, 429);
    assert_eq!(chat_as(&client, &[("x-api-key", "sk-b")]).await, 200);
    // Requests without a key share one bucket.
    assert_eq!(chat_as(&client, &[]).await, 200);
    assert_eq!(chat_as(&client, &[]).await, 429);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(chat_as(&client, &bearer_a).await, 200);
    assert_eq!(server.stats().proxy_limited, 3);
}

#[tokio::test(start_paused = true)]
async fn checked_before_the_key_and_the_provider_quotas() {
    let (server, client) = start(
        MockConfig::openai()
            .with_api_key("sk-right")
            .with_requests_per_minute(3)
            .with_proxy_limit(ProxyLimit::per_second(1)),
    )
    .await;
    let wrong = [("authorization", "Bearer sk-wrong")];
    assert_eq!(chat_as(&client, &wrong).await, 401);
    assert_eq!(chat_as(&client, &wrong).await, 429, "limited by key value");

    let right = [("authorization", "Bearer sk-right")];
    let r = client
        .post_with("/v1/chat/completions", &chat(8, Some(10)), &right)
        .await;
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "2");
    for _ in 0..5 {
        assert_eq!(chat_as(&client, &right).await, 429);
    }
    sleep(Duration::from_secs(1)).await;
    let r = client
        .post_with("/v1/chat/completions", &chat(8, Some(10)), &right)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The proxy's refusals consumed nothing of the RPM quota (1 s refills 0.05 of a request).
    assert_eq!(r.h("x-ratelimit-remaining-requests"), "1");
    assert_eq!(server.stats().proxy_limited, 6);
}

/// Sends one request every 50 ms from now for `len`; returns how many were admitted.
async fn admitted_every_50ms(client: &Client, len: Duration) -> usize {
    let mut admitted = 0;
    let end = Instant::now() + len;
    while Instant::now() < end {
        if chat_as(client, &[]).await == 200 {
            admitted += 1;
        }
        sleep(Duration::from_millis(50)).await;
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_tenant_share_set_at_runtime_halves_the_rate() {
    let (server, client) =
        start(MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(10))).await;
    assert_eq!(server.tenant_share(), 0.0);
    assert_eq!(
        admitted_every_50ms(&client, Duration::from_secs(2)).await,
        20
    );

    server.set_tenant_share(0.5).unwrap();
    assert_eq!(server.tenant_share(), 0.5);
    assert_eq!(
        admitted_every_50ms(&client, Duration::from_secs(2)).await,
        10
    );

    server.set_tenant_share(0.0).unwrap();
    assert_eq!(
        admitted_every_50ms(&client, Duration::from_secs(2)).await,
        20
    );
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_tenant_share_halves_the_rate_then_ends() {
    let (server, client) = start(
        MockConfig::openai().with_proxy_limit(
            ProxyLimit::per_second(10)
                .with_tenant_share(Duration::from_secs(2), 0.5)
                .with_tenant_share(Duration::from_secs(4), 0.0),
        ),
    )
    .await;
    assert_eq!(
        admitted_every_50ms(&client, Duration::from_secs(6)).await,
        50
    );
    let ok: Vec<u64> = server.timeline().iter().map(|b| b.ok).collect();
    assert_eq!(ok, [10, 10, 5, 5, 10, 10, 0]);
    let limited: Vec<u64> = server.timeline().iter().map(|b| b.rate_limited).collect();
    assert_eq!(limited, [10, 10, 15, 15, 10, 10, 0]);
    let stats = server.stats();
    assert_eq!(
        (stats.ok, stats.rate_limited, stats.proxy_limited),
        (50, 70, 70)
    );
}

#[tokio::test(start_paused = true)]
async fn a_runtime_share_holds_until_the_next_scheduled_entry() {
    let (server, _client) = start(
        MockConfig::openai().with_proxy_limit(
            ProxyLimit::per_second(10)
                .with_tenant_share(Duration::ZERO, 0.25)
                .with_tenant_share(Duration::from_secs(2), 0.5),
        ),
    )
    .await;
    assert_eq!(server.tenant_share(), 0.25);
    sleep(Duration::from_secs(1)).await;
    server.set_tenant_share(0.75).unwrap();
    assert_eq!(server.tenant_share(), 0.75);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(server.tenant_share(), 0.5);
}

#[tokio::test(start_paused = true)]
async fn set_tenant_share_refuses_bad_shares_and_a_missing_limit() {
    let (server, _client) =
        start(MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(10))).await;
    for share in [-0.1, 0.995, 1.0, f64::NAN] {
        let err = server.set_tenant_share(share).unwrap_err();
        assert!(err.to_string().contains("tenant_share"), "{err}");
    }
    assert_eq!(server.tenant_share(), 0.0, "unchanged");
    server.set_tenant_share(0.99).unwrap();

    let (plain, _client) = start(MockConfig::openai()).await;
    let err = plain.set_tenant_share(0.5).unwrap_err();
    assert!(err.to_string().contains("proxy_limit"), "{err}");
    assert_eq!(plain.tenant_share(), 0.0);
}

const TOML: &str = r#"
[proxy_limit]
rate_per_second = 50
burst = 10
retry_after_secs = 2

[[proxy_limit.tenant]]
from_ms = 20000
share = 0.5

[[proxy_limit.tenant]]
from_ms = 60000
share = 0.0
"#;

#[test]
fn toml_matches_the_builder() {
    let parsed = MockConfig::from_toml(TOML).unwrap();
    let built = MockConfig::openai().with_proxy_limit(
        ProxyLimit::per_second(50)
            .with_burst(10)
            .with_retry_after(Duration::from_secs(2))
            .with_tenant_share(Duration::from_secs(20), 0.5)
            .with_tenant_share(Duration::from_secs(60), 0.0),
    );
    assert_eq!(parsed, built);
    let limit = parsed.proxy_limit.unwrap();
    assert_eq!(
        limit.tenant_schedule[0],
        TenantShare {
            from_ms: 20_000,
            share: 0.5
        }
    );
    let defaults = MockConfig::from_toml("proxy_limit = { rate_per_second = 5 }").unwrap();
    assert_eq!(defaults.proxy_limit, Some(ProxyLimit::per_second(5)));
    assert_eq!(MockConfig::openai().proxy_limit, None);
}

#[test]
fn toml_errors_name_the_field() {
    for (toml, needle) in [
        ("[proxy_limit]\nburst = 1\n", "rate_per_second"),
        (
            "[proxy_limit]\nrate_per_second = 0\n",
            "proxy_limit.rate_per_second",
        ),
        (
            "[proxy_limit]\nrate_per_second = 2000000000\n",
            "proxy_limit.rate_per_second",
        ),
        ("[proxy_limit]\nrate_per_second = -1\n", "rate_per_second"),
        (
            "[proxy_limit]\nrate_per_second = 1\nrate = 2\n",
            "unknown field `rate`",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 0\nshare = 1.0\n",
            "proxy_limit.tenant[0].share",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 0\nshare = -0.5\n",
            "proxy_limit.tenant[0].share",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 0\nshare = nan\n",
            "proxy_limit.tenant[0].share",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 5\nshare = 0.5\n[[proxy_limit.tenant]]\nfrom_ms = 5\nshare = 0\n",
            "proxy_limit.tenant[1].from_ms",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 5\n",
            "share",
        ),
        (
            "[proxy_limit]\nrate_per_second = 1\n[[proxy_limit.tenant]]\nfrom_ms = 5\nshare = 0.5\nuntil_ms = 9\n",
            "until_ms",
        ),
    ] {
        let err = MockConfig::from_toml(toml).unwrap_err();
        assert!(err.to_string().contains(needle), "{toml:?}: {err}");
    }
}

#[tokio::test]
async fn start_rejects_an_invalid_proxy_limit() {
    let config = MockConfig::openai()
        .with_proxy_limit(ProxyLimit::per_second(5).with_tenant_share(Duration::ZERO, 0.995));
    let err = MockServer::start(config).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("proxy_limit.tenant[0].share"),
        "{err}"
    );
}
