//! [`Strategy`]: how the router chooses among the deployments that can take a request now.

/// How the router chooses among the deployments that can take a request now. Whatever the
/// strategy, a deployment out of rotation, open, without quota for the request or whose model's
/// context window is too small is passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Each in turn: request *n* goes to deployment *n* mod the count, or the next one after it
    /// that can take it.
    #[default]
    RoundRobin,
    /// In proportion to [`Deployment::with_weight`](crate::Deployment::with_weight), spread evenly
    /// (smooth weighted round-robin: weights 3 and 1 give `a a b a`, then again).
    Weighted,
    /// The deployment whose quota has the most headroom left after this request's cost (the
    /// smallest share left over its limits; ties go to the one with fewer requests in flight,
    /// then in turn).
    LeastLoaded,
    /// Power of two choices: of two deployments picked at random, the one with the lower
    /// recent latency (an exponentially weighted moving average) × (requests in flight + 1).
    /// A deployment not yet measured counts as fastest while it has nothing in flight, so each
    /// gets tried without a burst piling onto it.
    LatencyAware,
}
