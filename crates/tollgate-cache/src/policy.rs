//! [`CacheConfig`] and the request and response extensions: [`CacheRequest`],
//! [`CacheIdentity`], [`CacheStatus`].

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;

/// The header that opts a request in (`x-tollgate-cache: on`) and that marks a cacheable
/// request's response (`x-tollgate-cache: hit`, `coalesced` or `miss`).
pub const CACHE_HEADER: HeaderName = HeaderName::from_static("x-tollgate-cache");

/// What [`CacheLayer`](crate::CacheLayer) stores, for how long, and which requests it answers.
///
/// A request is cacheable when it carries [`CacheRequest::Use`] or the
/// [opt-in header](CacheConfig::opt_in_header) with the value `on`, or — with
/// [`deterministic`](CacheConfig::deterministic) — when its JSON body has `"temperature": 0`
/// and `n` absent or 1. [`CacheRequest::Bypass`] (or the header's value `off`) wins over all of
/// them.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroU64;
/// use std::time::Duration;
/// use tollgate_cache::CacheConfig;
///
/// let config = CacheConfig::default()
///     .with_ttl(Duration::from_secs(60))
///     .with_max_entries(NonZeroU64::new(1_000).unwrap())
///     .with_deterministic(true);
/// assert_eq!(config.max_bytes.get(), 64 * 1024 * 1024);
/// assert!(!config.shared_across_callers);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long an entry answers requests: 5 minutes by default. An entry is a miss from the
    /// instant it is `ttl` old.
    pub ttl: Duration,
    /// The most entries held: 10 000 by default, at most `u32::MAX`. An alias — a raw body
    /// that differs from its normalised form, recorded when a request written that way hits —
    /// counts as an entry too.
    pub max_entries: NonZeroU64,
    /// The most bytes held, counting each entry's key body, URI, response status, headers
    /// and body: 64 MiB by default.
    pub max_bytes: NonZeroU64,
    /// The largest response body stored: 1 MiB by default. A larger response reaches the
    /// caller intact and is not stored.
    pub max_entry_bytes: NonZeroUsize,
    /// The request header that opts a request in with the value `on` (or out with `off`):
    /// [`CACHE_HEADER`] by default. It is removed before the request goes upstream.
    pub opt_in_header: HeaderName,
    /// Also cache requests whose JSON body has `"temperature": 0` and `n` absent or 1, without
    /// opting in: off by default.
    pub deterministic: bool,
    /// Share entries between callers (API keys, tenants): off by default, so one caller's
    /// answer is never served to another.
    pub shared_across_callers: bool,
    /// The request headers whose values identify the caller: `authorization`, `x-api-key`,
    /// `api-key` and `x-goog-api-key` by default. Their values are hashed with a seed chosen
    /// when the cache is made, together with a [`CacheIdentity`] extension if present; the
    /// values themselves are never stored. Requests with none of them and no extension share
    /// one identity.
    pub identity_headers: Vec<HeaderName>,
    /// The request headers that select another answer for the same body, whose values are
    /// part of every key (shared across callers or not): `accept`, `accept-encoding`,
    /// `anthropic-version`, `anthropic-beta`, `openai-organization` and `openai-project` by
    /// default.
    pub variant_headers: Vec<HeaderName>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            max_entries: NonZeroU64::new(10_000).unwrap_or(NonZeroU64::MIN),
            max_bytes: NonZeroU64::new(64 * 1024 * 1024).unwrap_or(NonZeroU64::MIN),
            max_entry_bytes: NonZeroUsize::new(1024 * 1024).unwrap_or(NonZeroUsize::MIN),
            opt_in_header: CACHE_HEADER,
            deterministic: false,
            shared_across_callers: false,
            identity_headers: vec![
                AUTHORIZATION,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("api-key"),
                HeaderName::from_static("x-goog-api-key"),
            ],
            variant_headers: vec![
                http::header::ACCEPT,
                http::header::ACCEPT_ENCODING,
                HeaderName::from_static("anthropic-version"),
                HeaderName::from_static("anthropic-beta"),
                HeaderName::from_static("openai-organization"),
                HeaderName::from_static("openai-project"),
            ],
        }
    }
}

impl CacheConfig {
    /// Sets [`ttl`](CacheConfig::ttl).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets [`max_entries`](CacheConfig::max_entries).
    #[must_use]
    pub fn with_max_entries(mut self, max_entries: NonZeroU64) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// Sets [`max_bytes`](CacheConfig::max_bytes).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: NonZeroU64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets [`max_entry_bytes`](CacheConfig::max_entry_bytes).
    #[must_use]
    pub fn with_max_entry_bytes(mut self, max_entry_bytes: NonZeroUsize) -> Self {
        self.max_entry_bytes = max_entry_bytes;
        self
    }

    /// Sets [`opt_in_header`](CacheConfig::opt_in_header).
    #[must_use]
    pub fn with_opt_in_header(mut self, name: HeaderName) -> Self {
        self.opt_in_header = name;
        self
    }

    /// Sets [`deterministic`](CacheConfig::deterministic).
    #[must_use]
    pub fn with_deterministic(mut self, on: bool) -> Self {
        self.deterministic = on;
        self
    }

    /// Sets [`shared_across_callers`](CacheConfig::shared_across_callers).
    #[must_use]
    pub fn with_shared_across_callers(mut self, on: bool) -> Self {
        self.shared_across_callers = on;
        self
    }

    /// Sets [`variant_headers`](CacheConfig::variant_headers).
    #[must_use]
    pub fn with_variant_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.variant_headers = names.into_iter().collect();
        self
    }

    /// Sets [`identity_headers`](CacheConfig::identity_headers).
    #[must_use]
    pub fn with_identity_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.identity_headers = names.into_iter().collect();
        self
    }
}

/// A request extension: use the cache for this request, or bypass it. `Bypass` wins over
/// every other opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheRequest {
    /// Answer from the cache if possible, and store the response.
    Use,
    /// Go upstream; neither read nor store.
    Bypass,
}

/// A request extension naming the caller (a tenant, a user) for the cache key, in addition to
/// the [identity headers](CacheConfig::identity_headers). Hashed, never stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheIdentity(pub String);

impl std::fmt::Debug for CacheIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheIdentity(..)")
    }
}

/// A response extension saying where the response came from. Every response through
/// [`Cache`](crate::Cache) has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheStatus {
    /// From the cache: no upstream call.
    Hit,
    /// From another identical request's upstream call, made while this one waited.
    Coalesced,
    /// Cacheable, but went upstream.
    Miss,
    /// Not cacheable: passed through untouched.
    Bypass,
}

impl CacheStatus {
    /// `hit`, `coalesced`, `miss` or `bypass`: the value of the response header.
    pub const fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Coalesced => "coalesced",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }

    /// The status of `response`, if it went through a cache.
    pub fn of<B>(response: &http::Response<B>) -> Option<CacheStatus> {
        response.extensions().get::<CacheStatus>().copied()
    }
}
