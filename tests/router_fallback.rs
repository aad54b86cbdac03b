//! `FallbackLayer` above `RouterLayer`, on tokio's paused clock: the router's refusals carry
//! verdicts, so the fallback moves to another provider when no deployment can take the request
//! soon, and sends a prompt too long for every deployment to its context-window chain. (The
//! two layers' crates do not depend on each other; the facade is where they meet.)

#![cfg(all(feature = "fallback", feature = "providers", feature = "router"))]

use std::convert::Infallible;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tokio::time;
use tollgate::body::BufferedBody;
use tollgate::fallback::{BoxTarget, FallbackConfig, FallbackLayer, Target, boxed};
use tollgate::providers::rewrite::{Credentials, SetModel};
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::{Limit, Limits};
use tollgate::router::{Deployment, RouterConfig, RouterLayer};
use tollgate::{Cost, ErrorClass, Verdict};
use tower::{Layer, ServiceExt};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn per_minute(n: u64) -> Limits {
    Limits::new([Limit::requests(Quota::per_minute(
        NonZeroU64::new(n).unwrap(),
    ))])
}

/// A chat request with `chars` of prompt and 100 tokens of output.
fn chat(chars: usize) -> Request<BufferedBody> {
    let body = format!(
        r#"{{"model":"gpt-4o","max_tokens":100,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(chars)
    );
    Request::post("https://api.openai.com/v1/chat/completions")
        .body(BufferedBody::from(body))
        .unwrap()
}

/// The `model` field of a JSON body.
fn model_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split(r#""model":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_owned()
}

/// A provider that answers every call at once, and logs the model each asked for.
#[derive(Clone, Default)]
struct Provider {
    models: Arc<Mutex<Vec<String>>>,
}

impl Provider {
    fn models(&self) -> Vec<String> {
        self.models.lock().unwrap().clone()
    }

    fn service(&self) -> BoxTarget<String> {
        let models = Arc::clone(&self.models);
        boxed(tower::service_fn(move |request: Request<BufferedBody>| {
            models
                .lock()
                .unwrap()
                .push(model_of(request.body().bytes()));
            async { Ok::<_, Infallible>(Response::new(r#"{"choices":[]}"#.to_owned())) }
        }))
    }
}

fn key(name: &str) -> Deployment {
    Deployment::new(name).with_rewrite(Credentials::bearer(name).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_fallback_above_acts_on_the_routers_refusals() {
    let accounts = Provider::default();
    let router = RouterLayer::new(
        RouterConfig::new([
            key("a").with_model("gpt-4o").with_limits(per_minute(1)),
            key("b").with_model("gpt-4o").with_limits(per_minute(1)),
        ])
        .with_max_wait(secs(5)),
    )
    .unwrap();
    let routed = router.layer(accounts.service());
    let elsewhere = Provider::default();
    let client = FallbackLayer::new(
        FallbackConfig::new([Target::new("elsewhere", elsewhere.service())])
            .with_context_window_targets([Target::new("long", elsewhere.service())
                .with_rewrite(SetModel::new("gemini-2.5-pro"))]),
    )
    .layer(boxed(routed.clone()));
    for _ in 0..3 {
        client.clone().oneshot(chat(100)).await.unwrap();
    }
    // Two went through the router; the third would wait 60 s there, so it went elsewhere.
    assert_eq!(accounts.models().len(), 2);
    assert_eq!(elsewhere.models().len(), 1);
    let verdict = {
        let error = routed.route(&Cost::requests(1)).unwrap_err();
        Verdict::of_error(error.as_ref()).cloned().unwrap()
    };
    assert_eq!(verdict.class(), Some(ErrorClass::RateLimited));

    // Once the router's cooldown has passed, 600,000 characters fit no gpt-4o deployment:
    // straight to the long-context chain.
    time::advance(secs(60)).await;
    client.clone().oneshot(chat(600_000)).await.unwrap();
    assert_eq!(elsewhere.models().last().unwrap(), "gemini-2.5-pro");
    assert_eq!(accounts.models().len(), 2);
}
