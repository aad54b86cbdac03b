//! [`Router`]: the service, the state its clones share, and the routing decision.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tollgate_circuit_breaker::{BreakerState, CircuitBreaker, CircuitBreakerHandle};
use tollgate_core::body::BufferedBody;
use tollgate_core::clock::{Origin, nanos};
use tollgate_core::rewrite::Rewrite;
use tollgate_core::{BoxError, Cost, Dimension};
use tollgate_ratelimit::key::Unkeyed;
use tollgate_ratelimit::{AnyStore, PerRequest, QuotaDecision, RateLimit, RateLimitHandle};
use tower_service::Service;

use crate::deployment::Deployment;
use crate::error::{ContextWindowTooSmall, NoDeployment};
use crate::future::ResponseFuture;
use crate::strategy::Strategy;

/// A deployment's service: its breaker over its quota over the shared inner service.
pub(crate) type DeploymentService<S> = CircuitBreaker<RateLimit<S, Unkeyed, PerRequest, AnyStore>>;

/// Routes each request to one of its deployments. Built by [`RouterLayer`](crate::RouterLayer).
///
/// See the [crate docs](crate) for examples.
pub struct Router<S, E> {
    services: Arc<[DeploymentService<S>]>,
    shared: Arc<Shared<E>>,
}

/// What the router knows of one deployment.
pub(crate) struct Slot {
    pub(crate) name: Arc<str>,
    window: Option<u64>,
    pub(crate) rewrites: Arc<[Arc<dyn Rewrite>]>,
    limiter: RateLimitHandle<AnyStore>,
    breaker: CircuitBreakerHandle,
    /// Nanoseconds since the origin until which it is out of rotation.
    ejected_until: AtomicU64,
    /// Recent latency, nanoseconds (0: not measured yet).
    latency: AtomicU64,
    pub(crate) in_flight: AtomicU32,
    weight: i64,
}

impl Slot {
    pub(crate) fn new(
        deployment: &Deployment,
        window: Option<u64>,
        limiter: RateLimitHandle<AnyStore>,
        breaker: CircuitBreakerHandle,
    ) -> Self {
        Slot {
            name: Arc::clone(&deployment.name),
            window,
            rewrites: deployment.rewrites.iter().cloned().collect(),
            limiter,
            breaker,
            ejected_until: AtomicU64::new(0),
            latency: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            weight: i64::from(deployment.weight.get()),
        }
    }

    /// How long it stays unable to take anything: out of rotation, or its breaker open.
    fn blocked_for(&self, now: u64) -> Duration {
        let ejected = Duration::from_nanos(
            self.ejected_until
                .load(Ordering::Acquire)
                .saturating_sub(now),
        );
        match self.breaker.state(None) {
            BreakerState::Open => ejected.max(self.breaker.retry_after(None).unwrap_or_default()),
            _ => ejected,
        }
    }

    /// What its quota says of `cost` at `at`: `Ok(wait)` (zero: now), or `Err` when it can
    /// never hold the cost, and the headroom left.
    fn quota(&self, cost: &Cost, at: Instant) -> (Result<Duration, ()>, f64) {
        match self.limiter.outlook_at(None, cost, at) {
            None => (Ok(Duration::ZERO), 1.0),
            Some(outlook) => match outlook.decision {
                QuotaDecision::Admitted => (Ok(Duration::ZERO), outlook.headroom),
                QuotaDecision::Wait(wait) => (Ok(wait), outlook.headroom),
                _ => (Err(()), f64::NEG_INFINITY),
            },
        }
    }
}

/// The state every clone of a router shares.
pub(crate) struct Shared<E> {
    pub(crate) slots: Box<[Slot]>,
    strategy: Strategy,
    pub(crate) estimator: E,
    eject_for: Duration,
    pub(crate) max_wait: Duration,
    /// The most requests waiting for a deployment at once, and how many wait now.
    pub(crate) max_queue: usize,
    pub(crate) sleeping: AtomicUsize,
    /// Round-robin position.
    next: AtomicUsize,
    /// Smooth weighted round-robin: each deployment's current weight.
    weighted: Mutex<Vec<i64>>,
    /// State of the random source for the power of two choices.
    rng: AtomicU64,
    origin: Origin,
}

/// Where a request goes, as the router decides it.
#[derive(Debug)]
pub(crate) enum Choice {
    /// To this deployment, now (its quota may still queue it).
    Send(usize),
    /// Nowhere now: ask again after this long.
    Wait(Duration),
    /// Nowhere, ever or within the wait allowed.
    Refuse(BoxError),
}

impl<E> Shared<E> {
    pub(crate) fn new(
        slots: Vec<Slot>,
        strategy: Strategy,
        estimator: E,
        eject_for: Duration,
        max_wait: Duration,
        max_queue: u32,
    ) -> Self {
        let n = slots.len();
        Shared {
            slots: slots.into_boxed_slice(),
            strategy,
            estimator,
            eject_for,
            max_wait,
            max_queue: max_queue as usize,
            sleeping: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            weighted: Mutex::new(vec![0; n]),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
            origin: Origin::new(),
        }
    }

    /// Nanoseconds since the router was built, on tokio's clock.
    pub(crate) fn now(&self) -> u64 {
        self.origin.elapsed_nanos()
    }

    /// Where a request of `cost` (needing `context` tokens of context window) goes, passing
    /// over the deployments in `tried` (a bit per deployment), if it may wait `allowed`.
    pub(crate) fn choose(
        &self,
        cost: &Cost,
        context: u64,
        tried: u64,
        allowed: Duration,
    ) -> Choice {
        let at = Instant::now();
        let now = self.origin.offset_nanos(at);
        let mut fitting = 0_u64;
        let mut largest = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.window {
                Some(window) if context > window => largest = largest.max(window),
                _ => fitting |= 1 << i,
            }
        }
        if fitting == 0 {
            return Choice::Refuse(ContextWindowTooSmall::new(context, largest).into());
        }
        let candidates = fitting & !tried;
        if candidates == 0 {
            return Choice::Refuse(NoDeployment::new(None).into());
        }
        let ready = |i: usize| {
            let slot = &self.slots[i];
            slot.blocked_for(now).is_zero() && slot.quota(cost, at).0 == Ok(Duration::ZERO)
        };
        let ready_set = || {
            bits(candidates)
                .filter(|&i| ready(i))
                .fold(0, |set, i| set | 1 << i)
        };
        let picked = match self.strategy {
            Strategy::RoundRobin => self.round_robin(candidates, ready),
            Strategy::Weighted => self.weighted(ready_set()),
            Strategy::LeastLoaded => self.least_loaded(candidates, cost, now, at),
            Strategy::LatencyAware => self.latency_aware(ready_set()),
        };
        match picked {
            Some(i) => Choice::Send(i),
            None => self.soonest(candidates, cost, now, at, allowed),
        }
    }

    fn round_robin(&self, candidates: u64, ready: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| candidates & (1 << i) != 0 && ready(i))
    }

    fn weighted(&self, ready: u64) -> Option<usize> {
        let mut current = self.weighted.lock();
        let total: i64 = bits(ready).map(|i| self.slots[i].weight).sum();
        let mut best: Option<usize> = None;
        for i in bits(ready) {
            current[i] += self.slots[i].weight;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            current[b] -= total;
        }
        best
    }

    fn least_loaded(&self, candidates: u64, cost: &Cost, now: u64, at: Instant) -> Option<usize> {
        let mut best: Option<(usize, f64, u32)> = None;
        // Ties go round: the scan starts one further each time.
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let rotated = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| candidates & (1 << i) != 0);
        for i in rotated {
            let slot = &self.slots[i];
            if !slot.blocked_for(now).is_zero() {
                continue;
            }
            let (wait, headroom) = slot.quota(cost, at);
            if wait != Ok(Duration::ZERO) {
                continue;
            }
            let in_flight = slot.in_flight.load(Ordering::Relaxed);
            let better =
                best.is_none_or(|(_, h, f)| headroom > h || (headroom == h && in_flight < f));
            if better {
                best = Some((i, headroom, in_flight));
            }
        }
        best.map(|(i, _, _)| i)
    }

    fn latency_aware(&self, ready: u64) -> Option<usize> {
        let nth = |n: usize| bits(ready).nth(n);
        match ready.count_ones() as usize {
            0 => None,
            1 => nth(0),
            n => {
                let draw = self.random();
                let a = (draw % n as u64) as usize;
                let b = (a + 1 + ((draw >> 32) % (n as u64 - 1)) as usize) % n;
                let score = |i: usize| {
                    let slot = &self.slots[i];
                    let latency = slot.latency.load(Ordering::Relaxed);
                    let in_flight = slot.in_flight.load(Ordering::Relaxed);
                    match latency {
                        // Not measured yet: tried first, but only one request at a time, so
                        // a burst does not pile onto it before its first answer.
                        0 if in_flight > 0 => f64::INFINITY,
                        latency => latency as f64 * f64::from(in_flight + 1),
                    }
                };
                let (a, b) = (nth(a)?, nth(b)?);
                Some(if score(b) < score(a) { b } else { a })
            }
        }
    }

    /// No candidate can take the request now: the one that can soonest. One held up only by
    /// its quota is sent at once, to wait in that quota's fair queue; one out of rotation or
    /// open is waited for here.
    fn soonest(
        &self,
        candidates: u64,
        cost: &Cost,
        now: u64,
        at: Instant,
        allowed: Duration,
    ) -> Choice {
        let mut best: Option<(usize, Duration, bool)> = None;
        for i in bits(candidates) {
            let slot = &self.slots[i];
            let blocked = slot.blocked_for(now);
            let Ok(queued) = slot.quota(cost, at).0 else {
                continue;
            };
            let wait = blocked.max(queued);
            if best.is_none_or(|(_, w, _)| wait < w) {
                best = Some((i, wait, blocked.is_zero()));
            }
        }
        match best {
            None => Choice::Refuse(NoDeployment::new(None).into()),
            Some((_, wait, _)) if wait > allowed => {
                Choice::Refuse(NoDeployment::new(Some(wait)).into())
            }
            Some((i, _, true)) => Choice::Send(i),
            Some((_, wait, false)) => Choice::Wait(wait),
        }
    }

    /// Takes deployment `i` out of rotation for the configured time. Returns that time when
    /// this took it out, `None` when it was out already (another request in flight there was
    /// rejected first), so that one ejection is reported once.
    pub(crate) fn eject(&self, i: usize) -> Option<Duration> {
        let now = self.now();
        let until = now.saturating_add(nanos(self.eject_for));
        let before = self.slots[i]
            .ejected_until
            .fetch_max(until, Ordering::AcqRel);
        (before <= now).then_some(self.eject_for)
    }

    /// Folds a latency sample of deployment `i` into its moving average (weight 1/5).
    pub(crate) fn measured(&self, i: usize, latency: Duration) {
        let sample = nanos(latency);
        let slot = &self.slots[i];
        let _ = slot
            .latency
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample.max(1)
                } else {
                    (old / 5 * 4).saturating_add(sample / 5).max(1)
                })
            });
    }

    /// A random 64-bit number (splitmix64 over a shared counter).
    fn random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The indices of the set bits of `set`, lowest first.
fn bits(mut set: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = set.trailing_zeros() as usize;
        (set != 0).then(|| {
            set &= set - 1;
            i
        })
    })
}

/// The context window a request needs: its input and the output it asks for, once.
///
/// The quota's estimate does not say this directly: `OpenAiChat` charges the output of each of
/// `n` completions (the window holds one), and `AnthropicMessages` charges no output unless
/// asked to. So the output asked for is read from the body (`max_completion_tokens`, else
/// `max_tokens`, else `max_output_tokens`, and `n`), and the context needed is the larger of
/// the token estimate less the output of the `n - 1` other completions, and the input tokens
/// plus the output asked for (or charged, when more).
pub(crate) fn context_needed(cost: &Cost, body: &[u8]) -> u64 {
    let asked = Asked::scan(body);
    let output = asked.output();
    let n = asked.n.unwrap_or(1).max(1);
    let mut tokens = cost.get(Dimension::Tokens);
    let others = output.saturating_mul(n - 1);
    if others > 0 && tokens >= output.saturating_mul(n) {
        tokens -= others;
    }
    tokens.max(
        cost.get(Dimension::InputTokens)
            .saturating_add(cost.get(Dimension::OutputTokens).max(output)),
    )
}

/// The output a JSON body asks for, read from its top-level fields without parsing it whole.
#[derive(Debug, Default)]
struct Asked {
    max_completion_tokens: Option<u64>,
    max_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    n: Option<u64>,
}

impl Asked {
    fn output(&self) -> u64 {
        self.max_completion_tokens
            .or(self.max_tokens)
            .or(self.max_output_tokens)
            .unwrap_or(0)
    }

    fn scan(body: &[u8]) -> Asked {
        let mut asked = Asked::default();
        let skip_space = |mut i: usize| {
            while body.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            i
        };
        let (mut depth, mut i) = (0_usize, 0);
        while i < body.len() {
            match body[i] {
                b'"' => {
                    let start = i + 1;
                    i = start;
                    while i < body.len() && body[i] != b'"' {
                        i += if body[i] == b'\\' { 2 } else { 1 };
                    }
                    let name = &body[start..i.min(body.len())];
                    i += 1;
                    let colon = skip_space(i);
                    if depth == 1 && body.get(colon) == Some(&b':') {
                        let value = skip_space(colon + 1);
                        let digits = body[value.min(body.len())..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit());
                        let mut number = Some(0_u64);
                        let mut any = false;
                        for &digit in digits {
                            any = true;
                            number = number
                                .and_then(|n| n.checked_mul(10))
                                .and_then(|n| n.checked_add(u64::from(digit - b'0')));
                        }
                        let number = any.then(|| number.unwrap_or(u64::MAX));
                        let mut ignored = None;
                        let field = match name {
                            b"max_completion_tokens" => &mut asked.max_completion_tokens,
                            b"max_tokens" => &mut asked.max_tokens,
                            b"max_output_tokens" => &mut asked.max_output_tokens,
                            b"n" => &mut asked.n,
                            _ => &mut ignored,
                        };
                        if number.is_some() {
                            *field = number;
                        }
                        i = colon + 1;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
        asked
    }
}

impl<S, E> Router<S, E> {
    pub(crate) fn new(services: Vec<DeploymentService<S>>, shared: Shared<E>) -> Self {
        Router {
            services: services.into(),
            shared: Arc::new(shared),
        }
    }

    /// The names of the deployments, in order.
    pub fn deployments(&self) -> impl Iterator<Item = &str> {
        self.shared.slots.iter().map(|slot| &*slot.name)
    }

    /// Where a request of `cost` would go now, by name, as the router decides it: for
    /// diagnostics and benchmarks. Nothing is sent or spent, but the decision counts as a turn
    /// of the round-robin and weighted strategies.
    ///
    /// # Errors
    ///
    /// When no deployment can take it now: [`NoDeployment`] (with the wait) or
    /// [`ContextWindowTooSmall`].
    pub fn route(&self, cost: &Cost) -> Result<&str, BoxError> {
        match self
            .shared
            .choose(cost, context_needed(cost, &[]), 0, Duration::ZERO)
        {
            Choice::Send(i) => Ok(&self.shared.slots[i].name),
            Choice::Wait(wait) => Err(NoDeployment::new(Some(wait)).into()),
            Choice::Refuse(error) => Err(error),
        }
    }
}

impl<S, E> Clone for Router<S, E> {
    fn clone(&self) -> Self {
        Router {
            services: Arc::clone(&self.services),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, E, ResBody> Service<http::Request<BufferedBody>> for Router<S, E>
where
    S: Service<http::Request<BufferedBody>, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    E: tollgate_ratelimit::Estimator<BufferedBody>,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, E, ResBody>;

    /// Always ready: each deployment's service is readied in the response future, once the
    /// request has chosen it.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<BufferedBody>) -> Self::Future {
        ResponseFuture::new(
            request,
            Arc::clone(&self.services),
            Arc::clone(&self.shared),
        )
    }
}

impl<S, E> fmt::Debug for Router<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("deployments", &self.deployments().collect::<Vec<_>>())
            .field("strategy", &self.shared.strategy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_output_fields_only() {
        let body = br#"{"messages":[{"content":"\"max_tokens\": 9","max_tokens":7}],
            "n" : 3, "max_tokens":100, "tools":{"max_completion_tokens":5}}"#;
        let asked = Asked::scan(body);
        assert_eq!((asked.output(), asked.n), (100, Some(3)));
        let asked = Asked::scan(br#"{"max_completion_tokens":99999999999999999999999}"#);
        assert_eq!(asked.output(), u64::MAX);
        assert_eq!(Asked::scan(b"not json \"").output(), 0);
        // 110 of input, 300 of output charged four times: one completion needs 410.
        let cost = Cost::requests(1).with(Dimension::Tokens, 1_310);
        assert_eq!(context_needed(&cost, br#"{"max_tokens":300,"n":4}"#), 410);
        assert_eq!(context_needed(&cost, b""), 1_310);
    }

    /// The random source is splitmix64: from the state 1234567 it gives the reference
    /// implementation's first outputs (Vigna, `splitmix64.c`).
    #[test]
    fn random_source_is_splitmix64() {
        let shared = Shared::new(
            Vec::new(),
            Strategy::RoundRobin,
            (),
            Duration::ZERO,
            Duration::ZERO,
            0,
        );
        shared.rng.store(1_234_567, Ordering::Relaxed);
        let draws = [shared.random(), shared.random(), shared.random()];
        assert_eq!(
            draws,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }
}
