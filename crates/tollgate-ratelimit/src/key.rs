//! [`Keyer`]s: which quota a request draws from — per model, per API key, per tenant.
//!
//! | keyer | key |
//! |---|---|
//! | [`Unkeyed`] (default) | none: one quota for everything |
//! | [`ByRouteKey`] | the [`RouteKey`] request extension |
//! | [`ByHeader`] | a header's value, such as a tenant id |
//! | [`ByApiKey`] | a fingerprint of `authorization`, `x-api-key`, `api-key` or `x-goog-api-key` (the secret itself is never kept) |
//! | [`ByModel`] | the `model` field of a JSON body |
//! | [`keyer_fn`] | whatever a closure says |
//!
//! All but [`ByModel`] come from [`tollgate_core::key`], shared with the other keyed layers. A
//! request without a key (no such header, no `model` field) draws from the unkeyed quota.

use tollgate_core::RouteKey;
use tollgate_core::json::Scanner;

pub use tollgate_core::key::{ByApiKey, ByHeader, ByRouteKey, Keyer, KeyerFn, Unkeyed, keyer_fn};

/// The `model` field of a JSON body (`B: AsRef<[u8]>`, a buffered body).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByModel;

impl<B: AsRef<[u8]>> Keyer<B> for ByModel {
    /// The body's top-level `model` string, found without building a tree; none when the body
    /// is not a JSON object, has no `model`, names it twice or holds something else in it.
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        let bytes = request.body().as_ref();
        let mut scanner = Scanner::new(bytes).ok()?;
        let (mut model, mut repeated) = (None, false);
        scanner
            .object(|scanner, name| {
                let value = scanner.skip()?;
                if name.is("model") {
                    repeated |= model.replace(value).is_some();
                }
                Ok(())
            })
            .ok()?;
        scanner.finish().ok()?;
        if repeated {
            return None;
        }
        match &bytes[model?] {
            [b'"', text @ .., b'"'] if !text.contains(&b'\\') => {
                Some(RouteKey::new(std::str::from_utf8(text).ok()?))
            }
            // Escapes (rare in a model's name): decoded as `serde_json` decodes them.
            text => serde_json::from_slice::<String>(text)
                .ok()
                .map(|model| RouteKey::new(model.as_str())),
        }
    }
}
