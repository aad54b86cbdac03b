//! [`Target`]: one provider or model to send to, with its rewrites; [`FallbackPolicy`]: when
//! to move on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tollgate_core::body::BufferedBody;
use tollgate_core::rewrite::Rewrite;
use tollgate_core::{BoxError, ClassSet, ErrorClass};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// A fallback target: a named service and the rewrites its requests need.
///
/// # Examples
///
/// ```
/// use tollgate_fallback::Target;
/// use tollgate_providers::rewrite::{Credentials, Endpoint, SetModel};
///
/// # let deepseek_client = tower::service_fn(|_: http::Request<tollgate_core::body::BufferedBody>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// # });
/// let deepseek = Target::new("deepseek", deepseek_client)
///     .with_rewrite(Endpoint::new("https://api.deepseek.com").unwrap().with_prefix_replaced("/v1"))
///     .with_rewrite(Credentials::bearer("sk-deepseek").unwrap())
///     .with_rewrite(SetModel::new("deepseek-chat"));
/// assert_eq!(deepseek.name(), "deepseek");
/// ```
#[derive(Clone)]
pub struct Target<S> {
    name: Arc<str>,
    service: S,
    rewrites: Vec<Arc<dyn Rewrite>>,
}

impl<S> Target<S> {
    /// `service`, called `name` in errors and events.
    pub fn new(name: impl Into<Arc<str>>, service: S) -> Self {
        Target {
            name: name.into(),
            service,
            rewrites: Vec::new(),
        }
    }

    /// Rewrites requests for this target with `rewrite`, after the earlier ones.
    #[must_use]
    pub fn with_rewrite(mut self, rewrite: impl Rewrite) -> Self {
        self.rewrites.push(Arc::new(rewrite));
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    pub(crate) fn service(&self) -> &S {
        &self.service
    }

    pub(crate) fn prepare(
        &self,
        mut request: http::Request<BufferedBody>,
    ) -> Result<http::Request<BufferedBody>, BoxError> {
        for rewrite in &self.rewrites {
            rewrite.rewrite(&mut request)?;
        }
        Ok(request)
    }
}

impl<S> fmt::Debug for Target<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("rewrites", &self.rewrites.len())
            .finish_non_exhaustive()
    }
}

/// A boxed target service, for fallbacks over services of different types.
pub type BoxTarget<ResBody> =
    BoxCloneSyncService<http::Request<BufferedBody>, http::Response<ResBody>, BoxError>;

/// Boxes `service` (its errors into [`BoxError`]) so that targets of different types fit in one
/// fallback; box the primary the same way.
pub fn boxed<S, ResBody>(service: S) -> BoxTarget<ResBody>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service.map_err(Into::into))
}

/// When the fallback moves to the next target.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::ErrorClass;
/// use tollgate_fallback::FallbackPolicy;
///
/// let policy = FallbackPolicy::default()
///     .with_rate_limit_threshold(Duration::from_secs(2))
///     .with_max_wait(Duration::from_secs(30));
/// assert!(policy.move_on.contains(ErrorClass::Overloaded));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackPolicy {
    /// Verdict classes that move on to the next target. A target that refused the request
    /// itself as overloaded (a local refusal of class `Overloaded`: an open circuit breaker)
    /// always moves on, whatever this set says.
    pub move_on: ClassSet,
    /// A rate limit moves on when the wait it asks for is longer than this; a shorter one is
    /// returned, for a retry below or the caller to wait out.
    pub rate_limit_threshold: Duration,
    /// When every target is cooling down: wait for the first to be free at most this long
    /// (the request's deadline, when sooner, counts too). Zero: fail at once.
    pub max_wait: Duration,
    /// How long a target cools down after a failure of these classes that carries no delay:
    /// an exhausted quota or a rejected key does not recover in seconds.
    pub cooldowns: Vec<(ErrorClass, Duration)>,
}

impl Default for FallbackPolicy {
    /// Moves on for overloads, server errors, timeouts, failed connections, exhausted quotas
    /// and rejected keys (another key may work), and for rate limits asking for more than 10 s;
    /// cools a target down for 5 min after an exhausted quota or a rejected key without a
    /// delay; never waits for a cooling target.
    fn default() -> Self {
        FallbackPolicy {
            move_on: ClassSet::TARGET_HEALTH
                .with(ErrorClass::QuotaExhausted)
                .with(ErrorClass::Unauthorized),
            rate_limit_threshold: Duration::from_secs(10),
            max_wait: Duration::ZERO,
            cooldowns: vec![
                (ErrorClass::QuotaExhausted, Duration::from_secs(300)),
                (ErrorClass::Unauthorized, Duration::from_secs(300)),
            ],
        }
    }
}

impl FallbackPolicy {
    /// Moving on for `classes`.
    #[must_use]
    pub fn with_moving_on(mut self, classes: ClassSet) -> Self {
        self.move_on = classes;
        self
    }

    /// Moving on for rate limits asking for more than `threshold`.
    #[must_use]
    pub fn with_rate_limit_threshold(mut self, threshold: Duration) -> Self {
        self.rate_limit_threshold = threshold;
        self
    }

    /// Cooling a target down for `cooldown` after a failure of `class` that carries no delay
    /// (replacing an earlier one for it).
    #[must_use]
    pub fn with_cooldown(mut self, class: ErrorClass, cooldown: Duration) -> Self {
        self.cooldowns.retain(|(c, _)| *c != class);
        self.cooldowns.push((class, cooldown));
        self
    }

    /// The cooldown after a failure of `class` without a delay, if any.
    pub fn cooldown_for(&self, class: ErrorClass) -> Option<Duration> {
        self.cooldowns
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, d)| *d)
    }

    /// Waiting at most `max_wait` for a cooling target when all are.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}
