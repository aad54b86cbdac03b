//! `tollgate_core::json::Scanner`, which the rewriters, the token estimators and the model
//! keyer read request bodies with, against `serde_json` on any input: no panic; a UTF-8 text is
//! accepted exactly when `serde_json` accepts it; the characters counted are those of its
//! decoded strings whenever `serde_json` decodes them all.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_core::json::Scanner;

fn characters(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(items) => items.iter().map(characters).sum(),
        Value::Object(members) => members.values().map(characters).sum(),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut scanner) = Scanner::new(data) else {
        assert!(std::str::from_utf8(data).is_err());
        return;
    };
    let mut skipping = scanner.clone();
    let skipped = skipping.skip().is_ok() && skipping.finish().is_ok();
    let serde = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    assert_eq!(skipped, serde, "{:?}", String::from_utf8_lossy(data));
    let counted = scanner.characters().ok().filter(|_| scanner.finish().is_ok());
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        assert_eq!(counted, Some(characters(&value)));
    }
});
