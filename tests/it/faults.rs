//! Faults a sidecar must survive and report truthfully: each test asserts the
//! status and reason a probe sees, and how fast.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redis_health::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const TIMEOUT: Duration = Duration::from_millis(300);

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// What bounds a probe that has to reconnect (the README's rule).
const BOUND: Duration = Duration::from_millis(300 + 300);

const MAX_AGE: Duration = Duration::from_millis(200);

/// Scheduling and polling headroom on a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(300);

pub(crate) fn fast(url: &str) -> Settings {
    fast_with(url, MAX_AGE, "")
}

/// [`fast`] with another `checks.max_age` and `extra` TOML.
fn fast_with(url: &str, max_age: Duration, extra: &str) -> Settings {
    settings_with(
        url,
        &format!(
            "redis.timeout = {}\nredis.connect_timeout = {}\nchecks.max_age = {}\n{extra}",
            toml_duration(TIMEOUT),
            toml_duration(CONNECT_TIMEOUT),
            toml_duration(max_age)
        ),
    )
}

#[tokio::test]
async fn a_killed_redis_reads_unreachable_and_a_restarted_one_ok_again_each_time() {
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(fast(&redis.url())).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    for round in 1..=3 {
        redis.kill(); // SIGKILL, then reaped
        let killed = Instant::now();
        let answer = app
            .wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 503)
            .await;
        assert!(
            is_down_with(&answer, "unreachable"),
            "round {round}: {}",
            answer.text
        );
        // A refused connection is told at once, not after a timeout.
        assert!(
            answer.elapsed < Duration::from_millis(200),
            "round {round}: the probe took {:?}",
            answer.elapsed
        );
        assert!(
            killed.elapsed() < TIMEOUT + MAX_AGE + SLACK,
            "round {round}: down seen {:?} after the kill",
            killed.elapsed()
        );

        redis.restart(&[]); // same port; returns once it listens
        let restarted = Instant::now();
        app.wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 200)
            .await;
        assert!(
            restarted.elapsed() < MAX_AGE + Duration::from_secs(1),
            "round {round}: ok again {:?} after the restart",
            restarted.elapsed()
        );
    }
    assert_eq!(app.get("/livez").await.status, 200);
}

#[tokio::test]
async fn a_redis_frozen_for_seconds_reads_timeout_on_every_probe_then_recovers() {
    probes_against_a_frozen_server(MAX_AGE).await;
}

#[tokio::test]
async fn probes_queued_behind_a_check_share_it_even_with_no_max_age() {
    // Each probe wants a fresh check; those that arrive while one is in
    // flight must take its result, not run one after another.
    // (The shortest max_age validation allows: 0 is refused.)
    probes_against_a_frozen_server(Duration::from_nanos(1)).await;
}

/// Redis frozen (SIGSTOP) for seconds: a burst of 100 concurrent probes,
/// then four probers for 3 s; every probe answered `timeout` within the
/// bound, at most the one connection held, and ok again within a second of
/// SIGCONT.
async fn probes_against_a_frozen_server(max_age: Duration) {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(fast_with(&redis.url(), max_age, "")).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    assert_eq!(connections_to(redis.port), 1);

    redis.signal("STOP");
    tokio::time::sleep(max_age).await; // the cached ok expires
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let app = app.clone();
        burst.spawn(async move { app.get("/health/redis").await });
    }
    let burst = burst.join_all().await;
    let held_after_burst = connections_to(redis.port);
    for answer in &burst {
        assert!(is_down_with(answer, "timeout"), "{}", answer.text);
        assert!(
            answer.elapsed < TIMEOUT + Duration::from_millis(250),
            "a probe of the burst answered after {:?}",
            answer.elapsed
        );
    }

    let frozen = Instant::now();
    let mut probers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let app = app.clone();
        probers.spawn(async move {
            let mut answers = Vec::new();
            while frozen.elapsed() < Duration::from_secs(3) {
                answers.push(app.get("/health/redis").await);
            }
            answers
        });
    }
    let answers: Vec<_> = probers.join_all().await.into_iter().flatten().collect();
    let held = connections_to(redis.port);
    redis.signal("CONT");

    assert!(answers.len() >= 20, "only {} probes", answers.len());
    for answer in &answers {
        assert!(is_down_with(answer, "timeout"), "{}", answer.text);
        assert!(
            answer.elapsed < BOUND + SLACK,
            "answered after {:?}",
            answer.elapsed
        );
    }
    for held in [held_after_burst, held] {
        assert!(held <= 1, "{held} connections held to the frozen Redis");
    }
    let resumed = Instant::now();
    app.wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 200)
        .await;
    assert!(
        resumed.elapsed() < Duration::from_secs(1),
        "{:?}",
        resumed.elapsed()
    );
    assert_eq!(connections_to(redis.port), 1);
}

/// A TCP peer on a free port; `greeting` is sent to each client on accept
/// (empty: it never answers). It reads and discards whatever it is sent.
async fn fake_peer(greeting: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if stream.write_all(greeting).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    port
}

#[tokio::test]
async fn unresolvable_closed_silent_and_garbage_endpoints_each_read_a_clean_503() {
    let silent = fake_peer(b"").await;
    let ssh = fake_peer(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let http = fake_peer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let cases = [
        (
            "redis://redis-health-test.invalid:6379".to_owned(),
            "unreachable",
        ),
        (format!("redis://127.0.0.1:{}", free_port()), "unreachable"),
        (format!("redis://127.0.0.1:{silent}"), "timeout"),
        (format!("redis://127.0.0.1:{ssh}"), "error"),
        (format!("redis://127.0.0.1:{http}"), "error"),
    ];
    for (url, reason) in cases {
        let app = spawn_app(fast(&url)).await;
        for _ in 0..2 {
            let answer = app.get("/health/redis").await;
            assert!(is_down_with(&answer, reason), "{url}: {}", answer.text);
            assert!(
                answer.json["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{url}: a short cause: {}",
                answer.text
            );
            assert_eq!(answer.json["checks"]["ping"]["status"], "down", "{url}");
            assert!(
                answer.elapsed < BOUND + SLACK,
                "{url}: answered after {:?}",
                answer.elapsed
            );
            tokio::time::sleep(MAX_AGE).await; // the next probe checks afresh
        }
        assert_eq!(app.get("/livez").await.status, 200, "{url}");
    }
}

/// Open file descriptors and resident memory of a process, from /proc.
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fds")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS");
    (fds, rss_kib * 1024)
}

/// Probes at a steady rate while Redis is killed and restarted every two
/// seconds. `SOAK_SECS` (default 20) sets the length; run e.g.
/// `SOAK_SECS=600 cargo test --release --test faults soak -- --nocapture`
/// for a long soak by hand.
#[tokio::test]
async fn soak_kills_and_restarts_without_a_panic_or_leak() {
    let soak = Duration::from_secs(
        std::env::var("SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_REDIS__TIMEOUT", "300ms"),
        ("REDIS_HEALTH_REDIS__CONNECT_TIMEOUT", "300ms"),
        ("REDIS_HEALTH_CHECKS__MAX_AGE", "50ms"),
        ("REDIS_HEALTH_CHECKS__SAMPLE_INTERVAL", "200ms"),
    ])
    .await;
    let pid = binary.pid();
    let started = Instant::now();
    let stop = started + soak;

    // Three probers, 10 ms apart: two on kept-alive connections, one dialing
    // a new connection per probe.
    let mut probers = tokio::task::JoinSet::new();
    for prober in 0..3 {
        let urls: Vec<String> = [
            "/health/redis",
            "/health/replica",
            "/health/primary",
            "/health",
        ]
        .iter()
        .map(|path| binary.url(path))
        .collect();
        probers.spawn(async move {
            let kept = reqwest::Client::new();
            let mut answers = Vec::new();
            for url in urls.iter().cycle() {
                if Instant::now() >= stop {
                    break;
                }
                let client = if prober == 2 {
                    reqwest::Client::new()
                } else {
                    kept.clone()
                };
                let sent = Instant::now();
                let response = client
                    .get(url)
                    .send()
                    .await
                    .expect("every probe is answered");
                let status = response.status().as_u16();
                let body: serde_json::Value =
                    serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
                answers.push((
                    status,
                    body["reason"].as_str().map(str::to_owned),
                    sent.elapsed(),
                ));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answers
        });
    }

    let mut baseline = None;
    let mut cycles = 0;
    while Instant::now() + Duration::from_secs(2) < stop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        redis.kill();
        tokio::time::sleep(Duration::from_millis(500)).await;
        redis.restart(&[]);
        cycles += 1;
        if cycles == 1 {
            // After one full cycle every lazily built part exists.
            baseline = Some(fds_and_rss(pid));
        }
    }
    let answers: Vec<_> = probers.join_all().await.into_iter().flatten().collect();
    let (base_fds, base_rss) = baseline.expect("at least one kill/restart cycle");
    let (fds, rss) = fds_and_rss(pid);

    let ok = answers.iter().filter(|(status, ..)| *status == 200).count();
    let down = answers.len() - ok;
    eprintln!(
        "soak {soak:?}: {} probes ({ok} ok, {down} down), {cycles} kills; fds {base_fds} -> {fds}, \
         RSS {} -> {} KiB",
        answers.len(),
        base_rss / 1024,
        rss / 1024
    );
    assert!(ok > 0 && down > 0, "both states were seen");
    for (status, reason, elapsed) in &answers {
        assert!(
            *status == 200
                || (*status == 503 && matches!(reason.as_deref(), Some("unreachable" | "timeout"))),
            "{status} {reason:?}"
        );
        assert!(
            *elapsed < Duration::from_secs(1),
            "a probe took {elapsed:?}"
        );
    }
    assert!(
        fds <= base_fds + 8,
        "open fds grew from {base_fds} to {fds}"
    );
    assert!(
        rss <= base_rss + 3 * 1024 * 1024,
        "RSS grew from {base_rss} to {rss} bytes"
    );
    // The same process, still serving, with no panic logged.
    assert_eq!(binary.get("/livez").await.0, 200);
    let logs = binary.stop();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test]
async fn a_frozen_tls_server_is_a_timeout_within_the_bound_handshake_included() {
    let pki = crate::tls::named_pki();
    let (redis, port) = pki.redis("server", false);
    let config = pki.trusting(
        &crate::tls::rediss_url(port),
        &format!(
            "{}redis.timeout = \"300ms\"\nredis.connect_timeout = \"300ms\"\n\
             checks.max_age = \"10ms\"",
            crate::tls::NAMED
        ),
    );
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    redis.signal("STOP");
    // The first probe times out on the kept connection (redis.timeout); the
    // second dials again, and the kernel completes TCP while the TLS
    // handshake hangs (redis.connect_timeout, then a plain PING that tells a
    // hung server from a plain port, within redis.timeout).
    for (attempt, bound) in [(0, 300), (1, 300 + 300)] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = app.get("/health/redis").await;
        assert_eq!(
            answer.json["reason"], "timeout",
            "{attempt}: {}",
            answer.text
        );
        assert!(
            answer.elapsed < Duration::from_millis(bound + 200),
            "{attempt}: answered after {:?}",
            answer.elapsed
        );
    }
    redis.signal("CONT");
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let app = spawn_app(settings(&format!(
        "redis://127.0.0.1:{}",
        crate::support::free_port()
    )))
    .await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "unreachable"), "{}", answer.text);
    assert_eq!(answer.json["status"], "down");
    assert_eq!(answer.json["checks"]["ping"]["reason"], "unreachable");
    assert_eq!(answer.json["error"], "Connection refused");
}

#[tokio::test]
async fn a_host_that_does_not_resolve_is_unreachable() {
    let app = spawn_app(settings("redis://no-such-host.invalid:6379")).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "unreachable"), "{}", answer.text);
}

#[tokio::test]
async fn a_hung_server_is_a_timeout_within_the_bound() {
    let redis = TestRedis::start();
    let config = settings_with(
        &redis.url(),
        "redis.timeout = \"300ms\"\nchecks.max_age = \"10ms\"",
    );
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    let addr = redis.addr();
    let sleeper = std::thread::spawn(move || {
        crate::support::resp_pipeline(addr, &["DEBUG", "SLEEP", "2"], 1)
    });
    // Probes before the sleep starts still answer 200; the first one after
    // must be a timeout, answered within the bound.
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert!(is_down_with(&answer, "timeout"), "{}", answer.text);
    assert!(
        answer.elapsed < Duration::from_millis(300 + 200),
        "answered after {:?}",
        answer.elapsed
    );
    let _ = sleeper.join();
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
}

#[tokio::test]
async fn sidecar_starts_while_redis_is_down_and_recovers_by_itself() {
    let mut redis = TestRedis::start();
    redis.kill();
    let config = settings_with(&redis.url(), "checks.max_age = \"100ms\"");
    let app = spawn_app(config).await;

    assert!(is_down_with(&app.get("/health/redis").await, "unreachable"));
    redis.restart(&[]);
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
}

#[tokio::test]
async fn not_alive_when_frozen_or_killed() {
    let mut redis = TestRedis::start();
    let config = settings_with(
        &redis.url(),
        "redis.timeout = \"300ms\"\nchecks.max_age = \"10ms\"",
    );

    let app = spawn_app(config).await;
    let alive = app.get("/health/alive").await;
    assert_eq!((alive.status, &alive.json["status"]), (200, &"ok".into()));

    redis.signal("STOP");
    let frozen = app
        .wait_for("/health/alive", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(frozen.json["reason"], "timeout", "{}", frozen.text);
    redis.signal("CONT");
    app.wait_for("/health/alive", Duration::from_secs(3), |a| a.status == 200)
        .await;

    redis.kill();
    let killed = app
        .wait_for("/health/alive", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(killed.json["reason"], "unreachable", "{}", killed.text);
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
    let config = settings_with(&format!("redis://{proxy}"), "checks.max_age = \"10ms\"");
    let (timeout, connect_timeout) = (
        config.redis.timeout.get(),
        config.redis.connect_timeout.get(),
    );
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
