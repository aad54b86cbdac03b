//! `tollgate::stack::StackBuilder`: the ready stack retries as the provider asks, falls back to
//! the next provider rewritten for it, sends a prompt too long for the model to the
//! context-window chain, holds requests to the preset's or the given limits, spreads a
//! provider's several keys (each with its own quota, a rejected one left out), answers
//! identical opted-in requests from its cache without spending quota, refuses a shared (Redis)
//! quota it cannot keep with an error naming the provider, and never shows a key or a URL. A stand-in transport answers like OpenAI and logs what it was sent; time is tokio's
//! paused clock.

#![cfg(feature = "stack")]

mod support;

use std::num::NonZeroU64;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use support::{
    Answered, INVALID_KEY, OVERLOADED, RATE_LIMITED, Seen, TOO_LONG, Wire, answer, cache_scenario,
    ms, ok, steady,
};
use tollgate::body::BufferedBody;
use tollgate::cache::{CacheConfig, CacheLayer, CacheStatus};
use tollgate::fallback::AllTargetsFailed;
use tollgate::metrics::MetricsLayer;
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::{AnthropicModel, GeminiModel, GeminiPlan, OpenAiTier};
use tollgate::ratelimit::{Limit, Limits};
use tollgate::router::Strategy;
use tollgate::stack::{
    Provider, ProviderKind, RewriteFailed, Stack, StackBuilder, StackError, UnknownModel,
    UnknownModels,
};
use tower::ServiceExt;

const fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

/// A chat request as a caller sends it: its own model and credentials, which the stack
/// replaces.
fn chat() -> Request<BufferedBody> {
    Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-caller")
        .header("x-api-key", "sk-caller")
        .body(BufferedBody::from(
            r#"{"model":"caller-model","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#,
        ))
        .unwrap()
}

/// A minimal chat request naming `model`.
fn chat_as(model: &str) -> Request<BufferedBody> {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hi"}}]}}"#);
    Request::post("/v1/chat/completions")
        .body(BufferedBody::from(body))
        .unwrap()
}

fn seen(at: Duration, uri: &str, authorization: &str, model: &str) -> Seen {
    Seen {
        at,
        uri: uri.to_owned(),
        authorization: Some(authorization.to_owned()),
        api_key: None,
        model: Some(model.to_owned()),
    }
}

fn openai() -> Provider {
    Provider::openai(OpenAiTier::Tier3)
        .with_model("gpt-4o")
        .with_api_key("sk-openai")
        .with_retry(steady())
}

fn anthropic() -> Provider {
    Provider::anthropic(AnthropicModel::Sonnet4)
        .with_model("claude-sonnet-4-5")
        .with_api_key("sk-ant")
}

const OPENAI_URI: &str = "https://api.openai.com/v1/chat/completions";
const ANTHROPIC_URI: &str = "https://api.anthropic.com/v1/chat/completions";

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn stack_is_send_sync_clone() {
    assert_send_sync_clone::<Stack>();
    assert_send_sync_clone::<StackBuilder>();
    assert_send_sync_clone::<Provider>();
}

/// A 429 with `retry-after-ms` is retried after exactly that long, and succeeds; the request
/// went to OpenAI with OpenAI's key and model.
#[tokio::test(start_paused = true)]
async fn retries_a_429_as_asked_and_succeeds() {
    let wire = Wire::new().script(
        "api.openai.com",
        vec![
            answer(429, &[("retry-after-ms", "1500")], RATE_LIMITED),
            ok(),
        ],
    );
    let stack = StackBuilder::new(openai()).build(wire.clone()).unwrap();
    let response = stack.oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"choices":[]}"#);
    assert_eq!(
        wire.seen(),
        [
            seen(ms(0), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
            seen(ms(1_500), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
        ]
    );
}

/// The primary stays overloaded through its two overload retries (0.5 s, then 1 s); the
/// fallback sends the request to Anthropic at once, with Anthropic's endpoint, key and model.
#[tokio::test(start_paused = true)]
async fn an_overloaded_primary_falls_back_to_the_next_provider_rewritten() {
    let wire = Wire::new()
        .script(
            "api.openai.com",
            vec![
                answer(503, &[], OVERLOADED),
                answer(503, &[], OVERLOADED),
                answer(503, &[], OVERLOADED),
            ],
        )
        .script("api.anthropic.com", vec![ok()]);
    let metrics = MetricsLayer::new("chat");
    let handle = metrics.handle();
    let stack = StackBuilder::new(openai())
        .with_fallback(anthropic())
        .with_metrics(metrics)
        .build(wire.clone())
        .unwrap();
    let response = stack.oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        wire.seen(),
        [
            seen(ms(0), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
            seen(ms(500), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
            seen(ms(1_500), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
            seen(
                ms(1_500),
                ANTHROPIC_URI,
                "Bearer sk-ant",
                "claude-sonnet-4-5"
            ),
        ]
    );
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.requests, snapshot.successes), (1, 1));
    assert_eq!(snapshot.retries, 2);
}

/// When every provider gives up, the error lists them.
#[tokio::test(start_paused = true)]
async fn every_provider_giving_up_is_one_typed_error() {
    let overloaded = || answer(503, &[], OVERLOADED);
    let wire = Wire::new()
        .script(
            "api.openai.com",
            vec![overloaded(), overloaded(), overloaded()],
        )
        .script(
            "api.anthropic.com",
            vec![overloaded(), overloaded(), overloaded()],
        );
    let stack = StackBuilder::new(openai())
        .with_fallback(anthropic().with_retry(steady()))
        .build(wire.clone())
        .unwrap();
    let error = stack.oneshot(chat()).await.unwrap_err();
    let failed = error.downcast_ref::<AllTargetsFailed>().unwrap();
    let names: Vec<_> = failed.attempts().map(|(name, _)| name.to_owned()).collect();
    assert_eq!(names, ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]);
    assert_eq!(wire.times().last(), Some(&ms(3_000)));
}

/// `context_length_exceeded` goes to the context-window chain, not to the fallbacks, at once.
#[tokio::test(start_paused = true)]
async fn a_prompt_too_long_goes_to_the_context_window_chain() {
    let wire = Wire::new().script("api.openai.com", vec![answer(400, &[], TOO_LONG), ok()]);
    let stack = StackBuilder::new(openai())
        .with_fallback(anthropic())
        .with_context_window_fallback(
            Provider::openai(OpenAiTier::Tier3)
                .with_model("gpt-4.1")
                .with_api_key("sk-long"),
        )
        .build(wire.clone())
        .unwrap();
    assert_eq!(stack.context_window(), ["openai/gpt-4.1"]);
    let response = stack.oneshot(chat()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        wire.seen(),
        [
            seen(ms(0), OPENAI_URI, "Bearer sk-openai", "gpt-4o"),
            seen(ms(0), OPENAI_URI, "Bearer sk-long", "gpt-4.1"),
        ]
    );
}

/// Two requests per minute: the third waits exactly 30 s for the bucket to refill by one.
#[tokio::test(start_paused = true)]
async fn the_given_limits_hold_requests() {
    let wire = Wire::new().script("api.openai.com", vec![ok(), ok(), ok()]);
    let provider = openai().with_limits(Limits::new([Limit::requests(Quota::per_minute(n(2)))]));
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    for _ in 0..3 {
        stack.clone().oneshot(chat()).await.unwrap();
    }
    assert_eq!(wire.times(), [ms(0), ms(0), ms(30_000)]);
}

/// Every wait is bounded by default: at one request a minute, of ten sent at once the first
/// goes now, the second after a minute (the default `max_wait`), and the others are refused at
/// once with the quota's wait; with `max_queue(1)`, one may wait and the rest are refused as
/// the queue is full. Every refusal says when to come back. (No retries, to see each refusal.)
#[tokio::test(start_paused = true)]
async fn waits_are_bounded_by_default_and_every_refusal_says_when() {
    use tollgate::ratelimit::error::RateLimited;
    use tollgate::stack::DEFAULT_MAX_WAIT;

    assert_eq!(DEFAULT_MAX_WAIT, ms(60_000));
    let one_a_minute = || {
        openai()
            .with_limits(Limits::new([Limit::requests(Quota::per_minute(n(1)))]))
            .with_retry(steady().with_max_retries(0))
    };
    for (provider, full_queue) in [
        (one_a_minute(), false),
        (
            one_a_minute().with_max_queue(1).with_max_wait(ms(600_000)),
            true,
        ),
    ] {
        let wire = Wire::new().script("api.openai.com", vec![ok(), ok()]);
        let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
        let calls: Vec<_> = (0..10)
            .map(|_| tokio::spawn(stack.clone().oneshot(chat())))
            .collect();
        let mut refusals = 0;
        for call in calls {
            let Err(error) = call.await.unwrap() else {
                continue;
            };
            let refused =
                std::iter::successors(Some(&*error as &dyn std::error::Error), |e| e.source())
                    .find_map(|e| e.downcast_ref::<RateLimited>())
                    .unwrap_or_else(|| panic!("not a refusal: {error}"));
            assert!(refused.retry_after() >= ms(60_000), "{refused}");
            assert_eq!(refused.waiting(), full_queue.then_some(1), "{refused}");
            refusals += 1;
        }
        assert_eq!(refusals, 8);
        assert_eq!(wire.times(), [ms(0), ms(60_000)]);
    }
}

/// Without a model of its own, a provider keeps a quota per model only among the models it
/// knows — its list, and the table's families by prefix — and every other name shares one:
/// 100 requests under 100 made-up model names draw from one quota of one a minute, not 100.
#[tokio::test(start_paused = true)]
async fn made_up_model_names_share_one_quota() {
    let provider = Provider::openai(OpenAiTier::Tier3)
        .with_api_key("sk-openai")
        .with_retry(steady().with_max_retries(0))
        .with_limits(Limits::new([Limit::requests(Quota::per_minute(n(1)))]))
        .with_max_wait(Duration::ZERO)
        .with_models(["my-model"]);
    let wire = Wire::new().script("api.openai.com", (0..5).map(|_| ok()).collect());
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    let send = |model: String| stack.clone().oneshot(chat_as(&model));
    let mut admitted = Vec::new();
    for model in [
        "gpt-4o-2024-08-06",
        "gpt-4o-2024-11-20",
        "claude-3-haiku",
        "my-model",
    ] {
        if send(model.to_owned()).await.is_ok() {
            admitted.push(model);
        }
    }
    // One quota for the gpt-4o family, one for Claude's, one for the listed model.
    assert_eq!(
        admitted,
        ["gpt-4o-2024-08-06", "claude-3-haiku", "my-model"]
    );
    let mut made_up = 0;
    for i in 0..100 {
        if send(format!("made-up-{i}-{}", "x".repeat(1_000)))
            .await
            .is_ok()
        {
            made_up += 1;
        }
    }
    assert_eq!(made_up, 1);
    assert_eq!(wire.times().len(), 4);
}

/// With a model of its own, a provider sends every request as that model and draws every one
/// from that model's quota, whatever model the caller named (its key is known without reading
/// the body).
#[tokio::test(start_paused = true)]
async fn a_provider_with_its_own_model_keeps_one_quota() {
    let provider = Provider::openai(OpenAiTier::Tier3)
        .with_api_key("sk-openai")
        .with_retry(steady().with_max_retries(0))
        .with_limits(Limits::new([Limit::requests(Quota::per_minute(n(2)))]))
        .with_max_wait(Duration::ZERO)
        .with_model("gpt-4.1");
    let wire = Wire::new().script("api.openai.com", (0..4).map(|_| ok()).collect());
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    let send = |model: &str| stack.clone().oneshot(chat_as(model));
    let mut admitted = 0;
    for model in ["gpt-4o", "claude-3-haiku", "gpt-4.1", "made-up"] {
        if send(model).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 2);
    assert_eq!(wire.times(), [ms(0), ms(0)]);
    let models: Vec<_> = wire.seen().into_iter().map(|seen| seen.model).collect();
    assert_eq!(
        models,
        [Some("gpt-4.1".to_owned()), Some("gpt-4.1".to_owned())]
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(send("anything").await.is_ok());
}

/// Set to refuse unknown models, a provider without a model of its own sends only the models
/// it knows (its list, the table's families) and refuses every other name with a typed error
/// that sends nothing, does not quote the name, and tells a fallback to try elsewhere.
#[tokio::test(start_paused = true)]
async fn unknown_models_can_be_refused() {
    let provider = Provider::openai(OpenAiTier::Tier3)
        .with_api_key("sk-openai")
        .with_retry(steady().with_max_retries(0))
        .with_models(["my-model"])
        .with_unknown_models(UnknownModels::Refuse);
    let wire = Wire::new().script("api.openai.com", (0..3).map(|_| ok()).collect());
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    let send = |model: &str| stack.clone().oneshot(chat_as(model));
    for known in ["my-model", "gpt-4o-2024-08-06", "claude-3-haiku"] {
        assert!(send(known).await.is_ok(), "{known}");
    }
    let error = send("made-up-model-sk-secret").await.unwrap_err();
    let refused = error.downcast_ref::<UnknownModel>().expect("UnknownModel");
    assert_eq!(refused.provider(), "openai");
    assert!(!error.to_string().contains("made-up"), "{error}");
    let verdict = tollgate::Verdict::of_error(&*error).unwrap();
    assert_eq!(verdict.class(), Some(tollgate::ErrorClass::NotFound));
    assert_eq!(verdict.advice(), tollgate::RetryAdvice::Elsewhere);
    assert!(verdict.is_local_refusal());
    assert_eq!(wire.times().len(), 3);
}

/// The preset passed to the constructor applies: Gemini's free plan allows 15 requests a
/// minute on Pro, so the 16th waits 4 s; Gemini is reached on its OpenAI-compatible path.
#[tokio::test(start_paused = true)]
async fn the_preset_limits_hold_requests() {
    let host = "generativelanguage.googleapis.com";
    let wire = Wire::new().script(host, (0..16).map(|_| ok()).collect());
    let provider = Provider::gemini(GeminiPlan::Free, GeminiModel::Pro)
        .with_model("gemini-2.5-pro")
        .with_api_key("gm-key");
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| tokio::spawn(stack.clone().oneshot(chat())))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    let log = wire.seen();
    let times: Vec<_> = log.iter().map(|s| s.at).collect();
    let mut expected = vec![ms(0); 15];
    expected.push(ms(4_000));
    assert_eq!(times, expected);
    assert_eq!(
        log[0],
        seen(
            ms(0),
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
            "Bearer gm-key",
            "gemini-2.5-pro"
        )
    );
}

/// Azure OpenAI: the deployment's URL with `api-version`, and the key in `api-key`.
#[tokio::test(start_paused = true)]
async fn azure_gets_its_deployment_url_and_api_key_header() {
    let wire = Wire::new().script("example.openai.azure.com", vec![ok()]);
    let provider =
        Provider::azure_openai("https://example.openai.azure.com/openai/deployments/gpt-4o")
            .with_api_key("az-key");
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    stack.oneshot(chat()).await.unwrap();
    assert_eq!(
        wire.seen(),
        [Seen {
            at: ms(0),
            uri: "https://example.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21".to_owned(),
            authorization: None,
            api_key: Some("az-key".to_owned()),
            model: Some("caller-model".to_owned()),
        }]
    );
}

/// A base URL without a path keeps `/v1/chat/completions`; one with a path replaces `/v1`.
/// Without an API key, the caller's credentials go through.
#[tokio::test(start_paused = true)]
async fn base_urls_with_and_without_a_path() {
    let cases = [
        (
            Provider::openai_compatible("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/v1/chat/completions",
        ),
        (
            Provider::openai(OpenAiTier::Tier1).with_base_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/v1/chat/completions",
        ),
        (
            Provider::groq(),
            "https://api.groq.com/openai/v1/chat/completions",
        ),
        (
            Provider::openrouter(),
            "https://openrouter.ai/api/v1/chat/completions",
        ),
        (
            Provider::new(ProviderKind::DeepSeek),
            "https://api.deepseek.com/v1/chat/completions",
        ),
        (
            Provider::mistral(),
            "https://api.mistral.ai/v1/chat/completions",
        ),
        (
            Provider::openai_compatible("http://127.0.0.1:8080/api/v1"),
            "http://127.0.0.1:8080/api/v1/chat/completions",
        ),
    ];
    for (provider, uri) in cases {
        let host = uri.parse::<http::Uri>().unwrap().host().unwrap().to_owned();
        let wire = Wire::new().script(&host, vec![ok()]);
        let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
        stack.oneshot(chat()).await.unwrap();
        let log = wire.seen();
        assert_eq!(log[0].uri, uri);
        assert_eq!(log[0].authorization.as_deref(), Some("Bearer sk-caller"));
    }
}

/// One stack serves many tasks at once.
#[tokio::test(start_paused = true)]
async fn one_stack_serves_many_tasks() {
    let wire = Wire::new().script("api.openai.com", (0..32).map(|_| ok()).collect());
    let stack = StackBuilder::new(openai()).build(wire.clone()).unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| tokio::spawn(stack.clone().oneshot(chat())))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(wire.times(), vec![ms(0); 32]);
}

// ===== the cache =====

const FIRST: &str = r#"{"id":"first","choices":[]}"#;
const SECOND: &str = r#"{"id":"second","choices":[]}"#;

/// How a request was answered: at `at`, with the `x-tollgate-cache` header `header` (and the
/// same status), with `body`.
fn answered(at: Duration, status: CacheStatus, body: &'static str) -> Answered {
    let header = (status != CacheStatus::Bypass).then(|| status.as_str().to_owned());
    Answered {
        at,
        header,
        status: Some(status),
        body: Bytes::from_static(body.as_bytes()),
    }
}

/// One request a minute, and a cache: a second identical opted-in request is answered from
/// the cache at once, without a call and without quota; a third, different one waits the
/// minute out for the quota the first spent.
#[tokio::test(start_paused = true)]
async fn a_cached_answer_spends_no_quota() {
    let wire = Wire::new().script(
        "api.openai.com",
        vec![answer(200, &[], FIRST), answer(200, &[], SECOND)],
    );
    let provider = openai().with_limits(Limits::new([Limit::requests(Quota::per_minute(n(1)))]));
    let cache = CacheLayer::new(CacheConfig::default());
    let handle = cache.handle();
    let stack = StackBuilder::new(provider)
        .with_cache(cache)
        .build(wire.clone())
        .unwrap();
    let log = cache_scenario(&stack, &[("Hi", true), ("Hi", true), ("Bye", true)]).await;
    assert_eq!(
        log,
        [
            answered(ms(0), CacheStatus::Miss, FIRST),
            answered(ms(0), CacheStatus::Hit, FIRST),
            answered(ms(60_000), CacheStatus::Miss, SECOND),
        ]
    );
    assert_eq!(wire.times(), [ms(0), ms(60_000)]);
    // The stack's handle and the layer's are on one store: two responses, and the alias of
    // the hit's body, whose keys were not in order.
    let store = stack.cache().unwrap();
    store.run_pending_tasks();
    assert_eq!((store.entry_count(), handle.entry_count()), (3, 3));
    assert!(format!("{stack:?}").contains("cache: true"));
}

/// Without the header, requests pass the cache by: each reaches the provider, and none is
/// stored.
#[tokio::test(start_paused = true)]
async fn requests_that_do_not_opt_in_are_not_cached() {
    let wire = Wire::new().script(
        "api.openai.com",
        vec![answer(200, &[], FIRST), answer(200, &[], SECOND)],
    );
    let stack = StackBuilder::new(openai())
        .with_cache(CacheLayer::default())
        .build(wire.clone())
        .unwrap();
    let log = cache_scenario(&stack, &[("Hi", false), ("Hi", false)]).await;
    assert_eq!(
        log,
        [
            answered(ms(0), CacheStatus::Bypass, FIRST),
            answered(ms(0), CacheStatus::Bypass, SECOND),
        ]
    );
    assert_eq!(wire.times(), [ms(0), ms(0)]);
    let store = stack.cache().unwrap();
    store.run_pending_tasks();
    assert_eq!(store.entry_count(), 0);
    // A stack without a cache has no handle, and no cache status on its responses.
    let wire = Wire::new().script("api.openai.com", vec![ok()]);
    let plain = StackBuilder::new(openai()).build(wire).unwrap();
    assert!(plain.cache().is_none());
    let log = cache_scenario(&plain, &[("Hi", true)]).await;
    assert_eq!((log[0].header.as_deref(), log[0].status), (None, None));
}

/// The cache is above the fallback and under the metrics: the fallback's answer is stored,
/// and a hit reaches neither provider but is counted as a request.
#[tokio::test(start_paused = true)]
async fn the_cache_sits_above_the_fallback_and_under_the_metrics() {
    let overloaded = || answer(503, &[], OVERLOADED);
    let wire = Wire::new()
        .script(
            "api.openai.com",
            vec![overloaded(), overloaded(), overloaded()],
        )
        .script("api.anthropic.com", vec![answer(200, &[], FIRST)]);
    let metrics = MetricsLayer::new("chat");
    let handle = metrics.handle();
    let stack = StackBuilder::new(openai())
        .with_fallback(anthropic())
        .with_cache(CacheLayer::default())
        .with_metrics(metrics)
        .build(wire.clone())
        .unwrap();
    let log = cache_scenario(&stack, &[("Hi", true), ("Hi", true)]).await;
    assert_eq!(
        log,
        [
            answered(ms(1_500), CacheStatus::Miss, FIRST),
            answered(ms(1_500), CacheStatus::Hit, FIRST),
        ]
    );
    assert_eq!(wire.seen().len(), 4); // three to OpenAI, one to Anthropic
    let snapshot = handle.snapshot();
    assert_eq!((snapshot.requests, snapshot.successes), (2, 2));
    assert_eq!((snapshot.cache_hits, snapshot.cache_misses), (1, 1));
    assert_eq!(snapshot.retries, 2);
}

/// A body the model rewrite cannot parse is refused before anything is sent.
#[tokio::test(start_paused = true)]
async fn a_body_that_is_not_json_is_refused() {
    let wire = Wire::new();
    let stack = StackBuilder::new(openai()).build(wire.clone()).unwrap();
    let request = Request::post("/v1/chat/completions")
        .body(BufferedBody::from("not json"))
        .unwrap();
    let error = stack.oneshot(request).await.unwrap_err();
    let refused = error.downcast_ref::<RewriteFailed>().unwrap();
    assert_eq!(refused.provider(), "openai/gpt-4o");
    assert!(wire.seen().is_empty());
}

/// OpenAI with three keys, two requests a minute each.
fn pool() -> Provider {
    openai()
        .with_api_keys(["sk-a", "sk-b", "sk-c"])
        .with_limits(Limits::new([Limit::requests(Quota::per_minute(n(2)))]))
}

/// The keys the transport saw, in order.
fn keys_seen(wire: &Wire) -> Vec<String> {
    wire.seen()
        .into_iter()
        .map(|s| s.authorization.unwrap())
        .collect()
}

/// Three keys of two requests a minute serve six requests at once, each key twice in turn;
/// the seventh waits 30 s for the first key's quota. Every request has the provider's
/// endpoint and model.
#[tokio::test(start_paused = true)]
async fn several_keys_are_spread_round_robin_each_with_its_own_quota() {
    let wire = Wire::new().script("api.openai.com", (0..7).map(|_| ok()).collect());
    let stack = StackBuilder::new(pool()).build(wire.clone()).unwrap();
    for _ in 0..6 {
        let response = stack.clone().oneshot(chat()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(wire.times(), vec![ms(0); 6]);
    assert_eq!(
        keys_seen(&wire),
        ["Bearer sk-a", "Bearer sk-b", "Bearer sk-c"].repeat(2)
    );
    stack.clone().oneshot(chat()).await.unwrap();
    assert_eq!(
        wire.seen()[6],
        seen(ms(30_000), OPENAI_URI, "Bearer sk-a", "gpt-4o")
    );
}

/// A key answering 401 (`invalid_api_key`) is passed over at once: the request goes to the
/// next key and succeeds, and the rejected key is not used again.
#[tokio::test(start_paused = true)]
async fn a_rejected_key_is_passed_over_and_left_out() {
    let wire = Wire::new()
        .script_key(
            "api.openai.com",
            "Bearer sk-b",
            vec![answer(401, &[], INVALID_KEY)],
        )
        .script("api.openai.com", (0..7).map(|_| ok()).collect());
    let provider = openai().with_api_keys(["sk-a", "sk-b", "sk-c"]);
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    for _ in 0..7 {
        let response = stack.clone().oneshot(chat()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, r#"{"choices":[]}"#);
    }
    let log = wire.seen();
    assert_eq!(log.len(), 8, "{log:?}");
    assert_eq!(
        log[..3],
        [
            seen(ms(0), OPENAI_URI, "Bearer sk-a", "gpt-4o"),
            seen(ms(0), OPENAI_URI, "Bearer sk-b", "gpt-4o"),
            seen(ms(0), OPENAI_URI, "Bearer sk-c", "gpt-4o"),
        ]
    );
    let keys = keys_seen(&wire);
    assert_eq!(keys.iter().filter(|k| *k == "Bearer sk-b").count(), 1);
    assert!(keys[3..].contains(&"Bearer sk-a".to_owned()));
    assert!(keys[3..].contains(&"Bearer sk-c".to_owned()));
}

/// Without limits or breaker, keys are still spread (each key gets the default breaker);
/// Azure's keys go in `api-key`; any strategy builds.
#[tokio::test(start_paused = true)]
async fn several_keys_without_limits_or_breaker() {
    let host = "example.openai.azure.com";
    let wire = Wire::new().script(host, (0..4).map(|_| ok()).collect());
    let provider =
        Provider::azure_openai("https://example.openai.azure.com/openai/deployments/gpt-4o")
            .with_api_keys(["az-1", "az-2"])
            .without_rate_limit()
            .without_circuit_breaker();
    let stack = StackBuilder::new(provider.clone())
        .build(wire.clone())
        .unwrap();
    for _ in 0..4 {
        stack.clone().oneshot(chat()).await.unwrap();
    }
    let keys: Vec<_> = wire
        .seen()
        .into_iter()
        .map(|s| s.api_key.unwrap())
        .collect();
    assert_eq!(keys, ["az-1", "az-2", "az-1", "az-2"]);
    for strategy in [
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::LeastLoaded,
        Strategy::LatencyAware,
    ] {
        let wire = Wire::new().script(host, vec![ok()]);
        let stack = StackBuilder::new(provider.clone().with_routing(strategy))
            .build(wire.clone())
            .unwrap();
        stack.oneshot(chat()).await.unwrap();
        assert_eq!(wire.seen().len(), 1);
    }
}

/// One key given as a list is the same provider, and the same stack, as `with_api_key`;
/// `with_routing` makes no difference to it.
#[tokio::test(start_paused = true)]
async fn one_key_in_a_list_is_one_key() {
    assert_eq!(openai().with_api_keys(["sk-openai"]), openai());
    let wire = Wire::new().script("api.openai.com", vec![ok()]);
    let provider = openai()
        .with_api_keys(["sk-openai"])
        .with_routing(Strategy::LeastLoaded);
    let stack = StackBuilder::new(provider).build(wire.clone()).unwrap();
    stack.oneshot(chat()).await.unwrap();
    assert_eq!(
        wire.seen(),
        [seen(ms(0), OPENAI_URI, "Bearer sk-openai", "gpt-4o")]
    );
}

#[test]
fn build_errors_say_which_provider_and_what() {
    let build = |builder: StackBuilder| builder.build(Wire::new()).unwrap_err();
    let cases = [
        (
            build(StackBuilder::new(Provider::new(ProviderKind::AzureOpenAi))),
            r#"provider "azure-openai": a base URL is required for kind azure-openai"#,
        ),
        (
            build(StackBuilder::new(
                Provider::groq().with_base_url("ftp://example.com"),
            )),
            r#"provider "groq": invalid base URL "ftp://example.com": the scheme is not http or https"#,
        ),
        (
            build(StackBuilder::new(Provider::groq().with_base_url("/v1"))),
            r#"provider "groq": invalid base URL "<unparsable URL>": not an absolute URL (no scheme)"#,
        ),
        (
            build(StackBuilder::new(
                Provider::groq().with_base_url("https://x.example?key=1"),
            )),
            r#"provider "groq": invalid base URL "https://x.example?key=<redacted>": has a query: a key goes in with_api_key (or api_key_env), Azure's api-version in with_api_version (or api_version)"#,
        ),
        (
            build(StackBuilder::new(
                Provider::groq().with_api_key("sk-bad\nkey"),
            )),
            r#"provider "groq": the API key is empty or not a valid header value"#,
        ),
        (
            build(StackBuilder::new(Provider::groq().with_max_in_flight(0))),
            r#"provider "groq": max_in_flight must be greater than 0"#,
        ),
        (
            build(StackBuilder::new(
                Provider::groq().with_api_keys(["sk-a", "sk-b", "sk-a"]),
            )),
            r#"provider "groq": API keys 0 and 2 are the same; each key gets its own quota, so a repeated key would double what the account allows"#,
        ),
        (
            build(StackBuilder::new(openai()).with_fallback(openai().with_api_key("sk-other"))),
            r#"two different providers are named "openai/gpt-4o": name one of them otherwise"#,
        ),
        (
            build(StackBuilder::new(openai().with_api_keys([
                "sk-good",
                "sk-bad\nkey",
                "sk-fine",
            ]))),
            r#"provider "openai/gpt-4o": the API key is empty or not a valid header value"#,
        ),
        (
            build(StackBuilder::new(
                openai().with_api_keys((0..65).map(|i| format!("sk-bad-{i}"))),
            )),
            r#"provider "openai/gpt-4o": 65 API keys; a provider's router spreads at most 64"#,
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error.to_string(), expected);
        assert!(!format!("{error:?}").contains("sk-bad"));
    }
    assert!(matches!(
        build(StackBuilder::new(Provider::groq().with_api_key(""))),
        StackError::InvalidApiKey { .. }
    ));
    assert!(matches!(
        build(StackBuilder::new(
            Provider::groq().with_api_keys(["sk-1", ""])
        )),
        StackError::InvalidApiKey { .. }
    ));
    let error = build(StackBuilder::new(
        Provider::groq().with_api_keys((0..65).map(|i| format!("sk-{i}"))),
    ));
    assert!(matches!(&error, StackError::Router { provider, .. } if provider == "groq"));
    assert!(std::error::Error::source(&error).is_some());
    // 64 keys are fine.
    StackBuilder::new(Provider::groq().with_api_keys((0..64).map(|i| format!("sk-{i}"))))
        .build(Wire::new())
        .unwrap();
}

/// The same provider in two chains is one stack, and an equal copy is accepted.
#[test]
fn the_same_provider_twice_is_one_stack() {
    let stack = StackBuilder::new(openai())
        .with_fallback(anthropic())
        .with_context_window_fallback(anthropic())
        .build(Wire::new())
        .unwrap();
    assert_eq!(stack.primary(), "openai/gpt-4o");
    assert_eq!(stack.fallback(), ["anthropic/claude-sonnet-4-5"]);
    assert_eq!(stack.context_window(), ["anthropic/claude-sonnet-4-5"]);
}

#[test]
fn keys_never_show() {
    let provider = openai();
    let builder = StackBuilder::new(provider.clone()).with_fallback(anthropic());
    let stack = builder.clone().build(Wire::new()).unwrap();
    for text in [
        format!("{provider:?}"),
        format!("{builder:?}"),
        format!("{stack:?}"),
        format!("{provider:#?}"),
    ] {
        assert!(!text.contains("sk-openai"), "{text}");
        assert!(!text.contains("sk-ant"), "{text}");
    }
    assert!(format!("{provider:?}").contains(r#"api_key: Some("<redacted>")"#));

    // Several keys: each redacted, none shown, in the provider, builder or stack.
    let pool = pool().with_routing(Strategy::LeastLoaded);
    let builder = StackBuilder::new(pool.clone()).with_fallback(anthropic());
    let stack = builder.clone().build(Wire::new()).unwrap();
    for text in [
        format!("{pool:?}"),
        format!("{pool:#?}"),
        format!("{builder:?}"),
        format!("{stack:?}"),
    ] {
        for key in ["sk-a", "sk-b", "sk-c", "sk-openai"] {
            assert!(!text.contains(key), "{text}");
        }
    }
    assert!(
        format!("{pool:?}").contains(
            r#"api_keys: ["<redacted>", "<redacted>", "<redacted>"], routing: LeastLoaded"#
        ),
        "{pool:?}"
    );
}

/// Over a real HTTP client and server: hyper-util's legacy client as the transport, an axum
/// server standing in for the provider, real time.
#[tokio::test]
async fn over_a_real_client_and_server() {
    use axum::routing::post;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn echo(headers: http::HeaderMap, body: String) -> String {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        let host = headers["host"].to_str().unwrap().to_owned();
        format!("{host} {auth} {body}")
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/v1/chat/completions", post(echo));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::builder(TokioExecutor::new()).build_http::<BufferedBody>();
    let provider = Provider::openai_compatible(&format!("http://{address}"))
        .with_name("local")
        .with_model("llama-3.1-8b")
        .with_api_key("sk-local");
    let stack = StackBuilder::new(provider).build(client).unwrap();
    let response = stack
        .oneshot(
            Request::post("https://api.openai.com/v1/chat/completions")
                .header("host", "api.openai.com")
                .body(BufferedBody::from(r#"{"model":"gpt-4o"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        format!(r#"{address} Bearer sk-local {{"model":"llama-3.1-8b"}}"#)
    );
}

/// A base URL with user info is refused, and neither the refusal nor the provider's `Debug`
/// output shows the secret in it; a port beyond 65535 is refused rather than replaced by the
/// scheme's default.
#[test]
fn base_urls_with_user_info_or_a_bad_port_are_refused() {
    let provider =
        Provider::openai(OpenAiTier::Tier1).with_base_url("https://user:sk-secret@api.openai.com");
    assert!(
        !format!("{provider:?}").contains("sk-secret"),
        "{provider:?}"
    );
    let error = StackBuilder::new(provider).build(Wire::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"provider "openai": invalid base URL "https://<redacted>@api.openai.com": has user info: give the key through with_api_key (or api_key_env), not in the URL"#
    );
    assert!(!format!("{error:?}").contains("sk-secret"));

    let error = StackBuilder::new(Provider::openai_compatible("http://127.0.0.1:99999"))
        .build(Wire::new())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"provider "openai-compatible": invalid base URL "http://127.0.0.1:99999": the port is not a number from 0 to 65535"#
    );
}

// ===== shared quotas (Redis) =====

/// With a shared quota, a provider's quota cannot be built outside a tokio runtime, nor with a
/// prefix the store refuses; a provider with several keys builds a store per key; every error
/// names the provider and none shows the URL.
#[cfg(feature = "redis")]
#[test]
fn shared_quota_errors_name_the_provider_never_the_url() {
    use tollgate::ratelimit::redis::RedisConfig;
    use tollgate::ratelimit::redis::error::RedisConfigError;

    let password = "s3cret-pa55";
    let shared = || RedisConfig::new(format!("redis://:{password}@127.0.0.1:1/"));
    let limited = || openai().without_adaptive();
    let check = |error: StackError, expected: StackError, text: &str| {
        assert_eq!(error, expected);
        assert_eq!(error.to_string(), text);
        assert!(!format!("{error:?}").contains(password));
    };

    // Outside a runtime.
    let error = StackBuilder::new(limited())
        .with_shared_quota(shared())
        .build(Wire::new())
        .unwrap_err();
    check(
        error,
        StackError::SharedQuota {
            provider: "openai/gpt-4o".to_owned(),
            error: RedisConfigError::NoRuntime,
        },
        "provider \"openai/gpt-4o\": cannot keep its quota in Redis: the Redis store connects on a \
         tokio runtime, and none is running",
    );
    // A provider with no rate limit has nothing to keep in Redis: no runtime needed.
    StackBuilder::new(openai().without_rate_limit())
        .with_shared_quota(shared())
        .build(Wire::new())
        .unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let error = StackBuilder::new(limited())
        .with_shared_quota(shared().with_prefix("my app"))
        .build(Wire::new())
        .unwrap_err();
    check(
        error,
        StackError::SharedQuota {
            provider: "openai/gpt-4o".to_owned(),
            error: RedisConfigError::Prefix,
        },
        "provider \"openai/gpt-4o\": cannot keep its quota in Redis: the key prefix must be \
         non-empty, without `{`, `}` or whitespace",
    );

    // Several keys, with limits (a store per key) or without: built.
    StackBuilder::new(pool().without_adaptive())
        .with_shared_quota(shared())
        .build(Wire::new())
        .unwrap();
    StackBuilder::new(pool().without_rate_limit())
        .with_shared_quota(shared())
        .build(Wire::new())
        .unwrap();

    // Names that are no part of a Redis key are written %XX: the stack builds, and the
    // configuration's Debug output shows no URL.
    let odd = limited().with_name("team {a}: gpt 4o");
    let builder = StackBuilder::new(odd).with_shared_quota(shared());
    assert!(!format!("{builder:?}").contains(password));
    assert!(!format!("{builder:?}").contains("127.0.0.1:1"));
    builder.build(Wire::new()).unwrap();
}
