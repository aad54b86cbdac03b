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

use std::borrow::Cow;

use tollgate_core::RouteKey;
use tollgate_core::json::Scanner;

pub use tollgate_core::key::{ByApiKey, ByHeader, ByRouteKey, Keyer, KeyerFn, Unkeyed, keyer_fn};

/// The `model` field of a JSON body (`B: AsRef<[u8]>`, a buffered body).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByModel;

impl ByModel {
    /// A JSON body's top-level `model` string, found without building a tree and borrowed
    /// from the body unless it holds escapes (decoded as `serde_json` decodes them); none when
    /// the body is not a JSON object, has no `model`, names it twice or holds something else
    /// in it. What [`key`](Keyer::key) keys by, without building the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use tollgate_ratelimit::ByModel;
    ///
    /// let body = br#"{"model":"gpt-4o","messages":[]}"#;
    /// assert_eq!(ByModel::model_of(body).as_deref(), Some("gpt-4o"));
    /// assert_eq!(ByModel::model_of(br#"{"model":"gpt-\u0034o"}"#).as_deref(), Some("gpt-4o"));
    /// assert_eq!(ByModel::model_of(br#"{"model":4}"#), None);
    /// ```
    pub fn model_of(bytes: &[u8]) -> Option<Cow<'_, str>> {
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
                std::str::from_utf8(text).ok().map(Cow::Borrowed)
            }
            // Escapes (rare in a model's name): decoded as `serde_json` decodes them.
            text => serde_json::from_slice::<String>(text).ok().map(Cow::Owned),
        }
    }
}

impl<B: AsRef<[u8]>> Keyer<B> for ByModel {
    /// The body's top-level `model` string ([`ByModel::model_of`]).
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        ByModel::model_of(request.body().as_ref()).map(|model| RouteKey::new(&*model))
    }
}
