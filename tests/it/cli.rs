//! The binary: configuration layers, bad config, logs.

use crate::support::*;

#[test]
fn a_value_of_the_wrong_type_exits_2() {
    assert_config_error(&[], &[("REDIS_HEALTH_LOG__LEVEL", "loud=!")], "log.level");
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__HIT_RATE__MIN_LOOKUPS", "many")],
        "checks.hit_rate.min_lookups",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__TIMEOUT", "soon")],
        "redis.timeout",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_SERVER__LISTEN", "nowhere")],
        "server.listen",
    );
}

#[test]
fn a_ratio_outside_zero_to_one_exits_2() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "1.5")],
        "checks.memory.fail_ratio",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__CLIENTS__WARN_RATIO", "-0.1")],
        "checks.clients.warn_ratio",
    );
}

#[test]
fn contradictory_thresholds_exit_2() {
    assert_config_error(
        &[],
        &[
            ("REDIS_HEALTH_CHECKS__MEMORY__WARN_RATIO", "0.9"),
            ("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "0.8"),
        ],
        "checks.memory.warn_ratio",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__HIT_RATE__WARN_BELOW", "0.5")],
        "checks.hit_rate.warn_below",
    );
}

#[test]
fn a_zero_limit_or_duration_exits_2() {
    for (var, key, value) in [
        (
            "REDIS_HEALTH_SERVER__MAX_CONNECTIONS",
            "server.max_connections",
            "0",
        ),
        (
            "REDIS_HEALTH_SERVER__MAX_CONNECTIONS",
            "server.max_connections",
            "-1",
        ),
        (
            "REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT",
            "server.header_read_timeout",
            "0s",
        ),
        (
            "REDIS_HEALTH_SERVER__SHUTDOWN_TIMEOUT",
            "server.shutdown_timeout",
            "0ms",
        ),
        ("REDIS_HEALTH_REDIS__TIMEOUT", "redis.timeout", "0s"),
        (
            "REDIS_HEALTH_REDIS__CONNECT_TIMEOUT",
            "redis.connect_timeout",
            "0s",
        ),
        (
            "REDIS_HEALTH_CHECKS__TLS__WARN_BEFORE",
            "checks.tls.warn_before",
            "0d",
        ),
    ] {
        assert_config_error(&[], &[(var, value)], key);
    }
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT", "later")],
        "server.header_read_timeout",
    );
}

#[test]
fn a_url_that_is_not_redis_exits_2_without_echoing_the_password() {
    let output = run_binary(
        &[],
        &[("REDIS_HEALTH_REDIS__URL", "http://u:hunter2@localhost")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid config: redis.url:"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_2_from_env_and_from_file() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__MEMORY__WARN_RATE", "0.5")],
        "checks.memory.warn_rate",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    std::fs::write(&file, "[redis]\ntimeout = \"1s\"\nhots = \"x\"\n").expect("write config");
    let path = file.to_string_lossy().into_owned();
    assert_config_error(&["serve", "--config", &path], &[], "redis.hots");
    assert_config_error(&[], &[("REDIS_HEALTH_CONFIG", &path)], "redis.hots");
}

#[test]
fn an_unreadable_password_file_or_config_file_exits_2() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__PASSWORD_FILE", "/nonexistent/pw")],
        "redis.password_file",
    );
    assert_config_error(
        &["--config", "/nonexistent/health.toml"],
        &[],
        "/nonexistent/health.toml",
    );
}

/// A password pasted where its file's path belongs is not echoed back.
#[test]
fn a_password_given_as_the_password_file_is_never_printed() {
    let output = run_binary(
        &["config"],
        &[("REDIS_HEALTH_REDIS__PASSWORD_FILE", "redis://:hunter2@h")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("redis.password_file: cannot read the file"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
}

#[test]
fn version_and_help() {
    let version = run_binary(&["--version"], &[]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("redis-health "));
    let help = run_binary(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
}

#[tokio::test]
async fn file_then_env_layers_are_honoured() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    // The file sets a warn ratio every node exceeds; the env then lifts fail_ratio.
    std::fs::write(
        &file,
        "[checks.memory]\nwarn_ratio = 0.0\nfail_ratio = 0.5\n",
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_CONFIG", &path),
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "0.9"),
    ])
    .await;
    let (status, body) = binary.get("/health/redis").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(r#"{"status":"warn","reason":"memory_high""#),
        "{body}"
    );
}

#[tokio::test]
async fn no_password_in_bodies_or_trace_logs() {
    const PASSWORD: &str = "correct-horse-battery-staple";
    const WRONG: &str = "wrong-horse-battery-staple";
    let redis = TestRedis::with_args(&["--requirepass", PASSWORD, "--maxmemory", "100mb"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{WRONG}\n")).expect("write password");
    let wrong_url = format!("redis://:{WRONG}@127.0.0.1:{}", redis.port);
    let right_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let file = password_file.to_string_lossy().into_owned();
    let plain_url = redis.url();

    let right_file = dir.path().join("right-password");
    std::fs::write(&right_file, format!("{PASSWORD}\n")).expect("write password");
    let right_file = right_file.to_string_lossy().into_owned();

    for (envs, expected) in [
        (vec![("REDIS_HEALTH_REDIS__URL", wrong_url.as_str())], 503),
        (vec![("REDIS_HEALTH_REDIS__URL", right_url.as_str())], 200),
        (
            vec![
                ("REDIS_HEALTH_REDIS__URL", plain_url.as_str()),
                ("REDIS_HEALTH_REDIS__PASSWORD_FILE", file.as_str()),
            ],
            503,
        ),
        (
            vec![
                ("REDIS_HEALTH_REDIS__URL", plain_url.as_str()),
                ("REDIS_HEALTH_REDIS__PASSWORD_FILE", right_file.as_str()),
            ],
            200,
        ),
    ] {
        let mut envs = envs;
        envs.push(("RUST_LOG", "trace"));
        let binary = TestBinary::start(&envs).await;
        let (status, body) = binary.get("/health/redis").await;
        let (_, metrics) = binary.get("/metrics").await;
        let logs = binary.stop();
        assert!(metrics.contains("redis_health_redis_up"), "{metrics}");
        assert_eq!(status, expected, "{body}");
        if expected == 503 {
            assert!(body.contains(r#""reason":"auth_failed""#), "{body}");
        }
        assert!(!logs.is_empty(), "trace logging produced output");
        for secret in [PASSWORD, WRONG] {
            assert!(!body.contains(secret), "password in body: {body}");
            assert!(!metrics.contains(secret), "password in /metrics: {metrics}");
            assert!(!logs.contains(secret), "password in logs:\n{logs}");
        }
    }
}

#[tokio::test]
async fn json_logs_say_once_when_a_route_changes_status() {
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_LOG__FORMAT", "json"),
        ("REDIS_HEALTH_CHECKS__MAX_AGE", "10ms"),
    ])
    .await;
    for _ in 0..5 {
        assert_eq!(binary.get("/health/redis").await.0, 200);
    }
    redis.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while binary.get("/health/redis").await.0 != 503 {
        assert!(std::time::Instant::now() < deadline, "never went down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(binary.get("/health/redis").await.0, 503);
    }
    let logs = binary.stop();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let changes: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "health status changed")
        .filter(|l| l["fields"]["route"] == "/health/redis")
        .map(|l| {
            let field = |k: &str| l["fields"][k].as_str().unwrap_or_default().to_owned();
            (field("to"), field("reason"))
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("ok".to_owned(), String::new()),
            ("down".to_owned(), "unreachable".to_owned())
        ],
        "{logs}"
    );
}
