//! `[store]`: where the providers' quotas live — in this process (`kind = "memory"`, the
//! default) or in Redis, shared by every replica built from the same file (`kind = "redis"`,
//! with the `redis` feature).
//!
//! The Redis URL may hold a password: `url_env` names the variable holding it, read when the
//! stack is built, and `url` is accepted only without user info or query. The errors written
//! here quote no value, and `url` is read as any TOML value and checked by hand, so that not
//! even serde's type errors can quote it. No `Debug` output shows a Redis URL, not even
//! redacted (`RedisConfig`'s neither).

use super::error::ConfigError;
use super::shapes::RawStore;

/// Where the quotas live, as `[store]` says.
#[derive(Debug, Clone, Default)]
pub(super) enum QuotaStore {
    /// Each provider's quota in this process.
    #[default]
    Memory,
    /// In Redis.
    #[cfg(feature = "redis")]
    Redis(redis::Shared),
}

/// `[store]` checked.
pub(super) fn store(path: &str, raw: RawStore) -> Result<QuotaStore, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    match raw.kind.as_deref().unwrap_or("memory") {
        "memory" => {
            let redis_only = [
                ("url_env", raw.url_env.is_some()),
                ("url", raw.url.is_some()),
                ("prefix", raw.prefix.is_some()),
                ("replicas", raw.replicas.is_some()),
                ("unavailable", raw.unavailable.is_some()),
                ("timeout", raw.timeout.is_some()),
                ("reconnect_every", raw.reconnect_every.is_some()),
            ];
            match redis_only.into_iter().find(|(_, given)| *given) {
                Some((name, _)) => Err(ConfigError::invalid(
                    field(name),
                    "only with kind = \"redis\"",
                )),
                None => Ok(QuotaStore::Memory),
            }
        }
        #[cfg(feature = "redis")]
        "redis" => redis::shared(path, raw).map(QuotaStore::Redis),
        #[cfg(not(feature = "redis"))]
        "redis" => Err(ConfigError::invalid(
            field("kind"),
            "kind = \"redis\" needs tollgate's `redis` feature, which this build does not have \
             (features = [\"redis\"] in Cargo.toml)",
        )),
        _ => Err(ConfigError::invalid(
            field("kind"),
            "unknown kind; expected \"memory\" or \"redis\"",
        )),
    }
}

#[cfg(feature = "redis")]
mod redis {
    //! `kind = "redis"`: the Redis configuration, and the URL read when the stack is built.

    use std::fmt;
    use std::time::Duration;

    use tollgate_redis::{RedisConfig, URL_SCHEMES, Unavailable};

    use super::super::duration::{duration, non_zero};
    use super::super::error::ConfigError;
    use super::super::keys::is_variable_name;
    use super::super::shapes::RawStore;

    /// The longest `timeout`: a call to Redis taking longer holds every admission as long.
    const MAX_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest `reconnect_every`: longer keeps the local share long after Redis is back.
    const MAX_RECONNECT_EVERY: Duration = Duration::from_secs(60);

    /// `[store]` with `kind = "redis"`: everything but the URL, and where to find it.
    #[derive(Debug, Clone)]
    pub(in super::super) struct Shared {
        url: Url,
        /// The rest of the configuration; its URL is empty until [`read`](Self::read).
        config: RedisConfig,
    }

    /// Where the URL is.
    #[derive(Clone)]
    enum Url {
        /// In the variable of this name (`url_env`), read when the stack is built.
        Env(String),
        /// In the file (`url`), without user info or query.
        Inline(String),
    }

    impl fmt::Debug for Url {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Url::Env(variable) => f.debug_tuple("Env").field(variable).finish(),
                Url::Inline(_) => f.write_str("Inline(\"<hidden>\")"),
            }
        }
    }

    impl Shared {
        /// The configuration, with the URL read with `env` (at `field`) when it is in a
        /// variable.
        pub(in super::super) fn read(
            &self,
            field: &str,
            env: &impl Fn(&str) -> Option<String>,
        ) -> Result<RedisConfig, ConfigError> {
            let url = match &self.url {
                Url::Inline(url) => url.clone(),
                Url::Env(variable) => {
                    let field = format!("{field}.url_env");
                    let url = env(variable).ok_or_else(|| ConfigError::MissingEnv {
                        field: field.clone(),
                        variable: variable.clone(),
                    })?;
                    if !RedisConfig::has_redis_scheme(&url) {
                        return Err(ConfigError::invalid(
                            field,
                            format!(
                                "the URL in environment variable {variable} is not a Redis URL \
                                 ({URL_SCHEMES}); the URL is not shown"
                            ),
                        ));
                    }
                    url
                }
            };
            let mut config = self.config.clone();
            config.url = url;
            Ok(config)
        }
    }

    /// `[store]` with `kind = "redis"`, checked.
    pub(super) fn shared(path: &str, raw: RawStore) -> Result<Shared, ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        let url = match (raw.url_env, raw.url) {
            (Some(variable), None) => {
                is_variable_name(field("url_env"), &variable, "the URL itself")?;
                Url::Env(variable)
            }
            (None, Some(url)) => Url::Inline(inline_url(field("url"), url)?),
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    field("url"),
                    "give either url_env (the variable holding the URL) or url, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    field("url_env"),
                    "required with kind = \"redis\": the name of the environment variable \
                     holding the Redis URL (or url, for a URL without a password)",
                ));
            }
        };
        let mut config = RedisConfig::new(String::new());
        if let Some(prefix) = raw.prefix {
            let bad = |c: char| c == '{' || c == '}' || c.is_whitespace();
            if prefix.is_empty() || prefix.contains(bad) {
                return Err(ConfigError::invalid(
                    field("prefix"),
                    "must not be empty, nor hold `{`, `}` or whitespace",
                ));
            }
            config = config.with_prefix(prefix);
        }
        if let Some(replicas) = raw.replicas {
            let replicas = u32::try_from(replicas)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        field("replicas"),
                        format!("must be at least 1 and at most {}", u32::MAX),
                    )
                })?;
            config = config.with_replicas(replicas);
        }
        if let Some(name) = raw.unavailable {
            config = config.with_unavailable(unavailable(field("unavailable"), &name)?);
        }
        if let Some(text) = raw.timeout {
            let timeout = bounded(field("timeout"), &text, MAX_TIMEOUT)?;
            config = config.with_timeout(timeout);
        }
        if let Some(text) = raw.reconnect_every {
            let every = bounded(field("reconnect_every"), &text, MAX_RECONNECT_EVERY)?;
            config = config.with_reconnect_every(every);
        }
        Ok(Shared { url, config })
    }

    /// A duration above zero and at most `max`.
    fn bounded(field: String, text: &str, max: Duration) -> Result<Duration, ConfigError> {
        non_zero(field.clone(), duration(field, text, max)?)
    }

    /// The policy an `unavailable` name stands for.
    fn unavailable(field: String, name: &str) -> Result<Unavailable, ConfigError> {
        match name {
            // `local_share` as `Unavailable::as_str` writes it.
            "local-share" | "local_share" => Ok(Unavailable::LocalShare),
            "refuse" => Ok(Unavailable::Refuse),
            "admit" => Ok(Unavailable::Admit),
            _ => Err(ConfigError::invalid(
                field,
                "unknown policy; expected local-share, refuse or admit",
            )),
        }
    }

    /// `url` from the file: a Redis URL without user info (which holds a password) or query
    /// (which may); errors never quote it.
    fn inline_url(field: String, value: toml::Value) -> Result<String, ConfigError> {
        let use_env = "put the URL in an environment variable and name the variable in url_env \
                       (the URL is not shown)";
        let toml::Value::String(url) = value else {
            return Err(ConfigError::invalid(
                field,
                "must be a Redis URL, as a string, like \"redis://127.0.0.1:6379/\"",
            ));
        };
        if !RedisConfig::has_redis_scheme(&url) {
            return Err(ConfigError::invalid(
                field,
                format!("not a Redis URL ({URL_SCHEMES}); the URL is not shown"),
            ));
        }
        let rest = url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.contains('@') {
            return Err(ConfigError::invalid(
                field,
                format!("holds a user name or password: {use_env}"),
            ));
        }
        if rest.contains('?') {
            return Err(ConfigError::invalid(
                field,
                format!("has a query, which may hold a password: {use_env}"),
            ));
        }
        Ok(url)
    }
}
