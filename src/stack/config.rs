//! [`StackConfig`]: the same stack, declared in TOML.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tollgate_cache::{CacheConfig, CacheLayer};
use tollgate_circuit_breaker::{BreakerConfig, Trip};
use tollgate_core::Dimension;
use tollgate_core::headers::go_duration;
use tollgate_metrics::MetricsLayer;
use tollgate_ratelimit::adaptive::{Adaptive, Rate};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::presets::{
    AnthropicModel, DeepSeekLevel, GeminiModel, GeminiPlan, OpenAiTier,
};
use tollgate_ratelimit::{AlgorithmKind, Limit, Limits};
use tollgate_retry::{Backoff, Jitter, RetryPolicy, Spread};
use tollgate_router::Strategy;
use tollgate_timeout::TimeoutConfig;

use super::builder::StackBuilder;
use super::error::StackError;
use super::provider::{
    Provider, ProviderKind, check_api_version, credentials, endpoint, shown_url,
};
use super::service::{Stack, Transport};

// ===== the file's shape =====

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers: Vec<RawProvider>,
    stack: RawStack,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    primary: String,
    #[serde(default)]
    fallback: Vec<String>,
    #[serde(default)]
    context_window: Vec<String>,
    cache: Option<RawCache>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    ttl: Option<String>,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    max_entry_bytes: Option<u64>,
    deterministic: Option<bool>,
    shared_across_callers: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    kind: String,
    base_url: Option<String>,
    api_key_env: Option<String>,
    /// Checked by hand: serde's messages would quote a key pasted here as a string.
    api_key_envs: Option<toml::Value>,
    routing: Option<String>,
    /// Refused with a message that does not quote it.
    api_key: Option<IgnoredAny>,
    api_version: Option<String>,
    model: Option<String>,
    max_in_flight: Option<u64>,
    limits: Option<RawLimits>,
    adaptive: Option<RawAdaptive>,
    timeouts: Option<RawTimeouts>,
    retry: Option<RawRetry>,
    breaker: Option<RawBreaker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    preset: Option<String>,
    requests_per_minute: Option<u64>,
    requests_per_day: Option<u64>,
    tokens_per_minute: Option<u64>,
    tokens_per_day: Option<u64>,
    input_tokens_per_minute: Option<u64>,
    output_tokens_per_minute: Option<u64>,
    algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdaptive {
    preset: Option<String>,
    initial_requests_per_minute: Option<u64>,
    floor_requests_per_minute: Option<u64>,
    ceiling_requests_per_minute: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    preset: Option<String>,
    response_head: Option<String>,
    first_chunk: Option<String>,
    idle: Option<String>,
    total: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    preset: Option<String>,
    max_retries: Option<u32>,
    max_overloaded_retries: Option<u32>,
    base_delay: Option<String>,
    max_delay: Option<String>,
    jitter: Option<String>,
    min_delay: Option<String>,
    max_server_delay: Option<String>,
    server_delay_spread: Option<String>,
    server_delay_spread_max: Option<String>,
    total_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    preset: Option<String>,
    consecutive_failures: Option<u32>,
    open_for: Option<String>,
    open_growth: Option<u32>,
    max_open_for: Option<String>,
    probes: Option<u32>,
}

// ===== the validated configuration =====

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
/// max_in_flight = 100                   # concurrency cap; default none
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
/// [`StackBuilder::cache`]): requests that opt in with `x-tollgate-cache: on` (and, with
/// `deterministic = true`, requests with `"temperature": 0`) are answered from it when an
/// identical one was answered within `ttl`, without reaching a provider. Each
/// [`to_builder`](Self::to_builder) (and so each [`build`](Self::build)) makes a new, empty
/// cache; [`Stack::cache`] gives a handle on it.
///
/// Every key is checked: an unknown one is an error, and so is `api_key` (keys do not belong in
/// files). Errors name the field: `providers[1].limits.requests_per_minute: must be greater
/// than 0`, `stack.cache.max_entries: must be greater than 0`,
/// `providers[0].api_key_envs[2]: environment variable OPENAI_KEY_C is not set`.
///
/// See the [module docs](super) for an example.
#[derive(Debug, Clone)]
pub struct StackConfig {
    providers: Vec<Configured>,
    primary: usize,
    fallback: Vec<usize>,
    context_window: Vec<usize>,
    cache: Option<CacheConfig>,
}

/// One provider of the configuration, without its keys.
#[derive(Debug, Clone)]
struct Configured {
    provider: Provider,
    keys: KeyVariables,
}

/// Where a provider's keys are read from: the variables' names, never the keys.
#[derive(Debug, Clone)]
enum KeyVariables {
    /// No key: requests keep the caller's credentials.
    None,
    /// `api_key_env`.
    One(String),
    /// `api_key_envs`.
    Many(Vec<String>),
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
    /// [`ConfigError::MissingEnv`] when a variable named by `api_key_env` or `api_key_envs` is
    /// not set (or not Unicode); [`ConfigError::Invalid`] when its value cannot be a header.
    pub fn to_builder(&self) -> Result<StackBuilder, ConfigError> {
        self.to_builder_with_env(|name| std::env::var(name).ok())
    }

    /// As [`to_builder`](Self::to_builder), reading each `api_key_env` and `api_key_envs`
    /// variable with `env` instead of the process environment (a secret store, a test).
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
            // The key in `variable`, checked; `field` names where the variable was given.
            let read = |field: String, variable: &String| -> Result<String, ConfigError> {
                let key = env(variable).ok_or_else(|| ConfigError::MissingEnv {
                    field: field.clone(),
                    variable: variable.clone(),
                })?;
                if credentials(configured.provider.kind(), &key).is_none() {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!(
                            "the key in environment variable {variable} is empty or not a valid header value"
                        ),
                    });
                }
                Ok(key)
            };
            let provider = configured.provider.clone();
            Ok(match &configured.keys {
                KeyVariables::None => provider,
                KeyVariables::One(variable) => {
                    provider.api_key(read(format!("providers[{index}].api_key_env"), variable)?)
                }
                KeyVariables::Many(variables) => {
                    let keys = variables
                        .iter()
                        .enumerate()
                        .map(|(j, variable)| {
                            read(format!("providers[{index}].api_key_envs[{j}]"), variable)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    provider.api_keys(keys)
                }
            })
        };
        let mut builder = StackBuilder::new(provider(self.primary)?);
        for &index in &self.fallback {
            builder = builder.fallback(provider(index)?);
        }
        for &index in &self.context_window {
            builder = builder.context_window_fallback(provider(index)?);
        }
        if let Some(cache) = &self.cache {
            builder = builder.cache(CacheLayer::new(cache.clone()));
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
        Ok(self.to_builder()?.metrics(metrics).build(transport)?)
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

// ===== errors =====

/// Why a configuration could not be read, parsed, checked or built. It names the field
/// (`providers[1].limits.requests_per_minute`) and never holds an API key.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML.
    Syntax {
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What the parser says.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or has a value that cannot work.
    Invalid {
        /// The field's path: `providers[1].limits.requests_per_minute`, `stack.fallback[0]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The environment variable an `api_key_env` or `api_key_envs` names is not set (or not
    /// Unicode).
    MissingEnv {
        /// The field's path: `providers[0].api_key_env`, `providers[0].api_key_envs[1]`.
        field: String,
        /// The variable's name.
        variable: String,
    },
    /// The builder refused the configuration.
    Build(StackError),
}

impl ConfigError {
    /// The path of the field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::MissingEnv { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Syntax {
                line,
                column,
                message,
            } => write!(f, "line {line}, column {column}: {message}"),
            ConfigError::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            ConfigError::MissingEnv { field, variable } => {
                write!(f, "{field}: environment variable {variable} is not set")
            }
            ConfigError::Build(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Build(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StackError> for ConfigError {
    fn from(error: StackError) -> Self {
        ConfigError::Build(error)
    }
}

// ===== where a serde error is =====

/// Turns toml's error into one naming the field. toml's own `Display` quotes the offending
/// line, which could hold a key: only its message is used.
fn locate(text: &str, error: &toml::de::Error) -> ConfigError {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| line_and_column(text, span.start));
        return ConfigError::Syntax {
            line,
            column,
            message: error.message().trim().to_owned(),
        };
    };
    match find_field(&toml::Value::Table(table)) {
        Some((field, reason)) => ConfigError::Invalid { field, reason },
        None => ConfigError::invalid("(root)", error.message().trim()),
    }
}

/// The field at fault in `root`, deepest first.
fn find_field(root: &toml::Value) -> Option<(String, String)> {
    if let Some(toml::Value::Array(providers)) = root.get("providers") {
        for (i, provider) in providers.iter().enumerate() {
            let path = format!("providers[{i}]");
            for (key, found) in [
                ("limits", locate_in::<RawLimits> as Locator),
                ("adaptive", locate_in::<RawAdaptive>),
                ("timeouts", locate_in::<RawTimeouts>),
                ("retry", locate_in::<RawRetry>),
                ("breaker", locate_in::<RawBreaker>),
            ] {
                if let Some(value) = provider.get(key) {
                    if let Some(found) = found(value, &format!("{path}.{key}")) {
                        return Some(found);
                    }
                }
            }
            if let Some(found) = locate_in::<RawProvider>(provider, &path) {
                return Some(found);
            }
        }
    }
    if let Some(stack) = root.get("stack") {
        if let Some(cache) = stack.get("cache") {
            if let Some(found) = locate_in::<RawCache>(cache, "stack.cache") {
                return Some(found);
            }
        }
        if let Some(found) = locate_in::<RawStack>(stack, "stack") {
            return Some(found);
        }
    }
    locate_in::<RawConfig>(root, "")
}

type Locator = fn(&toml::Value, &str) -> Option<(String, String)>;

/// Whether `value` is not a `T`, and if so the field at fault: the key whose removal makes
/// it one (or only leaves a missing field), else `path` itself.
fn locate_in<T: DeserializeOwned>(value: &toml::Value, path: &str) -> Option<(String, String)> {
    let error = T::deserialize(value.clone()).err()?;
    let message = error.message().trim().to_owned();
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return Some((join(missing), "required, but missing".to_owned()));
    }
    if let toml::Value::Table(table) = value {
        for key in table.keys() {
            let mut without = table.clone();
            without.remove(key);
            match T::deserialize(toml::Value::Table(without)) {
                Ok(_) => return Some((join(key), message)),
                Err(other) if other.message().starts_with("missing field") => {
                    return Some((join(key), message));
                }
                Err(_) => {}
            }
        }
    }
    let path = if path.is_empty() { "(root)" } else { path };
    Some((path.to_owned(), message))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    // Bytes, so that an offset inside a character cannot panic.
    let before = &text.as_bytes()[..offset.min(text.len())];
    let before = String::from_utf8_lossy(before);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

// ===== checks =====

fn validate(raw: RawConfig) -> Result<StackConfig, ConfigError> {
    let mut providers: Vec<Configured> = Vec::with_capacity(raw.providers.len());
    let mut names: Vec<String> = Vec::with_capacity(raw.providers.len());
    for (i, p) in raw.providers.into_iter().enumerate() {
        let path = format!("providers[{i}]");
        if p.name.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                "must not be empty",
            ));
        }
        if let Some(earlier) = names.iter().position(|n| *n == p.name) {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                format!("duplicate name {:?} (also providers[{earlier}])", p.name),
            ));
        }
        names.push(p.name.clone());
        let configured = provider(&path, p)?;
        providers.push(configured);
    }
    let find = |field: String, name: &str| -> Result<usize, ConfigError> {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| ConfigError::invalid(field, format!("no provider named {name:?}")))
    };
    let primary = find("stack.primary".to_owned(), &raw.stack.primary)?;
    // The providers a chain of `[stack]` names, by index.
    let chain = |key: &str, names: &[String]| {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| find(format!("stack.{key}[{i}]"), name))
            .collect::<Result<Vec<_>, _>>()
    };
    let fallback = chain("fallback", &raw.stack.fallback)?;
    // The primary, or a provider twice, in the fallback chain would only be tried again.
    for (i, &index) in fallback.iter().enumerate() {
        let field = format!("stack.fallback[{i}]");
        if index == primary {
            return Err(ConfigError::invalid(
                field,
                format!("{:?} is the primary", names[index]),
            ));
        }
        if fallback[..i].contains(&index) {
            return Err(ConfigError::invalid(
                field,
                format!("{:?} is already in the chain", names[index]),
            ));
        }
    }
    let context_window = chain("context_window", &raw.stack.context_window)?;
    let cache = raw
        .stack
        .cache
        .map(|raw| cache("stack.cache", raw))
        .transpose()?;
    Ok(StackConfig {
        providers,
        primary,
        fallback,
        context_window,
        cache,
    })
}

fn provider(path: &str, raw: RawProvider) -> Result<Configured, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.api_key.is_some() {
        return Err(ConfigError::invalid(
            field("api_key"),
            "keys do not belong in configuration files: put the key in an environment \
             variable and name the variable in api_key_env",
        ));
    }
    let kind: ProviderKind = raw
        .kind
        .parse()
        .map_err(|e: super::provider::UnknownKind| {
            ConfigError::invalid(field("kind"), e.to_string())
        })?;
    let mut provider = Provider::new(kind).name(&raw.name);
    if let Some(version) = raw.api_version {
        if kind != ProviderKind::AzureOpenAi {
            return Err(ConfigError::invalid(
                field("api_version"),
                format!("only for kind azure-openai, not {kind}"),
            ));
        }
        check_api_version(&version)
            .map_err(|reason| ConfigError::invalid(field("api_version"), reason))?;
        provider = provider.api_version(version);
    }
    match &raw.base_url {
        Some(url) => {
            // The version is checked above: what is wrong here is the URL.
            endpoint(kind, url, None).map_err(|reason| {
                ConfigError::invalid(field("base_url"), format!("{:?}: {reason}", shown_url(url)))
            })?;
            provider = provider.base_url(url);
        }
        None if kind.default_base_url().is_none() => {
            return Err(ConfigError::invalid(
                field("base_url"),
                format!("required for kind {kind}"),
            ));
        }
        None => {}
    }
    let keys = key_variables(path, raw.api_key_env, raw.api_key_envs)?;
    if let Some(routing) = &raw.routing {
        provider = provider.routing(self::routing(&field("routing"), routing)?);
    }
    if let Some(model) = raw.model {
        if model.trim().is_empty() {
            return Err(ConfigError::invalid(field("model"), "must not be empty"));
        }
        provider = provider.model(model);
    }
    if let Some(max) = raw.max_in_flight {
        let max = u32::try_from(max).ok().filter(|&m| m > 0).ok_or_else(|| {
            ConfigError::invalid(
                field("max_in_flight"),
                format!("must be greater than 0 and at most {}", u32::MAX),
            )
        })?;
        provider = provider.max_in_flight(max);
    }
    if let Some(limits) = raw.limits {
        provider = match self::limits(&field("limits"), limits)? {
            Some(limits) => provider.limits(limits),
            None => provider.no_rate_limit(),
        };
    }
    if let Some(adaptive) = raw.adaptive {
        provider = match self::adaptive(&field("adaptive"), adaptive)? {
            Some(config) => provider.adaptive(config),
            None => provider.no_adaptive(),
        };
    }
    if let Some(timeouts) = raw.timeouts {
        provider = match self::timeouts(&field("timeouts"), timeouts, provider.kind())? {
            Some(config) => provider.timeouts(config),
            None => provider.no_timeouts(),
        };
    }
    if let Some(retry) = raw.retry {
        provider = provider.retry(self::retry(&field("retry"), retry)?);
    }
    if let Some(breaker) = raw.breaker {
        provider = match self::breaker(&field("breaker"), breaker)? {
            Some(config) => provider.breaker(config),
            None => provider.no_circuit_breaker(),
        };
    }
    Ok(Configured { provider, keys })
}

/// Whether `variable` is the name of an environment variable; the error, at `field`, does not
/// quote it: a key pasted there by mistake must not end up in a log.
fn variable_name(field: String, variable: &str) -> Result<(), ConfigError> {
    let is_name = !variable.is_empty()
        && !variable.starts_with(|c: char| c.is_ascii_digit())
        && variable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return Err(ConfigError::invalid(
            field,
            "must be the name of an environment variable (letters, digits and _), not the key itself",
        ));
    }
    Ok(())
}

/// The most keys a provider's router spreads.
const MAX_KEYS: usize = 64;

/// Where the provider at `path` reads its keys: `api_key_env` or `api_key_envs`, checked.
fn key_variables(
    path: &str,
    one: Option<String>,
    many: Option<toml::Value>,
) -> Result<KeyVariables, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let list = match (one, many) {
        (None, None) => return Ok(KeyVariables::None),
        (Some(variable), None) => {
            variable_name(field("api_key_env"), &variable)?;
            return Ok(KeyVariables::One(variable));
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                field("api_key_envs"),
                "give either api_key_env (one key) or api_key_envs (several), not both",
            ));
        }
        (None, Some(toml::Value::Array(list))) => list,
        // Not quoted, nor its type named by serde: it may be a key.
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                field("api_key_envs"),
                "must be a list of environment variable names, like [\"OPENAI_KEY_A\", \"OPENAI_KEY_B\"]",
            ));
        }
    };
    if list.is_empty() {
        return Err(ConfigError::invalid(
            field("api_key_envs"),
            "must name at least one environment variable",
        ));
    }
    if list.len() > MAX_KEYS {
        return Err(ConfigError::invalid(
            field("api_key_envs"),
            format!(
                "{} variables; a provider spreads at most {MAX_KEYS} keys",
                list.len()
            ),
        ));
    }
    let mut variables: Vec<String> = Vec::with_capacity(list.len());
    for (j, value) in list.into_iter().enumerate() {
        let entry = format!("{path}.api_key_envs[{j}]");
        let toml::Value::String(variable) = value else {
            return Err(ConfigError::invalid(
                entry,
                "must be the name of an environment variable (a string)",
            ));
        };
        variable_name(entry.clone(), &variable)?;
        if let Some(earlier) = variables.iter().position(|v| *v == variable) {
            return Err(ConfigError::invalid(
                entry,
                format!("variable {variable} is listed twice (also api_key_envs[{earlier}])"),
            ));
        }
        variables.push(variable);
    }
    Ok(KeyVariables::Many(variables))
}

const ROUTINGS: &str = "round-robin, weighted, least-loaded, latency-aware";

/// The strategy a `routing` name stands for.
fn routing(field: &str, name: &str) -> Result<Strategy, ConfigError> {
    match name {
        "round-robin" => Ok(Strategy::RoundRobin),
        "weighted" => Ok(Strategy::Weighted),
        "least-loaded" => Ok(Strategy::LeastLoaded),
        "latency-aware" => Ok(Strategy::LatencyAware),
        other => Err(ConfigError::invalid(
            field,
            format!(
                "unknown routing {:?}; expected one of {ROUTINGS}",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

const LIMIT_PRESETS: &str = "openai-tier-1 … openai-tier-5, anthropic-opus-4-7, anthropic-sonnet-4, \
    anthropic-haiku-4, gemini-{free,pay-as-you-go,enterprise}-{pro,flash}, \
    deepseek-{starter,basic,standard,enterprise}, none";

/// The limits a preset name stands for; `Some(None)` for `none`.
fn limits_preset(name: &str) -> Option<Option<Limits>> {
    let limits = match name {
        "none" => return Some(None),
        "openai-tier-1" => OpenAiTier::Tier1.limits(),
        "openai-tier-2" => OpenAiTier::Tier2.limits(),
        "openai-tier-3" => OpenAiTier::Tier3.limits(),
        "openai-tier-4" => OpenAiTier::Tier4.limits(),
        "openai-tier-5" => OpenAiTier::Tier5.limits(),
        "anthropic-opus-4-7" => AnthropicModel::Opus47.limits(),
        "anthropic-sonnet-4" => AnthropicModel::Sonnet4.limits(),
        "anthropic-haiku-4" => AnthropicModel::Haiku4.limits(),
        "deepseek-starter" => DeepSeekLevel::Starter.limits(),
        "deepseek-basic" => DeepSeekLevel::Basic.limits(),
        "deepseek-standard" => DeepSeekLevel::Standard.limits(),
        "deepseek-enterprise" => DeepSeekLevel::Enterprise.limits(),
        _ => {
            let rest = name.strip_prefix("gemini-")?;
            let (plan, model) = rest.rsplit_once('-')?;
            let plan = match plan {
                "free" => GeminiPlan::Free,
                "pay-as-you-go" => GeminiPlan::PayAsYouGo,
                "enterprise" => GeminiPlan::Enterprise,
                _ => return None,
            };
            let model = match model {
                "pro" => GeminiModel::Pro,
                "flash" => GeminiModel::Flash,
                _ => return None,
            };
            plan.limits(model)
        }
    };
    Some(Some(limits))
}

fn limits(path: &str, raw: RawLimits) -> Result<Option<Limits>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let base = match &raw.preset {
        None => None,
        Some(name) => limits_preset(name).ok_or_else(|| {
            ConfigError::invalid(
                field("preset"),
                format!("unknown preset {name:?}; expected one of {LIMIT_PRESETS}"),
            )
        })?,
    };
    let algorithm = match raw.algorithm.as_deref() {
        None => None,
        Some("token-bucket") => Some(AlgorithmKind::TokenBucket),
        Some("gcra") => Some(AlgorithmKind::Gcra),
        Some("fixed-window") => Some(AlgorithmKind::FixedWindow),
        Some("sliding-window-log") => Some(AlgorithmKind::SlidingWindowLog),
        Some("sliding-window-counter") => Some(AlgorithmKind::SlidingWindowCounter),
        Some(other) => {
            return Err(ConfigError::invalid(
                field("algorithm"),
                format!(
                    "unknown algorithm {other:?}; expected one of token-bucket, gcra, \
                     fixed-window, sliding-window-log, sliding-window-counter"
                ),
            ));
        }
    };
    let minute = Duration::from_secs(60);
    let day = Duration::from_secs(86_400);
    let explicit = [
        (
            "requests_per_minute",
            raw.requests_per_minute,
            Dimension::Requests,
            minute,
        ),
        (
            "requests_per_day",
            raw.requests_per_day,
            Dimension::Requests,
            day,
        ),
        (
            "tokens_per_minute",
            raw.tokens_per_minute,
            Dimension::Tokens,
            minute,
        ),
        ("tokens_per_day", raw.tokens_per_day, Dimension::Tokens, day),
        (
            "input_tokens_per_minute",
            raw.input_tokens_per_minute,
            Dimension::InputTokens,
            minute,
        ),
        (
            "output_tokens_per_minute",
            raw.output_tokens_per_minute,
            Dimension::OutputTokens,
            minute,
        ),
    ];
    let mut explicit_limits: Vec<Limit> = Vec::new();
    for (name, value, dimension, period) in explicit {
        let Some(value) = value else { continue };
        let value = NonZeroU64::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))?;
        let quota = if period == day {
            Quota::per_day(value)
        } else {
            Quota::per_minute(value)
        };
        explicit_limits.push(Limit::new(dimension, quota));
    }
    if raw.preset.as_deref() == Some("none") && !explicit_limits.is_empty() {
        return Err(ConfigError::invalid(
            field("preset"),
            "\"none\" cannot be combined with explicit limits",
        ));
    }
    if raw.preset.as_deref() == Some("none") && algorithm.is_some() {
        return Err(ConfigError::invalid(
            field("preset"),
            "\"none\" cannot be combined with an algorithm",
        ));
    }
    if base.is_none() && explicit_limits.is_empty() {
        if raw.preset.is_none() {
            return Err(ConfigError::invalid(
                path,
                "give a preset or at least one limit (preset = \"none\" for no rate limit)",
            ));
        }
        return Ok(None);
    }
    // The preset's limits, each replaced by an explicit one of the same dimension and
    // period, then the other explicit ones.
    let mut limits: Vec<Limit> = base.map(|b| b.as_slice().to_vec()).unwrap_or_default();
    for limit in explicit_limits {
        let same = |l: &Limit| {
            l.dimension() == limit.dimension() && l.quota().period() == limit.quota().period()
        };
        match limits.iter_mut().find(|l| same(l)) {
            Some(slot) => *slot = limit,
            None => limits.push(limit),
        }
    }
    if let Some(algorithm) = algorithm {
        limits = limits
            .into_iter()
            .map(|l| l.with_algorithm(algorithm))
            .collect();
    }
    Ok(Some(Limits::new(limits)))
}

fn duration(field: String, text: &str) -> Result<Duration, ConfigError> {
    go_duration(text.trim()).ok_or_else(|| {
        ConfigError::invalid(
            field,
            format!("invalid duration {text:?}: expected a number and a unit, like \"500ms\", \"1.5s\" or \"2m\""),
        )
    })
}

/// `value`, refused at `field` when it is zero.
fn non_zero(field: String, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(field, "must be greater than 0"));
    }
    Ok(value)
}

/// The adaptive limit `raw` declares; `None` for preset `none`.
fn adaptive(path: &str, raw: RawAdaptive) -> Result<Option<Adaptive>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let rates = [
        (
            "initial_requests_per_minute",
            raw.initial_requests_per_minute,
        ),
        ("floor_requests_per_minute", raw.floor_requests_per_minute),
        (
            "ceiling_requests_per_minute",
            raw.ceiling_requests_per_minute,
        ),
    ];
    let any = rates.iter().any(|(_, rate)| rate.is_some());
    let mut adaptive = match raw.preset.as_deref() {
        None | Some("default") => Adaptive::default(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other adaptive settings",
            ));
        }
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::invalid(
                field("preset"),
                format!("unknown preset {other:?}; expected one of default, none"),
            ));
        }
    };
    let mut per_minute = [None; 3];
    for (slot, (name, rate)) in per_minute.iter_mut().zip(rates) {
        if let Some(rate) = rate {
            let rate = NonZeroU64::new(rate)
                .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))?;
            *slot = Some(rate);
        }
    }
    let [initial, floor, ceiling] = per_minute;
    if let (Some(floor), Some(ceiling)) = (floor, ceiling) {
        if ceiling < floor {
            return Err(ConfigError::invalid(
                field("ceiling_requests_per_minute"),
                format!("must be at least floor_requests_per_minute ({floor})"),
            ));
        }
    }
    if let Some(initial) = initial {
        adaptive = adaptive.with_initial(Rate::per_minute(initial));
    }
    if let Some(floor) = floor {
        adaptive = adaptive.with_floor(Rate::per_minute(floor));
    }
    if let Some(ceiling) = ceiling {
        adaptive = adaptive.with_ceiling(Rate::per_minute(ceiling));
    }
    Ok(Some(adaptive))
}

/// The time limits `raw` declares over its preset (by default, the kind's); `None` for preset
/// `none`.
fn timeouts(
    path: &str,
    raw: RawTimeouts,
    kind: ProviderKind,
) -> Result<Option<TimeoutConfig>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let limits = [
        ("response_head", raw.response_head),
        ("first_chunk", raw.first_chunk),
        ("idle", raw.idle),
        ("total", raw.total),
    ];
    let any = limits.iter().any(|(_, limit)| limit.is_some());
    let mut config = match raw.preset.as_deref() {
        None | Some("default") => kind.timeouts(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other time limits",
            ));
        }
        Some("none") => return Ok(None),
        Some("openai") => TimeoutConfig::openai(),
        Some("anthropic") => TimeoutConfig::anthropic(),
        Some("gemini") => TimeoutConfig::gemini(),
        Some("deepseek") => TimeoutConfig::deepseek(),
        Some(other) => {
            return Err(ConfigError::invalid(
                field("preset"),
                format!(
                    "unknown preset {other:?}; expected one of default, none, openai, anthropic, gemini, deepseek"
                ),
            ));
        }
    };
    for (name, text) in limits {
        let Some(text) = text else { continue };
        let limit = non_zero(field(name), duration(field(name), &text)?)?;
        if limit > MAX_TIME_LIMIT {
            return Err(ConfigError::invalid(field(name), "must be at most 24h"));
        }
        config = match name {
            "response_head" => config.with_response_head(limit),
            "first_chunk" => config.with_first_chunk(limit),
            "idle" => config.with_idle(limit),
            _ => config.with_total(limit),
        };
    }
    Ok(Some(config))
}

/// The longest time limit a configuration may set.
const MAX_TIME_LIMIT: Duration = Duration::from_secs(86_400);

/// A retry policy's spread of server delays: `none`, `default` or a percentage (`"25%"`),
/// at most `max`.
fn spread(path: &str, text: Option<&str>, max: Option<&str>) -> Result<Spread, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let max = max
        .map(|text| duration(field("server_delay_spread_max"), text))
        .transpose()?;
    let percent = match text.map(str::trim) {
        None | Some("default") => match Spread::default() {
            Spread::Proportional { percent, .. } => percent,
            _ => 0,
        },
        Some("none") if max.is_some() => {
            return Err(ConfigError::invalid(
                field("server_delay_spread_max"),
                "cannot be combined with server_delay_spread = \"none\"",
            ));
        }
        Some("none") => return Ok(Spread::None),
        Some(other) => other
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u16>().ok())
            .filter(|n| *n <= 1_000)
            .ok_or_else(|| {
                ConfigError::invalid(
                    field("server_delay_spread"),
                    format!(
                        "invalid spread {other:?}: expected \"none\", \"default\" or a percentage from 0% to 1000%, like \"50%\""
                    ),
                )
            })?,
    };
    let max = max.unwrap_or(match Spread::default() {
        Spread::Proportional { max, .. } => max,
        _ => Duration::ZERO,
    });
    Ok(Spread::Proportional { percent, max })
}

fn retry(path: &str, raw: RawRetry) -> Result<RetryPolicy, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let any = raw.max_retries.is_some()
        || raw.max_overloaded_retries.is_some()
        || raw.base_delay.is_some()
        || raw.max_delay.is_some()
        || raw.jitter.is_some()
        || raw.min_delay.is_some()
        || raw.max_server_delay.is_some()
        || raw.server_delay_spread.is_some()
        || raw.server_delay_spread_max.is_some()
        || raw.total_time.is_some();
    let mut policy = match raw.preset.as_deref() {
        None | Some("default") => RetryPolicy::default(),
        Some("openai") => RetryPolicy::openai(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other retry settings",
            ));
        }
        Some("none") => RetryPolicy::default()
            .with_max_retries(0)
            .with_max_overloaded_retries(0),
        Some(other) => {
            return Err(ConfigError::invalid(
                field("preset"),
                format!("unknown preset {other:?}; expected one of default, openai, none"),
            ));
        }
    };
    if let Some(n) = raw.max_retries {
        policy = policy.with_max_retries(n);
    }
    if let Some(n) = raw.max_overloaded_retries {
        policy = policy.with_max_overloaded_retries(n);
    }
    if let Some(text) = &raw.min_delay {
        policy = policy.with_min_delay(duration(field("min_delay"), text)?);
    }
    if let Some(text) = &raw.max_server_delay {
        policy = policy.with_max_server_delay(duration(field("max_server_delay"), text)?);
    }
    if raw.server_delay_spread.is_some() || raw.server_delay_spread_max.is_some() {
        policy = policy.with_server_delay_spread(spread(
            path,
            raw.server_delay_spread.as_deref(),
            raw.server_delay_spread_max.as_deref(),
        )?);
    }
    if let Some(text) = &raw.total_time {
        let total = duration(field("total_time"), text)?;
        policy = policy.with_total_time(non_zero(field("total_time"), total)?);
    }
    if raw.base_delay.is_some() || raw.max_delay.is_some() || raw.jitter.is_some() {
        let current = policy.backoff;
        let base = match &raw.base_delay {
            Some(text) => duration(field("base_delay"), text)?,
            None => current.base(),
        };
        let base = non_zero(field("base_delay"), base)?;
        let max = match &raw.max_delay {
            Some(text) => duration(field("max_delay"), text)?,
            None => current.max(),
        };
        if max < base {
            return Err(ConfigError::invalid(
                field("max_delay"),
                format!("must be at least base_delay ({base:?})"),
            ));
        }
        let jitter = match raw.jitter.as_deref() {
            None => current.jitter(),
            Some("none") => Jitter::None,
            Some("full") => Jitter::Full,
            Some("equal") => Jitter::Equal,
            Some("decorrelated") => Jitter::Decorrelated,
            Some("sdk") => Jitter::Between { low: 75, high: 100 },
            Some(other) => {
                return Err(ConfigError::invalid(
                    field("jitter"),
                    format!(
                        "unknown jitter {other:?}; expected one of none, full, equal, decorrelated, sdk"
                    ),
                ));
            }
        };
        policy = policy.with_backoff(Backoff::exponential(base, max).with_jitter(jitter));
    }
    Ok(policy)
}

fn breaker(path: &str, raw: RawBreaker) -> Result<Option<BreakerConfig>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let any = raw.consecutive_failures.is_some()
        || raw.open_for.is_some()
        || raw.open_growth.is_some()
        || raw.max_open_for.is_some()
        || raw.probes.is_some();
    let mut config = match raw.preset.as_deref() {
        None | Some("default") => BreakerConfig::default(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other breaker settings",
            ));
        }
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::invalid(
                field("preset"),
                format!("unknown preset {other:?}; expected one of default, none"),
            ));
        }
    };
    let positive = |name: &str, value: u32| {
        NonZeroU32::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))
    };
    if let Some(n) = raw.consecutive_failures {
        config = config.with_trip(Trip::ConsecutiveFailures(positive(
            "consecutive_failures",
            n,
        )?));
    }
    if let Some(n) = raw.probes {
        config = config.with_probes(positive("probes", n)?);
    }
    if raw.open_for.is_some() || raw.open_growth.is_some() || raw.max_open_for.is_some() {
        let open_for = match &raw.open_for {
            Some(text) => duration(field("open_for"), text)?,
            None => config.open_for,
        };
        let open_for = non_zero(field("open_for"), open_for)?;
        let growth = match raw.open_growth {
            Some(n) => positive("open_growth", n)?.get(),
            None => config.open_growth,
        };
        let max = match &raw.max_open_for {
            Some(text) => {
                let max = duration(field("max_open_for"), text)?;
                if max < open_for {
                    return Err(ConfigError::invalid(
                        field("max_open_for"),
                        format!("must be at least open_for ({open_for:?})"),
                    ));
                }
                max
            }
            None => config.max_open_for.max(open_for),
        };
        config = config.with_open_for(open_for, growth, max);
    }
    Ok(Some(config))
}

fn cache(path: &str, raw: RawCache) -> Result<CacheConfig, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let positive = |name: &str, value: u64| {
        NonZeroU64::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))
    };
    let mut config = CacheConfig::default();
    if let Some(text) = &raw.ttl {
        let ttl = duration(field("ttl"), text)?;
        config = config.ttl(non_zero(field("ttl"), ttl)?);
    }
    if let Some(n) = raw.max_entries {
        let n = positive("max_entries", n)?;
        if n.get() > u64::from(u32::MAX) {
            return Err(ConfigError::invalid(
                field("max_entries"),
                format!("must be at most {}", u32::MAX),
            ));
        }
        config = config.max_entries(n);
    }
    if let Some(n) = raw.max_bytes {
        let n = positive("max_bytes", n)?;
        config = config.max_bytes(n);
        // The default largest entry (1 MiB) is at most max_bytes too.
        if let Some(n) = usize::try_from(n.get()).ok().and_then(NonZeroUsize::new) {
            if config.max_entry_bytes > n {
                config = config.max_entry_bytes(n);
            }
        }
    }
    if let Some(n) = raw.max_entry_bytes {
        let n = positive("max_entry_bytes", n)?;
        if n > config.max_bytes {
            return Err(ConfigError::invalid(
                field("max_entry_bytes"),
                format!("must be at most max_bytes ({})", config.max_bytes),
            ));
        }
        let n = usize::try_from(n.get())
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| ConfigError::invalid(field("max_entry_bytes"), "too large"))?;
        config = config.max_entry_bytes(n);
    }
    if let Some(on) = raw.deterministic {
        config = config.deterministic(on);
    }
    if let Some(on) = raw.shared_across_callers {
        config = config.shared_across_callers(on);
    }
    Ok(config)
}
