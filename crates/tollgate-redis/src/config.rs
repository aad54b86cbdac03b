//! [`RedisConfig`]: where the shared quota lives, and what to do when it cannot be reached.

use std::fmt;
use std::time::Duration;

/// What a [`RedisStore`](crate::RedisStore) does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unavailable {
    /// Admit from a quota in this process holding 1/N of every limit, N being
    /// [`RedisConfig::replicas`] (the default): the fleet as a whole stays near the quota
    /// (each share starts full, so a change of mode may let up to about one burst more
    /// through).
    #[default]
    LocalShare,
    /// Refuse the request with [`RedisUnavailable`](crate::error::RedisUnavailable).
    Refuse,
    /// Admit every request, counting nothing.
    Admit,
}

impl Unavailable {
    /// The name used in configuration files: `local_share`, `refuse` or `admit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unavailable::LocalShare => "local_share",
            Unavailable::Refuse => "refuse",
            Unavailable::Admit => "admit",
        }
    }
}

/// The configuration of a [`RedisStore`](crate::RedisStore).
///
/// `Debug` never shows the URL (it may hold a password).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_redis::{RedisConfig, Unavailable};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379/")
///     .with_prefix("gateway")
///     .with_replicas(3)
///     .with_timeout(Duration::from_millis(50))
///     .with_unavailable(Unavailable::LocalShare);
/// assert_eq!(config.replicas, 3);
/// assert!(!format!("{config:?}").contains("6379"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The server: `redis://[:password@]host:port/[db]` or `rediss://…` where TLS is built in.
    pub url: String,
    /// The start of every key this store writes (default `tollgate`): several fleets can
    /// share one Redis.
    pub prefix: String,
    /// How many replicas share the quota (default 1): under [`Unavailable::LocalShare`] each
    /// admits 1/`replicas` of every limit while Redis is away.
    pub replicas: u32,
    /// The longest any call to Redis may take, connection included (default 50 ms); past it,
    /// Redis counts as unreachable.
    pub timeout: Duration,
    /// What to do while Redis is unreachable.
    pub unavailable: Unavailable,
    /// How often to try to reach Redis again once it was lost (default 250 ms).
    pub reconnect_every: Duration,
}

/// The URL schemes the Redis client reads (Valkey's too), as a reader is told them.
pub const URL_SCHEMES: &str = "redis://, rediss://, valkey://, valkeys:// or unix://";

/// Every scheme the Redis client reads, in lower case.
const SCHEMES: [&str; 7] = [
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "unix",
    "redis+unix",
    "valkey+unix",
];

impl RedisConfig {
    /// Whether `url` starts with a scheme the Redis client reads ([`URL_SCHEMES`], in any
    /// case): a check that needs no connection, for configuration errors that must not quote
    /// the URL.
    pub fn has_redis_scheme(url: &str) -> bool {
        url.split_once("://").is_some_and(|(scheme, _)| {
            SCHEMES
                .iter()
                .any(|known| known.eq_ignore_ascii_case(scheme))
        })
    }

    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "tollgate".to_owned(),
            replicas: 1,
            timeout: Duration::from_millis(50),
            unavailable: Unavailable::LocalShare,
            reconnect_every: Duration::from_millis(250),
        }
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`replicas`](Self::replicas).
    #[must_use]
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`unavailable`](Self::unavailable).
    #[must_use]
    pub fn with_unavailable(mut self, unavailable: Unavailable) -> Self {
        self.unavailable = unavailable;
        self
    }

    /// Sets [`reconnect_every`](Self::reconnect_every).
    #[must_use]
    pub fn with_reconnect_every(mut self, every: Duration) -> Self {
        self.reconnect_every = every;
        self
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<hidden>")
            .field("prefix", &self.prefix)
            .field("replicas", &self.replicas)
            .field("timeout", &self.timeout)
            .field("unavailable", &self.unavailable)
            .field("reconnect_every", &self.reconnect_every)
            .finish()
    }
}
