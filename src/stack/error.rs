//! [`StackError`]: a stack that cannot be built; [`RewriteFailed`]: a request that cannot be
//! sent to a provider.

use std::fmt;

use tollgate_core::{BoxError, ErrorClass, Judged, RetryAdvice, Verdict};
#[cfg(feature = "redis")]
use tollgate_redis::error::RedisConfigError;
use tollgate_router::error::BuildError;

use super::provider::ProviderKind;

/// Why [`StackBuilder::build`](super::StackBuilder::build) failed. No variant carries an API
/// key, nor a Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackError {
    /// A provider of a kind without a default base URL (Azure OpenAI, OpenAI-compatible) has
    /// none.
    MissingBaseUrl {
        /// The provider's name.
        provider: String,
        /// Its kind.
        kind: ProviderKind,
    },
    /// A provider's base URL is not an absolute `http`/`https` URL without a query.
    InvalidBaseUrl {
        /// The provider's name.
        provider: String,
        /// The URL, redacted ([`redact::url`](crate::redact::url)): user info, query values
        /// and fragment replaced by `<redacted>`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A provider's API key is empty or cannot be a header value (a newline, say).
    InvalidApiKey {
        /// The provider's name.
        provider: String,
    },
    /// Two of a provider's [API keys](super::Provider::with_api_keys) are the same: the router
    /// would give it two quotas, twice what the account allows.
    DuplicateApiKey {
        /// The provider's name.
        provider: String,
        /// The positions of the two keys (as in `api_key_envs`).
        positions: (usize, usize),
    },
    /// A provider's [`max_in_flight`](super::Provider::with_max_in_flight) is zero.
    ZeroMaxInFlight {
        /// The provider's name.
        provider: String,
    },
    /// Two different providers share a name; give one another with
    /// [`Provider::with_name`](super::Provider::with_name).
    ConflictingProviders {
        /// The name.
        name: String,
    },
    /// A provider's [API keys](super::Provider::with_api_keys) cannot be spread by a router: more
    /// than 64 of them ([`BuildError::TooManyDeployments`]).
    Router {
        /// The provider's name.
        provider: String,
        /// Why the router refused them.
        error: BuildError,
    },
    /// A provider's quota cannot be kept in Redis
    /// ([`StackBuilder::with_shared_quota`](super::StackBuilder::with_shared_quota)): the
    /// store refused its configuration or its limits, or `build` was called outside a tokio
    /// runtime ([`RedisConfigError::NoRuntime`]). Never shows the URL.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    SharedQuota {
        /// The provider's name.
        provider: String,
        /// Why the store refused.
        error: RedisConfigError,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::MissingBaseUrl { provider, kind } => write!(
                f,
                "provider {provider:?}: a base URL is required for kind {kind}"
            ),
            StackError::InvalidBaseUrl {
                provider,
                url,
                reason,
            } => write!(
                f,
                "provider {provider:?}: invalid base URL {url:?}: {reason}"
            ),
            StackError::InvalidApiKey { provider } => write!(
                f,
                "provider {provider:?}: the API key is empty or not a valid header value"
            ),
            StackError::DuplicateApiKey {
                provider,
                positions: (first, second),
            } => write!(
                f,
                "provider {provider:?}: API keys {first} and {second} are the same; each key \
                 gets its own quota, so a repeated key would double what the account allows"
            ),
            StackError::ZeroMaxInFlight { provider } => {
                write!(
                    f,
                    "provider {provider:?}: max_in_flight must be greater than 0"
                )
            }
            StackError::ConflictingProviders { name } => write!(
                f,
                "two different providers are named {name:?}: name one of them otherwise"
            ),
            StackError::Router {
                provider,
                error: BuildError::TooManyDeployments(count),
            } => write!(
                f,
                "provider {provider:?}: {count} API keys; a provider's router spreads at most 64"
            ),
            StackError::Router { provider, error } => write!(
                f,
                "provider {provider:?}: cannot spread its API keys: {error}"
            ),
            #[cfg(feature = "redis")]
            StackError::SharedQuota { provider, error } => write!(
                f,
                "provider {provider:?}: cannot keep its quota in Redis: {error}"
            ),
        }
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StackError::Router { error, .. } => Some(error),
            #[cfg(feature = "redis")]
            StackError::SharedQuota { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A request could not be rewritten for a provider: its body is not the JSON object whose
/// `model` the provider's [model](super::Provider::with_model) replaces, or its path cannot go
/// under the provider's base URL. Nothing was sent to that provider.
#[derive(Debug)]
pub struct RewriteFailed {
    provider: std::sync::Arc<str>,
    source: BoxError,
}

impl RewriteFailed {
    pub(crate) fn new(provider: std::sync::Arc<str>, source: BoxError) -> Self {
        RewriteFailed { provider, source }
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

impl fmt::Display for RewriteFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot rewrite the request for provider {:?}: {}",
            self.provider, self.source
        )
    }
}

impl std::error::Error for RewriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A request named a model its provider does not know, and the provider
/// [refuses unknown models](super::UnknownModels::Refuse): neither its own model, nor one of
/// its [models](super::Provider::with_models), nor a family of the context-window table.
/// Nothing was sent.
///
/// Its [`source`](std::error::Error::source) is its verdict: not found, to be tried
/// elsewhere (a fallback provider may serve the model), refused locally. The model's name is
/// not kept: it is the caller's input, of any length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel {
    provider: std::sync::Arc<str>,
    verdict: Judged,
}

impl UnknownModel {
    pub(crate) fn new(provider: std::sync::Arc<str>) -> Self {
        let verdict = Verdict::failure(ErrorClass::NotFound)
            .with_advice(RetryAdvice::Elsewhere)
            .refused_locally();
        UnknownModel {
            provider,
            verdict: Judged::new(verdict),
        }
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The verdict: not found, elsewhere, refused locally.
    pub fn verdict(&self) -> &Verdict {
        self.verdict.verdict()
    }
}

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provider {:?} does not serve the requested model",
            self.provider
        )
    }
}

impl std::error::Error for UnknownModel {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.verdict)
    }
}
