//! [`RedisStore`]: a [`Store`] whose quotas live in Redis, shared by every replica.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use redis::Client;

use std::num::NonZeroU64;

use tollgate_core::{BoxError, Cost, Dimension, RouteKey, Window};
use tollgate_ratelimit::algorithm::Quota;
use tollgate_ratelimit::{Feedback, Limit, Limits, MemoryStore, Outlook, QuotaDecision, Store};

use crate::config::{RedisConfig, Unavailable};
use crate::error::{RedisConfigError, RedisUnavailable};
use crate::link::{Link, Mode, Outcome};
use crate::plan::{Plan, share};
use crate::view::{Answer, View};

/// The quota script, loaded once per server and called by its SHA-1.
const SCRIPT: &str = include_str!("quota.lua");

/// Quota state in Redis: every replica that uses the same Redis, prefix and limits draws from
/// one quota.
///
/// Each admission is one round trip: one Lua script, called by its hash, that reads Redis's
/// clock, checks every limit of the key and spends on all of them or on none. The layer's fair
/// queue stays in the process; the head of the queue asks Redis and waits as long as Redis
/// says, so waiting callers never poll. What a response tells the layer (a provider's
/// remaining quota, a 429's pause, usage reconciled against the estimate) is written to Redis
/// in the background, so every replica learns it.
///
/// Cloning is cheap; clones share the connection and the configuration.
///
/// # Keys
///
/// One hash per quota key, `{prefix}:k:{<route key>}` (`{prefix}:u` for the unkeyed quota),
/// with one field per limit (named by dimension, period and algorithm) and the pause. The
/// route key in braces is a Redis Cluster hash tag. A hash expires one second after every
/// limit is full again, so idle keys cost Redis nothing.
///
/// # When Redis is away
///
/// Every call is bounded by [`RedisConfig::timeout`]. A call that fails or times out marks
/// Redis unreachable ([`Mode::Unavailable`]): from then on admissions apply
/// [`RedisConfig::unavailable`] at once, without waiting on Redis, while one background task
/// reconnects every [`RedisConfig::reconnect_every`]; the first success makes the quota shared
/// again. Changes of mode are logged (`tollgate::redis` target), counted
/// ([`RedisStore::stats`]) and told to [`RedisStore::on_mode_change`].
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    prefix: String,
    unavailable: Unavailable,
    replicas: u32,
    plans: RwLock<Plans>,
    /// What each key's last answer said: its state, for outlooks and observers, and the
    /// learned rate.
    seen: Mutex<ByKey<Seen>>,
    /// The local share, used while Redis is away under [`Unavailable::LocalShare`].
    local: MemoryStore,
    script_sha: String,
}

/// At most this many limits are learned from headers per key (dimensions × windows), as in
/// the in-process store.
const MAX_LEARNED: usize = 8;
/// At most this many keys hold learned limits, or a learned rate for observers.
const MAX_KEYS: usize = 10_000;

/// A value per quota key, the unkeyed quota's apart (asking never clones a key).
struct ByKey<T> {
    keyed: HashMap<RouteKey, T>,
    unkeyed: Option<T>,
}

impl<T> Default for ByKey<T> {
    fn default() -> Self {
        ByKey {
            keyed: HashMap::new(),
            unkeyed: None,
        }
    }
}

impl<T> ByKey<T> {
    fn get(&self, key: Option<&RouteKey>) -> Option<&T> {
        match key {
            Some(key) => self.keyed.get(key),
            None => self.unkeyed.as_ref(),
        }
    }

    fn get_mut(&mut self, key: Option<&RouteKey>) -> Option<&mut T> {
        match key {
            Some(key) => self.keyed.get_mut(key),
            None => self.unkeyed.as_mut(),
        }
    }

    /// Whether a new key would be one more than [`MAX_KEYS`].
    fn is_full_for(&self, key: Option<&RouteKey>) -> bool {
        key.is_some_and(|k| self.keyed.len() >= MAX_KEYS && !self.keyed.contains_key(k))
    }

    fn insert(&mut self, key: Option<&RouteKey>, value: T) {
        match key {
            Some(key) => {
                self.keyed.insert(key.clone(), value);
            }
            None => self.unkeyed = Some(value),
        }
    }

    fn remove(&mut self, key: Option<&RouteKey>) {
        match key {
            Some(key) => {
                self.keyed.remove(key);
            }
            None => self.unkeyed = None,
        }
    }
}

/// Whether `a` and `b` count the same dimension over the same period (one field in Redis).
fn same_period(a: &Limit, b: &Limit) -> bool {
    a.dimension() == b.dimension() && a.quota().period() == b.quota().period()
}

struct Plans {
    default: Arc<Plan>,
    overrides: HashMap<RouteKey, Arc<Plan>>,
    /// Keys under an adaptive limit holding limits learned from the provider's headers, each
    /// with the plan of its configured and learned limits.
    learned: ByKey<Learned>,
}

/// Limits a provider reported where none is configured, and the plan they make with the
/// configured ones.
struct Learned {
    limits: Vec<Limit>,
    plan: Arc<Plan>,
}

impl Plans {
    fn get(&self, key: Option<&RouteKey>) -> Arc<Plan> {
        match self.learned.get(key) {
            Some(learned) => Arc::clone(&learned.plan),
            None => Arc::clone(self.configured(key)),
        }
    }

    /// The plan of `key`'s configured limits.
    fn configured(&self, key: Option<&RouteKey>) -> &Arc<Plan> {
        key.and_then(|k| self.overrides.get(k))
            .unwrap_or(&self.default)
    }

    /// Plans `key`'s learned limits again over its configured ones, dropping those a
    /// configured limit now describes (all of them when the key no longer learns).
    fn relearn(&mut self, key: Option<&RouteKey>) {
        let configured = self.configured(key).configured.clone();
        let Some(learned) = self.learned.get_mut(key) else {
            return;
        };
        learned
            .limits
            .retain(|l| !configured.as_slice().iter().any(|c| same_period(c, l)));
        let plan = match configured.adaptive_config() {
            Some(_) if !learned.limits.is_empty() => Plan::new(configured, &learned.limits).ok(),
            _ => None,
        };
        match plan {
            Some(plan) => learned.plan = Arc::new(plan),
            None => self.learned.remove(key),
        }
    }
}

/// What a key's last answer said: the key's state, and the learned rate it carried (with
/// the one last reported).
struct Seen {
    view: View,
    rate: Option<f64>,
    reported: f64,
}

impl ByKey<Seen> {
    fn set(&mut self, key: Option<&RouteKey>, answer: Answer) {
        if let Some(seen) = self.get_mut(key) {
            seen.view = answer.view;
            seen.rate = answer.rate;
            return;
        }
        if self.is_full_for(key) {
            self.keyed.clear();
        }
        let seen = Seen {
            view: answer.view,
            rate: answer.rate,
            reported: 0.0,
        };
        self.insert(key, seen);
    }
}

/// Counters for observers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether the quota is shared now.
    pub mode: Option<Mode>,
    /// Calls to Redis that failed or timed out.
    pub failures: u64,
    /// Changes of mode since the store started.
    pub mode_changes: u64,
}

impl RedisStore {
    /// A store holding every key to `limits` in the Redis at `config.url`, connecting in the
    /// background: for code that cannot wait, such as
    /// [`StackBuilder::build`](https://docs.rs/tollgate/latest/tollgate/stack/struct.StackBuilder.html#method.build).
    ///
    /// Admissions made before the first connection attempt ends wait for it — at most
    /// [`RedisConfig::timeout`] — and then go to Redis, or apply the
    /// [`unavailable`](RedisConfig::unavailable) policy when it did not answer. Must be called
    /// within a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the configuration cannot be used, or there is no tokio runtime to connect on
    /// ([`RedisConfigError::NoRuntime`]). An unreachable Redis is not an error.
    pub fn new(config: RedisConfig, limits: Limits) -> Result<Self, RedisConfigError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisConfigError::NoRuntime)?;
        let store = Self::unconnected(config, limits)?;
        let link = Arc::clone(&store.inner.link);
        runtime.spawn(async move { link.start().await });
        Ok(store)
    }

    /// A store holding every key to `limits` in the Redis at `config.url`, once connected.
    ///
    /// Waits at most [`RedisConfig::timeout`] for the first connection; when Redis does not
    /// answer by then the store starts [`Mode::Unavailable`] and keeps trying in the
    /// background. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the configuration cannot be used (see [`RedisConfigError`]). An unreachable Redis
    /// is not an error.
    pub async fn connect(config: RedisConfig, limits: Limits) -> Result<Self, RedisConfigError> {
        let store = Self::unconnected(config, limits)?;
        store.inner.link.start().await;
        Ok(store)
    }

    /// The store, checked, before its first connection attempt.
    fn unconnected(config: RedisConfig, limits: Limits) -> Result<Self, RedisConfigError> {
        if config.replicas == 0 {
            return Err(RedisConfigError::NoReplicas);
        }
        if config.timeout.is_zero() {
            return Err(RedisConfigError::ZeroDuration("timeout"));
        }
        if config.reconnect_every.is_zero() {
            return Err(RedisConfigError::ZeroDuration("reconnect_every"));
        }
        let bad = |c: char| c == '{' || c == '}' || c.is_whitespace();
        if config.prefix.is_empty() || config.prefix.contains(bad) {
            return Err(RedisConfigError::Prefix);
        }
        let plan = Plan::new(limits.clone(), &[])?;
        let client = Client::open(config.url.as_str()).map_err(|_| RedisConfigError::Url)?;
        let link = Arc::new(Link::new(client, config.timeout, config.reconnect_every));
        let script_sha = redis::Script::new(SCRIPT).get_hash().to_owned();
        Ok(RedisStore {
            inner: Arc::new(Inner {
                link,
                prefix: config.prefix,
                unavailable: config.unavailable,
                replicas: config.replicas,
                plans: RwLock::new(Plans {
                    default: Arc::new(plan),
                    overrides: HashMap::new(),
                    learned: ByKey::default(),
                }),
                seen: Mutex::new(ByKey::default()),
                local: MemoryStore::new(share(&limits, config.replicas)),
                script_sha,
            }),
        })
    }

    /// Calls `hook` on every change of [`Mode`] (from the task that noticed it: keep it short).
    pub fn on_mode_change(&self, hook: impl Fn(Mode) + Send + Sync + 'static) {
        self.inner.link.set_hook(Arc::new(hook));
    }

    /// Whether the quota is shared now.
    pub fn mode(&self) -> Mode {
        self.inner.link.mode()
    }

    /// The mode, and how often Redis failed.
    pub fn stats(&self) -> RedisStats {
        let link = &self.inner.link;
        RedisStats {
            mode: Some(link.mode()),
            failures: link.failures.load(Ordering::Relaxed),
            mode_changes: link.mode_changes.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn redis_key(&self, key: Option<&RouteKey>) -> String {
        match key {
            Some(key) => format!("{}:k:{{{}}}", self.prefix, key.as_str()),
            None => format!("{}:u", self.prefix),
        }
    }

    /// `EVALSHA` of the script for `operation` on `key`, with the plan's limits and `extra`.
    fn command(
        &self,
        operation: &str,
        key: Option<&RouteKey>,
        plan: &Plan,
        extra: impl IntoIterator<Item = u64>,
    ) -> redis::Cmd {
        let mut command = redis::cmd("EVALSHA");
        command
            .arg(&self.script_sha)
            .arg(1)
            .arg(self.redis_key(key))
            .arg(operation)
            .arg(plan.limits.len());
        for arg in &plan.args {
            command.arg(arg);
        }
        for value in extra {
            command.arg(value);
        }
        command
    }

    /// Under an adaptive limit, a limit the provider reported where none is configured
    /// becomes a learned limit of `key` (replacing an earlier reading of the same period).
    /// Every replica learns it from its own responses; the quota it describes is shared.
    fn learn(&self, key: Option<&RouteKey>, dimension: Dimension, window: Window, amount: u64) {
        let (Some(period), Some(amount)) = (window.duration(), NonZeroU64::new(amount)) else {
            return;
        };
        let Ok(quota) = Quota::new(amount, period) else {
            return;
        };
        let reported = Limit::new(dimension, quota);
        let learns = |plans: &Plans| {
            let configured = &plans.configured(key).configured;
            let known = plans
                .learned
                .get(key)
                .is_some_and(|l| l.limits.contains(&reported));
            configured.adaptive_config().is_some()
                && configured.matching(dimension, window).is_none()
                && !known
        };
        // Every response reports its limits: most readings are known already.
        if !learns(&self.plans.read()) {
            return;
        }
        let mut plans = self.plans.write();
        if !learns(&plans) {
            return;
        }
        if plans.learned.is_full_for(key) {
            return;
        }
        let mut learned = plans
            .learned
            .get(key)
            .map(|l| l.limits.clone())
            .unwrap_or_default();
        match learned.iter().position(|l| same_period(l, &reported)) {
            Some(i) => learned[i] = reported,
            None if learned.len() < MAX_LEARNED => learned.push(reported),
            None => return,
        }
        let configured = plans.configured(key).configured.clone();
        let Ok(plan) = Plan::new(configured, &learned) else {
            return;
        };
        let learned = Learned {
            limits: learned,
            plan: Arc::new(plan),
        };
        plans.learned.insert(key, learned);
    }

    /// The answer while Redis is away.
    fn unavailable_answer(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Result<QuotaDecision, BoxError> {
        match self.unavailable {
            Unavailable::LocalShare => {
                let ready = self.local.admit(key, cost, ahead, now);
                ready.into_inner()
            }
            Unavailable::Refuse => Err(RedisUnavailable::new(self.link.reconnect_every()).into()),
            Unavailable::Admit => Ok(QuotaDecision::Admitted),
        }
    }
}

/// The answer to [`RedisStore::admit`].
pub type AdmitFuture = Pin<Box<dyn Future<Output = Result<QuotaDecision, BoxError>> + Send>>;

impl Store for RedisStore {
    type Future = AdmitFuture;

    fn admit(
        &self,
        key: Option<&RouteKey>,
        cost: &Cost,
        ahead: Option<&Cost>,
        now: Duration,
    ) -> Self::Future {
        let plan = self.inner.plans.read().get(key);
        if let Some(too_large) = plan.too_large(cost) {
            return Box::pin(std::future::ready(Ok(too_large)));
        }
        if plan.is_empty() {
            return Box::pin(std::future::ready(Ok(QuotaDecision::Admitted)));
        }
        let inner = &self.inner;
        // Before the first connection attempt ends, the answer waits for it.
        let connection = inner.link.connection();
        if connection.is_none() && !inner.link.is_starting() {
            let answer = inner.unavailable_answer(key, cost, ahead, now);
            return Box::pin(std::future::ready(answer));
        }
        let command = match ahead {
            None => inner.command("admit", key, &plan, plan.costs(cost)),
            Some(ahead) => {
                let requests = std::iter::once(ahead.get(Dimension::Requests));
                let extra = plan.costs(cost).chain(plan.costs(ahead)).chain(requests);
                inner.command("queued", key, &plan, extra)
            }
        };
        let inner = Arc::clone(inner);
        let (key, cost, ahead) = (key.cloned(), *cost, ahead.copied());
        Box::pin(async move {
            let connection = match connection {
                Some(connection) => Some(connection),
                None => {
                    inner.link.started().await;
                    inner.link.connection()
                }
            };
            let Some(connection) = connection else {
                return inner.unavailable_answer(key.as_ref(), &cost, ahead.as_ref(), now);
            };
            let answer = inner.link.call(connection, &command, SCRIPT).await;
            if let Outcome::Answered(value) = &answer
                && let Some(answer) = Answer::read(value, &plan, now)
            {
                let decision = answer.decision;
                inner.seen.lock().set(key.as_ref(), answer);
                return Ok(decision);
            }
            inner.unavailable_answer(key.as_ref(), &cost, ahead.as_ref(), now)
        })
    }

    fn feedback(&self, key: Option<&RouteKey>, feedback: &Feedback, now: Duration) {
        let inner = &self.inner;
        if inner.unavailable == Unavailable::LocalShare {
            // The local share hears everything too, so a pause holds across a change of mode.
            inner.local.feedback(key, feedback, now);
        }
        let plan = inner.plans.read().get(key);
        if plan.is_empty() {
            return;
        }
        let Some(connection) = inner.link.connection() else {
            return;
        };
        let command = match feedback {
            Feedback::Refund { cost, .. } => inner.command("refund", key, &plan, plan.costs(cost)),
            Feedback::Charge(cost) => inner.command("charge", key, &plan, plan.costs(cost)),
            Feedback::Remaining {
                dimension,
                window,
                remaining,
            } => {
                let Some(at) = plan.position(*dimension, *window) else {
                    return;
                };
                inner.command("remaining", key, &plan, [at as u64, *remaining])
            }
            Feedback::PauseUntil(until) => {
                let delay = until.saturating_sub(now);
                if delay.is_zero() {
                    return;
                }
                let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
                let extra = std::iter::once(micros).chain(plan.keep_after_pause());
                inner.command("pause", key, &plan, extra)
            }
            Feedback::Throttled { taken_at } if plan.is_adaptive() => {
                let ago = now.saturating_sub(*taken_at);
                let micros = u64::try_from(ago.as_micros()).unwrap_or(u64::MAX);
                inner.command("throttled", key, &plan, [micros])
            }
            Feedback::Limit {
                dimension,
                window,
                limit,
            } => {
                inner.learn(key, *dimension, *window, *limit);
                return;
            }
            _ => return,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(inner);
        runtime.spawn(async move {
            inner.link.call(connection, &command, SCRIPT).await;
        });
    }

    fn set_limits(&self, key: Option<&RouteKey>, limits: Limits) {
        let plan = match Plan::new(limits.clone(), &[]) {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(target: "tollgate::redis", %error, "limits refused; the key keeps its limits");
                return;
            }
        };
        let local = share(&limits, self.inner.replicas);
        {
            let mut plans = self.inner.plans.write();
            match key {
                Some(key) => {
                    plans.overrides.insert(key.clone(), Arc::new(plan));
                    plans.relearn(Some(key));
                }
                None => {
                    plans.default = Arc::new(plan);
                    plans.relearn(None);
                    let keys: Vec<RouteKey> = plans
                        .learned
                        .keyed
                        .keys()
                        .filter(|k| !plans.overrides.contains_key(*k))
                        .cloned()
                        .collect();
                    for key in &keys {
                        plans.relearn(Some(key));
                    }
                }
            }
        }
        self.inner.local.set_limits(key, local);
    }

    fn limits(&self, key: Option<&RouteKey>) -> Limits {
        self.inner.plans.read().configured(key).configured.clone()
    }

    /// The keys the local share holds state for: the keys live in Redis, not counted here.
    fn keys(&self) -> usize {
        self.inner.local.keys()
    }

    /// From this replica's last answer for `key`, refilled since (no round trip): other
    /// replicas may have spent meanwhile, so it can be optimistic. While Redis is away, the
    /// local share's (under [`Unavailable::LocalShare`]; `None` under the other policies).
    fn outlook(&self, key: Option<&RouteKey>, cost: &Cost, now: Duration) -> Option<Outlook> {
        let inner = &self.inner;
        if inner.link.mode() == Mode::Unavailable {
            return match inner.unavailable {
                Unavailable::LocalShare => inner.local.outlook(key, cost, now),
                _ => None,
            };
        }
        let plan = inner.plans.read().get(key);
        if let Some(too_large) = plan.too_large(cost) {
            return Some(Outlook {
                decision: too_large,
                headroom: f64::NEG_INFINITY,
            });
        }
        if plan.is_empty() {
            return None;
        }
        let seen = inner.seen.lock();
        let outlook = match seen.get(key).filter(|seen| seen.view.is_under(&plan)) {
            Some(seen) => seen.view.outlook(cost, now),
            None => View::unseen(&plan, now).outlook(cost, now),
        };
        Some(outlook)
    }

    /// From this replica's last answer for `key`, refilled since (see
    /// [`outlook`](Store::outlook)).
    fn utilization(&self, key: Option<&RouteKey>, now: Duration) -> Vec<(Dimension, f64)> {
        let plan = self.inner.plans.read().get(key);
        let seen = self.inner.seen.lock();
        match seen.get(key).filter(|seen| seen.view.is_under(&plan)) {
            Some(seen) => seen.view.utilization(now),
            None => Vec::new(),
        }
    }

    /// Shared while Redis answers.
    fn sharing(&self) -> Option<bool> {
        Some(self.mode() == Mode::Shared)
    }

    /// The rate the fleet learned, as of this replica's last admission of `key`.
    fn learned_rate(&self, key: Option<&RouteKey>, _now: Duration) -> Option<f64> {
        self.inner.seen.lock().get(key).and_then(|seen| seen.rate)
    }

    fn report_learned_rate(&self, key: Option<&RouteKey>, _now: Duration) -> Option<f64> {
        let mut seen = self.inner.seen.lock();
        let seen = seen.get_mut(key)?;
        let current = seen.rate?;
        let moved = (current - seen.reported).abs() > seen.reported * 0.01;
        moved.then(|| {
            seen.reported = current;
            current
        })
    }
}

impl Clone for RedisStore {
    fn clone(&self) -> Self {
        RedisStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("mode", &self.mode())
            .field("unavailable", &self.inner.unavailable)
            .field("replicas", &self.inner.replicas)
            .finish_non_exhaustive()
    }
}
