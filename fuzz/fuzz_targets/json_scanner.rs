//! `tollgate_core::json::Scanner`, which the rewriters, the token estimators and the model
//! keyer read request bodies with, against `serde_json` on any input: no panic; a UTF-8 text is
//! accepted exactly when `serde_json` accepts it; the characters counted are those of its
//! decoded strings (every member's, a repeated name's too) whenever `serde_json` decodes them
//! all.

#![no_main]

use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tollgate_core::json::Scanner;

/// The characters of every string value, counted by `serde_json` as it decodes them (every
/// member, a repeated name's too: what the estimators counted before the scanner).
struct Characters(u64);

impl<'de> Deserialize<'de> for Characters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CharactersVisitor)
    }
}

struct CharactersVisitor;

impl<'de> Visitor<'de> for CharactersVisitor {
    type Value = Characters;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<Characters, E> {
        Ok(Characters(text.chars().count() as u64))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Characters, E> {
        Ok(Characters(0))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Characters, E> {
        Ok(Characters(0))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Characters, E> {
        Ok(Characters(0))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Characters, E> {
        Ok(Characters(0))
    }

    fn visit_unit<E>(self) -> Result<Characters, E> {
        Ok(Characters(0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Characters, A::Error> {
        let mut total = 0u64;
        while let Some(Characters(n)) = items.next_element()? {
            total = total.saturating_add(n);
        }
        Ok(Characters(total))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Characters, A::Error> {
        let mut total = 0u64;
        while members.next_key::<IgnoredAny>()?.is_some() {
            let Characters(n) = members.next_value()?;
            total = total.saturating_add(n);
        }
        Ok(Characters(total))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut scanner) = Scanner::new(data) else {
        assert!(std::str::from_utf8(data).is_err());
        return;
    };
    let mut skipping = scanner.clone();
    let skipped = skipping.skip().is_ok() && skipping.finish().is_ok();
    let serde = serde_json::from_slice::<IgnoredAny>(data).is_ok();
    assert_eq!(skipped, serde, "{:?}", String::from_utf8_lossy(data));
    let counted = scanner.characters().ok().filter(|_| scanner.finish().is_ok());
    if let Ok(Characters(n)) = serde_json::from_slice::<Characters>(data) {
        assert_eq!(counted, Some(n));
    }
});
