//! A real `redis-server` for the integration tests.
//!
//! [`start`] runs `redis-server` as a child process on a free loopback port, with no persistence
//! and a scratch `--dir`, and waits until it answers `PING`. The [`RedisServer`] it returns kills
//! and reaps the process when dropped, so a failing test leaves no process behind.
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test(flavor = "multi_thread")]
//! async fn shares_a_quota() {
//!     let Some(redis) = support::start() else { return };
//!     let url = redis.url(); // redis://127.0.0.1:PORT/
//! }
//! ```
//!
//! # Skipping and requiring
//!
//! Without a `redis-server` binary, [`start`] prints a `SKIPPED:` line to stderr and returns
//! `None`, so the test passes without running. With `TOLLGATE_REQUIRE_REDIS=1` (CI sets it) it
//! panics instead, so a missing server fails the run rather than hiding it.
//!
//! The binary is `TOLLGATE_REDIS_SERVER` when that is set (a path; one that does not exist
//! counts as "not installed", which is how the skip path is tested), otherwise `redis-server`
//! on `PATH`, then `/usr/bin/redis-server` and `/usr/sbin/redis-server`.
//!
//! # Real clock
//!
//! Unlike the rest of the workspace, this module waits with `std::thread::sleep` and
//! `std::time::Instant`: it waits for another process, which tokio's paused clock knows nothing
//! about, and [`start`] is a plain function so it can be called from any test. The polls are
//! 10 ms each, so blocking a worker thread of a multi-thread runtime is harmless.

// Not every test crate uses every helper, and `pub` here is for the including test file.
#![allow(dead_code, unreachable_pub)]
// Waiting for a child process needs the real clock; see the module docs.
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to turn a missing `redis-server` into a test failure.
pub const REQUIRE_VAR: &str = "TOLLGATE_REQUIRE_REDIS";
/// The path of the `redis-server` binary to use, instead of looking it up.
pub const BINARY_VAR: &str = "TOLLGATE_REDIS_SERVER";

/// How long a starting server has to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a starting server is polled.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// How many free ports [`start`] tries when another process takes the one it picked.
const PORT_ATTEMPTS: usize = 3;

/// Starts a fresh `redis-server` on a free loopback port and waits until it answers `PING`.
///
/// Returns `None`, after saying so loudly on stderr, when `redis-server` is not installed.
///
/// # Panics
///
/// When `redis-server` is missing and `TOLLGATE_REQUIRE_REDIS=1`, or when it does not answer
/// within 5 s (the panic message carries its log).
pub fn start() -> Option<RedisServer> {
    let binary = match find_binary() {
        Ok(binary) => binary,
        Err(searched) => {
            let require = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
            assert!(
                !require,
                "redis-server is not installed (looked for {searched}) and {REQUIRE_VAR}=1: \
                 the Redis tests must run here. Install it (apt-get install redis-server) \
                 or point {BINARY_VAR} at the binary."
            );
            eprintln!(
                "SKIPPED: redis-server is not installed (looked for {searched}); the Redis tests \
                 did not run. Install it (apt-get install redis-server) to run them, or set \
                 {BINARY_VAR}=/path/to/redis-server."
            );
            return None;
        }
    };

    let mut last_error = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let mut server = RedisServer {
            port: free_port(),
            binary: binary.clone(),
            dir: scratch_dir(),
            child: None,
        };
        match server.spawn_and_wait() {
            Ok(()) => return Some(server),
            // Another process took the port between `free_port` and the bind: try another one.
            Err(error) if error.contains("Address already in use") => last_error = error,
            Err(error) => panic!("{error}"),
        }
    }
    panic!("{last_error}")
}

/// A `redis-server` child process listening on `127.0.0.1`; see the [module docs](self).
///
/// Dropping it kills the process, waits for it and removes its scratch directory.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    binary: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

// ===== impl RedisServer =====

impl RedisServer {
    /// The connection URL, `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The TCP port, the same across [`restart`](Self::restart)s.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id while the server runs, `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (`SIGKILL`, as a crash would) and waits for it to exit.
    ///
    /// Connections to [`port`](Self::port) are refused afterwards. Stopping a stopped server
    /// does nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only when the process has already exited; `wait` reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs, then starts an empty one on the same port and waits until it
    /// answers `PING`. Nothing is kept: the server has no persistence.
    ///
    /// # Panics
    ///
    /// When the new server does not answer within 5 s, for example because another process took
    /// the port meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(error) = self.spawn_and_wait() {
            panic!("{error}");
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis-server.log")
    }

    /// Spawns the server and waits for `+PONG`. On failure the child is stopped and the error
    /// carries its log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "spawn_and_wait while a server runs");
        let log = File::create(self.log_path())
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.log_path().display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the log file handle: {e}"));
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()));
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("spawned above");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "redis-server on 127.0.0.1:{} exited before answering PING ({status}); \
                     its log:\n{}",
                    self.port,
                    self.read_log()
                ));
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "redis-server on 127.0.0.1:{} did not answer PING within {READY_TIMEOUT:?}; \
                     its log:\n{}",
                    self.port,
                    self.read_log()
                ));
            }
            std::thread::sleep(POLL_EVERY);
        }
    }

    fn read_log(&self) -> String {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log_path().display()))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `PING` over a fresh connection; `true` when the answer is `+PONG`.
///
/// A server still loading answers `-LOADING`, which counts as not ready.
pub fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_millis(500));
    if stream.set_read_timeout(timeout).is_err()
        || stream.set_write_timeout(timeout).is_err()
        || stream.write_all(b"PING\r\n").is_err()
    {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0_u8; 64];
    while !reply.ends_with(b"\r\n") && reply.len() < 1024 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    reply.starts_with(b"+PONG")
}

/// The `redis-server` binary, or what was searched when there is none.
fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(BINARY_VAR).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{BINARY_VAR}={}", path.display()))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .iter()
        .map(|dir| dir.join("redis-server"))
        .chain(["/usr/bin/redis-server", "/usr/sbin/redis-server"].map(PathBuf::from))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| "redis-server on PATH, /usr/bin and /usr/sbin".to_owned())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// A port nothing listens on right now: the OS picks it for a listener we drop at once.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"))
}

/// A fresh, empty directory for one server's `--dir` and log.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tollgate-redis-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
