//! Running beside other daemons: Consul's warning code, and systemd's empty
//! credential for a Redis without a password.

use crate::support::*;

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

/// systemd's unit hands an empty credential when there is no password
/// file: the sidecar must then send no AUTH, as with no file at all.
#[tokio::test]
async fn an_empty_password_file_means_no_password() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("redis-password");
    std::fs::write(&file, "\n").expect("write password file");
    let config = settings_with(&redis.url(), &password_file_toml(&file));
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(redis.calls(&["auth"]), vec![0], "no AUTH was sent");
}
