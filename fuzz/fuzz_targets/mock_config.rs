//! `tollgate_mock::MockConfig::from_toml` on arbitrary text.
//!
//! Input layout: the bytes as UTF-8 text; inputs that are not UTF-8 are skipped.
//!
//! Checks: no panic, whatever the text; an error has a message; an accepted configuration
//! passes `validate` again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_mock::MockConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match MockConfig::from_toml(text) {
        Ok(config) => {
            assert!(config.validate().is_ok(), "accepted, then invalid");
            let _ = format!("{config:?}");
        }
        Err(error) => assert!(!error.message().is_empty(), "empty message"),
    }
});
