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

use serde::Deserialize;
use tollgate_core::RouteKey;

pub use tollgate_core::key::{ByApiKey, ByHeader, ByRouteKey, Keyer, KeyerFn, Unkeyed, keyer_fn};

/// The `model` field of a JSON body (`B: AsRef<[u8]>`, a buffered body).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByModel;

#[derive(Deserialize)]
struct Model<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
}

impl<B: AsRef<[u8]>> Keyer<B> for ByModel {
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        let body: Model<'_> = serde_json::from_slice(request.body().as_ref()).ok()?;
        body.model.map(|m| RouteKey::new(&*m))
    }
}
