//! A `reqwest::Client` wrapped in a tollgate stack, composed layer by layer: retries as the
//! OpenAI SDK makes them, above a circuit breaker, above a client-side quota of requests and
//! tokens, above OpenAI's classifier, above reqwest (through the `ReqwestTransport` adapter in
//! `examples/support/reqwest_transport.rs`). Each request's status and verdict is printed, and
//! each retry as it is scheduled.
//!
//! ```sh
//! cargo run --example reqwest_client
//! ```
//!
//! By default it starts a `tollgate-mock` OpenAI server in this process — a 2,000-token context
//! window, and one request in four answered with a 500 or a 429 — and sends it a few chat
//! requests: the 500s and 429s are retried (the 429s after exactly the `retry-after-ms` they
//! carry), and the prompt too long for the window comes back at once as a
//! `context_window_exceeded` verdict, which no retry would fix.
//!
//! With `OPENAI_API_KEY` set it calls the real API instead (a few short requests to
//! `OPENAI_MODEL`, `gpt-4o-mini` by default), at `OPENAI_BASE_URL` if set (any
//! OpenAI-compatible endpoint; `/v1` is added when the URL has no path).

#[path = "support/reqwest_transport.rs"]
mod reqwest_transport;

use std::num::NonZeroU64;

use http::Request;
use http_body_util::BodyExt;
use reqwest_transport::ReqwestTransport;
use tokio::time::Instant;
use tollgate::body::{BufferBodyLayer, BufferedBody};
use tollgate::circuit_breaker::BreakerConfig;
use tollgate::providers::OpenAi;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::OpenAiTier;
use tollgate::ratelimit::{Limit, Limits, OpenAiChat, RateLimitLayer};
use tollgate::retry::{RetryEvent, RetryLayer, RetryPolicy, on_retry_fn};
use tollgate::{BoxError, ServiceBuilderExt, Verdict};
use tollgate_mock::{MockConfig, MockServer};
use tower::{ServiceBuilder, ServiceExt};

/// Where the requests go.
struct Endpoint {
    /// Up to `/chat/completions`.
    base_url: String,
    api_key: String,
    model: String,
    limits: Limits,
    /// The in-process mock, when there is no real endpoint.
    mock: Option<MockServer>,
}

/// The real API when `OPENAI_API_KEY` is set, else a mock started here.
async fn endpoint() -> Result<Endpoint, BoxError> {
    if let Ok(api_key) = std::env::var("OPENAI_API_KEY") {
        let base = std::env::var("OPENAI_BASE_URL")
            .unwrap_or_else(|_| "https://api.openai.com/v1".to_owned());
        let base = base.trim_end_matches('/');
        let has_path = base
            .splitn(4, '/')
            .nth(3)
            .is_some_and(|path| !path.is_empty());
        return Ok(Endpoint {
            base_url: if has_path {
                base.to_owned()
            } else {
                format!("{base}/v1")
            },
            api_key,
            model: std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned()),
            // Tier 1: 500 requests and 200,000 tokens a minute.
            limits: OpenAiTier::Tier1.limits(),
            mock: None,
        });
    }
    let mock = MockServer::start(
        MockConfig::openai()
            .with_requests_per_minute(600)
            .with_tokens_per_minute(100_000)
            .with_context_window(2_000)
            .with_error_rate(500, 0.15)
            .with_error_rate(429, 0.1)
            .with_seed(7)
            .with_api_key("sk-mock"),
    )
    .await?;
    let per_minute = |n| Quota::per_minute(NonZeroU64::new(n).expect("not zero"));
    Ok(Endpoint {
        base_url: format!("{}/v1", mock.base_url()),
        api_key: "sk-mock".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        // The mock's quota, kept to on this side.
        limits: Limits::new([
            Limit::requests(per_minute(600)),
            Limit::tokens(per_minute(100_000)),
        ]),
        mock: Some(mock),
    })
}

fn print_retry(event: &RetryEvent) {
    if let RetryEvent::Scheduled {
        attempt,
        class,
        status,
        delay,
        source,
    } = event
    {
        let class = class.map_or("?", |c| c.as_str());
        let status = status.map_or_else(|| "-".to_owned(), |s| s.as_u16().to_string());
        println!("    attempt {attempt}: {status} {class}; retrying in {delay:?} ({source})");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let endpoint = endpoint().await?;
    println!("sending to {}", endpoint.base_url);

    // Outermost first, as the ordering page draws it.
    let client = ServiceBuilder::new()
        // Retries replay the request: buffer its body once, above them.
        .layer(BufferBodyLayer::new())
        .layer(RetryLayer::new(RetryPolicy::openai()).on_retry(on_retry_fn(print_retry)))
        .circuit_breaker(BreakerConfig::default())
        .layer(RateLimitLayer::new(endpoint.limits.clone()).with_estimator(OpenAiChat::new()))
        .classify(OpenAi::new())
        .service(ReqwestTransport::new(reqwest::Client::new()));

    let prompts = [
        "Say hello in French.".to_owned(),
        "Name three prime numbers.".to_owned(),
        "What is the capital of Japan?".to_owned(),
        "Spell 'tollgate' backwards.".to_owned(),
        // About 3,000 tokens: longer than the mock's context window.
        "lorem ipsum ".repeat(1_000),
        "Say goodbye in Italian.".to_owned(),
    ];
    for (i, prompt) in prompts.iter().enumerate() {
        let body = serde_json::json!({
            "model": endpoint.model,
            "max_tokens": 20,
            "messages": [{"role": "user", "content": prompt}],
        });
        let request = Request::post(format!("{}/chat/completions", endpoint.base_url))
            .header("authorization", format!("Bearer {}", endpoint.api_key))
            .header("content-type", "application/json")
            .body(BufferedBody::from(body.to_string()))?;
        let started = Instant::now();
        println!("request {}: {:.40}", i + 1, prompt);
        match client.clone().oneshot(request).await {
            Ok(response) => {
                let status = response.status();
                let verdict = Verdict::of_response(&response).cloned().unwrap_or_default();
                let bytes = response.into_body().collect().await?.to_bytes();
                let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let what = match verdict.class() {
                    None => {
                        let reply = json["choices"][0]["message"]["content"]
                            .as_str()
                            .unwrap_or_default();
                        let tokens = json["usage"]["total_tokens"].as_u64().unwrap_or(0);
                        format!("success ({tokens} tokens): {reply:.40}")
                    }
                    Some(class) => format!(
                        "{class}, advice {}: {:.60}",
                        verdict.advice().as_str(),
                        json["error"]["message"].as_str().unwrap_or_default()
                    ),
                };
                println!("  -> {status} in {:?}: {what}", started.elapsed());
            }
            // Refusals from the stack itself are typed: RetriesExhausted, CircuitOpen, …
            Err(error) => println!("  -> error in {:?}: {error}", started.elapsed()),
        }
    }

    if let Some(mock) = endpoint.mock {
        let stats = mock.stats();
        println!(
            "the mock saw {} requests: {} answered, {} rate limited",
            stats.requests, stats.ok, stats.rate_limited
        );
        mock.shutdown().await;
    }
    Ok(())
}
