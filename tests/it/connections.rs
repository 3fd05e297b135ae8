//! Connections as people set them up: the least-privilege ACL user across
//! restarts, passwords with URL-special characters, Unix sockets, and a slow
//! link (a delaying proxy written here) with a reconnect and a frozen Redis.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{
    HEALTH_ROUTES, Server, TestProcess, TestRedis, eventually, is_down_with, settings, spawn_app,
    tool,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The README's least-privilege user, as `redis-server` arguments.
fn health_user() -> Vec<&'static str> {
    let mut args = vec!["--user", "health", "on", ">health-pw"];
    args.extend_from_slice(crate::support::LEAST_PRIVILEGE);
    args
}

#[tokio::test]
async fn the_least_privilege_user_leaves_acl_log_empty_across_restarts() {
    let mut redis = TestRedis::with_args(&health_user());
    let mut config = settings(&format!(
        "redis://health:health-pw@127.0.0.1:{}",
        redis.port
    ));
    config.checks.max_age = Duration::from_millis(20);
    let app = spawn_app(config).await;
    app.assert_every_route_ok().await;
    for _ in 0..2 {
        redis.restart(&[]);
        app.wait_for("/health", Duration::from_secs(5), |a| a.status == 200)
            .await;
        app.assert_every_route_ok().await;
    }
    assert_eq!(redis.acl_refused(), Vec::<String>::new());
}

#[tokio::test]
async fn a_password_with_plus_percent_at_and_colon_is_read_as_redis_cli_reads_it() {
    let redis = TestRedis::start();
    let setuser = [
        "ACL",
        "SETUSER",
        "pl+us",
        "on",
        ">pa+ss%@:x",
        "-@all",
        "+ping",
        "+info",
        "+client|id",
    ];
    assert_eq!(redis.cmd(&setuser), "OK");
    let url = format!("redis://pl+us:pa+ss%25%40%3Ax@127.0.0.1:{}", redis.port);
    let app = spawn_app(settings(&url)).await;
    app.assert_every_route_ok().await;
    assert_eq!(redis.acl_refused(), Vec::<String>::new());
}

/// A redis-server listening on a Unix socket only (`--port 0`), with the
/// least-privilege user.
struct SocketRedis {
    socket: String,
    _process: TestProcess,
    _dir: tempfile::TempDir,
}

impl SocketRedis {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("redis.sock").to_string_lossy().into_owned();
        let data = dir.path().to_string_lossy().into_owned();
        let mut args = vec![
            "--port",
            "0",
            "--unixsocket",
            &socket,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &data,
        ];
        args.extend_from_slice(&health_user());
        let process = TestProcess::start(&Server::Redis7.binary(), &args, &[]);
        let path = socket.clone();
        eventually(
            "redis-server listens on its socket",
            Duration::from_secs(10),
            || std::os::unix::net::UnixStream::connect(&path).is_ok(),
        )
        .await;
        Self {
            socket,
            _process: process,
            _dir: dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(tool("redis-cli", "apt-get install redis-tools"))
            .args(["-s", &self.socket])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

#[tokio::test]
async fn every_route_works_over_a_unix_socket_with_the_password_in_the_url_or_a_file() {
    let redis = SocketRedis::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "health-pw\n").expect("write password");

    let in_url = settings(&format!("unix://health:health-pw@{}", redis.socket));
    let mut in_file = settings(&format!("unix://health@{}", redis.socket));
    in_file.redis.password_file = Some(password_file);
    for config in [in_url, in_file] {
        let app = spawn_app(config).await;
        app.assert_every_route_ok().await;
        assert_eq!(app.get("/metrics").await.status, 200);
    }
    assert_eq!(redis.cmd(&["ACL", "LOG"]), "");
}

#[tokio::test]
async fn a_missing_or_refusing_socket_is_unreachable_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.sock");
    // A socket file nobody listens on any more: connecting is refused.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    for path in [&missing, &stale] {
        let app = spawn_app(settings(&format!("unix://{}", path.display()))).await;
        let answer = app.get("/health/redis").await;
        assert!(is_down_with(&answer, "unreachable"), "{}", answer.text);
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{}: ", path.display())),
            "{error}"
        );
    }
}

/// A TCP proxy to `upstream` that holds every chunk for `delay` in each
/// direction, like a long link: a round trip costs twice `delay`.
async fn delaying_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(delayed(client_read, server_write, delay));
            tokio::spawn(delayed(server_read, client_write, delay));
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk `delay` after it arrived (the delay
/// does not add up across chunks), then closes `to` in turn.
async fn delayed(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = receiver.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0; 64 * 1024];
    while let Ok(read @ 1..) = from.read(&mut buffer).await {
        let _ = sender.send((Instant::now() + delay, buffer[..read].to_vec()));
    }
    drop(sender);
    let _ = writer.await;
}

#[tokio::test]
async fn on_a_slow_link_a_reconnect_fits_and_a_frozen_redis_is_a_timeout_within_the_bound() {
    const DELAY: Duration = Duration::from_millis(100);
    let redis = TestRedis::start();
    let proxy = delaying_proxy(redis.addr(), DELAY).await;
    let mut config = settings(&format!("redis://{proxy}"));
    config.checks.max_age = Duration::from_millis(10);
    let (timeout, connect_timeout) = (config.redis.timeout, config.redis.connect_timeout);
    assert_eq!(
        (timeout, connect_timeout),
        (Duration::from_millis(500), Duration::from_secs(1)),
        "the defaults"
    );
    let app = spawn_app(config).await;
    let slow = |a: &crate::support::Answer| a.status == 200 && a.json["reason"] == "latency_high";
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), slow)
        .await;
    // PING and INFO share one round trip (2 x 100 ms), not two.
    let latency = answer.json["checks"]["ping"]["latency_ms"]
        .as_f64()
        .unwrap_or_default();
    assert!((200.0..390.0).contains(&latency), "{}", answer.text);

    let connections = |r: &TestRedis| r.info_field("total_connections_received");
    let before = connections(&redis);
    assert_ne!(
        redis.cmd(&["CLIENT", "KILL", "TYPE", "normal"]),
        "0",
        "the sidecar's connection was killed"
    );
    // Every probe from the kill on: the sidecar dials again within
    // redis.connect_timeout and answers as before.
    for attempt in 0..5 {
        let answer = app.get("/health/redis").await;
        assert!(slow(&answer), "{attempt}: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(connections(&redis), before, "reconnected");

    redis.signal("STOP");
    let bound = connect_timeout + timeout;
    // The open connection times out first, then each reconnect.
    let keys = [
        "redis.timeout",
        "redis.connect_timeout",
        "redis.connect_timeout",
    ];
    for (attempt, key) in keys.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(20)).await; // past checks.max_age
        let answer = app.get("/health/redis").await;
        assert!(
            is_down_with(&answer, "timeout"),
            "{attempt}: {}",
            answer.text
        );
        assert_eq!(
            answer.json["error"],
            format!("no answer within {key}"),
            "{attempt} after {:?}",
            answer.elapsed
        );
        assert!(
            answer.elapsed < bound + Duration::from_millis(300),
            "{attempt}: answered after {:?}",
            answer.elapsed
        );
    }
    redis.signal("CONT");
    app.wait_for("/health/redis", Duration::from_secs(5), slow)
        .await;
    for route in HEALTH_ROUTES {
        assert_eq!(app.get(route).await.status, 200, "{route}");
    }
}

#[test]
fn the_socket_path_must_be_absolute() {
    crate::support::assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__URL", "unix://redis.sock")],
        "redis.url",
    );
}
