//! `[providers.adaptive]`: the rate learned from the provider's refusals.

use std::num::NonZeroU64;

use tollgate_ratelimit::adaptive::{Adaptive, Rate};

use super::error::ConfigError;
use super::shapes::RawAdaptive;

/// The adaptive limit `raw` declares; `None` for preset `none`.
pub(super) fn adaptive(path: &str, raw: RawAdaptive) -> Result<Option<Adaptive>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let rates = [
        (
            "initial_requests_per_minute",
            raw.initial_requests_per_minute,
        ),
        ("floor_requests_per_minute", raw.floor_requests_per_minute),
        (
            "ceiling_requests_per_minute",
            raw.ceiling_requests_per_minute,
        ),
    ];
    let any = rates.iter().any(|(_, rate)| rate.is_some());
    let mut adaptive = match raw.preset.as_deref() {
        None | Some("default") => Adaptive::default(),
        Some("none") if any => {
            return Err(ConfigError::invalid(
                field("preset"),
                "\"none\" cannot be combined with other adaptive settings",
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
    let mut per_minute = [None; 3];
    for (slot, (name, rate)) in per_minute.iter_mut().zip(rates) {
        if let Some(rate) = rate {
            let rate = NonZeroU64::new(rate)
                .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))?;
            *slot = Some(rate);
        }
    }
    let [initial, floor, ceiling] = per_minute;
    if let (Some(floor), Some(ceiling)) = (floor, ceiling) {
        if ceiling < floor {
            return Err(ConfigError::invalid(
                field("ceiling_requests_per_minute"),
                format!("must be at least floor_requests_per_minute ({floor})"),
            ));
        }
    }
    if let Some(initial) = initial {
        adaptive = adaptive.with_initial(Rate::per_minute(initial));
    }
    if let Some(floor) = floor {
        adaptive = adaptive.with_floor(Rate::per_minute(floor));
    }
    if let Some(ceiling) = ceiling {
        adaptive = adaptive.with_ceiling(Rate::per_minute(ceiling));
    }
    Ok(Some(adaptive))
}
