//! The gateway's accept loop: hyper's HTTP/1 server around an `axum::Router`, in place of
//! `axum::serve`, bounding what callers can hold — connections, time before a request, and the
//! time a shutdown takes.
//!
//! - **Connections**: at most [`ConnectionLimits::max_connections`] open at once. One more
//!   takes the place of the connection that has been free (no request in flight) the longest:
//!   that one is closed at once — a request that starts on it meanwhile is answered first —
//!   and the new one is served as soon as it is gone. With every connection busy, the new one
//!   is accepted and closed at once (the caller sees the connection close before any answer
//!   and can retry; OpenAI's SDKs do), so it holds no descriptor, and nothing waits unbounded
//!   in the accept queue. Connections that send nothing thus cannot lock callers out until
//!   the idle timeout: a flood of them evicts only free connections — its own, and idle
//!   keep-alive ones, whose clients reconnect — never a request in flight. (A new connection
//!   waiting for its place holds a descriptor: at most one per connection being closed.)
//! - **Time before a request**, watched per connection while it has no request in flight (none
//!   being answered): a connection that sends nothing for [`ConnectionLimits::idle_timeout`] —
//!   a new connection, or a keep-alive one after its last answer — is closed, and one that has
//!   sent the first byte of a request head must complete the head within
//!   [`ConnectionLimits::head_timeout`] of that byte, or is closed (a slowloris). Once the head
//!   is in, the request is the handler's: it bounds the body itself. (Bytes of a pipelined
//!   request that arrive while the previous one is answered count as silence, so its head has
//!   the idle timeout rather than the head timeout.)
//! - **Callers who stop reading**: a connection whose answer cannot be written — the caller
//!   reads nothing, and the socket's buffers are full — for [`ConnectionLimits::write_timeout`]
//!   is closed, dropping the answer (and the upstream stream behind it). A caller that reads
//!   slowly but reads never waits that long on one write.
//! - **Shutdown**: when `shutdown` completes, the listener is closed at once, every connection
//!   is told to finish (hyper's graceful shutdown: an idle one closes, a busy one closes after
//!   its answer), and [`ConnectionLimits::drain`] later — or as soon as `abort` completes (a
//!   second Ctrl-C), if sooner — whatever remains — a request to a hung upstream, an endless
//!   stream — is aborted, its connection closed. [`serve`] returns then, with the number
//!   aborted.
//!
//! Why not hyper's own `header_read_timeout`: hyper starts it whenever it waits for a request
//! head, between keep-alive requests too, so it cannot tell an idle keep-alive connection from a
//! slow head and would close both at one limit; and hyper-util's `auto` builder (HTTP/1 and
//! HTTP/2) reads the first bytes of a connection, to tell the two apart, without any timer. So
//! the gateway serves HTTP/1.1 alone (what OpenAI's SDKs speak to a plain-`http` base URL) and
//! times connections itself: the socket is wrapped to note when bytes arrive, the service to
//! count requests in flight (from the head until the answer's body is done or dropped).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// The most connections open at once: 1,000, under a common `ulimit -n` of 1,024 (raise both
/// together, leaving room for the upstream connections).
pub(crate) const MAX_CONNECTIONS: usize = 1_000;

/// How long a connection may send nothing while no request is in flight: 30 s.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request head may take from its first byte: 10 s.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write to a caller may stay blocked (the caller reads nothing) before its
/// connection is closed: 60 s.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a shutdown lets requests in flight finish before aborting them: 10 s.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

/// How long to pause accepting after `accept` fails (out of descriptors, most likely).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds [`serve`] keeps to; [`Default`] is the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// The most connections open at once ([`MAX_CONNECTIONS`]).
    pub(crate) max_connections: usize,
    /// How long a connection with no request in flight may send nothing ([`IDLE_TIMEOUT`]).
    pub(crate) idle_timeout: Duration,
    /// How long a request head may take from its first byte ([`HEAD_TIMEOUT`]).
    pub(crate) head_timeout: Duration,
    /// How long a write to the caller may stay blocked ([`WRITE_TIMEOUT`]).
    pub(crate) write_timeout: Duration,
    /// How long a shutdown waits for requests in flight before aborting them ([`DRAIN`]).
    pub(crate) drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: MAX_CONNECTIONS,
            idle_timeout: IDLE_TIMEOUT,
            head_timeout: HEAD_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            drain: DRAIN,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then drains for
/// at most `limits.drain` — less if `abort` completes first — and aborts what remains: returns
/// at most `limits.drain` after `shutdown` (plus the time to cancel the remaining tasks), with
/// the number of connections aborted. `abort` is polled only once the drain has begun.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    abort: impl Future<Output = ()>,
) -> usize {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    // What each open connection is doing, to find the idlest when at the cap.
    let mut open: Vec<Arc<Activity>> = Vec::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections, so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let slot = match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => Slot::Held(slot),
                    // At the cap: the connection idle the longest is closed to make room, and
                    // this one takes its place; with every connection busy, this one is closed
                    // at once (dropped), before anything is read.
                    Err(_) => {
                        open.retain(|activity| Arc::strong_count(activity) > 1);
                        if !evict_idlest(&open) {
                            continue;
                        }
                        Slot::Awaited(Arc::clone(&slots))
                    }
                };
                let activity = Arc::new(Activity::new());
                open.push(Arc::clone(&activity));
                connections.spawn(connection(
                    stream,
                    router.clone(),
                    limits,
                    stopping.clone(),
                    slot,
                    activity,
                ));
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let deadline = Instant::now() + limits.drain;
    let drained = async {
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, connections.join_next()).await {}
    };
    tokio::select! {
        () = drained => {}
        () = abort => {}
    }
    let aborted = connections.len();
    connections.shutdown().await;
    aborted
}

/// A connection's place under the cap.
#[derive(Debug)]
enum Slot {
    /// Taken when it was accepted.
    Held(OwnedSemaphorePermit),
    /// To take once the connection evicted for it has closed (at once, unless a request
    /// started on it meanwhile: then when that request's answer is done).
    Awaited(Arc<Semaphore>),
}

/// Marks the open connection that has been free (no request in flight) the longest to close;
/// whether there was one.
fn evict_idlest(open: &[Arc<Activity>]) -> bool {
    let idlest = open
        .iter()
        .filter_map(|activity| {
            let state = activity.state.lock();
            (state.in_flight == 0 && !state.evicted).then_some((state.free_since, activity))
        })
        // The first of the oldest: `min_by_key` keeps the first of equals.
        .min_by_key(|(free_since, _)| *free_since);
    idlest.is_some_and(|(_, activity)| activity.evict())
}

/// Why a connection's watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// Nothing sent for the idle timeout.
    Idle,
    /// A head not complete within the head timeout of its first byte.
    Head,
    /// A write blocked for the write timeout.
    Write,
    /// Closed to make room for a new connection at the cap, while free.
    Evicted,
}

/// Serves one connection until it ends, its watch expires, or it is aborted; `slot` is its
/// place under the connection cap, given back when it ends.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    slot: Slot,
    activity: Arc<Activity>,
) {
    let _slot = match slot {
        Slot::Held(slot) => slot,
        Slot::Awaited(slots) => match slots.acquire_owned().await {
            Ok(slot) => slot,
            Err(_) => return, // never closed
        },
    };
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |request: Request<Incoming>| {
            let in_flight = activity.start();
            let router = router.clone();
            async move {
                let Ok(response) = router.oneshot(request.map(Body::new)).await;
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                }))
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // The watch below does this, and tells idle from slow (see the module docs).
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            // Idle, slow, not read, or evicted: closed (dropped), with whatever is in flight.
            _ = activity.expiry(limits) => return,
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

// ===== watching a connection =====

/// What a connection is doing: requests in flight, since when it has been free, and since
/// when a write has been blocked.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
    /// Woken when a request starts or ends, or the first byte arrives while free.
    changed: Notify,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// When the last request ended (or the connection opened).
    free_since: Instant,
    /// When the first byte arrived since then, if one did.
    heard_at: Option<Instant>,
    /// Since when a write has been waiting for the caller to read, if one is.
    blocked_since: Option<Instant>,
    /// To close as soon as no request is in flight, to make room at the cap.
    evicted: bool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                free_since: Instant::now(),
                heard_at: None,
                blocked_since: None,
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    /// Bytes arrived.
    fn heard(&self) {
        let mut state = self.state.lock();
        if state.in_flight == 0 && state.heard_at.is_none() {
            state.heard_at = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A write could not go out (`blocked`) or went out.
    fn wrote(&self, blocked: bool) {
        let mut state = self.state.lock();
        match (blocked, state.blocked_since.is_some()) {
            (true, false) => {
                state.blocked_since = Some(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
            (false, true) => state.blocked_since = None,
            _ => {}
        }
    }

    /// Marks the connection to close as soon as no request is in flight, if none is now and it
    /// is not marked yet; whether it was marked.
    fn evict(&self) -> bool {
        let mut state = self.state.lock();
        if state.in_flight > 0 || state.evicted {
            return false;
        }
        state.evicted = true;
        drop(state);
        self.changed.notify_one();
        true
    }

    /// A request started; it is in flight until the guard is dropped.
    fn start(self: &Arc<Self>) -> InFlight {
        self.state.lock().in_flight += 1;
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// Completes when the connection has been free too long (idle, or a head too slow) or a
    /// write has been blocked too long.
    async fn expiry(&self, limits: ConnectionLimits) -> Expired {
        loop {
            let next = {
                let state = self.state.lock();
                if state.evicted && state.in_flight == 0 {
                    return Expired::Evicted;
                }
                let free = (state.in_flight == 0).then(|| match state.heard_at {
                    Some(at) => (at + limits.head_timeout, Expired::Head),
                    None => (state.free_since + limits.idle_timeout, Expired::Idle),
                });
                let blocked = state
                    .blocked_since
                    .map(|since| (since + limits.write_timeout, Expired::Write));
                match (free, blocked) {
                    (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
                    (a, b) => a.or(b),
                }
            };
            // A change after the read above leaves a permit: `notified` completes at once.
            match next {
                None => self.changed.notified().await,
                Some((at, why)) => tokio::select! {
                    biased;
                    () = self.changed.notified() => {}
                    () = tokio::time::sleep_until(at) => return why,
                },
            }
        }
    }
}

/// A request in flight, from its head until its answer's body is done or dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.free_since = Instant::now();
            state.heard_at = None;
        }
        drop(state);
        self.0.changed.notify_one();
    }
}

/// An answer's body, holding its request in flight; frames pass through as they come.
#[derive(Debug)]
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A socket that tells its [`Activity`] when bytes arrive and when writes block.
#[derive(Debug)]
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.heard();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
