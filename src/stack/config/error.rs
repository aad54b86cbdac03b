//! [`ConfigError`]: why a configuration could not be read, parsed, checked or built.

use std::fmt;
use std::path::PathBuf;

use crate::stack::error::StackError;

/// Why a configuration could not be read, parsed, checked or built. It names the field
/// (`providers[1].limits.requests_per_minute`) and never quotes a value that may be a secret:
/// not an API key, not a URL (not even redacted: the field says which), not a value of an
/// enumeration it does not know (`kind`, `preset`, `routing`, `algorithm`, `jitter`,
/// `unavailable`: it lists the accepted ones), not a malformed duration, not the value of a
/// field of the wrong type. It names what is not secret: fields, keys of the file, the
/// environment variables it reads, the providers' names and the bounds.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML.
    Syntax {
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// What the parser says.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or has a value that cannot work.
    Invalid {
        /// The field's path: `providers[1].limits.requests_per_minute`, `stack.fallback[0]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The environment variable an `api_key_env` or `api_key_envs` names is not set (or not
    /// Unicode).
    MissingEnv {
        /// The field's path: `providers[0].api_key_env`, `providers[0].api_key_envs[1]`.
        field: String,
        /// The variable's name.
        variable: String,
    },
    /// The builder refused the configuration.
    Build(StackError),
}

impl ConfigError {
    /// The path of the field at fault, if one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::MissingEnv { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Syntax {
                line,
                column,
                message,
            } => write!(f, "line {line}, column {column}: {message}"),
            ConfigError::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            ConfigError::MissingEnv { field, variable } => {
                write!(f, "{field}: environment variable {variable} is not set")
            }
            ConfigError::Build(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Build(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StackError> for ConfigError {
    fn from(error: StackError) -> Self {
        ConfigError::Build(error)
    }
}
