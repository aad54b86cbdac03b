//! The names the file gives to values of other crates' types: `routing`, limit presets,
//! `algorithm` and `jitter`; and `unknown_models`.
//!
//! A table here stands in for a `FromStr` the type does not have. [`ProviderKind`] has one,
//! and `kind` is parsed with it; `Strategy`, `AlgorithmKind`, `Jitter` and the rate-limit
//! presets live in `tollgate-router`, `tollgate-ratelimit` and `tollgate-retry`, which parse
//! no names, and giving them a `FromStr` would change those crates' public API. Once they have
//! one, the table goes and the caller parses.
//!
//! An unknown name is never quoted back, only the names accepted: a secret pasted into one of
//! these fields must not reach a log through the error.
//!
//! [`ProviderKind`]: crate::stack::ProviderKind

use tollgate_ratelimit::AlgorithmKind;
use tollgate_ratelimit::Limits;
use tollgate_ratelimit::presets::{
    AnthropicModel, DeepSeekLevel, GeminiModel, GeminiPlan, OpenAiTier,
};
use tollgate_retry::Jitter;
use tollgate_router::Strategy;

use super::error::ConfigError;
use crate::stack::UnknownModels;

/// What `unknown_models` names.
pub(super) fn unknown_models(field: &str, name: &str) -> Result<UnknownModels, ConfigError> {
    match name {
        "share" => Ok(UnknownModels::Share),
        "refuse" => Ok(UnknownModels::Refuse),
        _ => Err(ConfigError::invalid(
            field,
            "unknown value; expected share or refuse",
        )),
    }
}

const ROUTINGS: &str = "round-robin, weighted, least-loaded, latency-aware";

/// The strategy a `routing` name stands for.
pub(super) fn routing(field: &str, name: &str) -> Result<Strategy, ConfigError> {
    match name {
        "round-robin" => Ok(Strategy::RoundRobin),
        "weighted" => Ok(Strategy::Weighted),
        "least-loaded" => Ok(Strategy::LeastLoaded),
        "latency-aware" => Ok(Strategy::LatencyAware),
        _ => Err(ConfigError::invalid(
            field,
            format!("unknown routing; expected one of {ROUTINGS}"),
        )),
    }
}

const LIMIT_PRESETS: &str = "openai-tier-1 … openai-tier-5, anthropic-opus-4-7, anthropic-sonnet-4, \
    anthropic-haiku-4, gemini-{free,pay-as-you-go,enterprise}-{pro,flash}, \
    deepseek-{starter,basic,standard,enterprise}, none";

/// The limits a `limits.preset` name stands for; `None` for `none`.
pub(super) fn limits_preset(field: String, name: &str) -> Result<Option<Limits>, ConfigError> {
    limits_by_name(name).ok_or_else(|| {
        ConfigError::invalid(
            field,
            format!("unknown preset; expected one of {LIMIT_PRESETS}"),
        )
    })
}

/// The limits a preset name stands for; `Some(None)` for `none`.
fn limits_by_name(name: &str) -> Option<Option<Limits>> {
    let limits = match name {
        "none" => return Some(None),
        "openai-tier-1" => OpenAiTier::Tier1.limits(),
        "openai-tier-2" => OpenAiTier::Tier2.limits(),
        "openai-tier-3" => OpenAiTier::Tier3.limits(),
        "openai-tier-4" => OpenAiTier::Tier4.limits(),
        "openai-tier-5" => OpenAiTier::Tier5.limits(),
        "anthropic-opus-4-7" => AnthropicModel::Opus47.limits(),
        "anthropic-sonnet-4" => AnthropicModel::Sonnet4.limits(),
        "anthropic-haiku-4" => AnthropicModel::Haiku4.limits(),
        "deepseek-starter" => DeepSeekLevel::Starter.limits(),
        "deepseek-basic" => DeepSeekLevel::Basic.limits(),
        "deepseek-standard" => DeepSeekLevel::Standard.limits(),
        "deepseek-enterprise" => DeepSeekLevel::Enterprise.limits(),
        _ => {
            let rest = name.strip_prefix("gemini-")?;
            let (plan, model) = rest.rsplit_once('-')?;
            let plan = match plan {
                "free" => GeminiPlan::Free,
                "pay-as-you-go" => GeminiPlan::PayAsYouGo,
                "enterprise" => GeminiPlan::Enterprise,
                _ => return None,
            };
            let model = match model {
                "pro" => GeminiModel::Pro,
                "flash" => GeminiModel::Flash,
                _ => return None,
            };
            plan.limits(model)
        }
    };
    Some(Some(limits))
}

const ALGORITHMS: &str =
    "token-bucket, gcra, fixed-window, sliding-window-log, sliding-window-counter";

/// The algorithm a `limits.algorithm` name stands for.
pub(super) fn algorithm(field: String, name: &str) -> Result<AlgorithmKind, ConfigError> {
    match name {
        "token-bucket" => Ok(AlgorithmKind::TokenBucket),
        "gcra" => Ok(AlgorithmKind::Gcra),
        "fixed-window" => Ok(AlgorithmKind::FixedWindow),
        "sliding-window-log" => Ok(AlgorithmKind::SlidingWindowLog),
        "sliding-window-counter" => Ok(AlgorithmKind::SlidingWindowCounter),
        _ => Err(ConfigError::invalid(
            field,
            format!("unknown algorithm; expected one of {ALGORITHMS}"),
        )),
    }
}

const JITTERS: &str = "none, full, equal, decorrelated, sdk";

/// The jitter a `retry.jitter` name stands for.
pub(super) fn jitter(field: String, name: &str) -> Result<Jitter, ConfigError> {
    match name {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        "decorrelated" => Ok(Jitter::Decorrelated),
        "sdk" => Ok(Jitter::Between { low: 75, high: 100 }),
        _ => Err(ConfigError::invalid(
            field,
            format!("unknown jitter; expected one of {JITTERS}"),
        )),
    }
}
