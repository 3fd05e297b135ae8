//! The probe routes against real redis-server processes.

use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn healthy_node_answers_ok_on_every_route() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(settings(&redis.url())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.starts_with(r#"{"status":"ok""#),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["role"], "master");
    assert_eq!(answer.json["reasons"], serde_json::json!([]));
    assert!(answer.json.get("reason").is_none());
    for check in ["ping", "memory", "hit_rate", "persistence"] {
        assert_eq!(
            answer.json["checks"][check]["status"], "ok",
            "{check}: {}",
            answer.text
        );
    }
    assert!(answer.json["checks"]["memory"]["max_bytes"].as_u64() == Some(100 * 1024 * 1024));
    assert!(
        answer.json["checked_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(answer.json["age_ms"].is_u64());

    for path in ["/health/replica", "/health/primary", "/health"] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert_eq!(answer.json["status"], "ok", "{path}");
    }
    let all = app.get("/health").await;
    assert!(all.json["checks"].get("replication").is_some());
    assert!(all.json["checks"].get("role").is_none());
    let primary = app.get("/health/primary").await;
    assert!(primary.json["checks"].get("role").is_some());
    assert!(primary.json["checks"].get("memory").is_none());
}

#[tokio::test]
async fn livez_and_unknown_requests() {
    // /livez needs no Redis at all: point the sidecar at a closed port.
    let app = spawn_app(settings(&format!(
        "redis://127.0.0.1:{}",
        crate::support::free_port()
    )))
    .await;
    let livez = app.get("/livez").await;
    assert_eq!(
        (livez.status, livez.text.as_str()),
        (200, r#"{"status":"ok"}"#)
    );

    let missing = app.get("/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"], "not found");

    let client = reqwest::Client::new();
    let post = client
        .post(format!("http://{}/health/redis", app.addr))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status().as_u16(), 405);
    let body: serde_json::Value =
        serde_json::from_str(&post.text().await.unwrap_or_default()).expect("405 body is JSON");
    assert_eq!(body["error"], "method not allowed");

    let head = client
        .head(format!("http://{}/livez", app.addr))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert!(head.text().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn head_gives_the_status_without_a_body() {
    let app = spawn_app(settings(&format!(
        "redis://127.0.0.1:{}",
        crate::support::free_port()
    )))
    .await;
    let head = reqwest::Client::new()
        .head(format!("http://{}/health/redis", app.addr))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 503);
    assert!(head.text().await.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn memory_pressure_under_noeviction_only_memory_high_under_allkeys_lru() {
    let redis = TestRedis::start();
    // Just above used_memory: a ratio above fail_ratio.
    redis.fill_to_ratio(0.985);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical");
    assert_eq!(answer.json["reason"], "memory_pressure");
    assert_eq!(answer.json["checks"]["memory"]["policy"], "noeviction");
    assert!(
        answer.json["checks"]["memory"]["ratio"]
            .as_f64()
            .is_some_and(|r| r >= 0.95)
    );

    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]),
        "OK"
    );
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    assert_eq!(answer.json["status"], "warn");
    assert_eq!(answer.json["reason"], "memory_high");
    assert_eq!(answer.json["checks"]["memory"]["status"], "warn");
}

#[tokio::test]
async fn memory_high_warns_but_serves() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let app = spawn_app(settings(&redis.url())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer
            .text
            .starts_with(r#"{"status":"warn","reason":"memory_high""#),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["checks"]["memory"]["status"], "warn");
}

#[tokio::test]
async fn persistence_failure_is_critical() {
    let redis = TestRedis::start();
    let data = redis.dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    // `dir` is a protected config in Redis 7: the server must allow it.
    let mut redis = redis;
    redis.restart(&["--enable-protected-configs", "yes"]);
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "dir", &data.to_string_lossy()]),
        "OK"
    );
    std::fs::remove_dir(&data).expect("remove data dir");
    assert!(redis.cmd(&["BGSAVE"]).contains("Background saving started"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.info_field("rdb_last_bgsave_status").as_deref() != Some("err") {
        assert!(Instant::now() < deadline, "BGSAVE did not fail");
        std::thread::sleep(Duration::from_millis(20));
    }
    let app = spawn_app(settings(&redis.url())).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical");
    assert_eq!(answer.json["reason"], "persistence_failed");
    assert_eq!(
        answer.json["checks"]["persistence"]["rdb_last_bgsave_status"],
        "err"
    );
}

#[tokio::test]
async fn loading_is_told_apart_from_a_dead_server() {
    let mut redis = TestRedis::start();
    redis.restart_loading();
    let app = spawn_app(settings(&redis.url())).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "loading"), "{}", answer.text);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("LOADING"))
    );
}

#[tokio::test]
async fn a_running_script_is_busy() {
    let redis = TestRedis::with_args(&["--lua-time-limit", "50"]);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    let dialled = || -> u64 {
        redis
            .info_field("total_connections_received")
            .and_then(|n| n.parse().ok())
            .expect("total_connections_received")
    };
    let before = dialled();

    let addr = redis.addr();
    let script = std::thread::spawn(move || {
        crate::support::resp_pipeline(addr, &["EVAL", "while true do end", "0"], 1)
    });
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "busy", "{}", answer.text);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await; // past max_age
        assert_eq!(app.get("/health/redis").await.json["reason"], "busy");
    }
    assert!(redis.cmd(&["SCRIPT", "KILL"]).starts_with("OK"));
    let _ = script.join();
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    // The script's, SCRIPT KILL's and this INFO's connections: the sidecar
    // kept its own through BUSY rather than dialling again every check.
    assert_eq!(dialled() - before, 3);
}

#[tokio::test]
async fn hit_rate_is_windowed_low_after_long_history_of_hits_then_clears() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let window = Duration::from_secs(2);
    let config = settings_with(
        &redis.url(),
        &format!(
            "[checks]\nmax_age = \"50ms\"\nsample_interval = \"100ms\"\n\
             hit_rate.window = {}\nhit_rate.min_lookups = 100",
            toml_duration(window)
        ),
    );
    let app = spawn_app(config).await;

    // A first check gives the window its baseline; then a long history of hits...
    assert_eq!(app.get("/health/redis").await.status, 200);
    assert_eq!(redis.cmd(&["SET", "present", "1"]), "OK");
    redis.pipeline(&["GET", "present"], 10_000);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| {
            a.json["checks"]["hit_rate"]["lookups"] == 10_000
        })
        .await;
    assert_eq!(answer.json["checks"]["hit_rate"]["ratio"], 1.0);
    // ...that leaves the window.
    app.wait_for("/health/redis", window * 3, |a| {
        a.json["checks"]["hit_rate"]["lookups"] == 0
    })
    .await;

    // Lifetime ratio stays above 0.9 (10000 / 11000); the window sees only misses.
    redis.pipeline(&["GET", "absent"], 1_000);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "low_hit_rate", "{}", answer.text);
    assert_eq!(answer.json["status"], "degraded");
    assert_eq!(answer.json["checks"]["hit_rate"]["ratio"], 0.0);
    assert_eq!(answer.json["checks"]["hit_rate"]["lookups"], 1_000);

    // With no lookups the misses leave the window and the check clears.
    let answer = app
        .wait_for("/health/redis", window * 3, |a| a.status == 200)
        .await;
    assert_eq!(answer.json["checks"]["hit_rate"]["status"], "ok");
}

#[tokio::test]
async fn concurrent_probes_share_one_check() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "checks.max_age = \"300ms\"\nchecks.sample_interval = \"600s\"",
    );
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    tokio::time::sleep(Duration::from_millis(350)).await; // let that check expire

    let before = redis.calls(&["ping", "info"]);
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        probes.spawn(async move { app.get("/health/redis").await.status });
    }
    let statuses = probes.join_all().await;
    assert_eq!(statuses, vec![200; 50]);
    let after = redis.calls(&["ping", "info"]);
    assert_eq!(after[0] - before[0], 1, "one PING for 50 probes");
    // One INFO for the check, plus the INFO commandstats read before.
    assert_eq!(after[1] - before[1], 2, "one INFO for 50 probes");
}
