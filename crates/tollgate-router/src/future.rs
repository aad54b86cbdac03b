//! [`ResponseFuture`]: a request's way to a deployment, and on to another when its key is
//! rejected.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tollgate_core::body::BufferedBody;
use tollgate_core::observe::{Event, Observe};
use tollgate_core::{BoxError, Cost, Deadline, ErrorClass, Sooner, Verdict};
use tollgate_ratelimit::Estimator;
use tower_service::Service;

use crate::error::NoDeployment;
use crate::service::{Choice, DeploymentService, Shared, context_needed};

type Request = http::Request<BufferedBody>;
type Outcome<ResBody> = Result<http::Response<ResBody>, BoxError>;

pin_project! {
    /// The response future of [`Router`](crate::Router).
    ///
    /// # Cancellation
    ///
    /// Dropping it drops the call in flight (its deployment's quota and breaker see to their
    /// own), or the wait for a deployment; nothing else is sent.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, E, ResBody>
    where
        S: Service<Request, Response = http::Response<ResBody>>,
        S: Clone,
        S::Error: Into<BoxError>,
    {
        #[pin]
        state: State<
            DeploymentService<S>,
            <DeploymentService<S> as Service<Request>>::Future,
            E,
        >,
        // The caller's request, its cost attached; each deployment gets its own rewritten copy.
        request: Request,
        cost: Cost,
        context: u64,
        services: Arc<[DeploymentService<S>]>,
        shared: Arc<Shared<E>>,
        // The deployments tried, a bit each.
        tried: u64,
        give_up_at: Instant,
        // What the last deployment tried answered, when the request moved on from it.
        last: Option<Outcome<ResBody>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<D, F, E> {
        Choosing,
        Sleeping { #[pin] sleep: Sleep, _waiting: Waiting<E> },
        Readying { service: D, index: usize, request: Option<Request> },
        Calling { #[pin] future: F, index: usize, sent: Instant, _in_flight: InFlight<E> },
        Done,
    }
}

/// Counts a request waiting for a deployment until it is dropped.
struct Waiting<E> {
    shared: Arc<Shared<E>>,
}

impl<E> Waiting<E> {
    /// A place among the waiters, or how many wait when they are as many as allowed.
    fn new(shared: &Arc<Shared<E>>) -> Result<Self, usize> {
        let waiting = shared.sleeping.fetch_add(1, Ordering::AcqRel);
        if waiting >= shared.max_queue {
            shared.sleeping.fetch_sub(1, Ordering::AcqRel);
            return Err(waiting);
        }
        Ok(Waiting {
            shared: Arc::clone(shared),
        })
    }
}

impl<E> Drop for Waiting<E> {
    fn drop(&mut self) {
        self.shared.sleeping.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a request in flight at a deployment until it is dropped.
struct InFlight<E> {
    shared: Arc<Shared<E>>,
    index: usize,
}

impl<E> InFlight<E> {
    fn new(shared: &Arc<Shared<E>>, index: usize) -> Self {
        shared.slots[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        InFlight {
            shared: Arc::clone(shared),
            index,
        }
    }
}

impl<E> Drop for InFlight<E> {
    fn drop(&mut self) {
        self.shared.slots[self.index]
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, E, ResBody> ResponseFuture<S, E, ResBody>
where
    S: Service<Request, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    E: Estimator<BufferedBody>,
{
    pub(crate) fn new(
        mut request: Request,
        services: Arc<[DeploymentService<S>]>,
        shared: Arc<Shared<E>>,
    ) -> Self {
        let cost = match Cost::of(&request) {
            Some(cost) => *cost,
            None => {
                let cost = shared.estimator.estimate(&request);
                request.extensions_mut().insert(cost);
                cost
            }
        };
        let now = Instant::now();
        let max_wait = shared.max_wait.min(Duration::from_secs(86_400 * 365));
        let give_up_at = Deadline::sooner(Deadline::of(&request), Some(max_wait), || now)
            .map_or(now, Sooner::instant);
        let context = context_needed(&cost, request.body().bytes());
        ResponseFuture {
            state: State::Choosing,
            request,
            cost,
            context,
            services,
            shared,
            tried: 0,
            give_up_at,
            last: None,
        }
    }
}

impl<S, E, ResBody> Future for ResponseFuture<S, E, ResBody>
where
    S: Service<Request, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Output = Outcome<ResBody>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Choosing => {
                    let allowed = this.give_up_at.saturating_duration_since(Instant::now());
                    match this
                        .shared
                        .choose(this.cost, *this.context, *this.tried, allowed)
                    {
                        Choice::Send(index) => {
                            let slot = &this.shared.slots[index];
                            let mut request = this.request.clone();
                            let rewritten = slot
                                .rewrites
                                .iter()
                                .try_for_each(|rewrite| rewrite.rewrite(&mut request));
                            if let Err(error) = rewritten {
                                // This deployment cannot take the request; another may.
                                *this.tried |= 1 << index;
                                *this.last = Some(Err(error));
                                continue;
                            }
                            if let Some(observe) = Observe::of(&request) {
                                observe.event(&Event::Routed {
                                    deployment: &slot.name,
                                });
                            }
                            let service = this.services[index].clone();
                            this.state.set(State::Readying {
                                service,
                                index,
                                request: Some(request),
                            });
                        }
                        Choice::Wait(wait) => {
                            let now = Instant::now();
                            if now + wait > *this.give_up_at {
                                // The wait says when to try again, which a deployment's
                                // earlier rejection does not.
                                this.state.set(State::Done);
                                return Poll::Ready(Err(NoDeployment::new(Some(wait)).into()));
                            }
                            let waiting = match Waiting::new(this.shared) {
                                Ok(waiting) => waiting,
                                Err(waiting) => {
                                    this.state.set(State::Done);
                                    let waiting = u32::try_from(waiting).unwrap_or(u32::MAX);
                                    let refused = NoDeployment::queue_full(wait, waiting);
                                    return Poll::Ready(Err(refused.into()));
                                }
                            };
                            this.state.set(State::Sleeping {
                                sleep: tokio::time::sleep(wait),
                                _waiting: waiting,
                            });
                        }
                        Choice::Refuse(error) => {
                            this.state.set(State::Done);
                            // A refusal with a wait says when to try again: it comes back
                            // rather than what a deployment rejected earlier answered. With
                            // none left to try, that answer comes back.
                            let waits = error
                                .downcast_ref::<NoDeployment>()
                                .is_some_and(|refused| refused.retry_after().is_some());
                            return Poll::Ready(match this.last.take() {
                                Some(last) if !waits => last,
                                _ => Err(error),
                            });
                        }
                    }
                }
                StateProj::Sleeping { sleep, .. } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Choosing);
                }
                StateProj::Readying {
                    service,
                    index,
                    request,
                } => {
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    }
                    let index = *index;
                    let request = request.take().expect("readied once");
                    let future = service.call(request);
                    let in_flight = InFlight::new(this.shared, index);
                    this.state.set(State::Calling {
                        future,
                        index,
                        sent: Instant::now(),
                        _in_flight: in_flight,
                    });
                }
                StateProj::Calling {
                    future,
                    index,
                    sent,
                    ..
                } => {
                    let outcome = ready!(future.poll(cx));
                    let (index, latency) = (*index, sent.elapsed());
                    // No longer in flight there.
                    this.state.set(State::Choosing);
                    let shared = &**this.shared;
                    let class = match &outcome {
                        Ok(response) => Verdict::of_response(response).and_then(Verdict::class),
                        Err(error) => Verdict::of_error(error.as_ref()).and_then(Verdict::class),
                    };
                    // A refusal met on the way (an open breaker, a spent quota): nothing was
                    // sent, and another may take it.
                    let mut move_on = matches!(&outcome, Err(error)
                        if Verdict::of_error(error.as_ref()).is_some_and(Verdict::is_local_refusal));
                    // Whatever reached the deployment is measured, failures too: one whose
                    // calls all fail must not stay "not yet measured", the fastest.
                    if !move_on {
                        shared.measured(index, latency);
                    }
                    if let Some(
                        class @ (ErrorClass::Unauthorized
                        | ErrorClass::PermissionDenied
                        | ErrorClass::QuotaExhausted),
                    ) = class
                    {
                        let ejected = shared.eject(index);
                        if let (Some(duration), Some(observe)) =
                            (ejected, Observe::of(this.request))
                        {
                            observe.event(&Event::DeploymentEjected {
                                deployment: &shared.slots[index].name,
                                class,
                                duration,
                            });
                        }
                        move_on = true;
                    }
                    if move_on {
                        *this.tried |= 1 << index;
                        *this.last = Some(outcome);
                        continue;
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(outcome);
                }
                StateProj::Done => panic!("`ResponseFuture` polled after completion"),
            }
        }
    }
}

impl<S, E, ResBody> fmt::Debug for ResponseFuture<S, E, ResBody>
where
    S: Service<Request, Response = http::Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("tried", &self.tried.count_ones())
            .finish_non_exhaustive()
    }
}
