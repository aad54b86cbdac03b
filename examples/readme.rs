//! The README's usage example, complete: a stand-in transport answers like OpenAI, and
//! `ClassifyLayer` turns each answer into a `Verdict`.
//!
//! Run with `cargo run --example readme`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::providers::OpenAi;
use tollgate::{ErrorClass, ServiceBuilderExt, Verdict};
use tower::{ServiceBuilder, ServiceExt};

/// Stands in for an HTTP client (reqwest, hyper-util): answers each request with the canned
/// OpenAI response named by its path.
async fn http_client(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body, headers): (u16, &str, &[(&str, &str)]) = match request.uri().path() {
        "/rate-limited" => (
            429,
            r#"{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM): Limit 30000, Used 29100, Requested 1500. Please try again in 1.2s.","type":"tokens","code":"rate_limit_exceeded"}}"#,
            &[
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "1.2s"),
            ],
        ),
        "/out-of-credit" => (
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
            &[],
        ),
        "/too-long" => (
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
            &[],
        ),
        _ => (
            200,
            r#"{"choices":[{"message":{"role":"assistant","content":"hi"}}]}"#,
            &[("x-ratelimit-remaining-requests", "9999")],
        ),
    };
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tollgate::BoxError> {
    let client = ServiceBuilder::new()
        .classify(OpenAi::new()) // nearest the wire
        .service_fn(http_client);

    for path in ["/ok", "/rate-limited", "/out-of-credit", "/too-long"] {
        let request =
            Request::post(format!("https://api.openai.com{path}")).body(Full::new(Bytes::new()))?;
        let response = client.clone().oneshot(request).await?;
        // A plain success carries no verdict: judge the outcome, which reads that as success.
        let verdict = Verdict::of_outcome(Ok(&response));
        let what = match verdict.class() {
            None => "success".to_owned(),
            Some(ErrorClass::RateLimited) => format!(
                "rate limited: wait {:?} (from {}), then retry",
                verdict.delay().unwrap_or_default(),
                verdict.delay_source()
            ),
            Some(ErrorClass::QuotaExhausted) => "quota exhausted: no retry will fix it".to_owned(),
            Some(ErrorClass::ContextWindowExceeded) => {
                "context window exceeded: needs a larger-context model".to_owned()
            }
            Some(other) => format!("{other}"),
        };
        println!("{:<15} {} → {what}", path, response.status());
    }
    Ok(())
}
