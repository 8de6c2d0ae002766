//! `GET /metrics`: the metrics as OpenMetrics text, refreshed by the scraper first. Another
//! path is 404.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::Scraper;

/// The content type of the OpenMetrics text format, which Prometheus asks for and parses.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, scraper: Scraper) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: use /metrics\n") })
        .with_state(std::sync::Arc::new(scraper));
    crate::http_server::serve(listener, router, "metrics").await;
}

async fn metrics(State(scraper): State<std::sync::Arc<Scraper>>) -> Response {
    let text = scraper.scrape().await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
