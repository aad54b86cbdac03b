//! The checks: from the file's shape to a [`StackConfig`], one provider at a time, then the
//! chains of `[stack]`. Each optional table of a provider has its own module.

use super::adaptive::adaptive;
use super::breaker::breaker;
use super::cache::cache;
use super::duration::duration;
use super::error::ConfigError;
use super::keys::key_variables;
use super::limits::limits;
use super::names;
use super::retry::retry;
use super::shapes::{RawConfig, RawProvider};
use super::store::store;
use super::timeouts::timeouts;
use super::{Configured, StackConfig};
use crate::stack::provider::{Provider, ProviderKind, UnknownKind, check_api_version, endpoint};

/// The most models a provider may list, each with a quota of its own.
const MAX_MODELS: usize = 1_000;

/// The longest `max_wait` a file may set: a request held longer has long been given up by
/// its caller.
const MAX_WAIT_BOUND: std::time::Duration = std::time::Duration::from_secs(3_600);

pub(super) fn validate(raw: RawConfig) -> Result<StackConfig, ConfigError> {
    let mut providers: Vec<Configured> = Vec::with_capacity(raw.providers.len());
    let mut names: Vec<String> = Vec::with_capacity(raw.providers.len());
    for (i, p) in raw.providers.into_iter().enumerate() {
        let path = format!("providers[{i}]");
        if p.name.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                "must not be empty",
            ));
        }
        if let Some(earlier) = names.iter().position(|n| *n == p.name) {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                format!("duplicate name {:?} (also providers[{earlier}])", p.name),
            ));
        }
        names.push(p.name.clone());
        let configured = provider(&path, p)?;
        providers.push(configured);
    }
    // A name that names no provider is not quoted (it may be anything); the names are.
    let find = |field: String, name: &str| -> Result<usize, ConfigError> {
        names.iter().position(|n| n == name).ok_or_else(|| {
            ConfigError::invalid(
                field,
                format!("names no provider; expected one of {}", names.join(", ")),
            )
        })
    };
    let primary = find("stack.primary".to_owned(), &raw.stack.primary)?;
    // The providers a chain of `[stack]` names, by index.
    let chain = |key: &str, names: &[String]| {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| find(format!("stack.{key}[{i}]"), name))
            .collect::<Result<Vec<_>, _>>()
    };
    let fallback = chain("fallback", &raw.stack.fallback)?;
    // The primary, or a provider twice, in the fallback chain would only be tried again.
    for (i, &index) in fallback.iter().enumerate() {
        let field = format!("stack.fallback[{i}]");
        if index == primary {
            return Err(ConfigError::invalid(
                field,
                format!("{:?} is the primary", names[index]),
            ));
        }
        if fallback[..i].contains(&index) {
            return Err(ConfigError::invalid(
                field,
                format!("{:?} is already in the chain", names[index]),
            ));
        }
    }
    let context_window = chain("context_window", &raw.stack.context_window)?;
    let cache = raw
        .stack
        .cache
        .map(|raw| cache("stack.cache", raw))
        .transpose()?;
    let store = raw
        .store
        .map(|raw| store("store", raw))
        .transpose()?
        .unwrap_or_default();
    Ok(StackConfig {
        providers,
        primary,
        fallback,
        context_window,
        cache,
        store,
    })
}

fn provider(path: &str, raw: RawProvider) -> Result<Configured, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.api_key.is_some() {
        return Err(ConfigError::invalid(
            field("api_key"),
            "keys do not belong in configuration files: put the key in an environment \
             variable and name the variable in api_key_env",
        ));
    }
    let kind: ProviderKind = raw
        .kind
        .parse()
        .map_err(|e: UnknownKind| ConfigError::invalid(field("kind"), e.to_string()))?;
    let mut provider = Provider::new(kind).with_name(&raw.name);
    if let Some(version) = raw.api_version {
        if kind != ProviderKind::AzureOpenAi {
            return Err(ConfigError::invalid(
                field("api_version"),
                format!("only for kind azure-openai, not {kind}"),
            ));
        }
        check_api_version(&version)
            .map_err(|reason| ConfigError::invalid(field("api_version"), reason))?;
        provider = provider.with_api_version(version);
    }
    match &raw.base_url {
        Some(url) => {
            // The version is checked above: what is wrong here is the URL, not quoted (the
            // field says which; the text may be a key pasted by mistake).
            endpoint(kind, url, None)
                .map_err(|reason| ConfigError::invalid(field("base_url"), reason))?;
            provider = provider.with_base_url(url);
        }
        None if kind.default_base_url().is_none() => {
            return Err(ConfigError::invalid(
                field("base_url"),
                format!("required for kind {kind}"),
            ));
        }
        None => {}
    }
    let keys = key_variables(path, raw.api_key_env, raw.api_key_envs)?;
    if let Some(routing) = &raw.routing {
        provider = provider.with_routing(names::routing(&field("routing"), routing)?);
    }
    if let Some(model) = raw.model {
        if model.trim().is_empty() {
            return Err(ConfigError::invalid(field("model"), "must not be empty"));
        }
        provider = provider.with_model(model);
    }
    if let Some(models) = raw.models {
        if models.len() > MAX_MODELS {
            return Err(ConfigError::invalid(
                field("models"),
                format!("at most {MAX_MODELS} models"),
            ));
        }
        for (i, model) in models.iter().enumerate() {
            if model.trim().is_empty() || model.len() > 256 {
                return Err(ConfigError::invalid(
                    field(&format!("models[{i}]")),
                    "must be a model name of 1 to 256 bytes",
                ));
            }
        }
        provider = provider.with_models(models);
    }
    if let Some(unknown) = &raw.unknown_models {
        let unknown = names::unknown_models(&field("unknown_models"), unknown)?;
        provider = provider.with_unknown_models(unknown);
    }
    if let Some(max) = raw.max_in_flight {
        let max = u32::try_from(max).ok().filter(|&m| m > 0).ok_or_else(|| {
            ConfigError::invalid(
                field("max_in_flight"),
                format!("must be greater than 0 and at most {}", u32::MAX),
            )
        })?;
        provider = provider.with_max_in_flight(max);
    }
    if let Some(text) = raw.max_wait {
        let max_wait = duration(field("max_wait"), &text, MAX_WAIT_BOUND)?;
        provider = provider.with_max_wait(max_wait);
    }
    if let Some(max) = raw.max_queue {
        let max = u32::try_from(max).map_err(|_| {
            ConfigError::invalid(field("max_queue"), format!("at most {}", u32::MAX))
        })?;
        provider = provider.with_max_queue(max);
    }
    if let Some(limits) = raw.limits {
        provider = match self::limits(&field("limits"), limits)? {
            Some(limits) => provider.with_limits(limits),
            None => provider.without_rate_limit(),
        };
    }
    if let Some(adaptive) = raw.adaptive {
        provider = match self::adaptive(&field("adaptive"), adaptive)? {
            Some(config) => provider.with_adaptive(config),
            None => provider.without_adaptive(),
        };
    }
    if let Some(timeouts) = raw.timeouts {
        provider = match self::timeouts(&field("timeouts"), timeouts, provider.kind())? {
            Some(config) => provider.with_timeouts(config),
            None => provider.without_timeouts(),
        };
    }
    if let Some(retry) = raw.retry {
        provider = provider.with_retry(self::retry(&field("retry"), retry)?);
    }
    if let Some(breaker) = raw.breaker {
        provider = match self::breaker(&field("breaker"), breaker)? {
            Some(config) => provider.with_breaker(config),
            None => provider.without_circuit_breaker(),
        };
    }
    Ok(Configured { provider, keys })
}
