//! Where a toml error is: the path of the field at fault
//! (`providers[1].limits.requests_per_minute`), found by deserializing the file's tables one by
//! one, or a line and column for text that is not TOML.
//!
//! serde's messages quote the value at fault (`invalid type: string "sk-…", expected u64`):
//! every double-quoted part of them is replaced by `(not shown)`, as the value may be a key
//! pasted into the wrong field. Keys' names (`` unknown field `modle` ``) and numbers are kept.

use serde::de::DeserializeOwned;

use super::error::ConfigError;
use super::shapes::{
    RawAdaptive, RawBreaker, RawCache, RawConfig, RawLimits, RawProvider, RawRetry, RawStack,
    RawStore, RawTimeouts,
};

/// Turns toml's error into one naming the field. toml's own `Display` quotes the offending
/// line, which could hold a key: only its message is used.
pub(super) fn locate(text: &str, error: &toml::de::Error) -> ConfigError {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| line_and_column(text, span.start));
        return ConfigError::Syntax {
            line,
            column,
            message: error.message().trim().to_owned(),
        };
    };
    match find_field(&toml::Value::Table(table)) {
        Some((field, reason)) => ConfigError::Invalid { field, reason },
        None => ConfigError::invalid("(root)", unquoted(error.message().trim())),
    }
}

/// The field at fault in `root`, deepest first.
fn find_field(root: &toml::Value) -> Option<(String, String)> {
    if let Some(toml::Value::Array(providers)) = root.get("providers") {
        for (i, provider) in providers.iter().enumerate() {
            let path = format!("providers[{i}]");
            for (key, found) in [
                ("limits", locate_in::<RawLimits> as Locator),
                ("adaptive", locate_in::<RawAdaptive>),
                ("timeouts", locate_in::<RawTimeouts>),
                ("retry", locate_in::<RawRetry>),
                ("breaker", locate_in::<RawBreaker>),
            ] {
                if let Some(value) = provider.get(key) {
                    if let Some(found) = found(value, &format!("{path}.{key}")) {
                        return Some(found);
                    }
                }
            }
            if let Some(found) = locate_in::<RawProvider>(provider, &path) {
                return Some(found);
            }
        }
    }
    if let Some(stack) = root.get("stack") {
        if let Some(cache) = stack.get("cache") {
            if let Some(found) = locate_in::<RawCache>(cache, "stack.cache") {
                return Some(found);
            }
        }
        if let Some(found) = locate_in::<RawStack>(stack, "stack") {
            return Some(found);
        }
    }
    if let Some(store) = root.get("store") {
        if let Some(found) = locate_in::<RawStore>(store, "store") {
            return Some(found);
        }
    }
    locate_in::<RawConfig>(root, "")
}

type Locator = fn(&toml::Value, &str) -> Option<(String, String)>;

/// Whether `value` is not a `T`, and if so the field at fault: the key whose removal makes
/// it one (or only leaves a missing field), else `path` itself.
fn locate_in<T: DeserializeOwned>(value: &toml::Value, path: &str) -> Option<(String, String)> {
    let error = T::deserialize(value.clone()).err()?;
    let message = unquoted(error.message().trim());
    let join = |key: &str| {
        // A key may be empty (`'' = 1`): named as TOML quotes it, never as nothing.
        let key = if key.is_empty() { "''" } else { key };
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return Some((join(missing), "required, but missing".to_owned()));
    }
    if let toml::Value::Table(table) = value {
        for key in table.keys() {
            let mut without = table.clone();
            without.remove(key);
            match T::deserialize(toml::Value::Table(without)) {
                Ok(_) => return Some((join(key), message)),
                Err(other) if other.message().starts_with("missing field") => {
                    return Some((join(key), message));
                }
                Err(_) => {}
            }
        }
    }
    let path = if path.is_empty() { "(root)" } else { path };
    Some((path.to_owned(), message))
}

/// `message` with every double-quoted part (escapes included) replaced by `(not shown)`.
fn unquoted(message: &str) -> String {
    let mut shown = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            shown.push(c);
            continue;
        }
        shown.push_str("(not shown)");
        // To the closing quote, or the end: an unclosed quote hides the rest.
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
    shown
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    // Bytes, so that an offset inside a character cannot panic.
    let before = &text.as_bytes()[..offset.min(text.len())];
    let before = String::from_utf8_lossy(before);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
