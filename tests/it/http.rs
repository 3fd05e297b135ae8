//! The HTTP server itself: bad, slow, idle, half-closed and too many clients,
//! CONNECT, oversized heads and the header-count limit.

use std::time::Duration;

use redis_health::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A sidecar whose Redis is a closed port, with `extra` TOML: these tests
/// are about HTTP only.
fn no_redis_with(extra: &str) -> Settings {
    settings_with(&format!("redis://127.0.0.1:{}", free_port()), extra)
}

fn no_redis() -> Settings {
    no_redis_with("")
}

async fn get_with(app: &TestApp, path: &str, header: Option<(&str, &str)>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("http://{}{path}", app.addr));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn query_strings_are_ignored() {
    let app = spawn_app(no_redis()).await;
    let plain = app.get("/livez").await;
    let query = app.get("/livez?verbose=1&x=%00").await;
    assert_eq!((query.status, query.text), (plain.status, plain.text));
    let health = app.get("/health/redis?pretty").await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.json["reason"], "unreachable");
    let missing = app.get("/nope?a=b").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn oversized_uri_and_headers_get_a_json_4xx() {
    let app = spawn_app(no_redis()).await;

    let long_path = format!("/livez?pad={}", "a".repeat(3000));
    let (status, body) = get_with(&app, &long_path, None).await;
    assert_eq!(status, 414, "{body}");
    assert_eq!(json(&body)["error"], "URI too long");

    let big = "b".repeat(10 * 1024);
    let (status, body) = get_with(&app, "/livez", Some(("x-padding", &big))).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(json(&body)["error"], "request headers too large");

    // Just under the limits is served as usual.
    let fine = "c".repeat(4 * 1024);
    let (status, _) = get_with(&app, "/livez", Some(("x-padding", &fine))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_oversized_or_malformed_head_is_refused_by_hyper_and_closed() {
    let app = spawn_app(no_redis()).await;
    let request = format!(
        "GET /livez HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "d".repeat(redis_health::server::MAX_HEAD_BYTES + 1024)
    );
    let (answer, elapsed) =
        raw_exchange(app.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "the connection was not closed"
    );
    // A head that is not HTTP at all: a bare 400, closed.
    let (answer, elapsed) =
        raw_exchange(app.addr, b"HELLO THERE\r\n\r\n", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(
        elapsed < Duration::from_secs(5),
        "the connection was not closed"
    );
    // The server is still serving.
    assert_eq!(app.get("/livez").await.status, 200);
}

#[tokio::test]
async fn slow_silent_and_idle_clients_are_cut_off_after_the_header_read_timeout() {
    let config = no_redis_with("server.header_read_timeout = \"500ms\"");
    let app = spawn_app(config).await;
    let bound = Duration::from_millis(500 + 500);

    // Silent: connects and sends nothing.
    let (answer, elapsed) = raw_exchange(app.addr, b"", Duration::from_secs(5)).await;
    assert_eq!(answer, "");
    assert!(elapsed < bound, "silent client held for {elapsed:?}");

    // Slowloris: a header line every 100 ms, never finishing the head.
    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    let started = std::time::Instant::now();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send");
    let (mut reader, mut writer) = slow.split();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let mut buf = [0u8; 256];
    let closed = tokio::select! {
        read = reader.read(&mut buf) => read.map_or(true, |n| n == 0),
        () = trickle => true,
        () = tokio::time::sleep(Duration::from_secs(5)) => false,
    };
    let elapsed = started.elapsed();
    assert!(closed, "a slow client was never cut off");
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < bound,
        "cut off after {elapsed:?}"
    );

    // Idle: one request answered, then nothing on the kept-alive connection.
    let (answer, elapsed) = raw_exchange(
        app.addr,
        b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(elapsed < bound, "idle connection held for {elapsed:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let config = no_redis_with("server.max_connections = 2\nserver.header_read_timeout = \"30s\"");
    let app = spawn_app(config).await;

    // Two kept-alive connections, each answered once, so both hold a slot.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        stream
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("send");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }

    let third = tokio::spawn({
        let app = app.clone();
        async move { app.get("/livez").await.status }
    });
    let mut third = std::pin::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut third)
            .await
            .is_err(),
        "a third connection was served while two held the cap"
    );
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(2), &mut third)
        .await
        .expect("served once a slot freed")
        .expect("task");
    assert_eq!(status, 200);
}

/// Sends one request on a kept-alive connection and reads its whole answer.
async fn exchange(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.parse::<usize>().ok())
                .expect("content-length");
            if body.len() >= length {
                return text;
            }
        }
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed mid-answer: {text:?}");
        answer.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn the_header_read_timeout_runs_between_requests_not_across_a_connection_or_an_answer() {
    // A Redis that accepts and never answers: the check that starts with the
    // sidecar takes redis.connect_timeout, and a probe waits for it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = settings_with(
        &format!("redis://{}", silent.local_addr().expect("addr")),
        "server.header_read_timeout = \"300ms\"\nredis.connect_timeout = \"3s\"",
    );
    let app = spawn_app(config).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");

    // A request every 100 ms for three times the bound, all on one connection.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(900) {
        let answer = exchange(&mut stream, "/livez").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An answer that takes longer than the bound is still given.
    let asked = std::time::Instant::now();
    let answer = exchange(&mut stream, "/health/redis").await;
    let waited = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(
        waited > Duration::from_millis(600),
        "answered after {waited:?}"
    );

    // Then the bound runs again from the answer.
    let answered = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    let idle = answered.elapsed();
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_millis(800),
        "closed {idle:?} after the answer"
    );
}

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
