//! A `reqwest::Client` wrapped in a tollgate stack, composed layer by layer: retries as the
//! OpenAI SDK makes them, above a circuit breaker, above a client-side quota of requests and
//! tokens, above OpenAI's classifier, above reqwest (through `tollgate::transport::ReqwestTransport`,
//! feature `reqwest`). Each request's status and verdict is printed, and
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

#[path = "support/chat_scenario.rs"]
mod chat_scenario;

use chat_scenario::{Endpoint, print_retry};
use tollgate::body::BufferBodyLayer;
use tollgate::circuit_breaker::BreakerConfig;
use tollgate::providers::OpenAi;
use tollgate::ratelimit::{OpenAiChat, RateLimitLayer};
use tollgate::retry::{RetryLayer, RetryPolicy, on_retry_fn};
use tollgate::transport::ReqwestTransport;
use tollgate::{BoxError, ServiceBuilderExt};
use tower::ServiceBuilder;

/// The real API when `OPENAI_API_KEY` is set, else a mock started here.
async fn endpoint() -> Result<Endpoint, BoxError> {
    if let Ok(api_key) = std::env::var("OPENAI_API_KEY") {
        let base = std::env::var("OPENAI_BASE_URL")
            .unwrap_or_else(|_| "https://api.openai.com/v1".to_owned());
        return Ok(Endpoint::real(api_key, &base));
    }
    Endpoint::mock().await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let endpoint = endpoint().await?;
    // The URL may hold a secret (user info, a query): shown redacted.
    println!("sending to {}", tollgate::redact::url(&endpoint.base_url));

    // Outermost first, as the ordering page draws it.
    let client = ServiceBuilder::new()
        // Retries replay the request: buffer its body once, above them.
        .layer(BufferBodyLayer::new())
        .layer(RetryLayer::new(RetryPolicy::openai()).on_retry(on_retry_fn(print_retry)))
        .circuit_breaker(BreakerConfig::default())
        .layer(RateLimitLayer::new(endpoint.limits.clone()).with_estimator(OpenAiChat::new()))
        .classify(OpenAi::new())
        .service(ReqwestTransport::new(reqwest::Client::new()));

    chat_scenario::run(endpoint, client).await
}
