//! [`CircuitOpen`]: the error the breaker adds.

use std::fmt;
use std::time::Duration;

use tollgate_core::RouteKey;

/// The breaker refused the call without sending it: open, half-open with every probe slot
/// taken, or forced open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    key: Option<RouteKey>,
    retry_after: Option<Duration>,
}

impl CircuitOpen {
    pub(crate) fn new(key: Option<RouteKey>, retry_after: Option<Duration>) -> Self {
        CircuitOpen { key, retry_after }
    }

    /// When a probe will be let through: the rest of the open period. `None` while the
    /// half-open probes are in flight, or when forced open.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whose breaker (`None`: the unkeyed one).
    pub fn key(&self) -> Option<&RouteKey> {
        self.key.as_ref()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit open")?;
        if let Some(key) = &self.key {
            write!(f, " for {key}")?;
        }
        match self.retry_after {
            Some(wait) => write!(f, "; a probe in {wait:?}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for CircuitOpen {}
