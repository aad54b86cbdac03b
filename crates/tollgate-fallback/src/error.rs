//! [`AllTargetsFailed`]: the error the fallback adds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::{ErrorClass, Judged, RetryAdvice, Verdict};

/// Every target failed, or was cooling down and could not be waited for. Lists each attempt's
/// target and verdict, in order, and each target passed over while cooling down with why.
#[derive(Debug, Clone)]
pub struct AllTargetsFailed {
    attempts: Vec<(Arc<str>, Verdict)>,
    skipped: Vec<(Arc<str>, Verdict)>,
    retry_after: Option<Duration>,
    verdict: Judged,
}

impl AllTargetsFailed {
    pub(crate) fn new(
        attempts: Vec<(Arc<str>, Verdict)>,
        skipped: Vec<(Arc<str>, Verdict)>,
        retry_after: Option<Duration>,
    ) -> Self {
        // The last attempt's verdict; with none (every target cooling), the cause of the
        // cooldown that ends first, refused here; with none either, an overload refused here.
        // Its delay is when the first target is free again.
        let mut verdict = match attempts.last() {
            Some((_, verdict)) => verdict.clone(),
            None => skipped
                .iter()
                .map(|(_, verdict)| verdict)
                .min_by_key(|verdict| verdict.delay())
                .map_or(Verdict::failure(ErrorClass::Overloaded), |verdict| {
                    verdict.clone().without_delay()
                })
                .with_advice(RetryAdvice::Elsewhere)
                .refused_locally(),
        };
        if let Some(wait) = retry_after {
            verdict = verdict.with_wait(wait);
        }
        AllTargetsFailed {
            attempts,
            skipped,
            retry_after,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict: the last attempt's (none tried: the class of the cooldown that ends first,
    /// refused here, to try elsewhere), with [`retry_after`](Self::retry_after) as its delay
    /// when there is one.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// Each target tried and its verdict, in order.
    pub fn attempts(&self) -> impl Iterator<Item = (&str, &Verdict)> {
        self.attempts
            .iter()
            .map(|(name, verdict)| (&**name, verdict))
    }

    /// Each target passed over because it was cooling down, in the order met, with why: a
    /// verdict of the class of the failure that cooled it down ([refused
    /// locally](Verdict::is_local_refusal) when a layer of this process refused it, as an open
    /// breaker or a local quota does) and how long it still cools down as its
    /// [delay](Verdict::delay). A refusal with no attempt is explained by these alone: every
    /// target down is not every target rate limited.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &Verdict)> {
        self.skipped
            .iter()
            .map(|(name, verdict)| (&**name, verdict))
    }

    /// When the first cooling target is free again, if any is cooling.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for AllTargetsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("every target failed")?;
        for (i, (name, verdict)) in self.attempts.iter().enumerate() {
            let class = verdict.class().map_or("success", |c| c.as_str());
            write!(f, "{} {name}: {class}", if i == 0 { ":" } else { ";" })?;
        }
        for (i, (name, verdict)) in self.skipped.iter().enumerate() {
            let class = verdict.class().map_or("unknown", |c| c.as_str());
            let how = if verdict.is_local_refusal() {
                ", refused here"
            } else {
                ""
            };
            write!(
                f,
                "{} {name}: cooling down after {class}{how}",
                if i == 0 && self.attempts.is_empty() {
                    ":"
                } else {
                    ";"
                }
            )?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, "; the first is free again in {wait:?}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllTargetsFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
