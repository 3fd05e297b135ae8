//! The benchmark's ceiling: a bare axum handler returning a fixed 140-byte
//! JSON body, with no Redis and no logic. `bench/bench.py` runs it beside
//! the sidecar so both are measured by the same load in the same run.
//!
//! Usage: `cargo run --release --example bare -- 127.0.0.1:8081`

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = r#"{"status":"ok","reasons":[],"role":"master","checks":{"ping":{"status":"ok","latency_ms":0.2}},"checked_at":"2026-11-24T10:00:00.123Z","age_ms":12}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let app = Router::new().route(
        "/health/redis",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
