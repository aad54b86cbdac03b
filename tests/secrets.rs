//! No secret in any output: configurations (TOML) and builders are seeded with marker secrets
//! in every place a secret could land — API keys read from the environment, user info, query
//! values and fragments of URLs, a secret pasted into an enumeration, a duration, a field of
//! the wrong type or a chain, the Redis URL (with the `redis` feature) — and every error
//! (`Display`, `Debug` and each `source`) and every `Debug` output reachable from them
//! (`StackConfig`, `StackBuilder`, `Provider`, `Stack`, `UnknownKind`) is searched for the
//! markers. None may appear.
//!
//! What is shown by design is not seeded: providers' names, models and Azure API versions (in
//! metrics, errors and `Debug`), a Redis prefix, the keys of the file (`` unknown field `…` ``), and the names of environment
//! variables (a name that is a valid variable name is taken for one).

#![cfg(feature = "stack")]

use std::convert::Infallible;
use std::error::Error;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tollgate::body::BufferedBody;
use tollgate::stack::{Provider, ProviderKind, Stack, StackBuilder, StackConfig, StackError};

/// What every marker starts with: the test searches for it.
const MARKER: &str = "MARKER-SECRET";

/// A transport answering `{}` to everything.
fn wire() -> impl tollgate::stack::Transport {
    tower::service_fn(|_: Request<BufferedBody>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
    })
}

/// Asserts that `text`, shown for `what`, holds no marker.
fn clean(what: &str, text: &str) {
    assert!(!text.contains(MARKER), "a secret in {what}: {text}");
}

/// Asserts that `error`'s `Display` and `Debug`, and those of every error in its source chain,
/// hold no marker.
fn clean_error(what: &str, error: &(dyn Error + 'static)) {
    let mut next = Some(error);
    while let Some(error) = next {
        clean(what, &error.to_string());
        clean(what, &format!("{error:?}"));
        next = error.source();
    }
}

/// Every marker-free output of `config`: its `Debug`, each provider's, and then those of the
/// builder and stack it makes with `env` — or their errors.
fn check_config(what: &str, config: &StackConfig, env: impl Fn(&str) -> Option<String>) {
    clean(what, &format!("{config:?}"));
    for provider in config.providers() {
        clean(what, &format!("{provider:?}"));
    }
    match config.to_builder_with_env(env) {
        Err(error) => clean_error(what, &error),
        Ok(builder) => check_builder(what, builder),
    }
}

/// Every marker-free output of `builder`: its `Debug`, then the built stack's `Debug` or the
/// error.
fn check_builder(what: &str, builder: StackBuilder) {
    clean(what, &format!("{builder:?}"));
    match builder.build(wire()) {
        Err(error) => clean_error(what, &error),
        Ok(stack) => check_stack(what, &stack),
    }
}

fn check_stack(what: &str, stack: &Stack) {
    clean(what, &format!("{stack:?}"));
}

/// One provider, `extra` added to it, and its stack.
fn one_provider(extra: &str) -> String {
    format!("[[providers]]\nname = \"p\"\nkind = \"openai\"\n{extra}\n\n[stack]\nprimary = \"p\"\n")
}

/// `text` parsed, and everything it shows or makes checked, the keys read from `env`.
fn check_text(text: &str, env: impl Fn(&str) -> Option<String>) {
    match StackConfig::from_toml(text) {
        Err(error) => clean_error(text, &error),
        Ok(config) => check_config(text, &config, env),
    }
}

/// Every variable holds a marker.
fn marked_env(name: &str) -> Option<String> {
    Some(format!("{MARKER}-env-{name}"))
}

/// Configurations with a marker in each place a secret could be pasted, or read from: the
/// errors and `Debug` outputs show none.
#[test]
fn no_configuration_shows_a_secret() {
    let m = |n: u32| format!("{MARKER}-{n}");
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut texts = vec![
        // Keys from the environment: valid, and not valid as a header.
        one_provider("api_key_env = \"OPENAI_API_KEY\""),
        one_provider("api_key_envs = [\"KEY_A\", \"KEY_B\", \"KEY_C\"]"),
        // Keys pasted where they do not belong.
        one_provider(&format!("api_key = \"{}\"", m(1))),
        one_provider(&format!("api_key_env = \"{}\"", m(2))),
        one_provider(&format!("api_key_envs = [\"KEY_A\", \"{}\"]", m(3))),
        one_provider(&format!("api_key_envs = \"{}\"", m(4))),
        one_provider(&format!("api_key_envs = [{{ key = \"{}\" }}]", m(5))),
        // Secrets in base URLs: user info, query values, fragment; not a URL at all.
        one_provider(&format!(
            "base_url = \"https://user:{}@api.example.com/v1\"",
            m(6)
        )),
        one_provider(&format!("base_url = \"https://:{}@api.example.com\"", m(7))),
        one_provider(&format!(
            "base_url = \"https://api.example.com/v1?key={}\"",
            m(8)
        )),
        one_provider(&format!(
            "base_url = \"https://api.example.com/v1?api-version=1&key={}\"",
            m(9)
        )),
        one_provider(&format!(
            "base_url = \"https://api.example.com/v1#{}\"",
            m(10)
        )),
        one_provider(&format!("base_url = \"{}\"", m(11))),
        one_provider(&format!("base_url = \"ftp://{}@example.com\"", m(12))),
        one_provider(&format!("base_url = \"https://api.example.com:{}\"", m(13))),
        one_provider(&format!(
            "base_url = \"https://api.example.com/{} x\"",
            m(14)
        )),
        // Secrets pasted into enumerations, durations and fields of another type.
        one_provider(&format!(
            "routing = \"{}\"\napi_key_envs = [\"A\", \"B\"]",
            m(20)
        )),
        one_provider(&format!("limits = {{ preset = \"{}\" }}", m(21))),
        one_provider(&format!(
            "limits = {{ algorithm = \"{}\", requests_per_minute = 5 }}",
            m(22)
        )),
        one_provider(&format!("adaptive = {{ preset = \"{}\" }}", m(23))),
        one_provider(&format!("timeouts = {{ preset = \"{}\" }}", m(24))),
        one_provider(&format!("timeouts = {{ total = \"{}\" }}", m(25))),
        one_provider(&format!("retry = {{ preset = \"{}\" }}", m(26))),
        one_provider(&format!("retry = {{ jitter = \"{}\" }}", m(27))),
        one_provider(&format!("retry = {{ base_delay = \"{}\" }}", m(28))),
        one_provider(&format!(
            "retry = {{ server_delay_spread = \"{}\" }}",
            m(29)
        )),
        one_provider(&format!("retry = {{ max_retries = \"{}\" }}", m(30))),
        one_provider(&format!("breaker = {{ preset = \"{}\" }}", m(31))),
        one_provider(&format!("breaker = {{ open_for = \"{}\" }}", m(32))),
        one_provider(&format!("max_in_flight = \"{}\"", m(33))),
        one_provider(&format!("api_version = \"{}\"", m(34))),
        one_provider("").replace("kind = \"openai\"", &format!("kind = \"{}\"", m(35))),
        one_provider(&format!(
            "base_url = \"https://x.openai.azure.com\"\napi_version = \"{} x\"",
            m(36)
        ))
        .replace("kind = \"openai\"", "kind = \"azure-openai\""),
        one_provider("").replace("primary = \"p\"", &format!("primary = \"{}\"", m(37))),
        one_provider("") + &format!("fallback = [\"{}\"]\n", m(38)),
        one_provider("") + &format!("context_window = [\"{}\"]\n", m(39)),
        one_provider("") + &format!("\n[stack.cache]\nttl = \"{}\"\n", m(40)),
        one_provider("") + &format!("\n[stack.cache]\ndeterministic = \"{}\"\n", m(41)),
        one_provider("") + &format!("\n[store]\nkind = \"{}\"\n", m(42)),
        // Syntax errors next to a secret.
        format!(
            "[[providers]]\nname = \"p\"\napi_key = \"{}\" oops\n",
            m(43)
        ),
        format!("[[providers]]\nname = \"p\"\nkind = \"{}\n", m(44)),
    ];
    #[cfg(feature = "redis")]
    texts.extend([
        redis(&format!("url = \"redis://:{}@cache:6379/\"", m(50))),
        redis(&format!("url = \"redis://cache:6379/?password={}\"", m(51))),
        redis(&format!("url = \"https://{}.example.com/\"", m(52))),
        redis(&format!("url = \"{}\"", m(53))),
        redis(&format!("url = {{ password = \"{}\" }}", m(54))),
        redis(&format!("url_env = \"redis://:{}@cache/\"", m(55))),
        redis(&format!(
            "url_env = \"REDIS_URL\"\nunavailable = \"{}\"",
            m(56)
        )),
        redis(&format!("url_env = \"REDIS_URL\"\ntimeout = \"{}\"", m(57))),
        redis(&format!(
            "url_env = \"REDIS_URL\"\nprefix = \"{} x\"",
            m(58)
        )),
        redis(&format!(
            "url_env = \"REDIS_URL\"\nreplicas = \"{}\"",
            m(59)
        )),
        redis("url_env = \"REDIS_URL\""),
        redis("url = \"redis://cache:6379/\""),
    ]);
    for text in &texts {
        check_text(text, marked_env);
        // Keys that cannot be headers: refused without being quoted.
        check_text(text, |name| Some(format!("{MARKER}-{name}\n")));
        // No variable set.
        check_text(text, |_| None);
    }
    // The Redis URL from the environment: with a password and query, not a Redis URL, or
    // not a URL.
    #[cfg(feature = "redis")]
    for url in [
        format!("redis://:{}@127.0.0.1:1/?password={}", m(60), m(61)),
        format!("https://{}@example.com/", m(62)),
        m(63),
    ] {
        let config = StackConfig::from_toml(&redis("url_env = \"REDIS_URL\"")).unwrap();
        let env = |name: &str| match name {
            "REDIS_URL" => Some(url.clone()),
            _ => marked_env(name),
        };
        check_config(&url, &config, env);
        // Built on a runtime (the store connects in the background; nothing listens).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        check_config(&url, &config, env);
    }
}

/// A configuration with `[store] kind = "redis"` and `rest`.
#[cfg(feature = "redis")]
fn redis(rest: &str) -> String {
    one_provider("limits = { requests_per_minute = 5 }")
        + &format!("\n[store]\nkind = \"redis\"\n{rest}\n")
}

/// Providers and builders given marker secrets in code: their `Debug`, the builder's and the
/// stack's, and every build error, show none.
#[test]
fn no_builder_shows_a_secret() {
    let m = |n: u32| format!("{MARKER}-{n}");
    let urls = [
        format!("https://user:{}@api.example.com/v1", m(1)),
        format!("https://api.example.com/v1?key={}", m(2)),
        format!(
            "https://api.example.com/v1?api-version=1&sig={}#{}",
            m(3),
            m(4)
        ),
        m(5),
        format!("ftp://{}@example.com", m(6)),
        format!("https://api.example.com:{}/", m(7)),
        format!("https://api.example.com/{} x", m(8)),
    ];
    let keys = [m(10), format!("{}\n", m(11)), String::new()];
    let mut providers = Vec::new();
    for url in &urls {
        providers.push(Provider::openai_compatible(url).with_name("p"));
        providers.push(
            Provider::new(ProviderKind::AzureOpenAi)
                .with_base_url(url)
                .with_api_version("2024-10-21"),
        );
    }
    for key in &keys {
        providers.push(Provider::groq().with_api_key(key));
        providers.push(Provider::groq().with_api_keys([m(13), key.clone(), m(13)]));
        providers.push(Provider::groq().with_api_keys([m(14), key.clone()]));
    }
    providers.push(Provider::groq().with_api_keys((0..65).map(|i| format!("{}-{i}", m(15)))));
    for provider in providers {
        clean("a provider", &format!("{provider:?}"));
        check_builder("a builder", StackBuilder::new(provider.clone()));
        check_builder(
            "a fallback",
            StackBuilder::new(Provider::groq().with_api_key(m(16))).with_fallback(provider.clone()),
        );
        check_builder(
            "a context-window fallback",
            StackBuilder::new(Provider::groq().with_api_key(m(17)))
                .with_context_window_fallback(provider),
        );
    }
    // Two different providers under one name: the error names the name only.
    let error = StackBuilder::new(Provider::groq().with_api_key(m(18)))
        .with_fallback(Provider::groq().with_api_key(m(19)))
        .build(wire())
        .unwrap_err();
    assert!(matches!(error, StackError::ConflictingProviders { .. }));
    clean_error("conflicting providers", &error);

    // A secret parsed as a kind.
    let unknown = m(20).parse::<ProviderKind>().unwrap_err();
    clean_error("an unknown kind", &unknown);
    assert_eq!(unknown.name(), m(20), "the caller can still have it");
}

/// The shared quota's Redis URL, with a password and a query, shows in no `Debug` output nor
/// error, built outside a runtime (an error) and inside one.
#[cfg(feature = "redis")]
#[test]
fn no_shared_quota_shows_its_url() {
    use tollgate::ratelimit::redis::RedisConfig;

    let m = |n: u32| format!("{MARKER}-{n}");
    let limited = || {
        Provider::groq()
            .with_api_key(m(1))
            .with_limits(tollgate::ratelimit::Limits::new([
                tollgate::ratelimit::Limit::requests(
                    tollgate::ratelimit::algorithm::Quota::per_minute(
                        std::num::NonZeroU64::new(5).unwrap(),
                    ),
                ),
            ]))
    };
    for url in [
        format!(
            "redis://user:{}@127.0.0.1:1/0?password={}#{}",
            m(2),
            m(3),
            m(4)
        ),
        m(5),
    ] {
        let config = RedisConfig::new(url.clone());
        clean("a Redis configuration", &format!("{config:?}"));
        // A prefix Redis refuses too: the error names the provider.
        for prefix in ["ok", "my app"] {
            let builder = || {
                StackBuilder::new(limited()).with_shared_quota(config.clone().with_prefix(prefix))
            };
            check_builder("a shared quota, no runtime", builder());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _entered = runtime.enter();
            check_builder("a shared quota", builder());
        }
    }
}
