//! `api_key_env` and `api_key_envs`: the names of the variables holding a provider's keys,
//! checked when the file is read, and the keys read from them when the stack is built. No key
//! is ever kept in the configuration, nor quoted in an error.

use super::error::ConfigError;
use crate::stack::provider::{Provider, credentials};

/// Where a provider's keys are read from: the variables' names, never the keys.
#[derive(Debug, Clone)]
pub(super) enum KeyVariables {
    /// No key: requests keep the caller's credentials.
    None,
    /// `api_key_env`.
    One(String),
    /// `api_key_envs`.
    Many(Vec<String>),
}

impl KeyVariables {
    /// `provider` with the keys read with `env` from these variables. `index` is the provider's
    /// in the file, for the errors' field paths.
    pub(super) fn read(
        &self,
        provider: Provider,
        index: usize,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Provider, ConfigError> {
        let kind = provider.kind();
        // The key in `variable`, checked; `field` names where the variable was given.
        let read = |field: String, variable: &String| -> Result<String, ConfigError> {
            let key = env(variable).ok_or_else(|| ConfigError::MissingEnv {
                field: field.clone(),
                variable: variable.clone(),
            })?;
            if credentials(kind, &key).is_none() {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!(
                        "the key in environment variable {variable} is empty or not a valid header value"
                    ),
                });
            }
            Ok(key)
        };
        Ok(match self {
            KeyVariables::None => provider,
            KeyVariables::One(variable) => {
                let key = read(format!("providers[{index}].api_key_env"), variable)?;
                provider.with_api_key(key)
            }
            KeyVariables::Many(variables) => {
                let keys = variables
                    .iter()
                    .enumerate()
                    .map(|(j, variable)| {
                        read(format!("providers[{index}].api_key_envs[{j}]"), variable)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                provider.with_api_keys(keys)
            }
        })
    }
}

/// Whether `variable` is the name of an environment variable; the error, at `field`, does not
/// quote it: a key pasted there by mistake must not end up in a log.
fn variable_name(field: String, variable: &str) -> Result<(), ConfigError> {
    is_variable_name(field, variable, "the key itself")
}

/// Whether `variable` is the name of an environment variable; the error, at `field`, says it
/// must not be `instead` (`"the key itself"`), and does not quote it.
pub(super) fn is_variable_name(
    field: String,
    variable: &str,
    instead: &str,
) -> Result<(), ConfigError> {
    let is_name = !variable.is_empty()
        && !variable.starts_with(|c: char| c.is_ascii_digit())
        && variable
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be the name of an environment variable (letters, digits and _), not {instead}"
            ),
        ));
    }
    Ok(())
}

/// The most keys a provider's router spreads.
const MAX_KEYS: usize = 64;

/// Where the provider at `path` reads its keys: `api_key_env` or `api_key_envs`, checked.
pub(super) fn key_variables(
    path: &str,
    one: Option<String>,
    many: Option<toml::Value>,
) -> Result<KeyVariables, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let list = match (one, many) {
        (None, None) => return Ok(KeyVariables::None),
        (Some(variable), None) => {
            variable_name(field("api_key_env"), &variable)?;
            return Ok(KeyVariables::One(variable));
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                field("api_key_envs"),
                "give either api_key_env (one key) or api_key_envs (several), not both",
            ));
        }
        (None, Some(toml::Value::Array(list))) => list,
        // Not quoted, nor its type named by serde: it may be a key.
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                field("api_key_envs"),
                "must be a list of environment variable names, like [\"OPENAI_KEY_A\", \"OPENAI_KEY_B\"]",
            ));
        }
    };
    if list.is_empty() {
        return Err(ConfigError::invalid(
            field("api_key_envs"),
            "must name at least one environment variable",
        ));
    }
    if list.len() > MAX_KEYS {
        return Err(ConfigError::invalid(
            field("api_key_envs"),
            format!(
                "{} variables; a provider spreads at most {MAX_KEYS} keys",
                list.len()
            ),
        ));
    }
    let mut variables: Vec<String> = Vec::with_capacity(list.len());
    for (j, value) in list.into_iter().enumerate() {
        let entry = format!("{path}.api_key_envs[{j}]");
        let toml::Value::String(variable) = value else {
            return Err(ConfigError::invalid(
                entry,
                "must be the name of an environment variable (a string)",
            ));
        };
        variable_name(entry.clone(), &variable)?;
        if let Some(earlier) = variables.iter().position(|v| *v == variable) {
            return Err(ConfigError::invalid(
                entry,
                format!("variable {variable} is listed twice (also api_key_envs[{earlier}])"),
            ));
        }
        variables.push(variable);
    }
    Ok(KeyVariables::Many(variables))
}
