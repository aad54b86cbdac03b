//! `[stack.cache]`: the cache above the fallback.

use std::num::{NonZeroU64, NonZeroUsize};

use tollgate_cache::CacheConfig;

use super::duration::{MAX_SPAN, duration, non_zero};
use super::error::ConfigError;
use super::shapes::RawCache;

pub(super) fn cache(path: &str, raw: RawCache) -> Result<CacheConfig, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let positive = |name: &str, value: u64| {
        NonZeroU64::new(value)
            .ok_or_else(|| ConfigError::invalid(field(name), "must be greater than 0"))
    };
    let mut config = CacheConfig::default();
    if let Some(text) = &raw.ttl {
        let ttl = duration(field("ttl"), text, MAX_SPAN)?;
        config = config.with_ttl(non_zero(field("ttl"), ttl)?);
    }
    if let Some(n) = raw.max_entries {
        let n = positive("max_entries", n)?;
        if n.get() > u64::from(u32::MAX) {
            return Err(ConfigError::invalid(
                field("max_entries"),
                format!("must be at most {}", u32::MAX),
            ));
        }
        config = config.with_max_entries(n);
    }
    if let Some(n) = raw.max_bytes {
        let n = positive("max_bytes", n)?;
        config = config.with_max_bytes(n);
        // The default largest entry (1 MiB) is at most max_bytes too.
        if let Some(n) = usize::try_from(n.get()).ok().and_then(NonZeroUsize::new) {
            if config.max_entry_bytes > n {
                config = config.with_max_entry_bytes(n);
            }
        }
    }
    if let Some(n) = raw.max_entry_bytes {
        let n = positive("max_entry_bytes", n)?;
        if n > config.max_bytes {
            return Err(ConfigError::invalid(
                field("max_entry_bytes"),
                format!("must be at most max_bytes ({})", config.max_bytes),
            ));
        }
        let n = usize::try_from(n.get())
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| ConfigError::invalid(field("max_entry_bytes"), "too large"))?;
        config = config.with_max_entry_bytes(n);
    }
    if let Some(on) = raw.deterministic {
        config = config.with_deterministic(on);
    }
    if let Some(on) = raw.shared_across_callers {
        config = config.with_shared_across_callers(on);
    }
    Ok(config)
}
