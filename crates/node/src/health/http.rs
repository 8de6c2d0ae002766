//! The health endpoints, as Felix serves them (libcalico-go's `lib/health`): `GET /liveness`
//! and `GET /readiness` answer 204 No Content when healthy and 503 Service Unavailable
//! otherwise, here with a one-line `text/plain` body saying why. Another path is 404, another
//! method 405, a request that is not HTTP/1.1 400 (hyper's). A client that shuts down its
//! sending side after its request (as `nc` does) still gets its answer, as from Felix.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{Health, Verdict};

/// The status of a healthy answer (Felix's `StatusGood`).
pub const GOOD: StatusCode = StatusCode::NO_CONTENT;
/// The status of an unhealthy answer (Felix's `StatusBad`).
pub const BAD: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// The endpoints' routes.
fn router(health: Health) -> Router {
    Router::new()
        .route("/liveness", get(liveness))
        .route("/readiness", get(readiness))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: use /liveness or /readiness\n",
            )
        })
        .with_state(health)
}

/// Serves the endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, health: Health) {
    crate::http_server::serve(listener, router(health), "health").await;
}

async fn liveness(State(health): State<Health>) -> Response {
    let verdict = health.verdict();
    answer(verdict.live(), verdict.liveness_line())
}

async fn readiness(State(health): State<Health>) -> Response {
    let verdict: Verdict = health.verdict();
    answer(verdict.ready(), verdict.readiness_line())
}

fn answer(good: bool, line: String) -> Response {
    if good {
        GOOD.into_response()
    } else {
        (
            BAD,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line + "\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Sends `request` as it is to a server for `health` and returns the whole answer.
    async fn exchange(health: &Health, request: &[u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, health.clone()));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .unwrap();
        server.abort();
        String::from_utf8(answer).unwrap()
    }

    async fn get(health: &Health, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        exchange(health, request.as_bytes()).await
    }

    #[tokio::test]
    async fn healthy_is_204_and_unhealthy_503_with_why() {
        let health = Health::default();
        let sockets = health.register("plugin sockets", true, None, Err("not served".into()));
        assert!(get(&health, "/liveness")
            .await
            .starts_with("HTTP/1.1 204 No Content\r\n"));
        let answer = get(&health, "/readiness").await;
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\nnot ready: plugin sockets: not served\n"),
            "{answer}"
        );
        let head = b"HEAD /readiness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let answer = exchange(&health, head).await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "HEAD has no body: {answer}");
        sockets.ready();
        let answer = get(&health, "/readiness").await;
        assert!(
            answer.starts_with("HTTP/1.1 204 No Content\r\n"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_client_that_closes_its_sending_side_still_gets_the_answer() {
        let health = Health::default();
        let _agent = health.register("agent", true, None, Err("syncing".into()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // The request and the end of the client's sending side are both waiting before the
        // server accepts, so the server reads that end right after the request.
        let mut stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        stream
            .write_all(b"GET /readiness HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        let server = tokio::spawn(serve(listener, health));
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
        assert!(
            answer.ends_with("not ready: agent: syncing\n"),
            "{answer:?}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn a_stale_reporter_fails_liveness() {
        let health = Health::default();
        let _agent = health.register("agent", true, Some(Duration::ZERO), Ok(()));
        let answer = get(&health, "/liveness").await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(
            answer.contains("\r\n\r\nnot live: agent: no report for 0 s (timeout 0 s)\n"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn bad_requests_are_refused_not_crashed_on() {
        let health = Health::default();
        assert!(get(&health, "/metrics").await.starts_with("HTTP/1.1 404 "));
        assert!(get(&health, "/readiness/x")
            .await
            .starts_with("HTTP/1.1 404 "));
        let post = b"POST /readiness HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert!(exchange(&health, post).await.starts_with("HTTP/1.1 405 "));
        let garbage = exchange(&health, b"\x00\x01 not http\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage:?}");
        // The server still answers after all that.
        assert!(get(&health, "/liveness").await.starts_with("HTTP/1.1 204 "));
    }
}
