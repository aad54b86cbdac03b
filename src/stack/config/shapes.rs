//! The file's shape: one serde struct per TOML table, every key optional but the few that are
//! required, and unknown keys refused. Nothing here is checked beyond its TOML type; the
//! checks are in `validate` and the per-table modules.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) providers: Vec<RawProvider>,
    pub(super) stack: RawStack,
    pub(super) store: Option<RawStore>,
}

/// `[store]`: where the quotas live.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) kind: Option<String>,
    pub(super) url_env: Option<String>,
    /// Checked by hand: serde's messages could quote a URL (and its password).
    pub(super) url: Option<toml::Value>,
    pub(super) prefix: Option<String>,
    pub(super) replicas: Option<u64>,
    pub(super) unavailable: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) reconnect_every: Option<String>,
}

/// `[stack]`: the chains over the providers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStack {
    pub(super) primary: String,
    #[serde(default)]
    pub(super) fallback: Vec<String>,
    #[serde(default)]
    pub(super) context_window: Vec<String>,
    pub(super) cache: Option<RawCache>,
}

/// `[stack.cache]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) ttl: Option<String>,
    pub(super) max_entries: Option<u64>,
    pub(super) max_bytes: Option<u64>,
    pub(super) max_entry_bytes: Option<u64>,
    pub(super) deterministic: Option<bool>,
    pub(super) shared_across_callers: Option<bool>,
}

/// One `[[providers]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) base_url: Option<String>,
    pub(super) api_key_env: Option<String>,
    /// Checked by hand: serde's messages would quote a key pasted here as a string.
    pub(super) api_key_envs: Option<toml::Value>,
    pub(super) routing: Option<String>,
    /// Refused with a message that does not quote it.
    pub(super) api_key: Option<IgnoredAny>,
    pub(super) api_version: Option<String>,
    pub(super) model: Option<String>,
    pub(super) models: Option<Vec<String>>,
    pub(super) unknown_models: Option<String>,
    pub(super) max_in_flight: Option<u64>,
    pub(super) max_wait: Option<String>,
    pub(super) max_queue: Option<u64>,
    pub(super) limits: Option<RawLimits>,
    pub(super) adaptive: Option<RawAdaptive>,
    pub(super) timeouts: Option<RawTimeouts>,
    pub(super) retry: Option<RawRetry>,
    pub(super) breaker: Option<RawBreaker>,
}

/// `[providers.limits]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) preset: Option<String>,
    pub(super) requests_per_minute: Option<u64>,
    pub(super) requests_per_day: Option<u64>,
    pub(super) tokens_per_minute: Option<u64>,
    pub(super) tokens_per_day: Option<u64>,
    pub(super) input_tokens_per_minute: Option<u64>,
    pub(super) output_tokens_per_minute: Option<u64>,
    pub(super) algorithm: Option<String>,
}

/// `[providers.adaptive]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdaptive {
    pub(super) preset: Option<String>,
    pub(super) initial_requests_per_minute: Option<u64>,
    pub(super) floor_requests_per_minute: Option<u64>,
    pub(super) ceiling_requests_per_minute: Option<u64>,
}

/// `[providers.timeouts]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) preset: Option<String>,
    pub(super) response_head: Option<String>,
    pub(super) first_chunk: Option<String>,
    pub(super) idle: Option<String>,
    pub(super) total: Option<String>,
}

/// `[providers.retry]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub(super) preset: Option<String>,
    pub(super) max_retries: Option<u32>,
    pub(super) max_overloaded_retries: Option<u32>,
    pub(super) base_delay: Option<String>,
    pub(super) max_delay: Option<String>,
    pub(super) jitter: Option<String>,
    pub(super) min_delay: Option<String>,
    pub(super) max_server_delay: Option<String>,
    pub(super) server_delay_spread: Option<String>,
    pub(super) server_delay_spread_max: Option<String>,
    pub(super) total_time: Option<String>,
}

/// `[providers.breaker]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) preset: Option<String>,
    pub(super) consecutive_failures: Option<u32>,
    pub(super) open_for: Option<String>,
    pub(super) open_growth: Option<u32>,
    pub(super) max_open_for: Option<String>,
    pub(super) probes: Option<u32>,
}
