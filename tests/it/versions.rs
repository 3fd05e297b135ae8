//! The core scenarios against every server build this machine can install:
//! Redis 7.0 (Debian), Redis 6.2 and Valkey 9 (PyPI wheels; see
//! `.ci/install-test-tools`).

use std::time::Duration;

use crate::support::*;

async fn core_scenarios(server: Server) {
    // Healthy.
    let primary = TestRedis::start_with(server, &["--maxmemory", "100mb"]);
    let config = settings_with(&primary.url(), "checks.max_age = \"50ms\"");
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{server:?}: {}", answer.text);
    assert!(
        answer.text.starts_with(r#"{"status":"ok""#),
        "{server:?}: {}",
        answer.text
    );
    assert_eq!(answer.json["role"], "master");
    assert_eq!(app.get("/health/primary").await.status, 200);

    // A replica: link up, and not the primary.
    let port = primary.port.to_string();
    let replica = TestRedis::start_with(server, &["--replicaof", "127.0.0.1", &port]);
    let config = settings_with(&replica.url(), "checks.max_age = \"50ms\"");
    let replica_app = spawn_app(config).await;
    let answer = replica_app
        .wait_for("/health/replica", Duration::from_secs(10), |a| {
            a.status == 200
        })
        .await;
    assert_eq!(
        answer.json["checks"]["replication"]["master_link_status"], "up",
        "{server:?}"
    );
    let answer = replica_app.get("/health/primary").await;
    assert_eq!(
        (answer.status, &answer.json["reason"]),
        (503, &"not_primary".into()),
        "{server:?}"
    );

    // Memory pressure under noeviction.
    primary.fill_to_ratio(1.05);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(
        answer.json["reason"], "memory_pressure",
        "{server:?}: {}",
        answer.text
    );
}

#[tokio::test]
async fn redis_7_0() {
    core_scenarios(Server::Redis7).await;
}

#[tokio::test]
async fn redis_6_2() {
    core_scenarios(Server::Redis62).await;
}

#[tokio::test]
async fn redis_8_2() {
    core_scenarios(Server::Redis82).await;
}

#[tokio::test]
async fn valkey_9() {
    core_scenarios(Server::Valkey).await;
}
