//! [`ClassifyLayer`].

use tollgate_core::ResponseView;
use tower_layer::Layer;

use super::ClassifyService;

/// Runs a classifier once per response and attaches its [`Verdict`](tollgate_core::Verdict)
/// (none to a plain success: see [`Verdict::is_plain_success`](tollgate_core::Verdict::is_plain_success)).
///
/// The classifier is cloned into each response future, so it should be cheap to clone: every
/// classifier in this crate is; wrap an expensive one in an `Arc` (which classifies too). A
/// followed event stream's body keeps a clone (in an `Arc`) to classify error events, so as a
/// service the layer needs a `Send + Sync + 'static` classifier.
///
/// See the [module docs](super) for examples.
#[derive(Debug, Clone)]
pub struct ClassifyLayer<C> {
    classifier: C,
    peek_limit: usize,
}

impl<C> ClassifyLayer<C> {
    /// A layer running `classifier`, peeking at most 64 KiB
    /// ([`ResponseView::PEEK_LIMIT`]) of each error body.
    pub const fn new(classifier: C) -> Self {
        ClassifyLayer {
            classifier,
            peek_limit: ResponseView::PEEK_LIMIT,
        }
    }

    /// Peeks at most `limit` bytes of an error body, capped at 64 KiB
    /// ([`ResponseView::PEEK_LIMIT`]). Zero classifies from status and headers alone.
    #[must_use]
    pub const fn with_peek_limit(mut self, limit: usize) -> Self {
        self.peek_limit = if limit < ResponseView::PEEK_LIMIT {
            limit
        } else {
            ResponseView::PEEK_LIMIT
        };
        self
    }

    /// The peek limit in bytes.
    pub const fn peek_limit(&self) -> usize {
        self.peek_limit
    }

    /// The classifier.
    pub const fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<S, C: Clone> Layer<S> for ClassifyLayer<C> {
    type Service = ClassifyService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ClassifyService::new(inner, self.classifier.clone(), self.peek_limit)
    }
}
