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

/// `class`'s bit: its place in the declaration of [`ErrorClass`] (the order of
/// [`ErrorClass::ALL`]).
const fn bit(class: ErrorClass) -> u32 {
    1 << class as u32
}

// Every class has a bit of its own in a `u32`.
const _: () = assert!(ErrorClass::ALL.len() <= u32::BITS as usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_bit() {
        for (i, a) in ErrorClass::ALL.iter().enumerate() {
            let set = ClassSet::EMPTY.with(*a);
            for (j, b) in ErrorClass::ALL.iter().enumerate() {
                assert_eq!(set.contains(*b), i == j, "{a:?} / {b:?}");
            }
            assert_eq!(set.without(*a), ClassSet::EMPTY);
        }
    }

    #[test]
    fn target_health_matches_counts_against_health() {
        for class in ErrorClass::ALL {
            assert_eq!(
                ClassSet::TARGET_HEALTH.contains(class),
                class.counts_against_health(),
                "{class:?}"
            );
        }
    }
}
