//! `[providers.retry]`: the provider's retry policy, over a preset.

use std::time::Duration;

use tollgate_retry::{Backoff, RetryPolicy, Spread};

use super::duration::{MAX_DELAY, MAX_SPAN, duration, non_zero};
use super::error::ConfigError;
use super::names;
use super::shapes::RawRetry;

/// A retry policy's spread of server delays: `none`, `default` or a percentage (`"25%"`),
/// at most `max`.
fn spread(path: &str, text: Option<&str>, max: Option<&str>) -> Result<Spread, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let max = max
        .map(|text| duration(field("server_delay_spread_max"), text, MAX_DELAY))
        .transpose()?;
    let percent = match text.map(str::trim) {
        None | Some("default") => match Spread::default() {
            Spread::Proportional { percent, .. } => percent,
            _ => 0,
        },
        Some("none") if max.is_some() => {
            return Err(ConfigError::invalid(
                field("server_delay_spread_max"),
                "cannot be combined with server_delay_spread = \"none\"",
            ));
        }
        Some("none") => return Ok(Spread::None),
        Some(other) => other
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u16>().ok())
            .filter(|n| *n <= 1_000)
            .ok_or_else(|| {
                ConfigError::invalid(
                    field("server_delay_spread"),
                    "invalid spread: expected \"none\", \"default\" or a percentage from 0% to 1000%, like \"50%\"",
                )
            })?,
    };
    let max = max.unwrap_or(match Spread::default() {
        Spread::Proportional { max, .. } => max,
        _ => Duration::ZERO,
    });
    Ok(Spread::Proportional { percent, max })
}

pub(super) fn retry(path: &str, raw: RawRetry) -> Result<RetryPolicy, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let any = raw.max_retries.is_some()
        || raw.max_overloaded_retries.is_some()
        || raw.base_delay.is_some()
        || raw.max_delay.is_some()
        || raw.jitter.is_some()
        || raw.min_delay.is_some()
        || raw.max_server_delay.is_some()
        || raw.server_delay_spread.is_some()
        || raw.server_delay_spread_max.is_some()
        || raw.total_time.is_some();
    let mut policy = match raw.preset.as_deref() {
        None | Some("default") => RetryPolicy::default(),
        Some("openai") => RetryPolicy::openai(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other retry settings",
            ));
        }
        Some("none") => RetryPolicy::default()
            .with_max_retries(0)
            .with_max_overloaded_retries(0),
        Some(_) => {
            return Err(ConfigError::invalid(
                field("preset"),
                "unknown preset; expected one of default, openai, none",
            ));
        }
    };
    if let Some(n) = raw.max_retries {
        policy = policy.with_max_retries(n);
    }
    if let Some(n) = raw.max_overloaded_retries {
        policy = policy.with_max_overloaded_retries(n);
    }
    if let Some(text) = &raw.min_delay {
        policy = policy.with_min_delay(duration(field("min_delay"), text, MAX_DELAY)?);
    }
    if let Some(text) = &raw.max_server_delay {
        policy =
            policy.with_max_server_delay(duration(field("max_server_delay"), text, MAX_DELAY)?);
    }
    if raw.server_delay_spread.is_some() || raw.server_delay_spread_max.is_some() {
        policy = policy.with_server_delay_spread(spread(
            path,
            raw.server_delay_spread.as_deref(),
            raw.server_delay_spread_max.as_deref(),
        )?);
    }
    if let Some(text) = &raw.total_time {
        let total = duration(field("total_time"), text, MAX_SPAN)?;
        policy = policy.with_total_time(non_zero(field("total_time"), total)?);
    }
    if raw.base_delay.is_some() || raw.max_delay.is_some() || raw.jitter.is_some() {
        let current = policy.backoff;
        let base = match &raw.base_delay {
            Some(text) => duration(field("base_delay"), text, MAX_DELAY)?,
            None => current.base(),
        };
        let base = non_zero(field("base_delay"), base)?;
        let max = match &raw.max_delay {
            Some(text) => duration(field("max_delay"), text, MAX_DELAY)?,
            None => current.max(),
        };
        if max < base {
            return Err(ConfigError::invalid(
                field("max_delay"),
                format!("must be at least base_delay ({base:?})"),
            ));
        }
        let jitter = match raw.jitter.as_deref() {
            None => current.jitter(),
            Some(name) => names::jitter(field("jitter"), name)?,
        };
        policy = policy.with_backoff(Backoff::exponential(base, max).with_jitter(jitter));
    }
    Ok(policy)
}
