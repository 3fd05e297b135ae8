//! The accept loop: what a client may hold of the sidecar.
//!
//! `axum::serve` has no header-read timeout and no connection cap, so a few
//! slow or idle clients (slowloris) could pin memory and connection slots.
//! Here every connection is HTTP/1 with:
//!
//! - a cap of `server.max_connections` served at once: a permit is taken
//!   *before* accepting, so when all are in use further clients wait in the
//!   kernel's accept backlog (their probes are late, never refused by us);
//! - `server.header_read_timeout` to send a whole request head, counted from
//!   the connection's start and again after each response, which also bounds
//!   how long an idle kept-alive connection holds its slot (kept by
//!   [`connection`], which costs less per request than hyper's);
//! - at most [`MAX_HEAD_BYTES`] of buffered request head; hyper answers a
//!   bigger head with a bare 431 and closes;
//! - at most [`MAX_HEADERS`] request headers; hyper answers more with a bare
//!   431 and closes;
//! - a client that half-closes (shuts down its write side) after its request
//!   still gets the answer, as some scripted checkers do that;
//! - a graceful shutdown: stop accepting, let requests in flight finish
//!   (each bounded by `redis.connect_timeout` + `redis.timeout`), close idle
//!   connections, and give up
//!   on stragglers after `server.shutdown_timeout`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{Listen, ServerSettings};

mod connection;

/// Bytes of request head (request line and headers) buffered per connection;
/// hyper's smallest allowed buffer, far above what a probe sends.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Request headers accepted, Host included: hyper's default, kept because a
/// larger limit makes hyper allocate its header table on the heap for every
/// request. A probe sends a handful.
pub const MAX_HEADERS: usize = 100;

/// The accept backlog: tokio's own for `TcpListener::bind`.
const BACKLOG: i32 = 1024;

/// Binds `server.listen`. `[::]` is one dual-stack socket (IPV6_V6ONLY off,
/// whatever `net.ipv6.bindv6only` says), taking IPv4 as mapped addresses;
/// where IPv6 is off (no IPv6 in the kernel, or no IPv6 address to bind),
/// it falls back to `0.0.0.0` on the same port, saying so once. A failure
/// names the address and the key, so "address in use" says which.
pub fn bind(listen: Listen) -> io::Result<TcpListener> {
    let addr = listen.get();
    let any_v6 = matches!(addr.ip(), IpAddr::V6(ip) if ip.is_unspecified());
    match bind_socket(addr) {
        Err(error) if any_v6 && ipv6_is_off(&error) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::warn!(
                %error,
                listen = %addr,
                fallback = %v4,
                "IPv6 is off here: listening on IPv4 only"
            );
            bind_socket(v4).map_err(|e| named(v4, e))
        }
        bound => bound.map_err(|e| named(addr, e)),
    }
}

/// The errors that mean no IPv6 here, rather than a port in use.
fn ipv6_is_off(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

fn named(addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot listen on {addr} (server.listen): {error}"),
    )
}

fn bind_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    // As `TcpListener::bind` does: a restart need not wait out TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections.get() as usize));
    let mut http = http1::Builder::new();
    // Kept by `connection` instead; hyper would default to 30 s with a timer.
    http.header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES)
        .half_close(true);
    let draining = Arc::new(connection::Shutdown::default());
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else {
            continue;
        };
        // Probes are tiny request/response pairs: send each answer at once.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = connection::guard(
            settings.header_read_timeout.get(),
            &draining,
            service,
            |service| http.serve_connection(TokioIo::new(stream), service),
            http1::Connection::graceful_shutdown,
        );
        tokio::spawn(async move {
            match connection.await {
                Some(Ok(())) => {}
                Some(Err(error)) => tracing::debug!(%error, "connection ended with an error"),
                None => tracing::debug!("no request head within server.header_read_timeout"),
            }
            drop(permit);
        });
    }

    // Closing the listener refuses new connections from here on.
    drop(listener);
    draining.request();
    // Every connection holds a permit until its task ends.
    let all = settings.max_connections.get();
    if tokio::time::timeout(settings.shutdown_timeout.get(), permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after server.shutdown_timeout; exiting anyway");
    }
}

/// Waits for a free slot, then for a client. `None` after a failed accept,
/// so the loop can look at the shutdown signal again.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring only fails if it were.
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(error) if is_per_connection(&error) => None,
        Err(error) => {
            // Out of file descriptors or similar: retrying at once would spin.
            tracing::error!(%error, "accept failed; retrying in 1s");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// Errors that concern one client only, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_ipv6_falls_back_never_a_port_in_use() {
        for errno in [libc::EAFNOSUPPORT, libc::EADDRNOTAVAIL] {
            assert!(ipv6_is_off(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::EADDRINUSE, libc::EACCES] {
            assert!(
                !ipv6_is_off(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }
}
