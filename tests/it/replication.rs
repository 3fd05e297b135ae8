//! Replication judged for the node's own role, against a real primary and replica.

use std::time::Duration;

use crate::support::*;
use redis_health::config::Settings;

fn fast(url: &str) -> Settings {
    fast_with(url, "")
}

fn fast_with(url: &str, extra: &str) -> Settings {
    settings_with(url, &format!("checks.max_age = \"50ms\"\n{extra}"))
}

#[tokio::test]
async fn replica_is_healthy_then_disconnected_then_promoted() {
    let mut primary = TestRedis::start();
    let replica = primary.replica(&[]);
    let app = spawn_app(fast(&replica.url())).await;

    let answer = app
        .wait_for("/health/replica", Duration::from_secs(10), |a| {
            a.status == 200
        })
        .await;
    assert_eq!(answer.json["role"], "replica");
    assert_eq!(
        answer.json["checks"]["replication"]["master_link_status"],
        "up"
    );

    let answer = app.get("/health/primary").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "not_primary");
    assert_eq!(answer.json["status"], "degraded");

    primary.kill();
    let answer = app
        .wait_for("/health/replica", Duration::from_secs(5), |a| {
            a.status == 503
        })
        .await;
    assert_eq!(
        answer.json["reason"], "replica_disconnected",
        "{}",
        answer.text
    );

    // Failover: the replica is promoted and /health/primary follows.
    assert_eq!(replica.cmd(&["REPLICAOF", "NO", "ONE"]), "OK");
    let answer = app
        .wait_for("/health/primary", Duration::from_secs(2), |a| {
            a.status == 200
        })
        .await;
    assert_eq!(answer.json["role"], "master");
    assert_eq!(app.get("/health/replica").await.status, 200);
}

#[tokio::test]
async fn primary_with_too_few_replicas_until_one_joins() {
    let primary = TestRedis::start();
    let config = fast_with(&primary.url(), "checks.replication.min_replicas = 1");

    let app = spawn_app(config).await;

    // A durability alert for /health; reads and writes on the primary are
    // fine, so neither /health/replica nor /health/redis fails for it.
    let answer = app.get("/health").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "too_few_replicas");
    assert_eq!(answer.json["checks"]["replication"]["replicas_online"], 0);
    let replica_route = app.get("/health/replica").await;
    assert_eq!(replica_route.status, 200, "{}", replica_route.text);
    assert_eq!(
        replica_route.json["checks"]["replication"]["replicas_online"],
        0
    );
    assert_eq!(app.get("/health/redis").await.status, 200);

    let _replica = primary.replica(&[]);
    let answer = app
        .wait_for("/health", Duration::from_secs(10), |a| a.status == 200)
        .await;
    assert_eq!(answer.json["checks"]["replication"]["replicas_online"], 1);
    assert!(
        !answer.text.contains("127.0.0.1"),
        "no replica address: {}",
        answer.text
    );
}

#[tokio::test]
async fn replica_refusing_stale_reads_is_master_down() {
    let mut primary = TestRedis::start();
    let replica = primary.replica(&["--replica-serve-stale-data", "no"]);
    let app = spawn_app(fast(&replica.url())).await;
    app.wait_for("/health/replica", Duration::from_secs(10), |a| {
        a.status == 200
    })
    .await;

    primary.kill();
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), |a| {
            is_down_with(a, "master_down")
        })
        .await;
    assert_eq!(answer.json["status"], "down");
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("MASTERDOWN"))
    );
    // Alive all the same: restarting a replica whose primary is gone helps nobody.
    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
    assert_eq!(alive.json["status"], "ok", "{}", alive.text);
    assert_eq!(alive.json["checks"]["ping"]["reason"], "master_down");
}

/// Every string and number in a body, with the keys on the way.
fn leaves(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                out.push(key.clone());
                leaves(value, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        other => out.push(other.to_string().trim_matches('"').to_owned()),
    }
}

#[tokio::test]
async fn bodies_expose_no_address_of_the_other_node() {
    let primary = TestRedis::start();
    let replica = primary.replica(&[]);
    let on_primary = spawn_app(fast(&primary.url())).await;
    let on_replica = spawn_app(fast(&replica.url())).await;
    on_primary
        .wait_for("/health/replica", Duration::from_secs(10), |a| {
            a.json["checks"]["replication"]["replicas_online"] == 1
        })
        .await;
    on_replica
        .wait_for("/health/replica", Duration::from_secs(10), |a| {
            a.status == 200
        })
        .await;

    // The primary's INFO lists the replica's ip and port, the replica's
    // INFO its primary's: neither reaches a body.
    for (app, other) in [(&on_primary, replica.port), (&on_replica, primary.port)] {
        for path in crate::support::HEALTH_ROUTES {
            let answer = app.get(path).await;
            let mut found = Vec::new();
            leaves(&answer.json, &mut found);
            assert!(found.len() > 5, "{path}: {}", answer.text);
            for leaf in &found {
                assert!(
                    !leaf.contains("127.0.0.1")
                        && *leaf != other.to_string()
                        && !["ip", "host", "port", "addr", "master_host", "master_port"]
                            .contains(&leaf.as_str()),
                    "{path} exposes {leaf:?}: {}",
                    answer.text
                );
            }
        }
    }
}
