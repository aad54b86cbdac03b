//! Limits for the provider accounts people have, from the published defaults in
//! PROVIDERS.md §9.
//!
//! Every preset is a starting point: the provider's console shows an account's real limits, and
//! [`Limits::with`] or [`RateLimitHandle::set_limits`](crate::RateLimitHandle::set_limits)
//! changes them. Each preset is a token bucket per dimension (a continuous refill up to one
//! period's worth), per minute unless said otherwise.
//!
//! | preset | limits |
//! |---|---|
//! | [`OpenAiTier`] 1–5 | requests and tokens per minute |
//! | [`AnthropicModel`] | requests and tokens per minute (Anthropic counts input and output separately; one token figure is an approximation — add [`Limit::input_tokens`] and [`Limit::output_tokens`] with your account's values) |
//! | [`GeminiPlan`] × [`GeminiModel`] | requests and tokens per minute |
//! | [`DeepSeekLevel`] | requests and tokens per minute, tokens per day (Enterprise: no daily cap); DeepSeek also caps concurrency, so pair it with a concurrency limit |
//!
//! # Examples
//!
//! ```
//! use tollgate_core::Dimension;
//! use tollgate_ratelimit::presets::{DeepSeekLevel, OpenAiTier};
//!
//! let tier3 = OpenAiTier::Tier3.limits();
//! assert_eq!(tier3.as_slice()[0].quota().limit(), 10_000); // requests per minute
//! assert_eq!(tier3.as_slice()[1].quota().limit(), 10_000_000); // tokens per minute
//!
//! let basic = DeepSeekLevel::Basic.limits();
//! let daily = &basic.as_slice()[2];
//! assert_eq!(daily.dimension(), Dimension::Tokens);
//! assert_eq!(daily.quota().limit(), 500_000_000);
//! ```

use std::num::NonZeroU64;

use crate::algorithm::Quota;
use crate::limit::{Limit, Limits};

const fn n(value: u64) -> NonZeroU64 {
    match NonZeroU64::new(value) {
        Some(value) => value,
        None => panic!("preset values are not zero"),
    }
}

const fn per_minute(requests: u64, tokens: u64) -> [Limit; 2] {
    [
        Limit::requests(Quota::per_minute(n(requests))),
        Limit::tokens(Quota::per_minute(n(tokens))),
    ]
}

/// OpenAI usage tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpenAiTier {
    /// 500 RPM, 200K TPM.
    Tier1,
    /// 5,000 RPM, 2M TPM.
    Tier2,
    /// 10,000 RPM, 10M TPM.
    Tier3,
    /// 30,000 RPM, 50M TPM.
    Tier4,
    /// 100,000 RPM, 200M TPM.
    Tier5,
}

impl OpenAiTier {
    /// Requests and tokens per minute.
    pub fn limits(self) -> Limits {
        let (rpm, tpm) = match self {
            OpenAiTier::Tier1 => (500, 200_000),
            OpenAiTier::Tier2 => (5_000, 2_000_000),
            OpenAiTier::Tier3 => (10_000, 10_000_000),
            OpenAiTier::Tier4 => (30_000, 50_000_000),
            OpenAiTier::Tier5 => (100_000, 200_000_000),
        };
        Limits::new(per_minute(rpm, tpm))
    }
}

/// Anthropic model families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnthropicModel {
    /// Claude Opus 4.7: 1,000 RPM, 400K TPM (50 concurrent).
    Opus47,
    /// Claude Sonnet 4: 4,000 RPM, 2M TPM (200 concurrent).
    Sonnet4,
    /// Claude Haiku 4: 10,000 RPM, 5M TPM (500 concurrent).
    Haiku4,
}

impl AnthropicModel {
    /// Requests and tokens per minute.
    pub fn limits(self) -> Limits {
        let (rpm, tpm) = match self {
            AnthropicModel::Opus47 => (1_000, 400_000),
            AnthropicModel::Sonnet4 => (4_000, 2_000_000),
            AnthropicModel::Haiku4 => (10_000, 5_000_000),
        };
        Limits::new(per_minute(rpm, tpm))
    }
}

/// Gemini plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GeminiPlan {
    /// Free: Pro 15 RPM, Flash 30 RPM; 1M TPM.
    Free,
    /// Pay-as-you-go: Pro 2,000 RPM and 20M TPM, Flash 10,000 RPM and 100M TPM.
    PayAsYouGo,
    /// Enterprise: Pro 10,000 RPM and 200M TPM, Flash 50,000 RPM and 500M TPM.
    Enterprise,
}

/// Gemini model families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GeminiModel {
    /// Gemini Pro.
    Pro,
    /// Gemini Flash.
    Flash,
}

impl GeminiPlan {
    /// Requests and tokens per minute for `model`.
    pub fn limits(self, model: GeminiModel) -> Limits {
        let (rpm, tpm) = match (self, model) {
            (GeminiPlan::Free, GeminiModel::Pro) => (15, 1_000_000),
            (GeminiPlan::Free, GeminiModel::Flash) => (30, 1_000_000),
            (GeminiPlan::PayAsYouGo, GeminiModel::Pro) => (2_000, 20_000_000),
            (GeminiPlan::PayAsYouGo, GeminiModel::Flash) => (10_000, 100_000_000),
            (GeminiPlan::Enterprise, GeminiModel::Pro) => (10_000, 200_000_000),
            (GeminiPlan::Enterprise, GeminiModel::Flash) => (50_000, 500_000_000),
        };
        Limits::new(per_minute(rpm, tpm))
    }
}

/// DeepSeek account levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeepSeekLevel {
    /// 100 RPM, 100K TPM, 50M tokens per day.
    Starter,
    /// 500 RPM, 500K TPM, 500M tokens per day.
    Basic,
    /// 2,000 RPM, 2M TPM, 5B tokens per day.
    Standard,
    /// 10,000 RPM, 20M TPM, no daily cap.
    Enterprise,
}

impl DeepSeekLevel {
    /// Requests and tokens per minute, and tokens per day.
    pub fn limits(self) -> Limits {
        let (rpm, tpm, daily) = match self {
            DeepSeekLevel::Starter => (100, 100_000, Some(50_000_000)),
            DeepSeekLevel::Basic => (500, 500_000, Some(500_000_000)),
            DeepSeekLevel::Standard => (2_000, 2_000_000, Some(5_000_000_000)),
            DeepSeekLevel::Enterprise => (10_000, 20_000_000, None),
        };
        let daily = daily.map(|tokens| Limit::tokens(Quota::per_day(n(tokens))));
        Limits::new(per_minute(rpm, tpm).into_iter().chain(daily))
    }
}
