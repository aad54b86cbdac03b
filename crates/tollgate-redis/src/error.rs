//! The errors of [`RedisStore`](crate::RedisStore): refusing a configuration, and refusing a
//! request while Redis is away under [`Unavailable::Refuse`](crate::Unavailable::Refuse).

use std::fmt;
use std::time::Duration;

use tollgate_core::{DelaySource, ErrorClass, Judged, RetryAdvice, Verdict};

/// A configuration [`RedisStore::new`](crate::RedisStore::new) or
/// [`RedisStore::connect`](crate::RedisStore::connect) cannot use. Never shows
/// the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// The URL is not a Redis URL (`redis://`, `rediss://` or `unix://`).
    Url,
    /// `replicas` is 0.
    NoReplicas,
    /// `timeout` or `reconnect_every` is zero.
    ZeroDuration(&'static str),
    /// The prefix is empty, or holds `{`, `}` or whitespace.
    Prefix,
    /// A limit uses an algorithm the shared store does not run (the windows: use the token
    /// bucket or GCRA).
    Algorithm(&'static str),
    /// [`RedisStore::new`](crate::RedisStore::new) was called outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisConfigError::Url => f.write_str("the Redis URL is not valid (the URL is hidden)"),
            RedisConfigError::NoReplicas => f.write_str("`replicas` must be at least 1"),
            RedisConfigError::ZeroDuration(name) => write!(f, "`{name}` must be above zero"),
            RedisConfigError::Prefix => {
                f.write_str("the key prefix must be non-empty, without `{`, `}` or whitespace")
            }
            RedisConfigError::Algorithm(name) => write!(
                f,
                "the Redis store runs the token bucket and GCRA, not {name}"
            ),
            RedisConfigError::NoRuntime => {
                f.write_str("the Redis store connects on a tokio runtime, and none is running")
            }
        }
    }
}

impl std::error::Error for RedisConfigError {}

/// Redis could not be reached and the store refuses meanwhile
/// ([`Unavailable::Refuse`](crate::Unavailable::Refuse)). Nothing was spent.
///
/// Its verdict: a connection failure, to be tried elsewhere, after the store's reconnection
/// interval, refused locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUnavailable {
    retry_after: Duration,
    verdict: Judged,
}

impl RedisUnavailable {
    pub(crate) const fn new(retry_after: Duration) -> Self {
        let verdict = Verdict::failure(ErrorClass::Connect)
            .with_advice(RetryAdvice::Elsewhere)
            .with_delay(retry_after, DelaySource::LocalQuota)
            .refused_locally();
        RedisUnavailable {
            retry_after,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict (see above).
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// When the store next tries to reach Redis.
    pub const fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

impl fmt::Display for RedisUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the shared quota store (Redis) is unreachable; retry after {:?}",
            self.retry_after
        )
    }
}

impl std::error::Error for RedisUnavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
