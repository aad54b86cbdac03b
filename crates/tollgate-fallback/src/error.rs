//! [`AllTargetsFailed`]: the error the fallback adds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::{ErrorClass, Judged, RetryAdvice, Verdict};

/// Every target failed, or was cooling down and could not be waited for. Lists each attempt's
/// target and verdict, in order.
#[derive(Debug, Clone)]
pub struct AllTargetsFailed {
    attempts: Vec<(Arc<str>, Verdict)>,
    retry_after: Option<Duration>,
    verdict: Judged,
}

impl AllTargetsFailed {
    pub(crate) fn new(attempts: Vec<(Arc<str>, Verdict)>, retry_after: Option<Duration>) -> Self {
        // The last attempt's verdict; with none (every target cooling), an overload refused
        // here. Its delay is when the first target is free again.
        let mut verdict = match attempts.last() {
            Some((_, verdict)) => verdict.clone(),
            None => Verdict::failure(ErrorClass::Overloaded)
                .with_advice(RetryAdvice::Elsewhere)
                .refused_locally(),
        };
        if let Some(wait) = retry_after {
            verdict = verdict.with_wait(wait);
        }
        AllTargetsFailed {
            attempts,
            retry_after,
            verdict: Judged::new(verdict),
        }
    }

    /// The verdict: the last attempt's (none tried: an overload refused here), with
    /// [`retry_after`](Self::retry_after) as its delay when there is one.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }

    /// Each target tried and its verdict, in order.
    pub fn attempts(&self) -> impl Iterator<Item = (&str, &Verdict)> {
        self.attempts
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
