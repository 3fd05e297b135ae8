//! Faults a sidecar must survive and report truthfully: each test asserts the
//! status and reason a probe sees, and how fast.

use std::time::{Duration, Instant};

use crate::support::{TestBinary, TestRedis, free_port, is_down_with, settings, spawn_app};
use redis_health::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// What bounds a probe that has to reconnect (the README's rule).
const BOUND: Duration = Duration::from_millis(300 + 300);
const MAX_AGE: Duration = Duration::from_millis(200);
/// Scheduling and polling headroom on a busy 2-core CI machine.
const SLACK: Duration = Duration::from_millis(300);

fn fast(url: &str) -> Settings {
    let mut config = settings(url);
    config.redis.timeout = TIMEOUT;
    config.redis.connect_timeout = CONNECT_TIMEOUT;
    config.checks.max_age = MAX_AGE;
    config
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
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(fast(&redis.url())).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    redis.signal("STOP");
    tokio::time::sleep(MAX_AGE).await; // the cached ok expires
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
    let held = crate::support::connections_to(redis.port);
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
    assert!(held <= 1, "{held} connections held to the frozen Redis");
    let resumed = Instant::now();
    app.wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 200)
        .await;
    assert!(
        resumed.elapsed() < Duration::from_secs(1),
        "{:?}",
        resumed.elapsed()
    );
}

#[tokio::test]
async fn a_new_password_reads_auth_failed_until_the_password_file_is_updated() {
    const OLD: &str = "old-password-1f4e";
    const NEW: &str = "new-password-9b2c";
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb", "--requirepass", OLD]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{OLD}\n")).expect("write password");
    let mut config = fast(&redis.url());
    config.redis.password_file = Some(file.clone());
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    // The last --requirepass wins: the server comes back with the new one.
    redis.restart(&["--requirepass", NEW]);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| {
            is_down_with(a, "auth_failed")
        })
        .await;
    for secret in [OLD, NEW] {
        assert!(!answer.text.contains(secret), "{}", answer.text);
    }
    // It stays so, and the sidecar stays up, while the file is stale.
    tokio::time::sleep(MAX_AGE).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "auth_failed"), "{}", answer.text);
    assert_eq!(app.get("/livez").await.status, 200);

    // The rotated secret lands: the next reconnect reads it, no restart.
    std::fs::write(&file, format!("{NEW}\n")).expect("rotate password");
    let rotated = Instant::now();
    app.wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 200)
        .await;
    assert!(rotated.elapsed() < MAX_AGE + Duration::from_secs(1));
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

/// The ACL README.md documents for the sidecar's user.

#[tokio::test]
async fn the_documented_acl_is_enough_and_less_fails_with_noperm_and_no_secret() {
    const PASSWORD: &str = "acl-password-7d1a";
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let setuser = |user: &str, rules: &[&str]| {
        let mut args = vec!["ACL", "SETUSER", user, "on", ">acl-password-7d1a"];
        args.extend_from_slice(rules);
        assert_eq!(redis.cmd(&args), "OK");
    };
    setuser("health", crate::support::LEAST_PRIVILEGE);
    setuser("pingonly", &["-@all", "+ping"]);
    let url = |user: &str| format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", redis.port);

    // A database in the URL must not make the sidecar SELECT (not allowed).
    let app = spawn_app(fast(&format!("{}/2", url("health")))).await;
    app.assert_every_route_ok().await;
    let answer = app.get("/health").await;
    assert_eq!(answer.json["role"], "master", "{}", answer.text);
    assert_eq!(
        answer.json["checks"]["memory"]["status"], "ok",
        "{}",
        answer.text
    );

    let app = spawn_app(fast(&url("pingonly"))).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "error"), "{}", answer.text);
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("NOPERM"), "{}", answer.text);
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
    // What Redis refused, per user: INFO for the lesser one; nothing for
    // the documented one.
    let refused = refused_commands(&redis.cmd(&["ACL", "LOG"]));
    assert!(
        refused.contains(&("pingonly".to_owned(), "info".to_owned())),
        "{refused:?}"
    );
    let health: Vec<_> = refused
        .iter()
        .filter(|(user, _)| user == "health")
        .collect();
    assert!(health.is_empty(), "{refused:?}");
}

/// (username, command) of each `ACL LOG` entry, from its flattened reply.
fn refused_commands(log: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let (mut user, mut object) = (None, None);
    for pair in log.lines().collect::<Vec<_>>().chunks(2) {
        match pair {
            ["username", value] => user = Some(value.to_string()),
            ["object", value] => object = Some(value.to_string()),
            _ => {}
        }
        if let (Some(u), Some(o)) = (&user, &object) {
            entries.push((u.clone(), o.clone()));
            (user, object) = (None, None);
        }
    }
    entries
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
