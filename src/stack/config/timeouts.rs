//! `[providers.timeouts]`: the time limits of each attempt, over the kind's preset.

use tollgate_timeout::TimeoutConfig;

use super::duration::{MAX_SPAN, duration, non_zero};
use super::error::ConfigError;
use super::shapes::RawTimeouts;
use crate::stack::provider::ProviderKind;

/// The time limits `raw` declares over its preset (by default, the kind's); `None` for preset
/// `none`.
pub(super) fn timeouts(
    path: &str,
    raw: RawTimeouts,
    kind: ProviderKind,
) -> Result<Option<TimeoutConfig>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let limits = [
        ("response_head", raw.response_head),
        ("first_chunk", raw.first_chunk),
        ("idle", raw.idle),
        ("total", raw.total),
    ];
    let any = limits.iter().any(|(_, limit)| limit.is_some());
    let mut config = match raw.preset.as_deref() {
        None | Some("default") => kind.timeouts(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other time limits",
            ));
        }
        Some("none") => return Ok(None),
        Some("openai") => TimeoutConfig::openai(),
        Some("anthropic") => TimeoutConfig::anthropic(),
        Some("gemini") => TimeoutConfig::gemini(),
        Some("deepseek") => TimeoutConfig::deepseek(),
        Some(_) => {
            return Err(ConfigError::invalid(
                field("preset"),
                "unknown preset; expected one of default, none, openai, anthropic, gemini, deepseek",
            ));
        }
    };
    for (name, text) in limits {
        let Some(text) = text else { continue };
        let limit = non_zero(field(name), duration(field(name), &text, MAX_SPAN)?)?;
        config = match name {
            "response_head" => config.with_response_head(limit),
            "first_chunk" => config.with_first_chunk(limit),
            "idle" => config.with_idle(limit),
            _ => config.with_total(limit),
        };
    }
    Ok(Some(config))
}
