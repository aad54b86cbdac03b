//! Server-side quotas: continuously refilling token buckets and a concurrency count.
//!
//! A bucket holds `limit` units and refills at `limit / window`. It is stored as the instant at
//! which it will be full again (`full_at`), so the level at `now` is
//! `limit × (1 − (full_at − now) / window)`. Charging `n` moves `full_at` forward by
//! `n × window / limit`; charges after admission (output tokens) may push it beyond one window,
//! which reads as a negative level, i.e. `remaining = 0` until it has refilled.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Flavor, MockQuota};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// One continuously refilling bucket.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    limit: u64,
    window_ns: u128,
    full_at: Instant,
}

/// Why a bucket cannot take a charge now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It will fit after this long.
    Wait(Duration),
    /// It can never fit: the charge is above the limit.
    TooLarge,
}

impl TokenBucket {
    pub(crate) fn new(limit: u64, window: Duration, now: Instant) -> Self {
        TokenBucket {
            limit: limit.max(1),
            window_ns: window.as_nanos().max(1),
            full_at: now,
        }
    }

    fn debt_ns(&self, now: Instant) -> u128 {
        self.full_at.saturating_duration_since(now).as_nanos()
    }

    fn cost_ns(&self, n: u64) -> u128 {
        u128::from(n) * self.window_ns / u128::from(self.limit)
    }

    /// Units available now (floored; 0 while in debt).
    pub(crate) fn available(&self, now: Instant) -> u64 {
        let free = self.window_ns.saturating_sub(self.debt_ns(now));
        u64::try_from(free * u128::from(self.limit) / self.window_ns).unwrap_or(u64::MAX)
    }

    /// Time until completely refilled.
    pub(crate) fn reset(&self, now: Instant) -> Duration {
        self.full_at.saturating_duration_since(now)
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn check(&self, now: Instant, n: u64) -> Result<(), Refusal> {
        if n > self.limit {
            return Err(Refusal::TooLarge);
        }
        let need = self.debt_ns(now) + self.cost_ns(n);
        if need <= self.window_ns {
            Ok(())
        } else {
            Err(Refusal::Wait(nanos(need - self.window_ns)))
        }
    }

    pub(crate) fn charge(&mut self, now: Instant, n: u64) {
        let base = self.full_at.max(now);
        self.full_at = base + nanos(self.cost_ns(n));
    }
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))
}

/// A quota dimension, for messages and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    Requests,
    Tokens,
    InputTokens,
    OutputTokens,
    TokensPerDay,
    Concurrency,
}

/// What a request costs at admission.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Charge {
    /// Against `tokens_per_minute`.
    pub(crate) tokens: u64,
    /// Against `input_tokens_per_minute`.
    pub(crate) input: u64,
    /// Against `tokens_per_day`.
    pub(crate) day: u64,
}

impl Charge {
    /// The admission charge: OpenAI pre-charges prompt + `max_tokens` to TPM/TPD; Anthropic
    /// charges only the input (output follows in [`QuotaState::complete`]).
    pub(crate) fn admission(flavor: Flavor, input: u64, max_tokens: u64) -> Self {
        let tokens = match flavor {
            Flavor::OpenAi => input.saturating_add(max_tokens),
            Flavor::Anthropic => input,
        };
        Charge {
            tokens,
            input,
            day: tokens,
        }
    }
}

/// A refused admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) dim: Dim,
    pub(crate) limit: u64,
    pub(crate) used: u64,
    pub(crate) requested: u64,
    /// `None`: the request can never fit ("Request too large").
    pub(crate) wait: Option<Duration>,
}

/// One dimension for the headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DimState {
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
    pub(crate) reset: Duration,
}

/// The header-relevant state of every configured dimension.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) requests: Option<DimState>,
    pub(crate) tokens: Option<DimState>,
    pub(crate) input: Option<DimState>,
    pub(crate) output: Option<DimState>,
}

/// All quotas of one server.
#[derive(Debug)]
pub(crate) struct QuotaState {
    flavor: Flavor,
    rpm: Option<TokenBucket>,
    tpm: Option<TokenBucket>,
    itpm: Option<TokenBucket>,
    otpm: Option<TokenBucket>,
    tpd: Option<TokenBucket>,
    max_concurrency: Option<u64>,
    in_flight: u64,
    credit: Option<u64>,
}

impl QuotaState {
    pub(crate) fn new(flavor: Flavor, q: &MockQuota, credit: Option<u64>, now: Instant) -> Self {
        let minute = |l: Option<u64>| l.map(|l| TokenBucket::new(l, MINUTE, now));
        QuotaState {
            flavor,
            rpm: minute(q.requests_per_minute),
            tpm: minute(q.tokens_per_minute),
            itpm: minute(q.input_tokens_per_minute),
            otpm: minute(q.output_tokens_per_minute),
            tpd: q.tokens_per_day.map(|l| TokenBucket::new(l, DAY, now)),
            max_concurrency: q.max_concurrency,
            in_flight: 0,
            credit,
        }
    }

    /// Whether the prepaid credit is spent.
    pub(crate) fn credit_exhausted(&self) -> bool {
        self.credit == Some(0)
    }

    /// Admits the request and charges it, or refuses without charging anything.
    /// On success the caller must call [`QuotaState::release`] when the request ends.
    pub(crate) fn admit(&mut self, now: Instant, charge: Charge) -> Result<(), Rejection> {
        if let Some(max) = self.max_concurrency {
            if self.in_flight >= max {
                return Err(Rejection {
                    dim: Dim::Concurrency,
                    limit: max,
                    used: self.in_flight,
                    requested: 1,
                    wait: Some(Duration::from_secs(1)),
                });
            }
        }
        let checks = [
            (Dim::Requests, &self.rpm, 1),
            (Dim::Tokens, &self.tpm, charge.tokens),
            (Dim::InputTokens, &self.itpm, charge.input),
            // OTPM is not charged at admission: the bucket only has to be non-empty.
            (Dim::OutputTokens, &self.otpm, 1),
            (Dim::TokensPerDay, &self.tpd, charge.day),
        ];
        let mut worst: Option<Rejection> = None;
        for (dim, bucket, n) in checks {
            let Some(bucket) = bucket else { continue };
            let Err(refusal) = bucket.check(now, n) else {
                continue;
            };
            let rejection = Rejection {
                dim,
                limit: bucket.limit(),
                used: bucket.limit().saturating_sub(bucket.available(now)),
                requested: n,
                wait: match refusal {
                    Refusal::Wait(d) => Some(d),
                    Refusal::TooLarge => None,
                },
            };
            worst = Some(match worst {
                None => rejection,
                Some(w) => match (w.wait, rejection.wait) {
                    (None, _) => w,
                    (_, None) => rejection,
                    (Some(a), Some(b)) if b > a => rejection,
                    _ => w,
                },
            });
        }
        if let Some(w) = worst {
            return Err(w);
        }
        if let Some(b) = &mut self.rpm {
            b.charge(now, 1);
        }
        if let Some(b) = &mut self.tpm {
            b.charge(now, charge.tokens);
        }
        if let Some(b) = &mut self.itpm {
            b.charge(now, charge.input);
        }
        if let Some(b) = &mut self.tpd {
            b.charge(now, charge.day);
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Ends an admitted request (concurrency slot).
    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Charges what an answer produced: output tokens to OTPM (and, for Anthropic, to TPM and
    /// TPD), and input + output tokens to the credit.
    pub(crate) fn complete(&mut self, now: Instant, input: u64, output: u64) {
        if let Some(b) = &mut self.otpm {
            b.charge(now, output);
        }
        if self.flavor == Flavor::Anthropic {
            if let Some(b) = &mut self.tpm {
                b.charge(now, output);
            }
            if let Some(b) = &mut self.tpd {
                b.charge(now, output);
            }
        }
        if let Some(c) = &mut self.credit {
            *c = c.saturating_sub(input.saturating_add(output));
        }
    }

    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        let state = |b: &Option<TokenBucket>| {
            b.as_ref().map(|b| DimState {
                limit: b.limit(),
                remaining: b.available(now),
                reset: b.reset(now),
            })
        };
        Snapshot {
            requests: state(&self.rpm),
            tokens: state(&self.tpm),
            input: state(&self.itpm),
            output: state(&self.otpm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_continuously() {
        let now = Instant::now();
        let mut b = TokenBucket::new(3, MINUTE, now);
        for _ in 0..3 {
            assert_eq!(b.check(now, 1), Ok(()));
            b.charge(now, 1);
        }
        assert_eq!(b.available(now), 0);
        assert_eq!(b.reset(now), MINUTE);
        assert_eq!(b.check(now, 1), Err(Refusal::Wait(Duration::from_secs(20))));
        let later = now + Duration::from_secs(20);
        assert_eq!(b.available(later), 1);
        assert_eq!(b.check(later, 1), Ok(()));
        assert_eq!(b.check(later, 4), Err(Refusal::TooLarge));
    }

    #[tokio::test(start_paused = true)]
    async fn odd_limits_do_not_overadmit() {
        let now = Instant::now();
        let mut b = TokenBucket::new(7, MINUTE, now);
        for _ in 0..7 {
            assert!(b.check(now, 1).is_ok());
            b.charge(now, 1);
        }
        let Err(Refusal::Wait(w)) = b.check(now, 1) else {
            panic!("admitted an 8th")
        };
        assert!(b.check(now + w, 1).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn rejection_charges_nothing() {
        let now = Instant::now();
        let q = MockQuota {
            requests_per_minute: Some(10),
            tokens_per_minute: Some(100),
            ..MockQuota::default()
        };
        let mut s = QuotaState::new(Flavor::OpenAi, &q, None, now);
        assert!(
            s.admit(now, Charge::admission(Flavor::OpenAi, 40, 40))
                .is_ok()
        );
        let r = s
            .admit(now, Charge::admission(Flavor::OpenAi, 40, 40))
            .unwrap_err();
        assert_eq!(r.dim, Dim::Tokens);
        assert_eq!((r.limit, r.used, r.requested), (100, 80, 80));
        assert_eq!(r.wait, Some(Duration::from_millis(36_000)));
        let snap = s.snapshot(now);
        assert_eq!(snap.requests.unwrap().remaining, 9);
        assert_eq!(snap.tokens.unwrap().remaining, 20);
    }
}
