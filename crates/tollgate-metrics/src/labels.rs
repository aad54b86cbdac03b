//! The labels every metric carries: never request data but the route key.

use metrics::SharedString;

/// `provider` (configuration) and `route` (the request's `RouteKey`: a model name, a tenant, or
/// an API key's fingerprint — never a key).
#[derive(Clone)]
pub(crate) struct Labels {
    pub(crate) provider: SharedString,
    pub(crate) route: SharedString,
}
