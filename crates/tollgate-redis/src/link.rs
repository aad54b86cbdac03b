//! [`Link`]: the one multiplexed connection to Redis, lost and found again in the background.
//!
//! Every call goes through [`Link::call`], bounded by the configured timeout. A call that fails
//! or times out drops the connection and starts one reconnection task; until it succeeds,
//! [`Link::connection`] answers `None` at once, so no request waits on a Redis that is away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, ServerErrorKind, Value};
use tokio::sync::Notify;

/// Whether the quota is shared right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Redis answers: every replica draws from one quota.
    Shared,
    /// Redis is unreachable: the store applies its
    /// [`Unavailable`](crate::Unavailable) policy, and tries to reach Redis again.
    Unavailable,
}

impl Mode {
    /// `shared` or `unavailable`, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Unavailable => "unavailable",
        }
    }
}

/// A function told of every change of [`Mode`].
pub(crate) type ModeHook = Arc<dyn Fn(Mode) + Send + Sync>;

pub(crate) struct Link {
    client: Client,
    /// The connection, and its generation (bumped on each new one), so that a late failure of
    /// an old connection cannot drop a newer one.
    connection: RwLock<(u64, Option<MultiplexedConnection>)>,
    reconnecting: AtomicBool,
    /// Whether the first connection attempt is still under way; `started` tells its end.
    starting: AtomicBool,
    started: Notify,
    timeout: Duration,
    reconnect_every: Duration,
    hook: RwLock<Option<ModeHook>>,
    /// Calls that failed or timed out, and changes of mode, for metrics.
    pub(crate) failures: AtomicU64,
    pub(crate) mode_changes: AtomicU64,
}

/// What a call to Redis came to.
pub(crate) enum Outcome {
    Answered(Value),
    /// No usable answer: Redis could not be reached (and now counts as unreachable), or it
    /// answered with an error.
    Unreachable,
}

impl Link {
    pub(crate) fn new(client: Client, timeout: Duration, reconnect_every: Duration) -> Self {
        Link {
            client,
            connection: RwLock::new((0, None)),
            reconnecting: AtomicBool::new(false),
            starting: AtomicBool::new(true),
            started: Notify::new(),
            timeout,
            reconnect_every,
            hook: RwLock::new(None),
            failures: AtomicU64::new(0),
            mode_changes: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_hook(&self, hook: ModeHook) {
        *self.hook.write() = Some(hook);
    }

    pub(crate) fn mode(&self) -> Mode {
        match self.connection.read().1.is_some() {
            true => Mode::Shared,
            false => Mode::Unavailable,
        }
    }

    pub(crate) const fn reconnect_every(&self) -> Duration {
        self.reconnect_every
    }

    /// The connection and its generation, when Redis is reachable.
    pub(crate) fn connection(&self) -> Option<(u64, MultiplexedConnection)> {
        let current = self.connection.read();
        current.1.clone().map(|connection| (current.0, connection))
    }

    /// Makes `connection` the current one.
    fn publish(&self, connection: MultiplexedConnection) {
        let mut current = self.connection.write();
        *current = (current.0 + 1, Some(connection));
    }

    /// Connects once, within the timeout.
    async fn open(&self) -> Option<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(connection)) => Some(connection),
            Ok(Err(error)) => {
                tracing::debug!(target: "tollgate::redis", kind = ?error.kind(), "cannot connect to Redis");
                None
            }
            Err(_) => None,
        }
    }

    /// The first connection: shared at once when Redis answers within the timeout, otherwise
    /// unavailable, reconnecting in the background.
    pub(crate) async fn start(self: &Arc<Self>) {
        match self.open().await {
            Some(connection) => self.publish(connection),
            None => {
                tracing::warn!(target: "tollgate::redis", "Redis is unreachable; the quota is not shared until it answers");
                self.reconnect();
            }
        }
        self.starting.store(false, Ordering::Release);
        self.started.notify_waiters();
    }

    /// Whether the first connection attempt is still under way.
    pub(crate) fn is_starting(&self) -> bool {
        self.starting.load(Ordering::Acquire)
    }

    /// Waits for the end of the first connection attempt (at most the timeout: the attempt
    /// itself is bounded by it).
    pub(crate) async fn started(&self) {
        let notified = self.started.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if !self.is_starting() {
            return;
        }
        let _ = tokio::time::timeout(self.timeout, notified).await;
    }

    /// Runs `command` on `connection`, within the timeout; loads the script and runs it again
    /// when Redis does not know it (after a restart or `SCRIPT FLUSH`). A failure to reach
    /// Redis drops the connection; an error reply (bad data under one key) fails this call
    /// only.
    pub(crate) async fn call(
        self: &Arc<Self>,
        (generation, mut connection): (u64, MultiplexedConnection),
        command: &redis::Cmd,
        script: &str,
    ) -> Outcome {
        let attempt = async {
            match command.query_async::<Value>(&mut connection).await {
                Err(error) if is_no_script(&error) => {
                    redis::cmd("SCRIPT")
                        .arg("LOAD")
                        .arg(script)
                        .query_async::<Value>(&mut connection)
                        .await?;
                    command.query_async::<Value>(&mut connection).await
                }
                answer => answer,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => Outcome::Answered(value),
            Ok(Err(error)) if !unreachable(&error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "tollgate::redis", kind = ?error.kind(), "Redis refused a call");
                Outcome::Unreachable
            }
            Ok(Err(error)) => {
                tracing::warn!(target: "tollgate::redis", kind = ?error.kind(), "a Redis call failed");
                self.lost(generation);
                Outcome::Unreachable
            }
            Err(_) => {
                tracing::warn!(target: "tollgate::redis", timeout = ?self.timeout, "a Redis call timed out");
                self.lost(generation);
                Outcome::Unreachable
            }
        }
    }

    /// Drops connection `generation`, if still current, and starts reconnecting.
    fn lost(self: &Arc<Self>, generation: u64) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let dropped = {
            let mut current = self.connection.write();
            if current.0 != generation {
                // A newer connection is in place already.
                return;
            }
            current.1.take().is_some()
        };
        if dropped {
            self.changed(Mode::Unavailable);
        }
        self.reconnect();
    }

    fn changed(&self, mode: Mode) {
        self.mode_changes.fetch_add(1, Ordering::Relaxed);
        match mode {
            Mode::Shared => {
                tracing::info!(target: "tollgate::redis", mode = mode.as_str(), "Redis answers again; the quota is shared");
            }
            Mode::Unavailable => {
                tracing::warn!(target: "tollgate::redis", mode = mode.as_str(), "Redis is unreachable; applying the unavailable policy");
            }
        }
        let hook = self.hook.read().clone();
        if let Some(hook) = hook {
            hook(mode);
        }
    }

    /// Starts the one reconnection task, unless it runs already. It stops when the store is
    /// dropped.
    fn reconnect(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reconnecting.store(false, Ordering::Release);
            return;
        };
        let link: Weak<Link> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let Some(every) = link.upgrade().map(|l| l.reconnect_every) else {
                    return;
                };
                tokio::time::sleep(every).await;
                let Some(this) = link.upgrade() else { return };
                if let Some(connection) = this.open().await {
                    // The flag goes first: a connection lost right after it is published
                    // starts a task of its own.
                    this.reconnecting.store(false, Ordering::Release);
                    this.publish(connection);
                    this.changed(Mode::Shared);
                    return;
                }
            }
        });
    }
}

/// Whether `error` means Redis could not be reached (rather than an error reply).
fn unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

fn is_no_script(error: &RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::NoScript)
}
