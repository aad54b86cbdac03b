//! The HTTP server: [`MockServer`], its accept loop and per-connection tasks, and the request
//! pipeline.
//!
//! Pipeline for each request, in order ([`handler`] runs it, one function per step):
//!
//! 1. route (`POST /v1/chat/completions`, `POST /v1/messages`; anything else 404);
//! 2. read the body (at most 10 MiB, else 413);
//! 3. the reverse-proxy limiter, if configured (a bare 429, `text/plain`, fixed `Retry-After`;
//!    nothing consumed when refused). A real proxy decides on the headers alone; the mock reads
//!    the bounded body first so that a refused HTTP/1.1 connection stays reusable;
//! 4. API key (401);
//! 5. outage, manual or scheduled (the flavor's outage status; no quota consumed);
//! 6. parse the JSON (400);
//! 7. prepaid credit (OpenAI 429 `insufficient_quota`, Anthropic 400);
//! 8. context window (400; no quota consumed);
//! 9. admission against the quotas (429; nothing consumed when refused);
//! 10. fault draw: reset, hang or an error status (quota already consumed, as providers count
//!     failed requests);
//! 11. latency, then the answer; output tokens are charged to OTPM (and Anthropic's TPM/TPD) and
//!     to the credit. A streamed answer that step 10 left alone draws its stream faults
//!     (first-token delay; stall, error event or cut after N events), which change only its
//!     body: the head is a 200, counted and charged as a complete answer.
//!
//! Where each part lives:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`MockServer`]: start, handles (stats, outage, tenant share), shutdown |
//! | `shared.rs` | the state every connection shares; the in-flight and slot guards |
//! | `connection.rs` | the accept loop and the per-connection tasks |
//! | `handler.rs` | the pipeline, in order; the steps that read the request: 1, 2 and 6 |
//! | `request.rs` | what a request says: its API, its key, its JSON body |
//! | `admission.rs` | the refusals before an answer: steps 3, 4, 5, 7, 8 and 9 |
//! | `faults.rs` | step 10: the fault and latency draw, and the fault's effect |
//! | `answer.rs` | step 11: the answer, whole or streamed, with the stream faults |
//! | `reply.rs` | building responses: flavor bodies, request id, rate-limit headers |

mod admission;
mod answer;
mod connection;
mod faults;
mod handler;
mod reply;
mod request;
mod shared;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::connection::accept_loop;
use self::shared::Shared;
use crate::config::{MockConfig, MockConfigError, check_tenant_share};
use crate::stats::{Bucket, MockStats};

/// Request bodies above this get a 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// A running mock provider on a local TCP port.
///
/// Start it with [`MockServer::start`] (127.0.0.1, a free port) and point a client at
/// [`MockServer::base_url`]. Dropping it stops the server task and cuts every connection;
/// [`MockServer::shutdown`] does the same gracefully.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tollgate_mock::{MockConfig, MockServer};
/// let server = MockServer::start(MockConfig::openai().with_requests_per_minute(60)).await?;
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("flavor", &self.shared.config.flavor)
            .finish_non_exhaustive()
    }
}

// ===== impl MockServer =====

impl MockServer {
    /// Starts a server on `127.0.0.1` with a free port.
    ///
    /// # Errors
    ///
    /// An invalid configuration ([`std::io::ErrorKind::InvalidInput`], see
    /// [`MockConfig::validate`]) or a failure to bind.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        MockServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts a server on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// An invalid configuration ([`std::io::ErrorKind::InvalidInput`]) or a failure to bind.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockServer> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let now = Instant::now();
        let shared = Arc::new(Shared::new(config, now, rx.clone()));
        let task = tokio::spawn(accept_loop(listener, shared.clone(), rx));
        Ok(MockServer {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        let mut stats = self.shared.recorder.lock().stats();
        stats.max_in_flight = stats
            .max_in_flight
            .max(self.shared.in_flight.load(Ordering::Relaxed));
        stats
    }

    /// Per-second buckets from the start (or the last 24 hours) up to the current second.
    pub fn timeline(&self) -> Vec<Bucket> {
        self.shared.recorder.lock().timeline(self.shared.second())
    }

    /// Turns a manual outage on or off: while on, every request gets the flavor's outage status
    /// (503 OpenAI, 529 Anthropic) and consumes no quota.
    pub fn set_outage(&self, on: bool) {
        self.shared.manual_outage.store(on, Ordering::Relaxed);
    }

    /// Sets the share of the [reverse-proxy limit](crate::ProxyLimit) another tenant consumes,
    /// from now on: the client is left `rate_per_second × (1 − share)`. It holds until the next
    /// entry of the configured `tenant_schedule` starts, or the next call.
    ///
    /// # Errors
    ///
    /// A [`MockConfigError`], and nothing changes, if `share` is not in `[0, 0.99]`
    /// ([`ProxyLimit::MAX_TENANT_SHARE`](crate::ProxyLimit::MAX_TENANT_SHARE); NaN included) or
    /// the server has no `proxy_limit`. Out-of-range shares are refused rather than clamped, so
    /// that a test never runs with a share it did not ask for.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use tollgate_mock::{MockConfig, MockServer, ProxyLimit};
    /// let config = MockConfig::openai().with_proxy_limit(ProxyLimit::per_second(10));
    /// let server = MockServer::start(config).await?;
    /// server.set_tenant_share(0.5).unwrap(); // the client now gets 5 requests per second
    /// assert_eq!(server.tenant_share(), 0.5);
    /// assert!(server.set_tenant_share(1.0).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_tenant_share(&self, share: f64) -> Result<(), MockConfigError> {
        check_tenant_share("tenant_share", share)?;
        let proxy = self.shared.proxy.as_ref().ok_or_else(|| {
            MockConfigError::invalid(
                "proxy_limit",
                "not configured; a tenant share applies to the reverse-proxy limiter",
            )
        })?;
        proxy.lock().set_tenant_share(share, Instant::now());
        Ok(())
    }

    /// The share of the reverse-proxy limit another tenant consumes now (from the schedule or
    /// [`MockServer::set_tenant_share`]); 0 without a `proxy_limit`.
    pub fn tenant_share(&self) -> f64 {
        self.shared
            .proxy
            .as_ref()
            .map_or(0.0, |proxy| proxy.lock().tenant_share(Instant::now()))
    }

    /// Stops accepting, lets open requests finish for up to a second (hanging ones end at once
    /// with a reset, stalled streams with a cut), then closes every connection.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops at once, as a crashed server would: the listener is closed and every connection
    /// cut, requests in flight unanswered (their clients see the connection close). Returns
    /// what the server saw, final: once it returns, nothing more is received or answered, so
    /// the counters match what clients got. A new server may then [`bind`](Self::bind) the
    /// same address (a restart).
    ///
    /// Dropping the server cuts everything too, but a connection may still send an answer
    /// after the drop; this waits until none can.
    pub async fn kill(mut self) -> MockStats {
        if let Some(task) = self.task.take() {
            // The accept task owns the connection tasks (a JoinSet): once it is gone, each of
            // them is aborted, and an aborted task is never polled again.
            task.abort();
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            // The accept task owns the connection tasks (a JoinSet): aborting it aborts them.
            task.abort();
        }
    }
}
