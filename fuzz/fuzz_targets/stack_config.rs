//! `tollgate::stack::StackConfig::from_toml` on arbitrary text.
//!
//! Input layout: the bytes as UTF-8 text; inputs that are not UTF-8 are skipped.
//!
//! Checks: no panic, whatever the text; an error displays, and a syntax error's line and
//! column count from 1 and the line is within the text; an accepted configuration has a
//! primary provider among its providers, and its builder is made (or refused with an error)
//! with every key variable set.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::stack::{ConfigError, StackConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match StackConfig::from_toml(text) {
        Ok(config) => {
            assert!(config.providers().len() >= 1, "no provider");
            let _ = config.primary();
            let _ = config.fallback().count();
            let _ = config.context_window().count();
            let _ = config.cache();
            let _ = format!("{config:?}");
            if let Err(error) = config.to_builder_with_env(|_| Some("sk-fuzz".to_owned())) {
                let _ = error.to_string();
            }
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(!shown.is_empty(), "empty message");
            if let ConfigError::Syntax { line, column, .. } = error {
                assert!(line >= 1 && column >= 1, "{line}:{column}");
                assert!(
                    line <= text.matches('\n').count() + 1,
                    "line {line} past the text"
                );
            }
        }
    }
});
