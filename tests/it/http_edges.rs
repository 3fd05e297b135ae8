//! HTTP edges the README promises: CONNECT, half-closed clients, many headers.

use std::time::Duration;

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request`, shuts down the write side as scripted checkers do, and
/// reads the answer until the server closes or 5 s pass.
async fn half_closed_exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream.shutdown().await.expect("shut down the write side");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_its_answer() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    for (path, expected) in [
        ("/livez", r#"{"status":"ok"}"#),
        ("/health/redis", r#"{"status":"ok""#),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = half_closed_exchange(app.addr, &request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:?}");
        assert!(answer.contains(expected), "{path}: {answer:?}");
        // HTTP/1.0 style, no Connection header: answered all the same.
        let request = format!("GET {path} HTTP/1.0\r\n\r\n");
        let answer = half_closed_exchange(app.addr, &request).await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{path}: {answer:?}");
    }
}

#[tokio::test]
async fn connect_answers_405_with_a_json_body() {
    let app = spawn_app(settings(&format!("redis://127.0.0.1:{}", free_port()))).await;
    for request in [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
        "CONNECT /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "CONNECT /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let (answer, _) = raw_exchange(app.addr, request.as_bytes(), Duration::from_secs(2)).await;
        assert!(
            answer.starts_with("HTTP/1.1 405"),
            "{request:?}: {answer:?}"
        );
        assert!(
            answer.contains(r#"{"status":"error","error":"method not allowed"}"#),
            "{request:?}: {answer:?}"
        );
    }
}

/// A GET of /livez with `count` headers in all (Host and Connection included).
fn request_with_headers(count: usize) -> String {
    let mut request = String::from("GET /livez HTTP/1.1\r\nHost: x\r\n");
    for i in 2..count {
        request.push_str(&format!("x-{i}: y\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    request
}

#[tokio::test]
async fn up_to_the_documented_header_count_is_served_and_one_more_is_a_bare_431() {
    let app = spawn_app(settings(&format!("redis://127.0.0.1:{}", free_port()))).await;
    let limit = redis_health::server::MAX_HEADERS;
    let (answer, _) = raw_exchange(
        app.addr,
        request_with_headers(limit).as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    let (answer, elapsed) = raw_exchange(
        app.addr,
        request_with_headers(limit + 1).as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(elapsed < Duration::from_secs(5), "not closed");
    // The README states the same number.
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("more than {limit} request headers")),
        "README does not document the header count limit of {limit}"
    );
}
