//! The benchmark's ceiling: a bare axum handler returning a fixed JSON body,
//! with no Redis and no logic. `bench/bench.py` runs it beside the sidecar,
//! serving the sidecar's own `/health/redis` body so both send the same
//! bytes, and drives both with the same load in the same run.
//!
//! Usage: `cargo run --release --example bare -- 127.0.0.1:8081 [BODY_FILE]`
//! (without a file: a 147-byte body shaped like the sidecar's).

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = r#"{"status":"ok","reasons":[],"role":"master","checks":{"ping":{"status":"ok","latency_ms":0.2}},"checked_at":"2026-11-24T10:00:00.123Z","age_ms":12}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    // Read once and kept for the process's life, so each answer borrows it
    // as the constant above would be.
    let body: &'static str = match args.next() {
        Some(path) => std::fs::read_to_string(path)?.leak(),
        None => BODY,
    };
    let app = Router::new().route(
        "/health/redis",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
