//! An axum router served on a listener with what `axum::serve` leaves out: a deadline on reading a
//! request's headers, a cap on connections held at once, and an open-file limit raised to its
//! ceiling, so that slow or idle senders cannot hold `serve` (or its console) shut. Request bodies
//! get their deadline where they are read ([`BODY_READ`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How long a sender may take to send a request's headers (hyper closes the connection after).
pub const HEADER_READ: Duration = Duration::from_secs(20);
/// How long a sender may take to send a request's body once its headers are in (a 408 after).
pub const BODY_READ: Duration = Duration::from_secs(30);

/// How many connections a listener holds at once, and how long its requests may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: usize,
    pub header_read: Duration,
}

impl Limits {
    /// The webhook listener's: half the open files this process may have (the other half is the
    /// store's, the console's and outbound calls'), at most 4 096.
    pub fn hooks() -> Limits {
        Limits {
            connections: (open_file_ceiling() / 2).clamp(16, 4096),
            header_read: HEADER_READ,
        }
    }

    /// The console's: one person's browser tabs.
    pub fn console() -> Limits {
        Limits {
            connections: 64,
            header_read: HEADER_READ,
        }
    }
}

/// Raises this process's soft open-file limit to its hard one (once), and says what it is.
fn open_file_ceiling() -> usize {
    static CEILING: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CEILING.get_or_init(|| {
        let raised = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(256);
        usize::try_from(raised).unwrap_or(usize::MAX)
    })
}

/// Serves `router` on `listener` until `stopped` turns true, then lets the requests in flight
/// finish. Each request carries its peer's address as [`ConnectInfo`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let slots = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    loop {
        // A free slot first: past the cap, new connections wait in the kernel's backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of files or a reset before accept: wait a moment rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(slot);
        });
    }
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn started(connections: usize, header_read_ms: u64) -> (SocketAddr, watch::Sender<bool>) {
        let limits = Limits {
            connections,
            header_read: Duration::from_millis(header_read_ms),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        );
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, router, limits, stopped));
        (addr, stop)
    }

    async fn get(addr: SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn a_sender_that_never_finishes_its_headers_is_closed() {
        let (addr, _stop) = started(8, 200).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
            .await
            .expect("closed after the header deadline");
        assert!(closed.is_ok());
        assert!(get(addr).await.ends_with("127.0.0.1"));
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_waits_for_a_free_slot() {
        let (addr, _stop) = started(2, 300).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
            idle.write_all(b"GET").await.unwrap();
            held.push(idle);
        }
        // Served only once an idle one is closed by the header deadline.
        let started = std::time::Instant::now();
        assert!(get(addr).await.ends_with("127.0.0.1"));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
