//! The accept loop and the per-connection tasks (HTTP/1.1 with keep-alive, or HTTP/2), each
//! request handed to [`handle`], and the graceful shutdown of both.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::handler::handle;
use super::shared::Shared;

/// How long [`MockServer::shutdown`](super::MockServer::shutdown) lets open requests finish
/// before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Accepts connections until shutdown, then lets open ones finish for [`SHUTDOWN_GRACE`]
/// before aborting them.
pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(
                        builder.clone(),
                        stream,
                        shared.clone(),
                        shutdown.clone(),
                    ));
                }
                // Out of file descriptors and the like: back off briefly, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

/// Serves one connection until it closes; on shutdown, closes it gracefully.
async fn serve_connection(
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let svc = service_fn(move |req| handle(shared.clone(), req));
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown was requested (or the server was dropped).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
