//! The HTTP/1 accept loop: a connection cap, header-read and idle timeouts, and the
//! open-file limit sized for the cap.
//!
//! `axum::serve` runs hyper without a timer, so no header-read timeout applies and an
//! idle or trickling socket is kept forever: a thousand of them used up the process's
//! file descriptors and stopped every install. Here each connection gets hyper's
//! `header_read_timeout`, which (hyper ≥ 1.6) runs both while the first request head
//! arrives and while a keep-alive connection waits for its next request, so one setting
//! bounds slowloris heads and idle sockets alike.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Connection limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a complete request head (first request or next keep-alive one).
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel's listen backlog.
    pub max_connections: u32,
}

/// File descriptors the process needs besides client connections: the store, blob
/// files being streamed, upstream and forge sockets, check workers' pipes.
const RESERVED_FILE_DESCRIPTORS: u64 = 1024;

/// Raises the soft `RLIMIT_NOFILE` so that `max_connections` connections fit beside the
/// descriptors the rest of the server needs. The default soft limit (1,024) is below the
/// default connection cap. Returns the limit in force.
pub fn raise_open_file_limit(max_connections: u32) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let wanted = u64::from(max_connections) + RESERVED_FILE_DESCRIPTORS;
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return current;
    }
    let ceiling = limit.maximum.unwrap_or(u64::MAX);
    let target = wanted.min(ceiling);
    limit.current = Some(target);
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) if target < wanted => {
            tracing::warn!(
                limit = target,
                wanted,
                "the hard open-file limit is below what server.max_connections needs; \
                 connections beyond it will be refused by the kernel"
            );
            target
        }
        Ok(()) => target,
        Err(error) => {
            tracing::warn!(%error, current, wanted, "cannot raise the open-file limit");
            current
        }
    }
}

/// Accepts connections until `shutdown` completes, then stops accepting and waits for
/// the open connections to finish their in-flight requests (the caller bounds the wait).
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_at_cap = false;
    loop {
        // Take the permit before accepting: at the cap, new clients wait in the backlog
        // instead of costing a descriptor each.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        if permits.available_permits() == 0 && !warned_at_cap {
            tracing::warn!(max_connections = limits.max_connections, "connection cap reached");
            warned_at_cap = true;
        } else if permits.available_permits() > 0 {
            warned_at_cap = false;
        }
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::error!(%error, "accept error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Headers and a small body go out in separate writes; without TCP_NODELAY,
        // Nagle's algorithm holds the body for the client's delayed ACK (40 ms per
        // request on a reused connection).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = hyper_util::service::TowerToHyperService::new(router.clone().map_request(
            // The client address, for the admin sign-in rate limit.
            move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
