//! Durations as the file writes them (`"500ms"`, `"1.5s"`, `"2m"`), for every table.

use std::time::Duration;

use tollgate_core::headers::go_duration;

use super::error::ConfigError;

pub(super) fn duration(field: String, text: &str) -> Result<Duration, ConfigError> {
    go_duration(text.trim()).ok_or_else(|| {
        ConfigError::invalid(
            field,
            format!("invalid duration {text:?}: expected a number and a unit, like \"500ms\", \"1.5s\" or \"2m\""),
        )
    })
}

/// `value`, refused at `field` when it is zero.
pub(super) fn non_zero(field: String, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(field, "must be greater than 0"));
    }
    Ok(value)
}
