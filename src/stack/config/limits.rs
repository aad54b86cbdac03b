//! `[providers.limits]`: the rate limits, from a preset and explicit values.

use std::num::NonZeroU64;
use std::time::Duration;

use tollgate_core::Dimension;
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Limit, Limits};

use super::error::ConfigError;
use super::names;
use super::shapes::RawLimits;

pub(super) fn limits(path: &str, raw: RawLimits) -> Result<Option<Limits>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let base = match &raw.preset {
        None => None,
        Some(name) => names::limits_preset(field("preset"), name)?,
    };
    let algorithm = raw
        .algorithm
        .as_deref()
        .map(|name| names::algorithm(field("algorithm"), name))
        .transpose()?;
    let minute = Duration::from_secs(60);
    let day = Duration::from_secs(86_400);
    let explicit = [
        (
            "requests_per_minute",
            raw.requests_per_minute,
            Dimension::Requests,
            minute,
        ),
        (
            "requests_per_day",
            raw.requests_per_day,
            Dimension::Requests,
            day,
        ),
        (
            "tokens_per_minute",
            raw.tokens_per_minute,
            Dimension::Tokens,
            minute,
        ),
        ("tokens_per_day", raw.tokens_per_day, Dimension::Tokens, day),
        (
            "input_tokens_per_minute",
            raw.input_tokens_per_minute,
            Dimension::InputTokens,
            minute,
        ),
        (
            "output_tokens_per_minute",
            raw.output_tokens_per_minute,
            Dimension::OutputTokens,
            minute,
        ),
    ];
    let mut explicit_limits: Vec<Limit> = Vec::new();
    for (name, value, dimension, period) in explicit {
        let Some(value) = value else { continue };
        let value = NonZeroU64::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))?;
        let quota = if period == day {
            Quota::per_day(value)
        } else {
            Quota::per_minute(value)
        };
        explicit_limits.push(Limit::new(dimension, quota));
    }
    if raw.preset.as_deref() == Some("none") && !explicit_limits.is_empty() {
        return Err(ConfigError::invalid(
            field("preset"),
            "\"none\" cannot be combined with explicit limits",
        ));
    }
    if raw.preset.as_deref() == Some("none") && algorithm.is_some() {
        return Err(ConfigError::invalid(
            field("preset"),
            "\"none\" cannot be combined with an algorithm",
        ));
    }
    if base.is_none() && explicit_limits.is_empty() {
        if raw.preset.is_none() {
            return Err(ConfigError::invalid(
                path,
                "give a preset or at least one limit (preset = \"none\" for no rate limit)",
            ));
        }
        return Ok(None);
    }
    // The preset's limits, each replaced by an explicit one of the same dimension and
    // period, then the other explicit ones.
    let mut limits: Vec<Limit> = base.map(|b| b.as_slice().to_vec()).unwrap_or_default();
    for limit in explicit_limits {
        let same = |l: &Limit| {
            l.dimension() == limit.dimension() && l.quota().period() == limit.quota().period()
        };
        match limits.iter_mut().find(|l| same(l)) {
            Some(slot) => *slot = limit,
            None => limits.push(limit),
        }
    }
    if let Some(algorithm) = algorithm {
        limits = limits
            .into_iter()
            .map(|l| l.with_algorithm(algorithm))
            .collect();
    }
    Ok(Some(Limits::new(limits)))
}
