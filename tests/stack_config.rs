//! `tollgate::stack::StackConfig`: the sample configuration parses and builds; a configured
//! stack behaves exactly as the same stack built in code, a provider with several keys and a
//! `[stack.cache]` too;
//! every kind of invalid configuration is refused with an error naming the field; and no key
//! ever shows. A stand-in transport
//! answers like OpenAI and logs what it was sent; time is tokio's paused clock. `[store]` is
//! checked the same way, and with the `redis` feature two stacks built from one file share a
//! quota in a real `redis-server` (on the real clock; skipped loudly where none is installed,
//! unless `TOLLGATE_REQUIRE_REDIS=1`).

#![cfg(feature = "stack")]

mod support;

#[cfg(feature = "redis")]
#[path = "../crates/tollgate-redis/tests/support/mod.rs"]
mod redis_support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use support::{
    Answered, OVERLOADED, RATE_LIMITED, Seen, TOO_LONG, Wire, answer, cache_scenario, ms, ok,
    steady,
};
use tollgate::body::BufferedBody;
use tollgate::cache::{CacheConfig, CacheLayer, CacheStatus};
use tollgate::ratelimit::algorithm::Quota;
use tollgate::ratelimit::presets::{AnthropicModel, OpenAiTier};
use tollgate::ratelimit::{Limit, Limits};
use tollgate::retry::RetryPolicy;
use tollgate::router::Strategy;
use tollgate::stack::{ConfigError, Provider, StackBuilder, StackConfig, UnknownModels};
use tower::ServiceExt;

/// A chat request as a caller sends it, without credentials of its own.
fn chat() -> Request<BufferedBody> {
    Request::post("/v1/chat/completions")
        .body(BufferedBody::from(
            r#"{"model":"caller-model","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#,
        ))
        .unwrap()
}

const SAMPLE: &str = include_str!("../examples/stack.toml");

/// Stands in for the environment: every variable holds a key derived from its name.
fn env(name: &str) -> Option<String> {
    Some(format!("secret-{}", name.to_lowercase()))
}

fn parse_error(text: &str) -> String {
    StackConfig::from_toml(text).unwrap_err().to_string()
}

/// A configuration with one provider, `extra` added to it, and `stack` as the stack table.
fn one_provider(extra: &str) -> String {
    format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\n{extra}\n\n[stack]\nprimary = \"openai\"\n"
    )
}

#[test]
fn the_sample_parses_and_builds() {
    let config = StackConfig::from_toml(SAMPLE).unwrap();
    let names: Vec<_> = config.providers().map(Provider::label).collect();
    assert_eq!(
        names,
        ["openai", "anthropic", "deepseek", "openai-long", "azure"]
    );
    assert_eq!(config.primary().label(), "openai");
    let fallback: Vec<_> = config.fallback().map(Provider::label).collect();
    assert_eq!(fallback, ["anthropic", "deepseek"]);
    let long: Vec<_> = config.context_window().map(Provider::label).collect();
    assert_eq!(long, ["openai-long"]);

    let stack = config
        .to_builder_with_env(env)
        .unwrap()
        .build(Wire::new())
        .unwrap();
    assert_eq!(stack.primary(), "openai");
    assert_eq!(stack.fallback(), ["anthropic", "deepseek"]);
    assert_eq!(stack.context_window(), ["openai-long"]);

    // The same from the file.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack.toml");
    let from_file = StackConfig::from_file(path).unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{config:?}"));
}

/// The sample's providers are what its comments say.
#[test]
fn the_sample_means_what_it_says() {
    let config = StackConfig::from_toml(SAMPLE).unwrap();
    let provider = |name: &str| {
        config
            .providers()
            .find(|p| p.label() == name)
            .unwrap()
            .clone()
    };
    let expected_openai = Provider::openai(OpenAiTier::Tier3)
        .with_name("openai")
        .with_model("gpt-4o")
        .with_max_in_flight(200);
    assert_eq!(provider("openai"), expected_openai);
    let anthropic_limits =
        AnthropicModel::Sonnet4
            .limits()
            .with(tollgate::ratelimit::Limit::input_tokens(
                tollgate::ratelimit::algorithm::Quota::per_minute(
                    std::num::NonZeroU64::new(2_000_000).unwrap(),
                ),
            ));
    assert_eq!(
        provider("anthropic"),
        Provider::anthropic(AnthropicModel::Sonnet4)
            .with_name("anthropic")
            .with_model("claude-sonnet-4-5")
            .with_limits(anthropic_limits)
    );
    assert_eq!(
        provider("deepseek"),
        Provider::deepseek(tollgate::ratelimit::presets::DeepSeekLevel::Basic)
            .with_name("deepseek")
            .with_model("deepseek-chat")
            .with_max_in_flight(500)
            .with_retry(RetryPolicy::openai())
    );
}

const SCENARIO: &str = r#"
[[providers]]
name = "openai"
kind = "openai"
api_key_env = "OPENAI_API_KEY"
model = "gpt-4o"
limits = { preset = "openai-tier-3" }
retry = { base_delay = "500ms", max_delay = "8s", jitter = "none", server_delay_spread = "none" }

[[providers]]
name = "anthropic"
kind = "anthropic"
api_key_env = "ANTHROPIC_API_KEY"
model = "claude-sonnet-4-5"
limits = { preset = "anthropic-sonnet-4" }

[[providers]]
name = "openai-long"
kind = "openai"
api_key_env = "OPENAI_API_KEY"
model = "gpt-4.1"
limits = { preset = "openai-tier-3" }

[stack]
primary = "openai"
fallback = ["anthropic"]
context_window = ["openai-long"]
"#;

/// The builder's equivalent of `SCENARIO`.
fn scenario_builder() -> StackBuilder {
    StackBuilder::new(
        Provider::openai(OpenAiTier::Tier3)
            .with_name("openai")
            .with_model("gpt-4o")
            .with_api_key("secret-openai_api_key")
            .with_retry(steady()),
    )
    .with_fallback(
        Provider::anthropic(AnthropicModel::Sonnet4)
            .with_name("anthropic")
            .with_model("claude-sonnet-4-5")
            .with_api_key("secret-anthropic_api_key"),
    )
    .with_context_window_fallback(
        Provider::openai(OpenAiTier::Tier3)
            .with_name("openai-long")
            .with_model("gpt-4.1")
            .with_api_key("secret-openai_api_key"),
    )
}

/// A 429 retried after its `retry-after-ms`, an overload that moves to Anthropic, a prompt
/// too long that moves to the larger model: what the transport saw, and when.
async fn run_scenario(build: impl FnOnce(Wire) -> tollgate::stack::Stack) -> Vec<Seen> {
    let wire = Wire::new()
        .script(
            "api.openai.com",
            vec![
                answer(429, &[("retry-after-ms", "1500")], RATE_LIMITED),
                ok(),
                answer(503, &[], OVERLOADED),
                answer(503, &[], OVERLOADED),
                answer(503, &[], OVERLOADED),
                answer(400, &[], TOO_LONG),
                ok(),
            ],
        )
        .script("api.anthropic.com", vec![ok()]);
    let stack = build(wire.clone());
    for _ in 0..3 {
        let response = stack.clone().oneshot(chat()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    wire.seen()
}

#[tokio::test(start_paused = true)]
async fn a_configured_stack_behaves_as_the_built_one() {
    let config = StackConfig::from_toml(SCENARIO).unwrap();
    let configured = run_scenario(|wire| {
        config
            .to_builder_with_env(env)
            .unwrap()
            .build(wire)
            .unwrap()
    })
    .await;
    let built = run_scenario(|wire| scenario_builder().build(wire).unwrap()).await;
    assert_eq!(configured, built);

    let openai = |at, model: &str, key: &str| Seen {
        at,
        uri: "https://api.openai.com/v1/chat/completions".to_owned(),
        authorization: Some(format!("Bearer {key}")),
        api_key: None,
        model: Some(model.to_owned()),
    };
    let key = "secret-openai_api_key";
    assert_eq!(
        configured,
        [
            openai(ms(0), "gpt-4o", key),
            openai(ms(1_500), "gpt-4o", key),
            openai(ms(1_500), "gpt-4o", key),
            openai(ms(2_000), "gpt-4o", key),
            openai(ms(3_000), "gpt-4o", key),
            Seen {
                at: ms(3_000),
                uri: "https://api.anthropic.com/v1/chat/completions".to_owned(),
                authorization: Some("Bearer secret-anthropic_api_key".to_owned()),
                api_key: None,
                model: Some("claude-sonnet-4-5".to_owned()),
            },
            openai(ms(3_000), "gpt-4o", key),
            openai(ms(3_000), "gpt-4.1", key),
        ]
    );
}

const POOL: &str = r#"
[[providers]]
name = "openai"
kind = "openai"
api_key_envs = ["OPENAI_KEY_A", "OPENAI_KEY_B", "OPENAI_KEY_C"]
routing = "round-robin"
model = "gpt-4o"
limits = { requests_per_minute = 2 }
retry = { base_delay = "500ms", max_delay = "8s", jitter = "none", server_delay_spread = "none" }

[stack]
primary = "openai"
"#;

/// The builder's equivalent of `POOL`, without its keys.
fn pool_provider() -> Provider {
    Provider::new(tollgate::stack::ProviderKind::OpenAi)
        .with_name("openai")
        .with_model("gpt-4o")
        .with_limits(Limits::new([Limit::requests(Quota::per_minute(
            std::num::NonZeroU64::new(2).unwrap(),
        ))]))
        .with_retry(steady())
        .with_routing(Strategy::RoundRobin)
}

/// Seven requests: six at once over three keys of two a minute, the seventh 30 s later.
async fn run_pool(stack: tollgate::stack::Stack, wire: &Wire) -> Vec<Seen> {
    for _ in 0..7 {
        let response = stack.clone().oneshot(chat()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    wire.seen()
}

/// `api_key_envs` reads one key per variable, spread as `routing` says: the same stack as
/// `with_api_keys` in code.
#[tokio::test(start_paused = true)]
async fn several_key_variables_build_the_same_stack() {
    let config = StackConfig::from_toml(POOL).unwrap();
    assert_eq!(config.primary(), &pool_provider());
    let script = || Wire::new().script("api.openai.com", (0..7).map(|_| ok()).collect());

    let wire = script();
    let stack = config
        .to_builder_with_env(env)
        .unwrap()
        .build(wire.clone())
        .unwrap();
    let configured = run_pool(stack, &wire).await;

    let wire = script();
    let keys = [
        "secret-openai_key_a",
        "secret-openai_key_b",
        "secret-openai_key_c",
    ];
    let stack = StackBuilder::new(pool_provider().with_api_keys(keys))
        .build(wire.clone())
        .unwrap();
    let built = run_pool(stack, &wire).await;
    assert_eq!(configured, built);

    let seen = |at, key: &str| Seen {
        at,
        uri: "https://api.openai.com/v1/chat/completions".to_owned(),
        authorization: Some(format!("Bearer secret-openai_key_{key}")),
        api_key: None,
        model: Some("gpt-4o".to_owned()),
    };
    assert_eq!(
        configured,
        [
            seen(ms(0), "a"),
            seen(ms(0), "b"),
            seen(ms(0), "c"),
            seen(ms(0), "a"),
            seen(ms(0), "b"),
            seen(ms(0), "c"),
            seen(ms(30_000), "a"),
        ]
    );
}

/// Every routing name, and a list of one variable, which is `api_key_env`.
/// `max_wait`, `max_queue` and `models` reach the provider; unset, the defaults hold.
#[test]
fn max_wait_and_max_queue() {
    let config = StackConfig::from_toml(&one_provider(
        "max_wait = \"0s\"\nmax_queue = 7\nmodels = [\"my-model\"]",
    ))
    .unwrap();
    let expected = Provider::new(tollgate::stack::ProviderKind::OpenAi)
        .with_name("openai")
        .with_max_wait(Duration::ZERO)
        .with_max_queue(7)
        .with_models(["my-model"]);
    assert_eq!(format!("{:?}", config.primary()), format!("{expected:?}"));
    let config = StackConfig::from_toml(&one_provider("")).unwrap();
    let text = format!("{:?}", config.primary());
    assert!(text.contains("max_wait: 60s, max_queue: 1024"), "{text}");
    assert!(text.contains("unknown_models: Share"), "{text}");
}

/// `unknown_models` is `share` or `refuse`; anything else is refused without being quoted.
#[test]
fn unknown_models() {
    for (name, unknown) in [
        ("share", UnknownModels::Share),
        ("refuse", UnknownModels::Refuse),
    ] {
        let config =
            StackConfig::from_toml(&one_provider(&format!("unknown_models = \"{name}\""))).unwrap();
        let expected = Provider::new(tollgate::stack::ProviderKind::OpenAi)
            .with_name("openai")
            .with_unknown_models(unknown);
        assert_eq!(format!("{:?}", config.primary()), format!("{expected:?}"));
    }
    let error = StackConfig::from_toml(&one_provider("unknown_models = \"sk-secret\""))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown_models"), "{error}");
    assert!(error.contains("expected share or refuse"), "{error}");
    assert!(!error.contains("sk-secret"), "{error}");
}

#[test]
fn routing_names_and_a_list_of_one() {
    for (name, strategy) in [
        ("round-robin", Strategy::RoundRobin),
        ("weighted", Strategy::Weighted),
        ("least-loaded", Strategy::LeastLoaded),
        ("latency-aware", Strategy::LatencyAware),
    ] {
        let text = POOL.replace("round-robin", name);
        let config = StackConfig::from_toml(&text).unwrap();
        assert_eq!(config.primary(), &pool_provider().with_routing(strategy));
        config
            .to_builder_with_env(env)
            .unwrap()
            .build(Wire::new())
            .unwrap();
    }
    let one = |extra: &str| {
        StackConfig::from_toml(&one_provider(extra))
            .unwrap()
            .to_builder_with_env(env)
            .unwrap()
            .build(Wire::new())
            .unwrap()
    };
    let list = format!("{:?}", one("api_key_envs = [\"OPENAI_API_KEY\"]"));
    assert_eq!(
        list,
        format!("{:?}", one("api_key_env = \"OPENAI_API_KEY\""))
    );
    let builder = StackConfig::from_toml(&one_provider("api_key_envs = [\"OPENAI_API_KEY\"]"))
        .unwrap()
        .to_builder_with_env(env)
        .unwrap();
    let expected = StackBuilder::new(
        Provider::new(tollgate::stack::ProviderKind::OpenAi)
            .with_name("openai")
            .with_api_key("secret-openai_api_key"),
    );
    assert_eq!(format!("{builder:?}"), format!("{expected:?}"));
}

/// The sample's commented provider with several keys, uncommented, is valid.
#[test]
fn the_samples_commented_key_pool_is_valid() {
    let start = SAMPLE
        .find("# [[providers]]\n# name = \"openai-pool\"")
        .unwrap();
    let end = SAMPLE[start..].find("\n\n").unwrap() + start;
    let block: String = SAMPLE[start..end]
        .lines()
        .filter(|line| !line.starts_with("#  "))
        .map(|line| line.strip_prefix("# ").unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{SAMPLE}\n{block}\n").replace(
        r#"fallback = ["anthropic", "deepseek"]"#,
        r#"fallback = ["anthropic", "deepseek", "openai-pool"]"#,
    );
    let config = StackConfig::from_toml(&text).unwrap();
    let pool = config
        .providers()
        .find(|p| p.label() == "openai-pool")
        .unwrap();
    assert_eq!(
        pool,
        &Provider::openai(OpenAiTier::Tier3)
            .with_name("openai-pool")
            .with_model("gpt-4o")
            .with_routing(Strategy::LeastLoaded)
            .with_breaker(
                tollgate::circuit_breaker::BreakerConfig::default().with_trip(
                    tollgate::circuit_breaker::Trip::ConsecutiveFailures(
                        std::num::NonZeroU32::new(5).unwrap()
                    )
                )
            )
    );
    let stack = config
        .to_builder_with_env(env)
        .unwrap()
        .build(Wire::new())
        .unwrap();
    assert_eq!(stack.fallback(), ["anthropic", "deepseek", "openai-pool"]);
}

/// Each variable of `api_key_envs` is read, and a missing one is named by its place.
#[test]
fn a_missing_key_variable_names_its_place() {
    let config = StackConfig::from_toml(POOL).unwrap();
    let error = config
        .to_builder_with_env(|name| (name != "OPENAI_KEY_B").then(|| env(name).unwrap()))
        .unwrap_err();
    assert!(matches!(error, ConfigError::MissingEnv { .. }));
    assert_eq!(error.field(), Some("providers[0].api_key_envs[1]"));
    assert_eq!(
        error.to_string(),
        "providers[0].api_key_envs[1]: environment variable OPENAI_KEY_B is not set"
    );
    let error = config
        .to_builder_with_env(|name| {
            Some(if name == "OPENAI_KEY_C" {
                String::new()
            } else {
                env(name).unwrap()
            })
        })
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "providers[0].api_key_envs[2]: the key in environment variable OPENAI_KEY_C is empty or not a valid header value"
    );
}

/// A configured stack built with `build` reads the process environment.
#[test]
fn a_missing_variable_names_the_field_and_the_variable() {
    let config = StackConfig::from_toml(&one_provider(
        "api_key_env = \"TOLLGATE_TEST_SURELY_UNSET_VARIABLE\"",
    ))
    .unwrap();
    let error = config.build(Wire::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "providers[0].api_key_env: environment variable TOLLGATE_TEST_SURELY_UNSET_VARIABLE is not set"
    );
    assert_eq!(error.field(), Some("providers[0].api_key_env"));
    assert!(matches!(error, ConfigError::MissingEnv { .. }));
    // Providers outside the stack are checked but not built: their variables are not read.
    let config = StackConfig::from_toml(
        r#"
        [[providers]]
        name = "openai"
        kind = "openai"

        [[providers]]
        name = "unused"
        kind = "groq"
        api_key_env = "TOLLGATE_TEST_SURELY_UNSET_VARIABLE"

        [stack]
        primary = "openai"
        "#,
    );
    config.unwrap().build(Wire::new()).unwrap();
}

#[test]
fn invalid_configurations_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            one_provider("limits = { requests_per_minute = 0 }"),
            "providers[0].limits.requests_per_minute: must be greater than 0",
        ),
        (
            SCENARIO.replace(r#"fallback = ["anthropic"]"#, r#"fallback = ["antrhopic"]"#),
            "stack.fallback[0]: names no provider; expected one of openai, anthropic, openai-long",
        ),
        (
            SCENARIO.replace(r#"fallback = ["anthropic"]"#, r#"fallback = ["openai"]"#),
            r#"stack.fallback[0]: "openai" is the primary"#,
        ),
        (
            SCENARIO.replace(
                r#"fallback = ["anthropic"]"#,
                r#"fallback = ["anthropic", "anthropic"]"#,
            ),
            r#"stack.fallback[1]: "anthropic" is already in the chain"#,
        ),
        (
            SCENARIO.replace(r#"primary = "openai""#, r#"primary = "gpt""#),
            "stack.primary: names no provider; expected one of openai, anthropic, openai-long",
        ),
        (
            SCENARIO.replace(
                r#"context_window = ["openai-long"]"#,
                r#"context_window = ["openai-long", "long"]"#,
            ),
            "stack.context_window[1]: names no provider; expected one of openai, anthropic, openai-long",
        ),
        (
            one_provider("limits = { preset = \"openai-tier-3\", rpm = 10 }"),
            "providers[0].limits.rpm: unknown field `rpm`, expected one of `preset`, `requests_per_minute`, `requests_per_day`, `tokens_per_minute`, `tokens_per_day`, `input_tokens_per_minute`, `output_tokens_per_minute`, `algorithm`",
        ),
        (
            one_provider("modle = \"gpt-4o\""),
            "providers[0].modle: unknown field `modle`, expected one of `name`, `kind`, `base_url`, `api_key_env`, `api_key_envs`, `routing`, `api_key`, `api_version`, `model`, `models`, `unknown_models`, `max_in_flight`, `max_wait`, `max_queue`, `limits`, `adaptive`, `timeouts`, `retry`, `breaker`",
        ),
        (
            one_provider("") + "fallbacks = [\"openai\"]\n",
            "stack.fallbacks: unknown field `fallbacks`, expected one of `primary`, `fallback`, `context_window`, `cache`",
        ),
        (
            one_provider("") + "\n[metrics]\nenabled = true\n",
            "metrics: unknown field `metrics`, expected one of `providers`, `stack`, `store`",
        ),
        (
            // Found by the stack_config fuzz target: an empty key was named as nothing.
            format!("'' = ''\n{}", one_provider("")),
            "'': unknown field ``, expected one of `providers`, `stack`, `store`",
        ),
        (
            one_provider("'' = 1"),
            "providers[0].'': unknown field ``, expected one of `name`, `kind`, `base_url`, `api_key_env`, `api_key_envs`, `routing`, `api_key`, `api_version`, `model`, `models`, `unknown_models`, `max_in_flight`, `max_wait`, `max_queue`, `limits`, `adaptive`, `timeouts`, `retry`, `breaker`",
        ),
        (
            one_provider("max_in_flight = \"lots\""),
            "providers[0].max_in_flight: invalid type: string (not shown), expected u64",
        ),
        (
            one_provider("max_in_flight = 0"),
            "providers[0].max_in_flight: must be greater than 0 and at most 4294967295",
        ),
        (
            one_provider("models = [\"gpt-4o\", \" \"]"),
            "providers[0].models[1]: must be a model name of 1 to 256 bytes",
        ),
        (
            one_provider("max_wait = \"2h\""),
            "providers[0].max_wait: must be at most 1h",
        ),
        (
            one_provider("max_queue = 5000000000"),
            "providers[0].max_queue: at most 4294967295",
        ),
        (
            one_provider("retry = { max_retries = -1 }"),
            "providers[0].retry.max_retries: invalid value: integer `-1`, expected u32",
        ),
        (
            "[[providers]]\nname = \"openai\"\n\n[stack]\nprimary = \"openai\"\n".to_owned(),
            "providers[0].kind: required, but missing",
        ),
        (
            "[[providers]]\nname = \"openai\"\nkind = \"openai\"\n".to_owned(),
            "stack: required, but missing",
        ),
        (
            one_provider("").replace("kind = \"openai\"", "kind = \"gpt\""),
            r#"providers[0].kind: unknown kind; expected one of openai, azure-openai, anthropic, deepseek, gemini, groq, mistral, openrouter, openai-compatible"#,
        ),
        (
            one_provider("").replace("kind = \"openai\"", "kind = \"azure-openai\""),
            "providers[0].base_url: required for kind azure-openai",
        ),
        (
            one_provider("base_url = \"api.openai.com\""),
            "providers[0].base_url: not an absolute URL (no scheme)",
        ),
        (
            one_provider("limits = { preset = \"openai-tier-9\" }"),
            r#"providers[0].limits.preset: unknown preset; expected one of openai-tier-1 … openai-tier-5, anthropic-opus-4-7, anthropic-sonnet-4, anthropic-haiku-4, gemini-{free,pay-as-you-go,enterprise}-{pro,flash}, deepseek-{starter,basic,standard,enterprise}, none"#,
        ),
        (
            one_provider("limits = { preset = \"none\", tokens_per_day = 5 }"),
            r#"providers[0].limits.preset: "none" cannot be combined with explicit limits"#,
        ),
        (
            one_provider("limits = { algorithm = \"leaky-bucket\", requests_per_minute = 5 }"),
            r#"providers[0].limits.algorithm: unknown algorithm; expected one of token-bucket, gcra, fixed-window, sliding-window-log, sliding-window-counter"#,
        ),
        (
            one_provider("limits = {}"),
            r#"providers[0].limits: give a preset or at least one limit (preset = "none" for no rate limit)"#,
        ),
        (
            one_provider("retry = { base_delay = \"soon\" }"),
            r#"providers[0].retry.base_delay: invalid duration: expected a number and a unit, like "500ms", "1.5s" or "2m""#,
        ),
        (
            one_provider("retry = { base_delay = \"2s\", max_delay = \"1s\" }"),
            "providers[0].retry.max_delay: must be at least base_delay (2s)",
        ),
        (
            one_provider("retry = { jitter = \"some\" }"),
            r#"providers[0].retry.jitter: unknown jitter; expected one of none, full, equal, decorrelated, sdk"#,
        ),
        (
            one_provider("retry = { server_delay_spread = \"lots\" }"),
            r#"providers[0].retry.server_delay_spread: invalid spread: expected "none", "default" or a percentage from 0% to 1000%, like "50%""#,
        ),
        (
            one_provider(
                "retry = { server_delay_spread = \"none\", server_delay_spread_max = \"1s\" }",
            ),
            r#"providers[0].retry.server_delay_spread_max: cannot be combined with server_delay_spread = "none""#,
        ),
        (
            one_provider("adaptive = { floor_requests_per_minute = 0 }"),
            "providers[0].adaptive.floor_requests_per_minute: must be greater than 0",
        ),
        (
            one_provider(
                "adaptive = { floor_requests_per_minute = 60, ceiling_requests_per_minute = 6 }",
            ),
            "providers[0].adaptive.ceiling_requests_per_minute: must be at least floor_requests_per_minute (60)",
        ),
        (
            one_provider("adaptive = { preset = \"none\", initial_requests_per_minute = 60 }"),
            r#"providers[0].adaptive.preset: "none" cannot be combined with other adaptive settings"#,
        ),
        (
            one_provider("adaptive = { start = 5 }"),
            "providers[0].adaptive.start: unknown field `start`, expected one of `preset`, `initial_requests_per_minute`, `floor_requests_per_minute`, `ceiling_requests_per_minute`",
        ),
        (
            one_provider("retry = { preset = \"aggressive\" }"),
            r#"providers[0].retry.preset: unknown preset; expected one of default, openai, none"#,
        ),
        (
            one_provider("breaker = { consecutive_failures = 0 }"),
            "providers[0].breaker.consecutive_failures: must be greater than 0",
        ),
        (
            one_provider("breaker = { open_for = \"0s\" }"),
            "providers[0].breaker.open_for: must be greater than 0",
        ),
        (
            one_provider("breaker = { preset = \"none\", probes = 2 }"),
            r#"providers[0].breaker.preset: "none" cannot be combined with other breaker settings"#,
        ),
        (
            one_provider("model = \"\""),
            "providers[0].model: must not be empty",
        ),
        (
            one_provider("") + "\n[[providers]]\nname = \"openai\"\nkind = \"groq\"\n",
            r#"providers[1].name: duplicate name "openai" (also providers[0])"#,
        ),
        (
            "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nmodel = \"gpt-4o\n".to_owned(),
            "line 4, column 16: invalid basic string",
        ),
        (
            one_provider("api_key_env = \"OPENAI_API_KEY\"\napi_key_envs = [\"OPENAI_KEY_A\"]"),
            "providers[0].api_key_envs: give either api_key_env (one key) or api_key_envs (several), not both",
        ),
        (
            one_provider("api_key_envs = []"),
            "providers[0].api_key_envs: must name at least one environment variable",
        ),
        (
            one_provider("api_key_envs = \"OPENAI_KEY_A\""),
            r#"providers[0].api_key_envs: must be a list of environment variable names, like ["OPENAI_KEY_A", "OPENAI_KEY_B"]"#,
        ),
        (
            one_provider("api_key_envs = [\"OPENAI_KEY_A\", 3]"),
            "providers[0].api_key_envs[1]: must be the name of an environment variable (a string)",
        ),
        (
            one_provider("api_key_envs = [\"OPENAI_KEY_A\", \"OPENAI_KEY_A\"]"),
            "providers[0].api_key_envs[1]: variable OPENAI_KEY_A is listed twice (also api_key_envs[0])",
        ),
        (
            one_provider(&format!(
                "api_key_envs = [{}]",
                (0..65)
                    .map(|i| format!("\"KEY_{i}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "providers[0].api_key_envs: 65 variables; a provider spreads at most 64 keys",
        ),
        (
            POOL.replace("round-robin", "fastest"),
            r#"providers[0].routing: unknown routing; expected one of round-robin, weighted, least-loaded, latency-aware"#,
        ),
        (
            one_provider("routing = 1"),
            "providers[0].routing: invalid type: integer `1`, expected a string",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_error(&text), expected, "for:\n{text}");
    }
}

/// Keys never show: not in the configuration's `Debug`, not in the builder's, not in any
/// error — neither one pasted into the file nor one read from the environment.
#[test]
fn keys_never_show() {
    let key = "sk-proj-0123456789abcdef";
    // A key pasted where the variable's name belongs, or as `api_key`, is refused unquoted.
    for (extra, expected) in [
        (
            format!("api_key = \"{key}\""),
            "providers[0].api_key: keys do not belong in configuration files: put the key in an environment variable and name the variable in api_key_env",
        ),
        (
            format!("api_key_env = \"{key}\""),
            "providers[0].api_key_env: must be the name of an environment variable (letters, digits and _), not the key itself",
        ),
        (
            format!("api_key_envs = [\"OPENAI_KEY_A\", \"{key}\"]"),
            "providers[0].api_key_envs[1]: must be the name of an environment variable (letters, digits and _), not the key itself",
        ),
        (
            format!("api_key_envs = \"{key}\""),
            r#"providers[0].api_key_envs: must be a list of environment variable names, like ["OPENAI_KEY_A", "OPENAI_KEY_B"]"#,
        ),
    ] {
        let error = StackConfig::from_toml(&one_provider(&extra)).unwrap_err();
        assert_eq!(error.to_string(), expected);
        assert!(!format!("{error:?}").contains(key));
    }

    // A syntax error near a key does not quote the line.
    let text = format!("[[providers]]\nname = \"openai\"\napi_key = \"{key}\" oops\n");
    let error = StackConfig::from_toml(&text).unwrap_err();
    assert!(!error.to_string().contains(key), "{error}");
    assert!(!format!("{error:?}").contains(key));

    // A key from the environment: in no Debug output, nor in the error when it is invalid.
    let config = StackConfig::from_toml(&one_provider("api_key_env = \"OPENAI_API_KEY\"")).unwrap();
    let builder = config
        .to_builder_with_env(|_| Some(key.to_owned()))
        .unwrap();
    let stack = builder.clone().build(Wire::new()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{builder:?}"),
        format!("{stack:?}"),
    ] {
        assert!(!text.contains(key), "{text}");
    }
    let bad = format!("{key}\n");
    let error = config
        .to_builder_with_env(|_| Some(bad.clone()))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "providers[0].api_key_env: the key in environment variable OPENAI_API_KEY is empty or not a valid header value"
    );
    assert!(!format!("{error:?}").contains(key));

    // Several keys from the environment: in no Debug output, nor in an error.
    let config = StackConfig::from_toml(POOL).unwrap();
    let secret = |name: &str| Some(format!("{key}-{name}"));
    let builder = config.to_builder_with_env(secret).unwrap();
    let stack = builder.clone().build(Wire::new()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{builder:?}"),
        format!("{stack:?}"),
    ] {
        assert!(!text.contains(key), "{text}");
    }
    let error = config
        .to_builder_with_env(|name| Some(format!("{key}-{name}\n")))
        .unwrap_err();
    assert!(!error.to_string().contains(key), "{error}");
    assert!(!format!("{error:?}").contains(key));
}

#[test]
fn an_unreadable_file_says_which() {
    let error = StackConfig::from_file("/nonexistent/stack.toml").unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("cannot read /nonexistent/stack.toml: "),
        "{error}"
    );
}

// ===== [stack.cache] =====

const CACHED: &str = r#"
[[providers]]
name = "openai"
kind = "openai"
api_key_env = "OPENAI_API_KEY"
model = "gpt-4o"
limits = { requests_per_minute = 1 }

[stack]
primary = "openai"

[stack.cache]
ttl = "90s"
max_entries = 100
max_bytes = 65536
max_entry_bytes = 4096
deterministic = false
shared_across_callers = true
"#;

/// The cache configuration `CACHED` declares.
fn cached_config() -> CacheConfig {
    CacheConfig::default()
        .with_ttl(Duration::from_secs(90))
        .with_max_entries(std::num::NonZeroU64::new(100).unwrap())
        .with_max_bytes(std::num::NonZeroU64::new(65_536).unwrap())
        .with_max_entry_bytes(std::num::NonZeroUsize::new(4_096).unwrap())
        .with_shared_across_callers(true)
}

/// The builder's equivalent of `CACHED`.
fn cached_builder() -> StackBuilder {
    StackBuilder::new(
        Provider::new(tollgate::stack::ProviderKind::OpenAi)
            .with_name("openai")
            .with_model("gpt-4o")
            .with_api_key("secret-openai_api_key")
            .with_limits(Limits::new([Limit::requests(Quota::per_minute(
                std::num::NonZeroU64::new(1).unwrap(),
            ))])),
    )
    .with_cache(CacheLayer::new(cached_config()))
}

const ANSWERS: [&str; 4] = [
    r#"{"id":"1","choices":[]}"#,
    r#"{"id":"2","choices":[]}"#,
    r#"{"id":"3","choices":[]}"#,
    r#"{"id":"4","choices":[]}"#,
];

/// One request a minute, a 90 s cache: a hit at once, a request that did not opt in waiting
/// for the quota, a hit at 60 s, a different request waiting, and the first one again after
/// its entry expired.
async fn run_cached(stack: &tollgate::stack::Stack, wire: &Wire) -> Vec<Answered> {
    let log = cache_scenario(
        stack,
        &[
            ("Hi", true),
            ("Hi", true),
            ("Hi", false),
            ("Hi", true),
            ("Bye", true),
            ("Hi", true),
        ],
    )
    .await;
    assert_eq!(wire.times(), [ms(0), ms(60_000), ms(120_000), ms(180_000)]);
    log
}

fn cached_wire() -> Wire {
    let answers = ANSWERS.iter().map(|body| answer(200, &[], body)).collect();
    Wire::new().script("api.openai.com", answers)
}

#[tokio::test(start_paused = true)]
async fn a_configured_cache_behaves_as_the_built_one() {
    let config = StackConfig::from_toml(CACHED).unwrap();
    assert_eq!(
        format!("{:?}", config.cache().unwrap()),
        format!("{:?}", cached_config())
    );
    let builder = config.to_builder_with_env(env).unwrap();
    assert_eq!(format!("{builder:?}"), format!("{:?}", cached_builder()));

    let wire = cached_wire();
    let configured = run_cached(&builder.build(wire.clone()).unwrap(), &wire).await;
    let wire = cached_wire();
    let built = run_cached(&cached_builder().build(wire.clone()).unwrap(), &wire).await;
    assert_eq!(configured, built);

    let answered = |at: u64, status: CacheStatus, body: usize| Answered {
        at: ms(at),
        header: (status != CacheStatus::Bypass).then(|| status.as_str().to_owned()),
        status: Some(status),
        body: Bytes::from_static(ANSWERS[body].as_bytes()),
    };
    assert_eq!(
        configured,
        [
            answered(0, CacheStatus::Miss, 0),
            answered(0, CacheStatus::Hit, 0),
            answered(60_000, CacheStatus::Bypass, 1),
            answered(60_000, CacheStatus::Hit, 0),
            answered(120_000, CacheStatus::Miss, 2),
            answered(180_000, CacheStatus::Miss, 3),
        ]
    );
}

/// Without `[stack.cache]` there is no cache; an empty one has the defaults, and each build
/// has its own store.
#[tokio::test(start_paused = true)]
async fn an_empty_cache_table_has_the_defaults() {
    let config = StackConfig::from_toml(&one_provider("")).unwrap();
    assert!(config.cache().is_none());
    assert!(config.build(Wire::new()).unwrap().cache().is_none());

    let config = StackConfig::from_toml(&format!("{}[stack.cache]\n", one_provider(""))).unwrap();
    assert_eq!(
        format!("{:?}", config.cache().unwrap()),
        format!("{:?}", CacheConfig::default())
    );
    let wire = Wire::new().script("api.openai.com", vec![ok(), ok()]);
    let first = config.build(wire.clone()).unwrap();
    let second = config.build(wire.clone()).unwrap();
    cache_scenario(&first, &[("Hi", true)]).await;
    let log = cache_scenario(&second, &[("Hi", true)]).await;
    assert_eq!(log[0].status, Some(CacheStatus::Miss));
    assert_eq!(wire.times(), [ms(0), ms(0)]);
}

/// The sample's commented `[stack.cache]`, uncommented, is valid and says the defaults.
#[test]
fn the_samples_commented_cache_is_valid() {
    assert!(StackConfig::from_toml(SAMPLE).unwrap().cache().is_none());
    let start = SAMPLE.find("# [stack.cache]").unwrap();
    let end = SAMPLE[start..]
        .find("\n\n")
        .map_or(SAMPLE.len(), |end| end + start);
    let block: String = SAMPLE[start..end]
        .lines()
        .filter(|line| !line.starts_with("#  "))
        .map(|line| line.strip_prefix("# ").unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let config = StackConfig::from_toml(&format!("{SAMPLE}\n{block}\n")).unwrap();
    assert_eq!(
        format!("{:?}", config.cache().unwrap()),
        format!("{:?}", CacheConfig::default())
    );
    config
        .to_builder_with_env(env)
        .unwrap()
        .build(Wire::new())
        .unwrap()
        .cache()
        .unwrap();
}

/// Every duration of the file has an upper bound — an hour for what a retry sleeps, a day for
/// the rest (`[store]`'s are checked with the store) — and a value beyond it is refused with
/// an error naming the field and the bound; a value at the bound is accepted.
#[test]
fn every_duration_has_an_upper_bound() {
    let cache = |table: &str| format!("{}[stack.cache]\n{table}\n", one_provider(""));
    let cases = [
        (
            "retry = { base_delay = \"61m\" }",
            "providers[0].retry.base_delay: must be at most 1h",
        ),
        (
            "retry = { max_delay = \"2h\" }",
            "providers[0].retry.max_delay: must be at most 1h",
        ),
        (
            "retry = { min_delay = \"3601s\" }",
            "providers[0].retry.min_delay: must be at most 1h",
        ),
        (
            "retry = { max_server_delay = \"1h0.5s\" }",
            "providers[0].retry.max_server_delay: must be at most 1h",
        ),
        (
            "retry = { server_delay_spread_max = \"90m\" }",
            "providers[0].retry.server_delay_spread_max: must be at most 1h",
        ),
        (
            "retry = { total_time = \"25h\" }",
            "providers[0].retry.total_time: must be at most 24h",
        ),
        // The report's breaker, open for 584 years.
        (
            "breaker = { open_for = \"5119200h\" }",
            "providers[0].breaker.open_for: must be at most 24h",
        ),
        (
            "breaker = { max_open_for = \"24h1ns\" }",
            "providers[0].breaker.max_open_for: must be at most 24h",
        ),
        (
            "timeouts = { response_head = \"25h\" }",
            "providers[0].timeouts.response_head: must be at most 24h",
        ),
        (
            "timeouts = { first_chunk = \"1441m\" }",
            "providers[0].timeouts.first_chunk: must be at most 24h",
        ),
        (
            "timeouts = { idle = \"100000h\" }",
            "providers[0].timeouts.idle: must be at most 24h",
        ),
        (
            "timeouts = { total = \"86401s\" }",
            "providers[0].timeouts.total: must be at most 24h",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(parse_error(&one_provider(extra)), expected, "for {extra}");
    }
    assert_eq!(
        parse_error(&cache("ttl = \"25h\"")),
        "stack.cache.ttl: must be at most 24h"
    );
    // A duration too large to represent at all is not one.
    assert_eq!(
        parse_error(&one_provider(
            "breaker = { open_for = \"99999999999999999999h\" }"
        )),
        "providers[0].breaker.open_for: invalid duration: expected a number and a unit, like \"500ms\", \"1.5s\" or \"2m\""
    );
    // At the bounds: accepted.
    for extra in [
        "retry = { base_delay = \"1h\", max_delay = \"60m\", min_delay = \"1h\", max_server_delay = \"3600s\", server_delay_spread_max = \"1h\", total_time = \"24h\" }",
        "breaker = { open_for = \"24h\", max_open_for = \"1440m\" }",
        "timeouts = { response_head = \"24h\", first_chunk = \"24h\", idle = \"24h\", total = \"24h\" }",
    ] {
        StackConfig::from_toml(&one_provider(extra)).unwrap();
    }
    StackConfig::from_toml(&cache("ttl = \"24h\"")).unwrap();
}

#[test]
fn invalid_cache_configurations_name_the_field() {
    let cache = |table: &str| format!("{}[stack.cache]\n{table}\n", one_provider(""));
    let cases = [
        (
            cache("max_entries = 0"),
            "stack.cache.max_entries: must be greater than 0",
        ),
        (
            cache("max_entries = 4294967296"),
            "stack.cache.max_entries: must be at most 4294967295",
        ),
        (
            cache("max_entries = -1"),
            "stack.cache.max_entries: invalid value: integer `-1`, expected u64",
        ),
        (
            cache("max_bytes = 0"),
            "stack.cache.max_bytes: must be greater than 0",
        ),
        (
            cache("max_entry_bytes = 0"),
            "stack.cache.max_entry_bytes: must be greater than 0",
        ),
        (
            cache("max_bytes = 1024\nmax_entry_bytes = 2048"),
            "stack.cache.max_entry_bytes: must be at most max_bytes (1024)",
        ),
        (
            cache("ttl = \"0s\""),
            "stack.cache.ttl: must be greater than 0",
        ),
        (
            cache("ttl = \"soon\""),
            r#"stack.cache.ttl: invalid duration: expected a number and a unit, like "500ms", "1.5s" or "2m""#,
        ),
        (
            cache("ttl = 300"),
            "stack.cache.ttl: invalid type: integer `300`, expected a string",
        ),
        (
            cache("deterministic = \"yes\""),
            "stack.cache.deterministic: invalid type: string (not shown), expected a boolean",
        ),
        (
            cache("shared_across_callers = 1"),
            "stack.cache.shared_across_callers: invalid type: integer `1`, expected a boolean",
        ),
        (
            cache("enabled = true"),
            "stack.cache.enabled: unknown field `enabled`, expected one of `ttl`, \
             `max_entries`, `max_bytes`, `max_entry_bytes`, `deterministic`, \
             `shared_across_callers`",
        ),
    ];
    for (text, expected) in cases {
        let error = StackConfig::from_toml(&text).unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { .. }),
            "{text}: {error:?}"
        );
        assert_eq!(error.to_string(), expected, "{text}");
        assert_eq!(
            error.field(),
            expected.split_once(':').map(|(field, _)| field)
        );
    }
    // Not a table.
    let error = StackConfig::from_toml(&format!("{}cache = 5\n", one_provider(""))).unwrap_err();
    assert_eq!(error.field(), Some("stack.cache"));
}

// ===== regressions =====

/// Azure's `api_version` is checked as itself: a bad one is reported at `api_version`, not at
/// the `base_url` it was given with; other kinds, which would ignore it, refuse it.
#[test]
fn api_version_errors_name_api_version() {
    let azure = |extra: &str| {
        one_provider(&format!(
            "base_url = \"https://example.openai.azure.com/openai/deployments/gpt-4o\"\n{extra}"
        ))
        .replace("kind = \"openai\"", "kind = \"azure-openai\"")
    };
    let cases = [
        (
            azure("api_version = \"bad version\""),
            "providers[0].api_version: the api-version is not a version (letters, digits, `-` and `.`; not shown)",
        ),
        (
            azure("api_version = \"\""),
            "providers[0].api_version: the api-version is not a version (letters, digits, `-` and `.`; not shown)",
        ),
        (
            one_provider("api_version = \"2024-10-21\""),
            "providers[0].api_version: only for kind azure-openai, not openai",
        ),
        (
            one_provider("api_version = \"bad version\"")
                .replace("kind = \"openai\"", "kind = \"gemini\""),
            "providers[0].api_version: only for kind azure-openai, not gemini",
        ),
    ];
    for (text, expected) in cases {
        let error = StackConfig::from_toml(&text).unwrap_err();
        assert_eq!(error.to_string(), expected, "for:\n{text}");
        assert_eq!(
            error.field(),
            Some("providers[0].api_version"),
            "for:\n{text}"
        );
    }
    StackConfig::from_toml(&azure("api_version = \"2025-01-01-preview\"")).unwrap();
}

/// `preset = "none"` is refused next to settings it would silently drop, for retries as for
/// breakers and limits.
#[test]
fn none_presets_refuse_other_settings() {
    let cases = [
        (
            one_provider("retry = { preset = \"none\", max_retries = 3 }"),
            r#"providers[0].retry.preset: "none" cannot be combined with other retry settings"#,
        ),
        (
            one_provider("retry = { preset = \"none\", base_delay = \"1s\" }"),
            r#"providers[0].retry.preset: "none" cannot be combined with other retry settings"#,
        ),
        (
            one_provider("limits = { preset = \"none\", algorithm = \"gcra\" }"),
            r#"providers[0].limits.preset: "none" cannot be combined with an algorithm"#,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_error(&text), expected, "for:\n{text}");
    }
    let config = StackConfig::from_toml(&one_provider("retry = { preset = \"none\" }")).unwrap();
    assert_eq!(config.primary().label(), "openai");
}

/// A base URL with user info could carry a key: it is refused, and the error shows neither
/// the key nor the user. A port beyond 65535 is refused rather than replaced by the default.
#[test]
fn base_urls_with_user_info_or_a_bad_port_are_refused() {
    let error = StackConfig::from_toml(&one_provider(
        "base_url = \"https://user:sk-secret@api.openai.com/v1\"",
    ))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"providers[0].base_url: has user info: give the key through with_api_key (or api_key_env), not in the URL"#
    );
    assert!(!format!("{error:?}").contains("sk-secret"));
    assert_eq!(
        parse_error(&one_provider("base_url = \"https://api.openai.com:99999\"")),
        r#"providers[0].base_url: the port is not a number from 0 to 65535"#
    );
    StackConfig::from_toml(&one_provider("base_url = \"http://[::1]:8080\"")).unwrap();
}

/// `max_bytes` below the default largest entry (1 MiB) brings `max_entry_bytes` down with it:
/// no entry may be larger than the whole cache.
#[test]
fn a_small_cache_has_no_entry_larger_than_itself() {
    let config =
        StackConfig::from_toml(&(one_provider("") + "[stack.cache]\nmax_bytes = 4096\n")).unwrap();
    let cache = config.cache().unwrap();
    assert_eq!(cache.max_bytes.get(), 4096);
    assert_eq!(cache.max_entry_bytes.get(), 4096);
}

/// `[providers.adaptive]` sets the learned rate's start, floor and ceiling, or turns it off;
/// `server_delay_spread` sets the retry policy's spread: the same providers as in code.
#[test]
fn adaptive_and_spread_settings() {
    use tollgate::ratelimit::adaptive::{Adaptive, Rate};
    use tollgate::retry::{RetryPolicy, Spread};
    let per_minute = |v: u64| Rate::per_minute(std::num::NonZeroU64::new(v).unwrap());
    let configured = |extra: &str| {
        StackConfig::from_toml(&one_provider(extra))
            .unwrap()
            .primary()
            .clone()
    };
    let openai = Provider::new(tollgate::stack::ProviderKind::OpenAi).with_name("openai");
    assert_eq!(configured(""), openai.clone());
    assert_eq!(
        configured(
            "adaptive = { initial_requests_per_minute = 120, floor_requests_per_minute = 6, \
             ceiling_requests_per_minute = 3000 }"
        ),
        openai.clone().with_adaptive(
            Adaptive::default()
                .with_initial(per_minute(120))
                .with_floor(per_minute(6))
                .with_ceiling(per_minute(3_000))
        )
    );
    assert_eq!(
        configured("adaptive = { preset = \"none\" }"),
        openai.clone().without_adaptive()
    );
    // No client-side limit at all, unless the adaptive table says otherwise.
    assert_eq!(
        configured("limits = { preset = \"none\" }"),
        openai.clone().without_rate_limit()
    );
    assert_eq!(
        configured("limits = { preset = \"none\" }\nadaptive = {}"),
        openai
            .clone()
            .without_rate_limit()
            .with_adaptive(Adaptive::default())
    );
    assert_eq!(
        configured("retry = { server_delay_spread = \"none\" }"),
        openai
            .clone()
            .with_retry(RetryPolicy::default().with_server_delay_spread(Spread::None))
    );
    assert_eq!(
        configured("retry = { server_delay_spread = \"25%\", server_delay_spread_max = \"2s\" }"),
        openai.with_retry(
            RetryPolicy::default().with_server_delay_spread(Spread::Proportional {
                percent: 25,
                max: std::time::Duration::from_secs(2),
            })
        )
    );
}

/// `[providers.timeouts]` sets the time limits per attempt over the kind's preset, or turns
/// them off; bad values name the field.
#[test]
fn timeout_settings() {
    use std::time::Duration;
    use tollgate::timeout::TimeoutConfig;
    let configured = |extra: &str| {
        StackConfig::from_toml(&one_provider(extra))
            .unwrap()
            .primary()
            .clone()
    };
    let openai = Provider::new(tollgate::stack::ProviderKind::OpenAi).with_name("openai");
    assert_eq!(
        configured(""),
        openai.clone().with_timeouts(TimeoutConfig::openai())
    );
    assert_eq!(
        configured("timeouts = { first_chunk = \"45s\", idle = \"30s\" }"),
        openai.clone().with_timeouts(
            TimeoutConfig::openai()
                .with_first_chunk(Duration::from_secs(45))
                .with_idle(Duration::from_secs(30))
        )
    );
    assert_eq!(
        configured("timeouts = { preset = \"anthropic\", total = \"1h\" }"),
        openai
            .clone()
            .with_timeouts(TimeoutConfig::anthropic().with_total(Duration::from_secs(3_600)))
    );
    assert_eq!(
        configured("timeouts = { preset = \"none\" }"),
        openai.without_timeouts()
    );
    for (extra, expected) in [
        (
            "timeouts = { idle = \"0s\" }",
            "providers[0].timeouts.idle: must be greater than 0",
        ),
        (
            "timeouts = { total = \"48h\" }",
            "providers[0].timeouts.total: must be at most 24h",
        ),
        (
            "timeouts = { preset = \"none\", idle = \"1s\" }",
            r#"providers[0].timeouts.preset: "none" cannot be combined with other time limits"#,
        ),
        (
            "timeouts = { preset = \"fast\" }",
            r#"providers[0].timeouts.preset: unknown preset; expected one of default, none, openai, anthropic, gemini, deepseek"#,
        ),
        (
            "timeouts = { head = \"1s\" }",
            "providers[0].timeouts.head: unknown field `head`, expected one of `preset`, `response_head`, `first_chunk`, `idle`, `total`",
        ),
    ] {
        let error = StackConfig::from_toml(&one_provider(extra)).unwrap_err();
        assert_eq!(error.to_string(), expected, "for {extra}");
    }
}

// ===== [store] =====

/// A password that must never show.
#[cfg(feature = "redis")]
const PASSWORD: &str = "s3cret-pa55";

/// One provider, limited to 10 requests a minute (no adaptive limit), and `store` as the
/// `[store]` table.
fn with_store(store: &str) -> String {
    format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nmodel = \"gpt-4o\"\n\
         limits = {{ requests_per_minute = 10 }}\nadaptive = {{ preset = \"none\" }}\n\n\
         [stack]\nprimary = \"openai\"\n\n[store]\n{store}\n"
    )
}

/// `kind = "memory"` is the default; Redis settings without `kind = "redis"` are refused, as
/// is an unknown kind or field, whatever the features.
#[test]
fn store_memory_is_the_default() {
    for store in ["", "kind = \"memory\""] {
        let config = StackConfig::from_toml(&with_store(store)).unwrap();
        let builder = config.to_builder_with_env(env).unwrap();
        assert!(!format!("{builder:?}").contains("shared_quota: Some"));
        builder.build(Wire::new()).unwrap();
    }
    for (store, expected) in [
        (
            "url_env = \"REDIS_URL\"",
            r#"store.url_env: only with kind = "redis""#,
        ),
        (
            "kind = \"memory\"\nreplicas = 3",
            r#"store.replicas: only with kind = "redis""#,
        ),
        (
            "kind = \"etcd\"",
            r#"store.kind: unknown kind; expected "memory" or "redis""#,
        ),
        (
            "kind = \"memory\"\nuri = \"x\"",
            "store.uri: unknown field `uri`, expected one of `kind`, `url_env`, `url`, `prefix`, `replicas`, `unavailable`, `timeout`, `reconnect_every`",
        ),
    ] {
        let error = StackConfig::from_toml(&with_store(store)).unwrap_err();
        assert_eq!(error.to_string(), expected, "for {store}");
    }
}

/// Without the `redis` feature, `kind = "redis"` names the feature.
#[cfg(not(feature = "redis"))]
#[test]
fn store_redis_needs_the_feature() {
    let error = StackConfig::from_toml(&with_store("kind = \"redis\"\nurl_env = \"REDIS_URL\""))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "store.kind: kind = \"redis\" needs tollgate's `redis` feature, which this build does \
         not have (features = [\"redis\"] in Cargo.toml)"
    );
}

/// Every invalid `[store]` is refused with an error naming the field, and none quotes the URL
/// or its password.
#[cfg(feature = "redis")]
#[test]
fn store_errors_name_the_field_and_never_the_url() {
    let redis = |rest: &str| format!("kind = \"redis\"\n{rest}");
    let use_env = "put the URL in an environment variable and name the variable in url_env (the URL is not shown)";
    let cases: Vec<(String, String)> = vec![
        (
            redis(""),
            r#"store.url_env: required with kind = "redis": the name of the environment variable holding the Redis URL (or url, for a URL without a password)"#.to_owned(),
        ),
        (
            redis(&format!("url_env = \"REDIS_URL\"\nurl = \"redis://127.0.0.1/{PASSWORD}\"")),
            "store.url: give either url_env (the variable holding the URL) or url, not both"
                .to_owned(),
        ),
        (
            redis(&format!("url_env = \"redis://:{PASSWORD}@cache:6379/\"")),
            "store.url_env: must be the name of an environment variable (letters, digits and _), not the URL itself".to_owned(),
        ),
        (
            redis(&format!("url = \"redis://:{PASSWORD}@cache:6379/\"")),
            format!("store.url: holds a user name or password: {use_env}"),
        ),
        (
            redis(&format!("url = \"rediss://default:{PASSWORD}@cache.example.com:6380/0\"")),
            format!("store.url: holds a user name or password: {use_env}"),
        ),
        (
            redis(&format!("url = \"redis+unix:///run/redis.sock?pass={PASSWORD}\"")),
            format!("store.url: has a query, which may hold a password: {use_env}"),
        ),
        (
            redis(&format!("url = \"https://{PASSWORD}.example.com/\"")),
            "store.url: not a Redis URL (redis://, rediss://, valkey://, valkeys:// or unix://); the URL is not shown".to_owned(),
        ),
        (
            redis(&format!("url = \"{PASSWORD}\"")),
            "store.url: not a Redis URL (redis://, rediss://, valkey://, valkeys:// or unix://); the URL is not shown".to_owned(),
        ),
        (
            redis(&format!("url = {{ password = \"{PASSWORD}\" }}")),
            r#"store.url: must be a Redis URL, as a string, like "redis://127.0.0.1:6379/""#
                .to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nprefix = \"\""),
            "store.prefix: must not be empty, nor hold `{`, `}` or whitespace".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nprefix = \"my app\""),
            "store.prefix: must not be empty, nor hold `{`, `}` or whitespace".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nprefix = \"{app}\""),
            "store.prefix: must not be empty, nor hold `{`, `}` or whitespace".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nreplicas = 0"),
            "store.replicas: must be at least 1 and at most 4294967295".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nreplicas = 5000000000"),
            "store.replicas: must be at least 1 and at most 4294967295".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nreplicas = -1"),
            "store.replicas: invalid value: integer `-1`, expected u64".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nunavailable = \"wait\""),
            "store.unavailable: unknown policy; expected local-share, refuse or admit".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\ntimeout = \"0ms\""),
            "store.timeout: must be greater than 0".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\ntimeout = \"11s\""),
            "store.timeout: must be at most 10s".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\ntimeout = \"soon\""),
            r#"store.timeout: invalid duration: expected a number and a unit, like "500ms", "1.5s" or "2m""#.to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nreconnect_every = \"0s\""),
            "store.reconnect_every: must be greater than 0".to_owned(),
        ),
        (
            redis("url_env = \"REDIS_URL\"\nreconnect_every = \"2m\""),
            "store.reconnect_every: must be at most 60s".to_owned(),
        ),
        (
            redis(&format!("url_env = \"REDIS_URL\"\npassword = \"{PASSWORD}\"")),
            "store.password: unknown field `password`, expected one of `kind`, `url_env`, `url`, `prefix`, `replicas`, `unavailable`, `timeout`, `reconnect_every`".to_owned(),
        ),
    ];
    for (store, expected) in cases {
        let error = StackConfig::from_toml(&with_store(&store)).unwrap_err();
        assert_eq!(error.to_string(), expected, "for {store}");
        assert!(!format!("{error:?}").contains(PASSWORD), "for {store}");
    }

    // Read when the stack is built: a missing variable names it, a value that is no Redis URL
    // is not shown.
    let config = StackConfig::from_toml(&with_store(&redis("url_env = \"REDIS_URL\""))).unwrap();
    let error = config.to_builder_with_env(|_| None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "store.url_env: environment variable REDIS_URL is not set"
    );
    assert_eq!(error.field(), Some("store.url_env"));
    let error = config
        .to_builder_with_env(|_| Some(format!("http://:{PASSWORD}@cache/")))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "store.url_env: the URL in environment variable REDIS_URL is not a Redis URL (redis://, rediss://, valkey://, valkeys:// or unix://); the URL is not shown"
    );
    assert!(!format!("{error:?}").contains(PASSWORD));
}

/// A valid `[store]` gives the builder `with_shared_quota` of the same configuration; the URL
/// — from the environment, with its password, or from the file — shows in no `Debug` output.
#[cfg(feature = "redis")]
#[tokio::test]
async fn store_redis_gives_the_builder_a_shared_quota() {
    use tollgate::ratelimit::redis::{RedisConfig, Unavailable};

    let store = "kind = \"redis\"\nurl_env = \"REDIS_URL\"\nprefix = \"fleet\"\nreplicas = 3\n\
                 unavailable = \"refuse\"\ntimeout = \"20ms\"\nreconnect_every = \"1s\"";
    let config = StackConfig::from_toml(&with_store(store)).unwrap();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:1/");
    let builder = config.to_builder_with_env(|_| Some(url.clone())).unwrap();
    let expected = StackBuilder::new(
        Provider::new(tollgate::stack::ProviderKind::OpenAi)
            .with_name("openai")
            .with_model("gpt-4o")
            .with_limits(Limits::new([Limit::requests(Quota::per_minute(
                std::num::NonZeroU64::new(10).unwrap(),
            ))]))
            .without_adaptive(),
    )
    .with_shared_quota(
        RedisConfig::new(url.clone())
            .with_prefix("fleet")
            .with_replicas(3)
            .with_unavailable(Unavailable::Refuse)
            .with_timeout(ms(20))
            .with_reconnect_every(Duration::from_secs(1)),
    );
    assert_eq!(format!("{builder:?}"), format!("{expected:?}"));
    let stack = builder.clone().build(Wire::new()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{builder:?}"),
        format!("{stack:?}"),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains("127.0.0.1:1"), "{text}");
    }

    // `url` in the file, without a password; `local_share` as `Unavailable::as_str` writes it.
    let store = "kind = \"redis\"\nurl = \"redis://127.0.0.1:1/\"\nunavailable = \"local_share\"";
    let config = StackConfig::from_toml(&with_store(store)).unwrap();
    assert!(!format!("{config:?}").contains("127.0.0.1:1"));
    let builder = config.to_builder_with_env(|_| None).unwrap();
    assert!(format!("{builder:?}").contains("unavailable: LocalShare"));
    builder.build(Wire::new()).unwrap();

    // A provider with several keys and limits: a store per key.
    let pool = POOL.to_owned() + "\n[store]\nkind = \"redis\"\nurl_env = \"REDIS_URL\"\n";
    let config = StackConfig::from_toml(&pool).unwrap();
    let keys_and_url = |name: &str| match name {
        "REDIS_URL" => Some("redis://127.0.0.1:1/".to_owned()),
        other => env(other),
    };
    let builder = config.to_builder_with_env(keys_and_url).unwrap();
    builder.build(Wire::new()).unwrap();
}

/// The sample's commented `[store]`, uncommented, is valid.
#[cfg(feature = "redis")]
#[tokio::test]
async fn the_samples_commented_store_is_valid() {
    let start = SAMPLE.find("# [store]\n").unwrap();
    let block: String = SAMPLE[start..]
        .lines()
        .take_while(|line| !line.is_empty())
        .filter(|line| !line.starts_with("#  "))
        .map(|line| line.strip_prefix("# ").unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let config = StackConfig::from_toml(&format!("{SAMPLE}\n{block}\n")).unwrap();
    let redis = |name: &str| match name {
        "REDIS_URL" => Some("redis://127.0.0.1:1/".to_owned()),
        other => env(other),
    };
    let builder = config.to_builder_with_env(redis).unwrap();
    let text = format!("{builder:?}");
    assert!(text.contains("prefix: \"tollgate\", replicas: 3"), "{text}");
    // Its providers learn their rate (adaptive by default): the shared store runs that too.
    // (Nothing listens on port 1: the stores start unavailable, which is no build error.)
    builder.build(Wire::new()).unwrap();
}

/// Two replicas — two stacks built from one file with `[store] kind = "redis"` — each sent 15
/// requests at once, against a provider limited to 10 requests a minute: together they send
/// exactly 10, where two stacks with their quotas in memory send 20. Two providers of
/// different names never share a quota. On the real clock (Redis's), about 1.5 s.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_from_one_file_share_the_quota_in_redis() {
    let Some(redis) = redis_support::start() else {
        return;
    };
    let url = redis.url();
    let shared = with_store("kind = \"redis\"\nurl_env = \"QUOTA_REDIS_URL\"\nreplicas = 2");
    let redis_env = |name: &str| (name == "QUOTA_REDIS_URL").then(|| url.clone());
    let config = StackConfig::from_toml(&shared).unwrap();
    let replica = || config.to_builder_with_env(redis_env).unwrap();
    assert_eq!(sent_by_two(replica(), replica()).await, 10);

    let local = StackConfig::from_toml(&with_store("")).unwrap();
    let replica = || local.to_builder_with_env(env).unwrap();
    assert_eq!(sent_by_two(replica(), replica()).await, 20);

    // Another provider name, another quota (under `tollgate:other`), in the same Redis.
    let renamed = shared
        .replace("name = \"openai\"", "name = \"other\"")
        .replace("primary = \"openai\"", "primary = \"other\"");
    let renamed = StackConfig::from_toml(&renamed).unwrap();
    let other = renamed.to_builder_with_env(redis_env).unwrap();
    let one_more = config.to_builder_with_env(redis_env).unwrap();
    assert_eq!(sent_by_two(other, one_more).await, 10);
}

/// A provider with two API keys of 5 requests a minute each, in two replicas on one Redis:
/// each key's quota is shared (a store per key), so together they send exactly 5 with each
/// key, where in memory each replica sends 10 with each.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_keys_of_one_provider_share_each_keys_quota_in_redis() {
    let Some(redis) = redis_support::start() else {
        return;
    };
    let url = redis.url();
    let two_keys = |store: &str| {
        with_store(store)
            .replace("requests_per_minute = 10", "requests_per_minute = 5")
            .replace(
                "model = \"gpt-4o\"\n",
                "model = \"gpt-4o\"\napi_key_envs = [\"KEY_A\", \"KEY_B\"]\n",
            )
    };
    let shared = two_keys("kind = \"redis\"\nurl_env = \"QUOTA_REDIS_URL\"\nreplicas = 2");
    let redis_env = |name: &str| match name {
        "QUOTA_REDIS_URL" => Some(url.clone()),
        other => env(other),
    };
    let config = StackConfig::from_toml(&shared).unwrap();
    let replica = || config.to_builder_with_env(redis_env).unwrap();
    let by_key = sent_by_key(replica(), replica()).await;
    let expected = |each: usize| {
        ["Bearer secret-key_a", "Bearer secret-key_b"]
            .into_iter()
            .map(|key| (key.to_owned(), each))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(by_key, expected(5));

    let local = StackConfig::from_toml(&two_keys("")).unwrap();
    let replica = || local.to_builder_with_env(env).unwrap();
    assert_eq!(sent_by_key(replica(), replica()).await, expected(10));
}

/// How many requests reach the transport when the stacks `a` and `b` each get 15 at once,
/// within 500 ms (those still waiting for quota then are dropped; those whose wait would be
/// longer than `max_wait` are refused at once).
#[cfg(feature = "redis")]
async fn sent_by_two(a: StackBuilder, b: StackBuilder) -> usize {
    sent_by_key(a, b).await.values().sum()
}

/// [`sent_by_two`], counted by the request's `authorization` header.
#[cfg(feature = "redis")]
async fn sent_by_key(
    a: StackBuilder,
    b: StackBuilder,
) -> std::collections::BTreeMap<String, usize> {
    use std::sync::{Arc, Mutex};

    let sent = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
    let transport = tower::service_fn({
        let sent = Arc::clone(&sent);
        move |request: Request<BufferedBody>| {
            let key = request
                .headers()
                .get("authorization")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            *sent.lock().unwrap().entry(key).or_insert(0) += 1;
            async {
                let body = http_body_util::Full::new(Bytes::from_static(b"{}"));
                Ok::<_, std::convert::Infallible>(http::Response::new(body))
            }
        }
    });
    let stacks = [
        a.build(transport.clone()).unwrap(),
        b.build(transport).unwrap(),
    ];
    let mut callers = tokio::task::JoinSet::new();
    for stack in &stacks {
        for _ in 0..15 {
            let stack = stack.clone();
            callers
                .spawn(async move { tokio::time::timeout(ms(500), stack.oneshot(chat())).await });
        }
    }
    while let Some(outcome) = callers.join_next().await {
        match outcome.unwrap() {
            Ok(Ok(response)) => assert_eq!(response.status(), StatusCode::OK),
            // Refused at once: its wait behind the requests queued ahead of it on the shared
            // quota was longer than `max_wait` (which requests queue where depends on timing).
            Ok(Err(refused)) => assert!(
                refused
                    .downcast_ref::<tollgate::ratelimit::error::RateLimited>()
                    .is_some(),
                "{refused}"
            ),
            Err(_still_waiting) => {}
        }
    }
    sent.lock().unwrap().clone()
}
