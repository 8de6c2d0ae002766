//! The accept loop of calico-node's small HTTP/1.1 servers (health, metrics).

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long a server waits after failing to accept a connection.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until the task is dropped. A client that shuts down its
/// sending side after its request (as `nc` does) still gets its answer; `what` names the
/// server in logs.
pub async fn serve(listener: TcpListener, router: Router, what: &'static str) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, typically: back off rather than spin.
                tracing::warn!(error = %e, server = what, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, server = what, "connection ended");
            }
        });
    }
}
