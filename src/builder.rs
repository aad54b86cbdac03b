//! [`ServiceBuilderExt`]: tollgate's layers as `tower::ServiceBuilder` methods.

/// tollgate's layers as methods on [`tower::ServiceBuilder`](https://docs.rs/tower/latest/tower/struct.ServiceBuilder.html).
///
/// This trait is sealed: it is implemented for `ServiceBuilder` only.
///
/// # Examples
///
/// ```
/// use tollgate::providers::Anthropic;
/// use tollgate::ServiceBuilderExt;
/// use tower::ServiceBuilder;
///
/// let builder = ServiceBuilder::new().classify(Anthropic::new());
/// # let _ = builder;
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed<L> + Sized {
    /// Adds a [`ClassifyLayer`](crate::ClassifyLayer) with this classifier: every response gets
    /// its [`Verdict`](crate::Verdict), and transport errors are wrapped in
    /// [`Classified`](crate::Classified). Put it last (nearest the transport).
    #[cfg(feature = "providers")]
    #[cfg_attr(docsrs, doc(cfg(feature = "providers")))]
    fn classify<C>(
        self,
        classifier: C,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_providers::ClassifyLayer<C>, L>>;
}

impl<L> ServiceBuilderExt<L> for tower::ServiceBuilder<L> {
    #[cfg(feature = "providers")]
    fn classify<C>(
        self,
        classifier: C,
    ) -> tower::ServiceBuilder<tower_layer::Stack<tollgate_providers::ClassifyLayer<C>, L>> {
        self.layer(tollgate_providers::ClassifyLayer::new(classifier))
    }
}

mod sealed {
    pub trait Sealed<L> {}
    impl<L> Sealed<L> for tower::ServiceBuilder<L> {}
}
