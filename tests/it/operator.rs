//! Operator control: per-route failure levels, disabled checks, the Redis
//! liveness route, and the slow-log and RDB-age signals.

use std::time::Duration;

use crate::support::*;

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
    redis.fill_to_ratio(0.985);
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

#[tokio::test]
async fn slow_commands_warn_when_the_slow_log_grows() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "[checks]\nmax_age = \"10ms\"\nsample_interval = \"100ms\"\nslowlog.warn_above = 10",
    );
    let app = spawn_app(config).await;

    let quiet = app.get("/health/redis").await;
    assert_eq!(quiet.status, 200, "{}", quiet.text);
    assert_eq!(quiet.json["checks"]["slowlog"]["status"], "ok");

    // Every command is slow from now on.
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        "OK"
    );
    redis.pipeline(&["GET", "k"], 50);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| {
            a.json["reason"] == "slow_commands"
        })
        .await;
    assert_eq!(answer.status, 200, "a warning serves: {}", answer.text);
    assert_eq!(answer.json["checks"]["slowlog"]["status"], "warn");
    assert!(
        answer.json["checks"]["slowlog"]["slow_entries"]
            .as_u64()
            .is_some_and(|n| n > 10),
        "{}",
        answer.text
    );
    assert!(redis.calls(&["slowlog|get"])[0] > 0);
}

#[tokio::test]
async fn unsaved_changes_older_than_max_rdb_age_are_rdb_stale() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "checks.max_age = \"10ms\"\nchecks.persistence.max_rdb_age = \"1s\"",
    );
    let app = spawn_app(config).await;

    // Nothing unsaved: however old the last save, nothing is at risk.
    assert_eq!(redis.cmd(&["SAVE"]), "OK");
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["checks"]["persistence"]["status"], "ok");

    assert_eq!(redis.cmd(&["SET", "unsaved", "1"]), "OK");
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), |a| {
            a.json["reason"] == "rdb_stale"
        })
        .await;
    assert_eq!(answer.status, 200, "a warning serves: {}", answer.text);
    assert_eq!(
        answer.json["checks"]["persistence"]["rdb_changes_since_last_save"],
        1
    );
    assert!(
        answer.json["checks"]["persistence"]["rdb_last_save_age_s"]
            .as_u64()
            .is_some_and(|age| age > 1)
    );

    assert_eq!(redis.cmd(&["SAVE"]), "OK");
    app.wait_for("/health/redis", Duration::from_secs(2), |a| {
        a.json["checks"]["persistence"]["status"] == "ok"
    })
    .await;
}

#[tokio::test]
async fn alive_while_loading() {
    let mut redis = TestRedis::start();
    redis.restart_loading();
    let config = settings_with(
        &redis.url(),
        "redis.timeout = \"300ms\"\nchecks.max_age = \"10ms\"",
    );
    let app = spawn_app(config).await;

    let ready = app.get("/health/redis").await;
    assert!(is_down_with(&ready, "loading"), "{}", ready.text);
    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
    assert_eq!(alive.json["status"], "down");
    assert_eq!(alive.json["reason"], "loading");
    assert!(alive.json["checks"].get("memory").is_none());
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
