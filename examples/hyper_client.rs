//! A hyper-util legacy `Client` wrapped in a tollgate stack, composed layer by layer: retries
//! as the OpenAI SDK makes them, above a circuit breaker, above a client-side quota of requests
//! and tokens, above OpenAI's classifier, above hyper. The legacy client is a
//! `tower::Service<http::Request<B>>` already, so it needs no adapter: it takes tollgate's
//! `BufferedBody` as it is. Each request's status and verdict is printed, and each retry as it
//! is scheduled.
//!
//! ```sh
//! cargo run --example hyper_client
//! ```
//!
//! By default it starts a `tollgate-mock` OpenAI server in this process — a 2,000-token context
//! window, and one request in four answered with a 500 or a 429 — and sends it a few chat
//! requests: the 500s and 429s are retried (the 429s after exactly the `retry-after-ms` they
//! carry), and the prompt too long for the window comes back at once as a
//! `context_window_exceeded` verdict, which no retry would fix.
//!
//! The client here has a plain `HttpConnector`: no TLS. So it calls a real endpoint only when
//! `OPENAI_API_KEY` is set *and* `OPENAI_BASE_URL` is an `http://` URL (a local
//! OpenAI-compatible server, or a gateway such as `examples/axum_gateway.rs`); `/v1` is added
//! when the URL has no path. For `https://api.openai.com`, add a TLS connector (hyper-rustls)
//! or use the reqwest example.

#[path = "support/chat_scenario.rs"]
mod chat_scenario;

use chat_scenario::{Endpoint, print_retry};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::body::{BufferBodyLayer, BufferedBody};
use tollgate::circuit_breaker::BreakerConfig;
use tollgate::providers::OpenAi;
use tollgate::ratelimit::{OpenAiChat, RateLimitLayer};
use tollgate::retry::{RetryLayer, RetryPolicy, on_retry_fn};
use tollgate::{BoxError, ServiceBuilderExt};
use tower::ServiceBuilder;

/// A plain-http endpoint when `OPENAI_API_KEY` and an `http://` `OPENAI_BASE_URL` are set,
/// else a mock started here.
async fn endpoint() -> Result<Endpoint, BoxError> {
    let key = std::env::var("OPENAI_API_KEY").ok();
    let base = std::env::var("OPENAI_BASE_URL").ok();
    if key.is_some() && !base.as_deref().is_some_and(|b| b.starts_with("http://")) {
        println!("this example speaks plain http only: set OPENAI_BASE_URL to an http:// URL");
        println!("(or use the reqwest_client example); using the mock meanwhile");
    }
    if let (Some(api_key), Some(base)) = (key, base.filter(|b| b.starts_with("http://"))) {
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
        .service(Client::builder(TokioExecutor::new()).build_http::<BufferedBody>());

    chat_scenario::run(endpoint, client).await
}
