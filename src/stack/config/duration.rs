//! Durations as the file writes them (`"500ms"`, `"1.5s"`, `"2m"`), for every table, each with
//! an upper bound.
//!
//! Every duration of the file is read by [`duration`], which takes the field's bound: a value
//! no one means (a breaker open for 584 years, a retry sleeping for a week) is refused, naming
//! the field and the bound, instead of stalling a stack. The bounds:
//!
//! | fields | at most |
//! |---|---|
//! | `retry.base_delay`, `max_delay`, `min_delay`, `max_server_delay`, `server_delay_spread_max` | [`MAX_DELAY`], 1h: a retry that would sleep longer should fail and say so |
//! | `retry.total_time`, `breaker.open_for`, `breaker.max_open_for`, `timeouts.*`, `stack.cache.ttl` | [`MAX_SPAN`], 24h |
//! | `store.timeout` | 10s (a call to Redis that long holds every admission as long) |
//! | `store.reconnect_every` | 60s (longer keeps the local share long after Redis is back) |
//!
//! An invalid duration is not quoted back in the error: the text may be anything, a key pasted
//! into the wrong field included.

use std::time::Duration;

use tollgate_core::headers::go_duration;

use super::error::ConfigError;

/// The longest delay a retry may sleep, or be configured with: 1 hour.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(3_600);

/// The longest span any other duration of the file may set (a time limit, a total retry time,
/// a breaker's open time, a cache's time to live): 24 hours.
pub(super) const MAX_SPAN: Duration = Duration::from_secs(86_400);

/// `text` read as a duration at `field`, refused when it is not one or is longer than `max`.
pub(super) fn duration(field: String, text: &str, max: Duration) -> Result<Duration, ConfigError> {
    let value = go_duration(text.trim()).ok_or_else(|| {
        ConfigError::invalid(
            field.clone(),
            "invalid duration: expected a number and a unit, like \"500ms\", \"1.5s\" or \"2m\"",
        )
    })?;
    if value > max {
        return Err(ConfigError::invalid(
            field,
            format!("must be at most {}", shown(max)),
        ));
    }
    Ok(value)
}

/// `value`, refused at `field` when it is zero.
pub(super) fn non_zero(field: String, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(field, "must be greater than 0"));
    }
    Ok(value)
}

/// `bound` as the file would write it: `24h`, `1h`, `60s`, `10s`, `250ms`.
fn shown(bound: Duration) -> String {
    let seconds = bound.as_secs();
    if bound.subsec_nanos() != 0 {
        format!("{}ms", bound.as_millis())
    } else if seconds != 0 && seconds % 3_600 == 0 {
        format!("{}h", seconds / 3_600)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_written_as_the_file_would() {
        assert_eq!(shown(MAX_SPAN), "24h");
        assert_eq!(shown(MAX_DELAY), "1h");
        assert_eq!(shown(Duration::from_secs(60)), "60s");
        assert_eq!(shown(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn a_duration_above_its_bound_is_refused_and_the_text_never_quoted() {
        let field = || "f".to_owned();
        assert_eq!(duration(field(), "1h", MAX_DELAY).unwrap(), MAX_DELAY);
        let error = duration(field(), "1h0m0.001s", MAX_DELAY).unwrap_err();
        assert_eq!(error.to_string(), "f: must be at most 1h");
        let error = duration(field(), "1000000h", MAX_SPAN).unwrap_err();
        assert_eq!(error.to_string(), "f: must be at most 24h");
        let error = duration(field(), "sk-SECRET", MAX_SPAN).unwrap_err();
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}
