//! What each route answers: every route on a healthy node, HEAD, livez and
//! unknown paths, `fail_at` and the warn code moving only the HTTP code,
//! disabled checks (never the role check), and concurrent probes sharing one
//! check.

use std::time::Duration;

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

#[tokio::test]
async fn fail_at_moves_only_the_http_code() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let config = settings_with(&redis.url(), "routes.all.fail_at = \"warn\"");
    let app = spawn_app(config).await;

    // The default (degraded) serves a warning; the query can make it fail.
    let default = app.get("/health/redis").await;
    assert_eq!(default.status, 200, "{}", default.text);
    assert_eq!(default.json["reason"], "memory_high");
    let strict = app.get("/health/redis?fail_at=warn").await;
    assert_eq!(strict.status, 503, "{}", strict.text);
    assert_eq!(strict.json["status"], "warn");
    assert_eq!(strict.json["checks"], default.json["checks"]);

    // routes.all.fail_at = warn from config; the query can relax it again.
    assert_eq!(app.get("/health").await.status, 503);
    assert_eq!(app.get("/health?fail_at=degraded").await.status, 200);
    // Other parameters are ignored.
    assert_eq!(app.get("/health/redis?cache_buster=123").await.status, 200);

    // Memory pressure is critical: fail_at=down keeps the node in.
    redis.fill_to_ratio(1.05);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "memory_pressure");
    let lenient = app.get("/health/redis?fail_at=down").await;
    assert_eq!(lenient.status, 200, "{}", lenient.text);
    assert_eq!(lenient.json["status"], "critical");
}

#[tokio::test]
async fn a_bad_fail_at_query_is_a_400_with_a_json_body() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    for query in ["fail_at=sometimes", "fail_at=ok", "fail_at="] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_eq!(answer.json["status"], "error", "{query}");
        assert!(
            answer.json["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("fail_at:")),
            "{}",
            answer.text
        );
    }
}

#[tokio::test]
async fn fail_at_from_the_environment() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    redis.fill_to_ratio(0.87);
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_ROUTES__REDIS__FAIL_AT", "warn"),
    ])
    .await;
    let (status, body) = binary.get("/health/redis").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with(r#"{"status":"warn","reason":"memory_high""#));
    // Other routes keep the default.
    assert_eq!(binary.get("/health").await.0, 200);
}

#[tokio::test]
async fn a_disabled_check_is_absent_and_costs_no_command() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "[checks]\nmax_age = \"10ms\"\nsample_interval = \"600s\"\n\
         hit_rate.enabled = false\nslowlog.warn_above = 1\nslowlog.enabled = false",
    );
    let app = spawn_app(config).await;

    let before = redis.calls(&["slowlog|get", "ping"]);
    for _ in 0..3 {
        let answer = app.get("/health").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        for gone in ["hit_rate", "slowlog"] {
            assert!(
                answer.json["checks"].get(gone).is_none(),
                "{gone}: {}",
                answer.text
            );
        }
        assert!(answer.json["checks"].get("memory").is_some());
        tokio::time::sleep(Duration::from_millis(20)).await; // let max_age pass
    }
    let after = redis.calls(&["slowlog|get", "ping"]);
    assert!(after[1] > before[1], "the checks ran");
    assert_eq!(after[0], before[0], "no SLOWLOG GET from a disabled check");
}

#[test]
fn a_bad_fail_at_or_enabled_in_config_exits_2_naming_the_key() {
    for (var, value, key) in [
        (
            "REDIS_HEALTH_ROUTES__PRIMARY__FAIL_AT",
            "ok",
            "routes.primary.fail_at",
        ),
        (
            "REDIS_HEALTH_ROUTES__ALIVE__FAIL_AT",
            "down",
            "routes.alive",
        ),
        (
            "REDIS_HEALTH_CHECKS__HIT_RATE__ENABLED",
            "maybe",
            "checks.hit_rate.enabled",
        ),
    ] {
        let output = crate::support::run_binary(&[], &[(var, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{var}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("invalid config: {key}")),
            "{var} should name {key}: {stderr}"
        );
    }
}

#[test]
fn the_role_check_cannot_be_disabled() {
    // Without it /health/primary would answer 200 on every replica.
    crate::support::assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__ROLE__ENABLED", "false")],
        "checks.role",
    );
}

#[tokio::test]
async fn a_route_in_warn_answers_its_warn_code() {
    // No maxmemory: /health/redis is warn (no_maxmemory), which passes.
    let redis = TestRedis::start();
    let config = settings_with(
        &redis.url(),
        "checks.memory.warn_no_maxmemory = true\nroutes.redis.warn_code = 429",
    );
    let app = spawn_app(config).await;

    let warn = app.get("/health/redis").await;
    assert_eq!(warn.status, 429, "{}", warn.json);
    assert_eq!(warn.json["status"], "warn");
    // Every other route keeps 200 for its own warn.
    assert_eq!(app.get("/health").await.status, 200);
    // At or above fail_at the route fails as before: 503, never the warn code.
    assert_eq!(app.get("/health/redis?fail_at=warn").await.status, 503);

    // An ok route answers 200 whatever its warn_code.
    redis.cmd(&["CONFIG", "SET", "maxmemory", "1gb"]);
    let ok = app
        .wait_for("/health/redis", std::time::Duration::from_secs(3), |a| {
            a.json["status"] == "ok"
        })
        .await;
    assert_eq!(ok.status, 200);
}

#[test]
fn the_warn_code_comes_from_the_environment_and_only_2xx_or_429_is_valid() {
    let redis = TestRedis::start();
    let url = redis.url();
    let ok = run_binary(
        &["check"],
        &[
            ("REDIS_HEALTH_REDIS__URL", url.as_str()),
            ("REDIS_HEALTH_ROUTES__REDIS__WARN_CODE", "429"),
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    for code in ["404", "503", "199", "300", "70000", "-1", "teapot"] {
        assert_config_error(
            &["config"],
            &[("REDIS_HEALTH_ROUTES__REDIS__WARN_CODE", code)],
            "routes.redis.warn_code",
        );
    }
}
