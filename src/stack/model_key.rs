//! [`ModelKey`]: a ready stack's quota key, bounded to the models it knows.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_core::RouteKey;
use tollgate_ratelimit::{ByModel, Keyer};
use tollgate_router::ContextWindows;

/// The key every model the stack does not know shares.
pub(crate) const OTHER_MODELS: &str = "(other models)";

/// Keys a request's quota by its body's `model`, among the models the stack knows: the
/// provider's own by exact name, and the families of the published context-window table by
/// prefix (`gpt-4o-2024-08-06` counts as `gpt-4o`, every `claude-…` as `claude-`). Every other
/// model shares one key, [`OTHER_MODELS`]: varying the model can neither bypass the quota nor
/// grow the keys beyond the list. A body without a model draws from the unkeyed quota.
///
/// A provider with a model of its own sets every body's `model` to it before its rate limit
/// ([`SetModel`](tollgate_providers::rewrite::SetModel), which refuses a body it cannot
/// rewrite): its key is that model's, known without reading the body
/// ([`ModelKey::fixed`]).
#[derive(Clone)]
pub(crate) struct ModelKey {
    /// Every key it can give, by the name or prefix it stands for.
    keys: Arc<HashMap<Box<str>, RouteKey>>,
    families: Arc<ContextWindows>,
    other: RouteKey,
    /// The one key of a provider with a model of its own.
    fixed: Option<RouteKey>,
}

impl ModelKey {
    /// Knows `models` by name, and the default table's families.
    pub(crate) fn new<'a>(models: impl IntoIterator<Item = &'a str>) -> Self {
        let families = ContextWindows::default();
        let mut keys: HashMap<Box<str>, RouteKey> = models
            .into_iter()
            .map(|model| (Box::from(model), RouteKey::new(model)))
            .collect();
        for prefix in families.prefixes() {
            keys.entry(Box::from(prefix))
                .or_insert_with(|| RouteKey::new(prefix));
        }
        ModelKey {
            keys: Arc::new(keys),
            families: Arc::new(families),
            other: RouteKey::new(OTHER_MODELS),
            fixed: None,
        }
    }

    /// The key of a provider whose every request is rewritten to `model` before it is keyed:
    /// that model's, whatever the body says. (Only for the rate limit behind the rewrite: the
    /// check of the caller's own model, before it, reads the body.)
    pub(crate) fn fixed(model: &str) -> Self {
        ModelKey {
            fixed: Some(RouteKey::new(model)),
            ..ModelKey::new([model])
        }
    }
}

impl ModelKey {
    /// The key of a model it knows.
    fn known(&self, model: &str) -> Option<&RouteKey> {
        self.keys
            .get(model)
            .or_else(|| self.families.family(model).and_then(|f| self.keys.get(f)))
    }

    /// Whether the request names a model it does not know (a body without a model names
    /// none).
    pub(crate) fn names_unknown<B: AsRef<[u8]> + 'static>(
        &self,
        request: &http::Request<B>,
    ) -> bool {
        ByModel::model_of_body(request.body()).is_some_and(|model| self.known(&model).is_none())
    }
}

impl<B: AsRef<[u8]> + 'static> Keyer<B> for ModelKey {
    fn key(&self, request: &http::Request<B>) -> Option<RouteKey> {
        if let Some(fixed) = &self.fixed {
            return Some(fixed.clone());
        }
        // Through the body's outline, kept for the token estimate after it.
        let model = ByModel::model_of_body(request.body())?;
        Some(self.known(&model).unwrap_or(&self.other).clone())
    }
}

impl std::fmt::Debug for ModelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelKey")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}
