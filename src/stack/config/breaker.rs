//! `[providers.breaker]`: the provider's circuit breaker, over the default or none.

use std::num::NonZeroU32;

use tollgate_circuit_breaker::{BreakerConfig, Trip};

use super::duration::{MAX_SPAN, duration, non_zero};
use super::error::ConfigError;
use super::shapes::RawBreaker;

pub(super) fn breaker(path: &str, raw: RawBreaker) -> Result<Option<BreakerConfig>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let any = raw.consecutive_failures.is_some()
        || raw.open_for.is_some()
        || raw.open_growth.is_some()
        || raw.max_open_for.is_some()
        || raw.probes.is_some();
    let mut config = match raw.preset.as_deref() {
        None | Some("default") => BreakerConfig::default(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other breaker settings",
            ));
        }
        Some("none") => return Ok(None),
        Some(_) => {
            return Err(ConfigError::invalid(
                field("preset"),
                "unknown preset; expected one of default, none",
            ));
        }
    };
    let positive = |name: &str, value: u32| {
        NonZeroU32::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))
    };
    if let Some(n) = raw.consecutive_failures {
        config = config.with_trip(Trip::ConsecutiveFailures(positive(
            "consecutive_failures",
            n,
        )?));
    }
    if let Some(n) = raw.probes {
        config = config.with_probes(positive("probes", n)?);
    }
    if raw.open_for.is_some() || raw.open_growth.is_some() || raw.max_open_for.is_some() {
        let open_for = match &raw.open_for {
            Some(text) => duration(field("open_for"), text, MAX_SPAN)?,
            None => config.open_for,
        };
        let open_for = non_zero(field("open_for"), open_for)?;
        let growth = match raw.open_growth {
            Some(n) => positive("open_growth", n)?.get(),
            None => config.open_growth,
        };
        let max = match &raw.max_open_for {
            Some(text) => {
                let max = duration(field("max_open_for"), text, MAX_SPAN)?;
                if max < open_for {
                    return Err(ConfigError::invalid(
                        field("max_open_for"),
                        format!("must be at least open_for ({open_for:?})"),
                    ));
                }
                max
            }
            None => config.max_open_for.max(open_for),
        };
        config = config.with_open_for(open_for, growth, max);
    }
    Ok(Some(config))
}
