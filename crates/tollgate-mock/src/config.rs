//! Configuration: which provider to imitate, its quotas, latency and faults.
//!
//! Build a [`MockConfig`] in code with [`MockConfig::openai`] / [`MockConfig::anthropic`] and the
//! `with_*` setters, or parse one from TOML with [`MockConfig::from_toml`]. Every struct rejects
//! unknown fields, and [`MockConfig::validate`] checks the values (probabilities in `[0, 1]`,
//! limits greater than 0, and so on).
//!
//! [`ProxyLimit`] is the one table that is not the provider's: a reverse proxy's per-key limiter
//! in front of it (see the `proxy` module for the algorithm).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Which provider the server imitates: its rate-limit headers, error bodies and token accounting.
///
/// In TOML: `flavor = "openai"` or `flavor = "anthropic"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// OpenAI: `x-ratelimit-*` headers with Go-duration resets, `{"error":{…}}` bodies, TPM charged
    /// at admission with the prompt estimate plus `max_tokens`.
    #[default]
    OpenAi,
    /// Anthropic: `anthropic-ratelimit-*` headers with RFC 3339 resets, `{"type":"error",…}`
    /// bodies, input tokens charged to ITPM at admission and output tokens to OTPM as produced.
    Anthropic,
}

impl Flavor {
    /// The default context window: 128 000 tokens (OpenAI) or 200 000 (Anthropic).
    pub const fn default_context_window(self) -> u64 {
        match self {
            Flavor::OpenAi => 128_000,
            Flavor::Anthropic => 200_000,
        }
    }

    /// The status of an outage: 503 (OpenAI) or 529 `overloaded_error` (Anthropic).
    pub const fn outage_status(self) -> u16 {
        match self {
            Flavor::OpenAi => 503,
            Flavor::Anthropic => 529,
        }
    }

    /// The model echoed when a request names none.
    pub const fn default_model(self) -> &'static str {
        match self {
            Flavor::OpenAi => "gpt-4o-mini",
            Flavor::Anthropic => "claude-sonnet-4-5",
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::OpenAi => "openai",
            Flavor::Anthropic => "anthropic",
        })
    }
}

/// Server-side limits. Every limit is optional; `None` means unlimited, and only configured
/// dimensions appear in the rate-limit headers.
///
/// Per-minute limits are token buckets holding `limit` that refill continuously at `limit / 60 s`
/// (so `requests_per_minute = 60` admits a burst of 60, then one request per second);
/// `tokens_per_day` is the same over 24 hours.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockQuota {
    /// Requests per minute (RPM).
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute (TPM). OpenAI charges `ceil(prompt chars / 4) + max_tokens` at
    /// admission; Anthropic charges input tokens at admission and output tokens when answering.
    pub tokens_per_minute: Option<u64>,
    /// Input tokens per minute (Anthropic's ITPM), charged at admission.
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens per minute (Anthropic's OTPM). `max_tokens` is not charged: a request is
    /// admitted while the bucket is not empty, and the tokens actually produced are charged.
    pub output_tokens_per_minute: Option<u64>,
    /// Tokens per day (TPD), counted like `tokens_per_minute` over a 24-hour bucket.
    pub tokens_per_day: Option<u64>,
    /// Requests in flight at once; the extra ones get a 429.
    pub max_concurrency: Option<u64>,
}

/// How long the server takes to answer, applied after admission and before the first byte.
///
/// In TOML the variant is named by `kind`: `latency = { kind = "fixed", ms = 200 }`,
/// `{ kind = "uniform", min_ms = 50, max_ms = 400 }` or
/// `{ kind = "log_normal", median_ms = 300, p99_ms = 3000 }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same time.
    Fixed {
        /// Milliseconds.
        ms: u64,
    },
    /// Uniform between two bounds (inclusive).
    Uniform {
        /// Lower bound in milliseconds.
        min_ms: u64,
        /// Upper bound in milliseconds.
        max_ms: u64,
    },
    /// Log-normal with the given median and 99th percentile (samples are capped at 10 × p99).
    #[serde(alias = "lognormal")]
    LogNormal {
        /// Median in milliseconds (> 0).
        median_ms: u64,
        /// 99th percentile in milliseconds (≥ median).
        p99_ms: u64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed { ms: 0 }
    }
}

/// Injected failures. One random draw per admitted request (from the seeded RNG) picks at most
/// one of: a reset, a hang, or one of the `error_rates` statuses, so the probabilities must add
/// up to at most 1. A streamed request that none of them hit then draws its
/// [`stream`](StreamFaults) faults.
///
/// Faults are drawn *after* admission, so a faulted request has consumed its requests and input
/// tokens, as a provider counts failed requests (PROVIDERS.md §5). Outages are answered
/// *before* admission and consume nothing: the platform is down, not your quota.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Status → probability per request, e.g. `{500 = 0.01, 503 = 0.02}` (TOML keys are quoted
    /// or bare: `error_rates = { "503" = 0.02 }`). Bodies are the provider's for that status.
    #[serde(deserialize_with = "de_error_rates")]
    pub error_rates: BTreeMap<u16, f64>,
    /// Scheduled outages, relative to the server's start.
    pub outages: Vec<Outage>,
    /// Probability of never answering (until the client gives up or the server shuts down).
    pub hang_rate: f64,
    /// Probability of closing the connection without a response.
    pub reset_rate: f64,
    /// Faults of streamed answers (`"stream": true`), after a 200 head (TOML:
    /// `[faults.stream]`).
    pub stream: StreamFaults,
}

/// Faults of streamed answers, drawn for each streamed request that is answered with a 200
/// (after the draw of [`Faults`] picked none of its faults), from the same seeded RNG.
///
/// Two independent draws per stream:
///
/// - `first_token_delay`: the head is sent, then the first event comes `ms` later (on top of
///   the latency), as a reasoning model thinking before its first token;
/// - at most one of `stall`, `error` and `cut` (their rates must add up to at most 1), which
///   take effect after the first [`after`](StreamFault::after) SSE events (every `data:` chunk, or
///   every Anthropic event, `ping` included):
///   - `stall`: nothing more is sent and the stream never ends, until the client goes away (or
///     the server shuts down, which cuts it);
///   - `error`: the mid-stream error event of the stream's shape, then a clean end without the
///     terminal event. Chat chunks get OpenAI's
///     `data: {"error":{"code":null,"message":"The server had an error while processing your request. Sorry about that!","param":null,"type":"server_error"}}`,
///     Messages events get Anthropic's
///     `event: error` / `data: {"error":{"message":"Overloaded","type":"overloaded_error"},"type":"error"}`;
///   - `cut`: the connection is closed abruptly, as by [`Faults::reset_rate`] but after the head:
///     no terminal event and no end of the chunked encoding (HTTP/2: the stream is reset), so
///     the client sees a body error, not a clean end.
///
/// A stream with fewer events than `after` is faulted before its terminal event (`data: [DONE]`
/// or `message_stop`), so a faulted stream never ends cleanly. A rate of 1 applies the fault to
/// every stream; no draw is made (and the RNG sequence is unchanged) for a fault that is not
/// configured.
///
/// In TOML (`rate` defaults to 1):
///
/// ```toml
/// [faults.stream]
/// first_token_delay = { ms = 8000, rate = 0.5 }
/// stall = { after = 3, rate = 0.01 }
/// error = { after = 5, rate = 0.02 }
/// cut = { after = 5, rate = 0.01 }
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_mock::{FirstTokenDelay, MockConfig, StreamFault};
///
/// let cfg = MockConfig::anthropic()
///     .with_first_token_delay(FirstTokenDelay::new(Duration::from_secs(8)))
///     .with_stream_cut(StreamFault::after(5).with_rate(0.1));
/// assert!(cfg.validate().is_ok());
/// assert_eq!(cfg.faults.stream.first_token_delay.unwrap().rate, 1.0);
/// assert_eq!(cfg.faults.stream.cut, Some(StreamFault { after: 5, rate: 0.1 }));
///
/// let bad = MockConfig::openai().with_stream_cut(StreamFault::after(5).with_rate(1.5));
/// assert!(bad.validate().unwrap_err().to_string().contains("faults.stream.cut.rate"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamFaults {
    /// Delays the first event after the head.
    pub first_token_delay: Option<FirstTokenDelay>,
    /// After `after` events, sends nothing more and never ends.
    pub stall: Option<StreamFault>,
    /// After `after` events, sends the mid-stream error event and ends without the terminal
    /// event.
    pub error: Option<StreamFault>,
    /// After `after` events, closes the connection abruptly.
    pub cut: Option<StreamFault>,
}

/// A delay before the first event of a stream, with probability `rate` per stream (see
/// [`StreamFaults`]).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstTokenDelay {
    /// The delay in milliseconds (at most 3 600 000), added to the latency before the first
    /// event.
    pub ms: u64,
    /// Probability per stream, in `[0, 1]`; default 1 (every stream).
    #[serde(default = "one")]
    pub rate: f64,
}

/// A fault that ends a stream after `after` events, with probability `rate` per stream (see
/// [`StreamFaults`]).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFault {
    /// The number of events sent before the fault (0: right after the head). Capped so that
    /// the terminal event is never sent.
    pub after: u64,
    /// Probability per stream, in `[0, 1]`; default 1 (every stream).
    #[serde(default = "one")]
    pub rate: f64,
}

fn one() -> f64 {
    1.0
}

// ===== impl FirstTokenDelay =====

impl FirstTokenDelay {
    /// A delay of `delay` (whole milliseconds, rounded down) before the first event of every
    /// stream.
    #[must_use]
    pub fn new(delay: Duration) -> Self {
        FirstTokenDelay {
            ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            rate: 1.0,
        }
    }

    /// Applies the delay with probability `rate` per stream instead of to every stream.
    #[must_use]
    pub const fn with_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// The delay as a [`Duration`].
    pub const fn delay(&self) -> Duration {
        Duration::from_millis(self.ms)
    }
}

// ===== impl StreamFault =====

impl StreamFault {
    /// The fault after `after` events, on every stream.
    #[must_use]
    pub const fn after(after: u64) -> Self {
        StreamFault { after, rate: 1.0 }
    }

    /// Applies the fault with probability `rate` per stream instead of to every stream.
    #[must_use]
    pub const fn with_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }
}

// ===== impl StreamFaults =====

impl StreamFaults {
    /// Checks the rates (each in `[0, 1]`; stall, error and cut adding up to at most 1) and the
    /// delay (at most an hour).
    fn validate(&self) -> Result<(), MockConfigError> {
        if let Some(d) = &self.first_token_delay {
            check_rate("faults.stream.first_token_delay.rate", d.rate)?;
            if d.ms > MAX_LATENCY_MS {
                return Err(MockConfigError::invalid(
                    "faults.stream.first_token_delay.ms",
                    "must be at most 3600000",
                ));
            }
        }
        let mut total = 0.0;
        for (name, fault) in [
            ("faults.stream.stall.rate", self.stall),
            ("faults.stream.error.rate", self.error),
            ("faults.stream.cut.rate", self.cut),
        ] {
            if let Some(f) = fault {
                check_rate(name, f.rate)?;
                total += f.rate;
            }
        }
        if total > 1.0 + 1e-9 {
            return Err(MockConfigError::invalid(
                "faults.stream",
                format!("the stall, error and cut rates add up to {total}, more than 1"),
            ));
        }
        Ok(())
    }
}

/// A probability in `[0, 1]` (NaN refused).
fn check_rate(field: &str, p: f64) -> Result<(), MockConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(MockConfigError::invalid(
            field,
            format!("probability {p} is not in [0, 1]"),
        ))
    }
}

/// A window, relative to the server's start, during which every request is answered with
/// `status` and consumes no quota.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outage {
    /// Start, in milliseconds after the server started.
    pub start_ms: u64,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// The status to answer with; `0` (the default) means the flavor's outage status
    /// ([`Flavor::outage_status`]: 503 OpenAI, 529 Anthropic).
    pub status: u16,
}

/// A reverse proxy's rate limiter in front of the provider, like nginx `limit_req` with
/// `nodelay` or Envoy's local rate limit: a leaky bucket per API key, checked before the
/// provider's own quotas.
///
/// Each key (`Authorization: Bearer …` or `x-api-key`; requests without one share a bucket) may
/// send `burst + 1` requests back to back, then one every `1 / rate_per_second`. A refusal is a
/// bare 429 with a fixed `Retry-After` of `retry_after_secs`, a `text/plain` body and no
/// rate-limit headers, and consumes nothing (neither this bucket nor the provider's quotas).
///
/// **Shared-quota mode.** Another tenant behind the same proxy may take a share `f` of the rate,
/// leaving the client `rate_per_second × (1 − f)`: each admitted request advances the key's
/// bucket by `1 / (rate × (1 − f))` instead of `1 / rate`, as if the other tenant's requests
/// were spread evenly between the client's. The share follows `tenant_schedule` and
/// [`MockServer::set_tenant_share`], whichever changed it last.
///
/// In TOML:
///
/// ```toml
/// [proxy_limit]
/// rate_per_second = 50
/// burst = 10               # default 0
/// retry_after_secs = 1     # default 1
///
/// [[proxy_limit.tenant]]   # the share from 20 s after the start
/// from_ms = 20000
/// share = 0.5
///
/// [[proxy_limit.tenant]]   # and none again from 60 s
/// from_ms = 60000
/// share = 0.0
/// ```
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_mock::{MockConfig, ProxyLimit};
///
/// let cfg = MockConfig::openai().with_proxy_limit(
///     ProxyLimit::per_second(50)
///         .with_burst(10)
///         .with_tenant_share(Duration::from_secs(20), 0.5)
///         .with_tenant_share(Duration::from_secs(60), 0.0),
/// );
/// assert!(cfg.validate().is_ok());
/// let limit = cfg.proxy_limit.unwrap();
/// assert_eq!((limit.rate_per_second, limit.burst, limit.retry_after_secs), (50, 10, 1));
/// assert_eq!(limit.tenant_schedule[0].from_ms, 20_000);
/// ```
///
/// [`MockServer::set_tenant_share`]: crate::MockServer::set_tenant_share
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyLimit {
    /// Requests admitted per second and key once the burst is spent (greater than 0, at most
    /// 1 000 000 000).
    pub rate_per_second: u64,
    /// Requests admitted back to back beyond the first: `burst + 1` pass at once. Default 0.
    #[serde(default)]
    pub burst: u64,
    /// The `Retry-After` of a refusal, in whole seconds, whatever the actual wait. Default 1.
    #[serde(default = "default_retry_after_secs")]
    pub retry_after_secs: u64,
    /// When another tenant's share of the rate changes, in order of `from_ms` (TOML:
    /// `[[proxy_limit.tenant]]`). Before the first entry the share is 0.
    #[serde(default, rename = "tenant")]
    pub tenant_schedule: Vec<TenantShare>,
}

/// From `from_ms` after the server started, another tenant consumes `share` of the
/// [`ProxyLimit`] rate (until the next entry).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantShare {
    /// Start, in milliseconds after the server started.
    pub from_ms: u64,
    /// The other tenant's fraction of the rate, in `[0, 0.99]`
    /// ([`ProxyLimit::MAX_TENANT_SHARE`]).
    pub share: f64,
}

const DEFAULT_PROXY_RETRY_AFTER_SECS: u64 = 1;
/// One request per nanosecond: above this the emission interval would round to 0.
const MAX_PROXY_RATE_PER_SECOND: u64 = 1_000_000_000;

fn default_retry_after_secs() -> u64 {
    DEFAULT_PROXY_RETRY_AFTER_SECS
}

// ===== impl ProxyLimit =====

impl ProxyLimit {
    /// The largest share another tenant may take: 0.99, so the client always keeps 1 % of the
    /// rate (a share of 1 would stop it for good).
    pub const MAX_TENANT_SHARE: f64 = 0.99;

    /// `rate_per_second` requests per second and key, no burst, `Retry-After: 1`, no other
    /// tenant.
    #[must_use]
    pub const fn per_second(rate_per_second: u64) -> Self {
        ProxyLimit {
            rate_per_second,
            burst: 0,
            retry_after_secs: DEFAULT_PROXY_RETRY_AFTER_SECS,
            tenant_schedule: Vec::new(),
        }
    }

    /// Sets the burst: `burst + 1` requests pass back to back.
    #[must_use]
    pub const fn with_burst(mut self, burst: u64) -> Self {
        self.burst = burst;
        self
    }

    /// Sets the `Retry-After` of a refusal, rounded up to whole seconds (the header's unit).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        let secs = after
            .as_secs()
            .saturating_add(u64::from(after.subsec_nanos() > 0));
        self.retry_after_secs = secs;
        self
    }

    /// Adds a schedule entry: from `from` after the server starts, another tenant takes `share`
    /// of the rate. Entries must be added in increasing order of `from`.
    #[must_use]
    pub fn with_tenant_share(mut self, from: Duration, share: f64) -> Self {
        self.tenant_schedule.push(TenantShare {
            from_ms: u64::try_from(from.as_millis()).unwrap_or(u64::MAX),
            share,
        });
        self
    }

    /// Checks the rate, the shares and the order of the schedule.
    fn validate(&self) -> Result<(), MockConfigError> {
        if self.rate_per_second == 0 {
            return Err(MockConfigError::invalid(
                "proxy_limit.rate_per_second",
                "must be greater than 0",
            ));
        }
        if self.rate_per_second > MAX_PROXY_RATE_PER_SECOND {
            return Err(MockConfigError::invalid(
                "proxy_limit.rate_per_second",
                format!("must be at most {MAX_PROXY_RATE_PER_SECOND}"),
            ));
        }
        let mut previous: Option<u64> = None;
        for (i, entry) in self.tenant_schedule.iter().enumerate() {
            check_tenant_share(format!("proxy_limit.tenant[{i}].share"), entry.share)?;
            if let Some(prev) = previous.filter(|prev| entry.from_ms <= *prev) {
                return Err(MockConfigError::invalid(
                    format!("proxy_limit.tenant[{i}].from_ms"),
                    format!("{} is not after the previous entry's {prev}", entry.from_ms),
                ));
            }
            previous = Some(entry.from_ms);
        }
        Ok(())
    }
}

/// Checks that another tenant's share is in `[0, ProxyLimit::MAX_TENANT_SHARE]` (NaN is not).
pub(crate) fn check_tenant_share(
    field: impl fmt::Display,
    share: f64,
) -> Result<(), MockConfigError> {
    if (0.0..=ProxyLimit::MAX_TENANT_SHARE).contains(&share) {
        Ok(())
    } else {
        Err(MockConfigError::invalid(
            field,
            format!("share {share} is not in [0, 0.99]"),
        ))
    }
}

/// The whole mock configuration. See the [crate docs](crate) for a TOML example.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "RawConfig")]
pub struct MockConfig {
    /// Which provider to imitate.
    pub flavor: Flavor,
    /// Server-side limits, all optional.
    pub quota: MockQuota,
    /// Context window in tokens; default 128 000 (OpenAI) / 200 000 (Anthropic). A prompt estimate
    /// plus `max_tokens` above it gets the provider's 400 and consumes no quota.
    pub context_window: u64,
    /// Tokens in each answer, capped by the request's `max_tokens`; default 50.
    pub completion_tokens: u64,
    /// Time to answer.
    pub latency: Latency,
    /// Injected failures.
    pub faults: Faults,
    /// When set, a wrong or missing key gets a 401 with the provider's body. Keys are read from
    /// `Authorization: Bearer …` or `x-api-key`.
    pub api_key: Option<String>,
    /// Prepaid credit in tokens (input + output of successful answers). Once spent, requests get
    /// OpenAI's 429 `insufficient_quota` or Anthropic's 400 "credit balance is too low"
    /// (with `x-should-retry: false`).
    pub credit_tokens: Option<u64>,
    /// Seed for the fault and latency RNG.
    pub seed: u64,
    /// A reverse proxy's per-key limiter in front of the provider; `None` (the default): no
    /// proxy.
    pub proxy_limit: Option<ProxyLimit>,
}

/// The TOML shape; `context_window` and outage statuses default by flavor.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    flavor: Flavor,
    quota: MockQuota,
    context_window: Option<u64>,
    completion_tokens: u64,
    latency: Latency,
    faults: Faults,
    api_key: Option<String>,
    credit_tokens: Option<u64>,
    seed: u64,
    proxy_limit: Option<ProxyLimit>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            flavor: Flavor::OpenAi,
            quota: MockQuota::default(),
            context_window: None,
            completion_tokens: DEFAULT_COMPLETION_TOKENS,
            latency: Latency::default(),
            faults: Faults::default(),
            api_key: None,
            credit_tokens: None,
            seed: 0,
            proxy_limit: None,
        }
    }
}

impl From<RawConfig> for MockConfig {
    fn from(raw: RawConfig) -> Self {
        let mut faults = raw.faults;
        for outage in &mut faults.outages {
            if outage.status == 0 {
                outage.status = raw.flavor.outage_status();
            }
        }
        MockConfig {
            flavor: raw.flavor,
            quota: raw.quota,
            context_window: raw
                .context_window
                .unwrap_or_else(|| raw.flavor.default_context_window()),
            completion_tokens: raw.completion_tokens,
            latency: raw.latency,
            faults,
            api_key: raw.api_key,
            credit_tokens: raw.credit_tokens,
            seed: raw.seed,
            proxy_limit: raw.proxy_limit,
        }
    }
}

const DEFAULT_COMPLETION_TOKENS: u64 = 50;
/// Latencies above this are rejected by validation (1 hour).
const MAX_LATENCY_MS: u64 = 3_600_000;

fn de_error_rates<'de, D>(d: D) -> Result<BTreeMap<u16, f64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    /// A status code written as a TOML key (a string) or as an integer (JSON-like formats).
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct StatusKey(u16);

    impl<'de> Deserialize<'de> for StatusKey {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = StatusKey;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an HTTP status code such as \"503\"")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusKey, E> {
                    v.trim()
                        .parse::<u16>()
                        .map(StatusKey)
                        .map_err(|_| E::custom(format!("invalid status code `{v}`")))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusKey, E> {
                    u16::try_from(v)
                        .map(StatusKey)
                        .map_err(|_| E::custom(format!("invalid status code `{v}`")))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusKey, E> {
                    u16::try_from(v)
                        .map(StatusKey)
                        .map_err(|_| E::custom(format!("invalid status code `{v}`")))
                }
            }
            d.deserialize_any(V)
        }
    }

    let raw = BTreeMap::<StatusKey, f64>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A configuration that could not be parsed or is invalid. `Display` names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockConfigError {
    message: String,
}

impl MockConfigError {
    pub(crate) fn invalid(field: impl fmt::Display, problem: impl fmt::Display) -> Self {
        MockConfigError {
            message: format!("invalid value for `{field}`: {problem}"),
        }
    }

    /// The error message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MockConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.trim_end().trim_end_matches('.'))
    }
}

impl std::error::Error for MockConfigError {}

// ===== impl MockConfig =====

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig::openai()
    }
}

impl MockConfig {
    /// OpenAI defaults: no limits, 128 000-token context window, 50-token answers, no latency,
    /// no faults, no API key, unlimited credit.
    #[must_use]
    pub fn openai() -> Self {
        RawConfig::default().into()
    }

    /// Anthropic defaults: as [`MockConfig::openai`] but with a 200 000-token context window.
    #[must_use]
    pub fn anthropic() -> Self {
        RawConfig {
            flavor: Flavor::Anthropic,
            ..RawConfig::default()
        }
        .into()
    }

    /// Parses and validates a TOML configuration.
    ///
    /// # Errors
    ///
    /// A [`MockConfigError`] naming the field: unknown fields, wrong types (with the TOML line),
    /// and invalid values (see [`MockConfig::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_mock::{Flavor, MockConfig};
    /// let cfg = MockConfig::from_toml(r#"
    ///     flavor = "anthropic"
    ///     quota = { requests_per_minute = 50, input_tokens_per_minute = 30000 }
    /// "#).unwrap();
    /// assert_eq!(cfg.flavor, Flavor::Anthropic);
    /// assert_eq!(cfg.context_window, 200_000);
    /// assert!(MockConfig::from_toml("quota = { rpm = 5 }").unwrap_err().to_string().contains("rpm"));
    /// ```
    pub fn from_toml(s: &str) -> Result<Self, MockConfigError> {
        let cfg: MockConfig = toml::from_str(s).map_err(|e| MockConfigError {
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values: limits and the context window greater than 0, probabilities in
    /// `[0, 1]` adding up to at most 1 (the request faults together, the stream's stall, error
    /// and cut together), error statuses in 400..=599, latency bounds ordered and at most an hour
    /// (the first-token delay too); for the [`ProxyLimit`], a rate greater than 0, tenant shares
    /// in `[0, 0.99]` and schedule entries in increasing order of `from_ms`.
    ///
    /// # Errors
    ///
    /// A [`MockConfigError`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), MockConfigError> {
        let q = &self.quota;
        for (name, value) in [
            ("quota.requests_per_minute", q.requests_per_minute),
            ("quota.tokens_per_minute", q.tokens_per_minute),
            ("quota.input_tokens_per_minute", q.input_tokens_per_minute),
            ("quota.output_tokens_per_minute", q.output_tokens_per_minute),
            ("quota.tokens_per_day", q.tokens_per_day),
            ("quota.max_concurrency", q.max_concurrency),
        ] {
            if value == Some(0) {
                return Err(MockConfigError::invalid(name, "must be greater than 0"));
            }
        }
        if self.context_window == 0 {
            return Err(MockConfigError::invalid(
                "context_window",
                "must be greater than 0",
            ));
        }
        match self.latency {
            Latency::Fixed { ms } if ms > MAX_LATENCY_MS => {
                return Err(MockConfigError::invalid(
                    "latency.ms",
                    "must be at most 3600000",
                ));
            }
            Latency::Uniform { min_ms, max_ms } if min_ms > max_ms => {
                return Err(MockConfigError::invalid(
                    "latency.min_ms",
                    format!("{min_ms} is greater than max_ms {max_ms}"),
                ));
            }
            Latency::Uniform { max_ms, .. } if max_ms > MAX_LATENCY_MS => {
                return Err(MockConfigError::invalid(
                    "latency.max_ms",
                    "must be at most 3600000",
                ));
            }
            Latency::LogNormal { median_ms: 0, .. } => {
                return Err(MockConfigError::invalid(
                    "latency.median_ms",
                    "must be greater than 0",
                ));
            }
            Latency::LogNormal { median_ms, p99_ms } if p99_ms < median_ms => {
                return Err(MockConfigError::invalid(
                    "latency.p99_ms",
                    format!("{p99_ms} is less than median_ms {median_ms}"),
                ));
            }
            Latency::LogNormal { p99_ms, .. } if p99_ms > MAX_LATENCY_MS => {
                return Err(MockConfigError::invalid(
                    "latency.p99_ms",
                    "must be at most 3600000",
                ));
            }
            _ => {}
        }
        let f = &self.faults;
        let mut total = 0.0;
        for (name, p) in [
            ("faults.hang_rate".to_owned(), f.hang_rate),
            ("faults.reset_rate".to_owned(), f.reset_rate),
        ]
        .into_iter()
        .chain(
            f.error_rates
                .iter()
                .map(|(s, p)| (format!("faults.error_rates.{s}"), *p)),
        ) {
            check_rate(&name, p)?;
            total += p;
        }
        if total > 1.0 + 1e-9 {
            return Err(MockConfigError::invalid(
                "faults",
                format!("hang_rate, reset_rate and error_rates add up to {total}, more than 1"),
            ));
        }
        for status in f.error_rates.keys() {
            if !(400..=599).contains(status) {
                return Err(MockConfigError::invalid(
                    format!("faults.error_rates.{status}"),
                    "status must be in 400..=599",
                ));
            }
        }
        f.stream.validate()?;
        for (i, o) in f.outages.iter().enumerate() {
            if o.status != 0 && !(400..=599).contains(&o.status) {
                return Err(MockConfigError::invalid(
                    format!("faults.outages[{i}].status"),
                    "status must be 0 (the flavor's default) or in 400..=599",
                ));
            }
        }
        match &self.proxy_limit {
            Some(limit) => limit.validate(),
            None => Ok(()),
        }
    }

    /// Sets `quota.requests_per_minute`.
    #[must_use]
    pub fn with_requests_per_minute(mut self, rpm: u64) -> Self {
        self.quota.requests_per_minute = Some(rpm);
        self
    }

    /// Sets `quota.tokens_per_minute`.
    #[must_use]
    pub fn with_tokens_per_minute(mut self, tpm: u64) -> Self {
        self.quota.tokens_per_minute = Some(tpm);
        self
    }

    /// Sets `quota.input_tokens_per_minute` (Anthropic's ITPM).
    #[must_use]
    pub fn with_input_tokens_per_minute(mut self, itpm: u64) -> Self {
        self.quota.input_tokens_per_minute = Some(itpm);
        self
    }

    /// Sets `quota.output_tokens_per_minute` (Anthropic's OTPM).
    #[must_use]
    pub fn with_output_tokens_per_minute(mut self, otpm: u64) -> Self {
        self.quota.output_tokens_per_minute = Some(otpm);
        self
    }

    /// Sets `quota.tokens_per_day`.
    #[must_use]
    pub fn with_tokens_per_day(mut self, tpd: u64) -> Self {
        self.quota.tokens_per_day = Some(tpd);
        self
    }

    /// Sets `quota.max_concurrency`.
    #[must_use]
    pub fn with_max_concurrency(mut self, n: u64) -> Self {
        self.quota.max_concurrency = Some(n);
        self
    }

    /// Sets the context window in tokens.
    #[must_use]
    pub fn with_context_window(mut self, tokens: u64) -> Self {
        self.context_window = tokens;
        self
    }

    /// Sets the number of tokens in each answer (capped by the request's `max_tokens`).
    #[must_use]
    pub fn with_completion_tokens(mut self, tokens: u64) -> Self {
        self.completion_tokens = tokens;
        self
    }

    /// Sets the latency distribution.
    #[must_use]
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Answers `status` with probability `p` per request (replacing an earlier rate for it).
    #[must_use]
    pub fn with_error_rate(mut self, status: u16, p: f64) -> Self {
        self.faults.error_rates.insert(status, p);
        self
    }

    /// Never answers with probability `p` per request.
    #[must_use]
    pub fn with_hang_rate(mut self, p: f64) -> Self {
        self.faults.hang_rate = p;
        self
    }

    /// Closes the connection without a response with probability `p` per request.
    #[must_use]
    pub fn with_reset_rate(mut self, p: f64) -> Self {
        self.faults.reset_rate = p;
        self
    }

    /// Delays the first event of streamed answers (see [`StreamFaults`]).
    #[must_use]
    pub fn with_first_token_delay(mut self, delay: FirstTokenDelay) -> Self {
        self.faults.stream.first_token_delay = Some(delay);
        self
    }

    /// Stalls streamed answers after some events: nothing more, never an end (see
    /// [`StreamFaults`]).
    #[must_use]
    pub fn with_stream_stall(mut self, fault: StreamFault) -> Self {
        self.faults.stream.stall = Some(fault);
        self
    }

    /// Ends streamed answers after some events with the mid-stream error event and without the
    /// terminal event (see [`StreamFaults`]).
    #[must_use]
    pub fn with_stream_error(mut self, fault: StreamFault) -> Self {
        self.faults.stream.error = Some(fault);
        self
    }

    /// Cuts the connection of streamed answers after some events (see [`StreamFaults`]).
    #[must_use]
    pub fn with_stream_cut(mut self, fault: StreamFault) -> Self {
        self.faults.stream.cut = Some(fault);
        self
    }

    /// Adds an outage with the flavor's status (503 OpenAI, 529 Anthropic) from `start` after the
    /// server starts, lasting `len`.
    #[must_use]
    pub fn with_outage(self, start: Duration, len: Duration) -> Self {
        let status = self.flavor.outage_status();
        self.with_outage_status(start, len, status)
    }

    /// Adds an outage answered with `status`.
    #[must_use]
    pub fn with_outage_status(mut self, start: Duration, len: Duration, status: u16) -> Self {
        self.faults.outages.push(Outage {
            start_ms: u64::try_from(start.as_millis()).unwrap_or(u64::MAX),
            duration_ms: u64::try_from(len.as_millis()).unwrap_or(u64::MAX),
            status,
        });
        self
    }

    /// Requires this API key.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the prepaid credit in tokens.
    #[must_use]
    pub fn with_credit_tokens(mut self, tokens: u64) -> Self {
        self.credit_tokens = Some(tokens);
        self
    }

    /// Sets the RNG seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Puts a reverse proxy's per-key limiter in front of the provider.
    #[must_use]
    pub fn with_proxy_limit(mut self, limit: ProxyLimit) -> Self {
        self.proxy_limit = Some(limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_by_flavor() {
        assert_eq!(MockConfig::openai().context_window, 128_000);
        assert_eq!(MockConfig::anthropic().context_window, 200_000);
        let cfg = MockConfig::from_toml("flavor = \"anthropic\"").unwrap();
        assert_eq!(cfg, MockConfig::anthropic());
        assert_eq!(MockConfig::from_toml("").unwrap(), MockConfig::openai());
    }

    #[test]
    fn outage_status_defaults_by_flavor() {
        let cfg = MockConfig::from_toml(
            "flavor = \"anthropic\"\n[[faults.outages]]\nstart_ms = 5\nduration_ms = 10\n",
        )
        .unwrap();
        assert_eq!(cfg.faults.outages[0].status, 529);
    }

    #[test]
    fn error_rate_keys() {
        let cfg =
            MockConfig::from_toml("[faults.error_rates]\n500 = 0.5\n\"503\" = 0.25\n").unwrap();
        assert_eq!(cfg.faults.error_rates.get(&500), Some(&0.5));
        assert_eq!(cfg.faults.error_rates.get(&503), Some(&0.25));
        let err = MockConfig::from_toml("[faults.error_rates]\nabc = 0.5\n").unwrap_err();
        assert!(err.to_string().contains("abc"), "{err}");
    }

    #[test]
    fn latency_kinds() {
        let cfg = MockConfig::from_toml(
            "latency = { kind = \"log_normal\", median_ms = 5, p99_ms = 50 }",
        )
        .unwrap();
        assert_eq!(
            cfg.latency,
            Latency::LogNormal {
                median_ms: 5,
                p99_ms: 50
            }
        );
        let err =
            MockConfig::from_toml("latency = { kind = \"fixed\", ms = 1, extra = 2 }").unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}
