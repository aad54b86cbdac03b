//! The chat scenario `hyper_client.rs` and `reqwest_client.rs` share: where the requests go —
//! a real OpenAI-compatible endpoint, or a `tollgate-mock` server started in this process —
//! and a few chat prompts sent through the example's stack, each answer's status and verdict
//! printed, and each retry as it is scheduled. The examples differ only in the transport under
//! the stack and in which endpoints it can reach.
//!
//! Include it with
//!
//! ```text
//! #[path = "support/chat_scenario.rs"]
//! mod chat_scenario;
//! ```

use std::fmt;
use std::num::NonZeroU64;

use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tollgate::body::BufferedBody;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::OpenAiTier;
use tollgate::ratelimit::{Limit, Limits};
use tollgate::retry::RetryEvent;
use tollgate::{BoxError, Verdict};
use tollgate_mock::{MockConfig, MockServer};
use tower::{Service, ServiceExt};

/// Where the requests go.
pub(crate) struct Endpoint {
    /// Up to `/chat/completions`.
    pub(crate) base_url: String,
    pub(crate) api_key: String,
    pub(crate) model: String,
    /// The quota to keep to on this side.
    pub(crate) limits: Limits,
    /// The in-process mock, when there is no real endpoint.
    mock: Option<MockServer>,
}

impl Endpoint {
    /// A real endpoint at `base_url` (`/v1` added when it has no path), called with `api_key`
    /// for `OPENAI_MODEL` (`gpt-4o-mini` by default), kept to OpenAI's Tier 1 limits.
    pub(crate) fn real(api_key: String, base_url: &str) -> Endpoint {
        let base = base_url.trim_end_matches('/');
        let has_path = base
            .splitn(4, '/')
            .nth(3)
            .is_some_and(|path| !path.is_empty());
        Endpoint {
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
        }
    }

    /// A `tollgate-mock` OpenAI server started here: a 2,000-token context window, and one
    /// request in four answered with a 500 or a 429.
    pub(crate) async fn mock() -> Result<Endpoint, BoxError> {
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
}

/// Prints a retry as it is scheduled: the attempt, what went wrong, and the wait.
pub(crate) fn print_retry(event: &RetryEvent) {
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

/// Sends a few chat prompts to `endpoint` through `client`, one after another — one of them
/// longer than the mock's context window — and prints each answer's status and verdict, or the
/// stack's error. Then, for a mock, prints what it saw and shuts it down.
pub(crate) async fn run<S, B>(endpoint: Endpoint, client: S) -> Result<(), BoxError>
where
    S: Service<Request<BufferedBody>, Response = Response<B>> + Clone,
    S::Error: fmt::Display,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
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
                let verdict = Verdict::of_outcome(Ok(&response));
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(Into::into)?
                    .to_bytes();
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
