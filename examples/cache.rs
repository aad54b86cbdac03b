//! `CacheLayer` in front of a quota: identical requests answered once.
//!
//! ```sh
//! cargo run --example cache
//! ```
//!
//! Starts a `tollgate-mock` OpenAI server in this process (60 requests a minute, 200 ms per
//! answer) and, through metrics → cache → rate limit → classify → reqwest:
//!
//! 1. sends one deterministic chat request (`temperature: 0`) twice: the first goes upstream,
//!    the second — its JSON written with the keys in another order — is a hit, answered at
//!    once and spending no quota;
//! 2. sends 100 identical requests at once, each opting in with `x-tollgate-cache: on`: they
//!    share one upstream call;
//! 3. sends the first request as another caller (another API key): never served from the
//!    first caller's entry.
//!
//! It prints each answer's `x-tollgate-cache` header and what the mock provider saw.

use std::num::NonZeroU64;

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::cache::{CacheConfig, CacheStatus};
use tollgate::metrics::MetricsLayer;
use tollgate::providers::OpenAi;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::{Limit, Limits};
use tollgate::transport::ReqwestTransport;
use tollgate::{BoxError, ServiceBuilderExt};
use tollgate_mock::{Latency, MockConfig, MockServer};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mock = MockServer::start(
        MockConfig::openai()
            .with_requests_per_minute(60)
            .with_latency(Latency::Fixed { ms: 200 }),
    )
    .await?;
    let url = format!("{}/v1/chat/completions", mock.base_url());
    let metrics = MetricsLayer::new("openai");
    let handle = metrics.handle();
    let client = ServiceBuilder::new()
        .layer(metrics)
        .cache(CacheConfig::default().with_deterministic(true))
        .rate_limits(Limits::new([Limit::requests(Quota::per_minute(
            NonZeroU64::new(60).expect("not zero"),
        ))]))
        .classify(OpenAi::new())
        .service(ReqwestTransport::new(reqwest::Client::new()));

    let chat = |body: &'static str, key: &str| {
        Request::post(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(BufferedBody::from(Bytes::from_static(body.as_bytes())))
            .expect("a valid request")
    };
    let deterministic = r#"{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Name a prime."}]}"#;
    let reordered = r#"{ "messages": [{"content": "Name a prime.", "role": "user"}], "temperature": 0, "model": "gpt-4o-mini" }"#;

    println!("1. The same deterministic request twice:");
    for body in [deterministic, reordered] {
        let started = Instant::now();
        let response = client.clone().oneshot(chat(body, "sk-alice")).await?;
        let status = CacheStatus::of(&response).map_or("—", CacheStatus::as_str);
        response.into_body().collect().await?;
        println!("   {status:<9} in {:>4} ms", started.elapsed().as_millis());
    }

    println!("2. 100 identical requests at once, opted in by header:");
    let started = Instant::now();
    let calls_before = mock.stats().requests;
    let mut pending = Vec::new();
    for _ in 0..100 {
        let mut request = chat(
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}"#,
            "sk-alice",
        );
        request
            .headers_mut()
            .insert("x-tollgate-cache", HeaderValue::from_static("on"));
        pending.push(tokio::spawn(client.clone().oneshot(request)));
    }
    for request in pending {
        request.await??.into_body().collect().await?;
    }
    println!(
        "   all answered in {} ms; upstream calls: {}",
        started.elapsed().as_millis(),
        mock.stats().requests - calls_before
    );

    println!("3. The first request again, from another caller:");
    let response = client
        .clone()
        .oneshot(chat(deterministic, "sk-bob"))
        .await?;
    let status = CacheStatus::of(&response).map_or("—", CacheStatus::as_str);
    response.into_body().collect().await?;
    println!("   {status} (never served from another caller's entry)");

    let snapshot = handle.snapshot();
    println!(
        "\nmetrics: {} requests, {} hits, {} coalesced, {} misses; the provider saw {} calls",
        snapshot.requests,
        snapshot.cache_hits,
        snapshot.cache_coalesced,
        snapshot.cache_misses,
        mock.stats().requests
    );
    mock.shutdown().await;
    Ok(())
}
