//! Tests of the `redis-server` harness in `support`: it starts a server that answers, stops it
//! for good, restarts it on the same port and leaves no process behind.
//!
//! Skipped (loudly) without `redis-server`, unless `TOLLGATE_REQUIRE_REDIS=1`.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// Sends `PING` over raw TCP and returns the first reply line.
fn raw_ping(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = Vec::new();
    let mut buf = [0_u8; 64];
    while !reply.ends_with(b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn assert_refused(port: u16) {
    let error = raw_ping(port).expect_err("the stopped server still answered");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused, "{error}");
}

/// `true` while `pid` exists, zombies included (they keep their `/proc` entry until reaped).
#[cfg(target_os = "linux")]
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_answers_and_stops() {
    let Some(mut redis) = support::start() else {
        return;
    };
    let port = redis.port();
    assert_ne!(port, 0);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(raw_ping(port).unwrap(), "+PONG\r\n");
    let pid = redis.pid().expect("a started server has a pid");
    assert_ne!(pid, 0);

    redis.stop();
    assert_eq!(redis.pid(), None);
    assert_refused(port);
    #[cfg(target_os = "linux")]
    assert!(!process_exists(pid), "redis-server {pid} was not reaped");

    redis.stop(); // idempotent
    assert_refused(port);
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_on_the_same_port_and_drop_reaps() {
    let Some(mut redis) = support::start() else {
        return;
    };
    let port = redis.port();
    assert_eq!(raw_ping(port).unwrap(), "+PONG\r\n");

    redis.stop();
    assert_refused(port);

    redis.restart();
    assert_eq!(redis.port(), port);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
    assert_eq!(raw_ping(port).unwrap(), "+PONG\r\n");

    // A restart while running replaces the process.
    let first = redis.pid().expect("running");
    redis.restart();
    let second = redis.pid().expect("running");
    assert_ne!(first, second);
    assert!(support::ping(port));

    drop(redis);
    assert_refused(port);
    #[cfg(target_os = "linux")]
    assert!(
        !process_exists(second),
        "redis-server {second} was not reaped on drop"
    );
}
