//! [`ClassSet`]: a set of [`ErrorClass`]es, as layers configure which failures they act on —
//! the classes a circuit breaker counts, the classes a fallback moves on from.

use crate::ErrorClass;

/// A set of [`ErrorClass`]es.
///
/// A copyable bit set, built in `const` context: layers take one to say which failures they
/// act on (a circuit breaker's counted failures, a fallback's classes to move on from).
///
/// # Examples
///
/// ```
/// use tollgate_core::{ClassSet, ErrorClass};
///
/// // The target-health failures, and rate limits too.
/// let classes = ClassSet::TARGET_HEALTH.with(ErrorClass::RateLimited);
/// assert!(classes.contains(ErrorClass::Overloaded));
/// assert!(classes.contains(ErrorClass::RateLimited));
/// assert!(!classes.contains(ErrorClass::BadRequest));
/// assert!(!classes.without(ErrorClass::Overloaded).contains(ErrorClass::Overloaded));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassSet {
    bits: u32,
}

impl ClassSet {
    /// No class.
    pub const EMPTY: ClassSet = ClassSet { bits: 0 };

    /// The failures that say a target is unhealthy (PROVIDERS.md §7 item 18): server errors,
    /// overloads, timeouts, connection failures and truncated streams. Not 4xx, 429, quota or
    /// context window.
    pub const TARGET_HEALTH: ClassSet = ClassSet::EMPTY
        .with(ErrorClass::ServerError)
        .with(ErrorClass::Overloaded)
        .with(ErrorClass::Timeout)
        .with(ErrorClass::Connect)
        .with(ErrorClass::Truncated);

    /// The set with `class` too.
    #[must_use]
    pub const fn with(self, class: ErrorClass) -> Self {
        ClassSet {
            bits: self.bits | bit(class),
        }
    }

    /// The set without `class`.
    #[must_use]
    pub const fn without(self, class: ErrorClass) -> Self {
        ClassSet {
            bits: self.bits & !bit(class),
        }
    }

    /// Whether `class` is in it.
    pub const fn contains(&self, class: ErrorClass) -> bool {
        self.bits & bit(class) != 0
    }
}

/// The bit of `class`. The match is exhaustive (`ErrorClass` is defined in this crate), so a
/// new class cannot be added without a bit of its own.
const fn bit(class: ErrorClass) -> u32 {
    1 << match class {
        ErrorClass::RateLimited => 0,
        ErrorClass::QuotaExhausted => 1,
        ErrorClass::Overloaded => 2,
        ErrorClass::ServerError => 3,
        ErrorClass::Timeout => 4,
        ErrorClass::Connect => 5,
        ErrorClass::ContextWindowExceeded => 6,
        ErrorClass::ContentPolicy => 7,
        ErrorClass::Unauthorized => 8,
        ErrorClass::PermissionDenied => 9,
        ErrorClass::NotFound => 10,
        ErrorClass::BadRequest => 11,
        ErrorClass::PayloadTooLarge => 12,
        ErrorClass::Conflict => 13,
        ErrorClass::Unknown => 14,
        ErrorClass::Truncated => 15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorClass; 16] = [
        ErrorClass::RateLimited,
        ErrorClass::QuotaExhausted,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::ContextWindowExceeded,
        ErrorClass::ContentPolicy,
        ErrorClass::Unauthorized,
        ErrorClass::PermissionDenied,
        ErrorClass::NotFound,
        ErrorClass::BadRequest,
        ErrorClass::PayloadTooLarge,
        ErrorClass::Conflict,
        ErrorClass::Unknown,
        ErrorClass::Truncated,
    ];

    #[test]
    fn every_class_has_its_own_bit() {
        for (i, a) in ALL.iter().enumerate() {
            let set = ClassSet::EMPTY.with(*a);
            for (j, b) in ALL.iter().enumerate() {
                assert_eq!(set.contains(*b), i == j, "{a:?} / {b:?}");
            }
            assert_eq!(set.without(*a), ClassSet::EMPTY);
        }
    }

    #[test]
    fn target_health_matches_counts_against_health() {
        for class in ALL {
            assert_eq!(
                ClassSet::TARGET_HEALTH.contains(class),
                class.counts_against_health(),
                "{class:?}"
            );
        }
    }
}
