//! [`StackConfig`]: the same stack, declared in TOML.
//!
//! One file per concept: `shapes` is the file's serde shape, `locate` finds the field a toml
//! error is about, `error` is [`ConfigError`], and `validate` turns the shape into providers
//! and chains. Each part of a provider has its module (`keys` for `api_key_env(s)`, `limits`,
//! `adaptive`, `timeouts`, `retry`, `breaker`), as have `[stack.cache]` (`cache`) and `[store]`
//! (`store`); `duration` parses the durations they share, and `names` maps the file's names to
//! other crates' values.

mod adaptive;
mod breaker;
mod cache;
mod duration;
mod error;
mod keys;
mod limits;
mod locate;
mod names;
mod retry;
mod shapes;
mod store;
mod timeouts;
mod validate;

use std::path::Path;

use tollgate_cache::{CacheConfig, CacheLayer};
use tollgate_metrics::MetricsLayer;

pub use self::error::ConfigError;
use self::keys::KeyVariables;
use self::locate::locate;
use self::shapes::RawConfig;
use self::store::QuotaStore;
use self::validate::validate;
use super::builder::StackBuilder;
use super::provider::Provider;
use super::service::{Stack, Transport};

/// A stack declared in TOML: providers, each with its endpoint, key variable, model, limits,
/// retry policy, breaker and concurrency cap, and the chains over them. It builds the same
/// [`Stack`] as [`StackBuilder`].
///
/// [`from_toml`](Self::from_toml) checks everything but the environment; the API keys are read
/// from the variables named by `api_key_env` (or `api_key_envs`) when the stack is built, and
/// never kept in the configuration. `examples/stack.toml` in the repository is a complete,
/// commented sample.
///
/// # Format
///
/// ```toml
/// [[providers]]
/// name = "openai"                       # required, unique; used by [stack] and in errors
/// kind = "openai"                       # required: openai, azure-openai, anthropic, deepseek,
///                                       #   gemini, groq, mistral, openrouter, openai-compatible
/// base_url = "https://api.openai.com"   # default: the kind's; required for azure-openai and
///                                       #   openai-compatible
/// api_key_env = "OPENAI_API_KEY"        # the NAME of the variable holding the key
/// # api_key_envs = ["OPENAI_KEY_A", "OPENAI_KEY_B"]   # instead of api_key_env: several keys
///                                       #   (at most 64), each with its own limits and
///                                       #   breaker, spread by a router
/// # routing = "round-robin"             # with api_key_envs: round-robin (default), weighted,
///                                       #   least-loaded, latency-aware
/// model = "gpt-4o"                      # sets the body's "model"
/// # models = ["gpt-4o", "gpt-4o-mini"]   # without model: the callers' models with a quota
///                                       #   of their own (at most 1,000), besides the known
///                                       #   families; every other name shares one quota
/// # unknown_models = "refuse"           # without model: "share" (default) one quota among
///                                       #   unknown model names, or "refuse" them
/// max_in_flight = 100                   # concurrency cap; default none
/// max_wait = "60s"                      # the longest a request waits for quota, a key or a
///                                       #   slot (default 60s, at most 1h; "0s": never)
/// max_queue = 1024                      # requests that may wait in each queue (default 1024)
/// # api_version = "2024-10-21"          # azure-openai only (refused for other kinds)
///
/// [providers.limits]                    # default: none configured (the rate is learned)
/// preset = "openai-tier-3"              # or "none": no client-side limit at all, unless
///                                       #   [providers.adaptive] is given; explicit values
///                                       #   below override the preset
/// requests_per_minute = 10000           # also requests_per_day, tokens_per_minute,
/// tokens_per_minute = 10000000          #   tokens_per_day, input_tokens_per_minute,
///                                       #   output_tokens_per_minute
/// algorithm = "token-bucket"            # gcra, fixed-window, sliding-window-log,
///                                       #   sliding-window-counter
///
/// [providers.adaptive]                  # default: on, learning the request rate (with no
///                                       #   limits) or keeping limits as ceilings
/// preset = "default"                    # or "none" (off: a 429 pauses the key instead)
/// initial_requests_per_minute = 600     # where slow start begins: default 600 (10/s)
/// floor_requests_per_minute = 6         # never below: default 6 (1 per 10 s)
/// ceiling_requests_per_minute = 6000    # never above: default none
///
/// [providers.timeouts]                  # time limits per attempt; default: the kind's preset
/// preset = "default"                    # the kind's; or none, openai, anthropic, gemini,
///                                       #   deepseek; the values below override it
/// response_head = "10m"                 # to the status and headers
/// first_chunk = "10m"                   # from the head to the first token
/// idle = "2m"                           # between chunks of real data (keep-alives don't count)
/// total = "30m"                         # from the call to the end of the body
///
/// [providers.retry]                     # default: preset "default"
/// preset = "default"                    # "default", "openai" or "none" (no retries, and
///                                       #   no other setting)
/// max_retries = 3
/// max_overloaded_retries = 2
/// base_delay = "500ms"                  # durations: "250ms", "1.5s", "2m", "1h"
/// max_delay = "8s"
/// jitter = "full"                       # none, full, equal, decorrelated, sdk (75–100 %)
/// min_delay = "50ms"
/// max_server_delay = "120s"             # longer server-requested waits are not retried
/// server_delay_spread = "50%"           # a server's delay is a floor, up to this much of it
///                                       #   more at random: "none" (preset "openai"),
///                                       #   "default" (50 %, at most 5 s), or a percentage
/// server_delay_spread_max = "5s"        # the most a spread adds
/// # total_time = "5m"
///
/// [providers.breaker]                   # default: preset "default"
/// preset = "default"                    # or "none" (no breaker)
/// consecutive_failures = 5
/// open_for = "60s"
/// open_growth = 2
/// max_open_for = "10m"
/// probes = 3
///
/// [stack]
/// primary = "openai"                    # a provider's name
/// fallback = ["anthropic"]              # in order
/// context_window = ["openai-long"]      # after context_length_exceeded, in order
///
/// [stack.cache]                         # default: no cache; an empty table: the defaults
/// ttl = "5m"                            # how long an answer is served: default 5m
/// max_entries = 10000                   # default 10000, at most 4294967295
/// max_bytes = 67108864                  # all entries together: default 64 MiB
/// max_entry_bytes = 1048576             # the largest body stored: default 1 MiB (or
///                                       #   max_bytes if smaller), at most max_bytes
/// deterministic = false                 # also cache "temperature": 0 requests that did not
///                                       #   opt in (x-tollgate-cache: on)
/// shared_across_callers = false         # serve one caller's answers to another
///
/// [store]                               # where the quotas live; default: kind = "memory"
/// kind = "redis"                        # "memory" (each process its own) or "redis" (shared
///                                       #   by every replica; the `redis` feature)
/// url_env = "REDIS_URL"                 # the NAME of the variable holding the Redis URL
/// # url = "redis://127.0.0.1:6379/"     # instead of url_env: a URL without a password
/// prefix = "tollgate"                   # the start of every key (default "tollgate")
/// replicas = 3                          # how many replicas share the quota (default 1)
/// unavailable = "local-share"           # while Redis is away: local-share (1/replicas of
///                                       #   each limit; default), refuse, admit
/// timeout = "50ms"                      # the longest a call to Redis may take (default
///                                       #   50ms, at most 10s)
/// reconnect_every = "250ms"             # how often to try Redis again once lost (default
///                                       #   250ms, at most 60s)
/// ```
///
/// Limit presets: `openai-tier-1` … `openai-tier-5`; `anthropic-opus-4-7`,
/// `anthropic-sonnet-4`, `anthropic-haiku-4`; `gemini-{free,pay-as-you-go,enterprise}-{pro,flash}`;
/// `deepseek-{starter,basic,standard,enterprise}`; `none`.
///
/// With `api_key_envs`, each variable holds one key of the provider, and the provider's stack
/// spreads its requests over them as `routing` says, each key with its own copy of
/// `[providers.limits]` and `[providers.breaker]` (the default breaker when `preset = "none"`);
/// see [Several API keys](Provider#several-api-keys). `weighted` weighs every key 1, so it
/// spreads evenly. A list of one is the same as `api_key_env`; `routing` is ignored with one
/// key.
///
/// `[stack.cache]` puts a [`CacheLayer`] above the fallback, under any metrics (see
/// [`StackBuilder::with_cache`]): requests that opt in with `x-tollgate-cache: on` (and, with
/// `deterministic = true`, requests with `"temperature": 0`) are answered from it when an
/// identical one was answered within `ttl`, without reaching a provider. Each
/// [`to_builder`](Self::to_builder) (and so each [`build`](Self::build)) makes a new, empty
/// cache; [`Stack::cache`] gives a handle on it.
///
/// `[store]` with `kind = "redis"` keeps every provider's quota in Redis
/// (`StackBuilder::with_shared_quota`), under
/// `<prefix>:<provider name>`: every process built from the same file shares each provider's
/// quota, and two providers never share one. The URL may hold a password, so it is read from
/// the variable `url_env` names when the stack is built, like the API keys; `url` is accepted
/// only without user info or query, and no error or `Debug` output shows either. It needs the
/// `redis` feature (without it, `kind = "redis"` is an error naming it) and a tokio runtime
/// when the stack is built. A provider with several keys (`api_key_envs`) keeps each key's
/// quota under `<prefix>:<provider name>:key-<i>`, `i` its place in the list.
///
/// Every key is checked: an unknown one is an error, and so is `api_key` (keys do not belong in
/// files). Errors name the field: `providers[1].limits.requests_per_minute: must be greater
/// than 0`, `stack.cache.max_entries: must be greater than 0`,
/// `providers[0].api_key_envs[2]: environment variable OPENAI_KEY_C is not set`. They never
/// quote a value that may be a secret — a URL, a name that is not one of the accepted ones
/// (`providers[0].kind: unknown kind; expected one of openai, …`), a malformed duration, a
/// value of the wrong type — and `Debug` output shows URLs only redacted
/// ([`redact::url`](crate::redact::url)).
///
/// Every duration has an upper bound, and a longer one is refused naming the field
/// (`providers[0].breaker.open_for: must be at most 24h`): an hour for what a retry sleeps
/// (`base_delay`, `max_delay`, `min_delay`, `max_server_delay`, `server_delay_spread_max`), a
/// day for the rest (`total_time`, `open_for`, `max_open_for`, `[providers.timeouts]`,
/// `[stack.cache] ttl`), and `[store]`'s own (10s, 60s).
///
/// See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct StackConfig {
    providers: Vec<Configured>,
    primary: usize,
    fallback: Vec<usize>,
    context_window: Vec<usize>,
    cache: Option<CacheConfig>,
    store: QuotaStore,
}

/// One provider of the configuration, without its keys.
#[derive(Debug, Clone)]
struct Configured {
    provider: Provider,
    keys: KeyVariables,
}

impl StackConfig {
    /// Parses and checks a configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] for text that is not TOML; [`ConfigError::Invalid`] for a
    /// missing, unknown, mistyped or invalid field, or a chain naming no provider.
    pub fn from_toml(text: &str) -> Result<StackConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| locate(text, &error))?;
        validate(raw)
    }

    /// Reads, parses and checks a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read; otherwise as
    /// [`from_toml`](Self::from_toml).
    pub fn from_file(path: impl AsRef<Path>) -> Result<StackConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        StackConfig::from_toml(&text)
    }

    /// The stack's builder, with the API keys read from the environment: to add a
    /// [`MetricsLayer`] or a [`FallbackPolicy`](crate::fallback::FallbackPolicy) before
    /// building. Only the providers `[stack]` names are in it, and only their variables are
    /// read; the others were checked, and are left out. With `[stack.cache]`, it has a new
    /// [`CacheLayer`] of that configuration, with an empty store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingEnv`] when a variable named by `api_key_env`, `api_key_envs` or
    /// `[store] url_env` is not set (or not Unicode); [`ConfigError::Invalid`] when a key cannot
    /// be a header, or the URL is not a Redis URL.
    pub fn to_builder(&self) -> Result<StackBuilder, ConfigError> {
        self.to_builder_with_env(|name| std::env::var(name).ok())
    }

    /// As [`to_builder`](Self::to_builder), reading each `api_key_env` and `api_key_envs`
    /// variable, and `[store] url_env`, with `env` instead of the process environment (a
    /// secret store, a test).
    ///
    /// # Errors
    ///
    /// As [`to_builder`](Self::to_builder).
    pub fn to_builder_with_env(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<StackBuilder, ConfigError> {
        let provider = |index: usize| -> Result<Provider, ConfigError> {
            let configured = &self.providers[index];
            configured
                .keys
                .read(configured.provider.clone(), index, &env)
        };
        let mut builder = StackBuilder::new(provider(self.primary)?);
        for &index in &self.fallback {
            builder = builder.with_fallback(provider(index)?);
        }
        for &index in &self.context_window {
            builder = builder.with_context_window_fallback(provider(index)?);
        }
        if let Some(cache) = &self.cache {
            builder = builder.with_cache(CacheLayer::new(cache.clone()));
        }
        match &self.store {
            QuotaStore::Memory => {}
            #[cfg(feature = "redis")]
            QuotaStore::Redis(shared) => {
                builder = builder.with_shared_quota(shared.read("store", &env)?);
            }
        }
        Ok(builder)
    }

    /// Builds the stack over `transport` ([`StackBuilder::build`]), with the API keys read
    /// from the environment.
    ///
    /// # Errors
    ///
    /// As [`to_builder`](Self::to_builder), and [`ConfigError::Build`] should the builder
    /// refuse what the checks let through.
    pub fn build<T: Transport>(&self, transport: T) -> Result<Stack, ConfigError> {
        Ok(self.to_builder()?.build(transport)?)
    }

    /// As [`build`](Self::build), recording with `metrics`, outermost.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_with_metrics<T: Transport>(
        &self,
        transport: T,
        metrics: MetricsLayer,
    ) -> Result<Stack, ConfigError> {
        Ok(self.to_builder()?.with_metrics(metrics).build(transport)?)
    }

    /// The providers, in the file's order.
    pub fn providers(&self) -> impl ExactSizeIterator<Item = &Provider> {
        self.providers.iter().map(|c| &c.provider)
    }

    /// The primary provider.
    pub fn primary(&self) -> &Provider {
        &self.providers[self.primary].provider
    }

    /// The fallback chain, in order.
    pub fn fallback(&self) -> impl ExactSizeIterator<Item = &Provider> {
        self.fallback.iter().map(|&i| &self.providers[i].provider)
    }

    /// The context-window chain, in order.
    pub fn context_window(&self) -> impl ExactSizeIterator<Item = &Provider> {
        self.context_window
            .iter()
            .map(|&i| &self.providers[i].provider)
    }

    /// The cache's configuration, from `[stack.cache]`: `None` without one.
    pub fn cache(&self) -> Option<&CacheConfig> {
        self.cache.as_ref()
    }
}
