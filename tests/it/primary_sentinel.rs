//! /health/primary as Sentinel decides (`routes.primary.sentinels`): an old
//! primary back from a freeze, still `role:master` until Sentinel demotes it,
//! is never a second 200 beside the promoted one.

use std::time::{Duration, Instant};

use crate::load_balancers::{backend_status, haproxy};
use crate::support::sentinel::{SentinelNode, watched_pair};
use crate::support::*;
use redis_health::config::Settings;

/// A sidecar for `redis` asking `sentinels` who the master is.
async fn sidecar(redis: &TestRedis, sentinels: &[SentinelNode]) -> TestApp {
    let addrs: Vec<String> = sentinels
        .iter()
        .map(|s| toml_str(format!("127.0.0.1:{}", s.port)))
        .collect();
    let extra = format!(
        "checks.max_age = \"50ms\"\n\
         routes.primary.sentinels = [{}]\nroutes.primary.master_name = \"mymaster\"\n",
        addrs.join(", ")
    );
    spawn_app(settings_with(&redis.url(), &extra)).await
}

#[tokio::test]
async fn a_primary_back_from_a_freeze_is_never_a_second_200() {
    let (primary, replica, sentinels) = watched_pair().await;
    let old = sidecar(&primary, &sentinels).await;
    let new = sidecar(&replica, &sentinels).await;
    let answer = old
        .wait_for("/health/primary", Duration::from_secs(5), |a| {
            a.status == 200
        })
        .await;
    assert!(
        answer.json["checks"]["writes"]["sentinel"].is_string(),
        "{}",
        answer.text
    );
    assert_eq!(
        new.get("/health/primary").await.json["reason"],
        "not_primary"
    );

    // Frozen until Sentinel has promoted the replica, then resumed.
    primary.signal("STOP");
    eventually(
        "sentinel promotes the replica",
        Duration::from_secs(30),
        || sentinels[0].primary_port() == Some(replica.port),
    )
    .await;
    new.wait_for("/health/primary", Duration::from_secs(10), |a| {
        a.status == 200
    })
    .await;
    primary.signal("CONT");

    // Both sidecars, every 100 ms, until Sentinel has demoted the old one.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut said_old = false;
    loop {
        let (a, b) = tokio::join!(old.get("/health/primary"), new.get("/health/primary"));
        assert!(
            !(a.status == 200 && b.status == 200),
            "two primaries answered 200:\nold: {}\nnew: {}",
            a.text,
            b.text
        );
        said_old |= a.json["reason"] == "not_sentinel_primary";
        let demoted = a.json["reason"] == "not_primary";
        if demoted && said_old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old primary was not demoted in time (said not_sentinel_primary: {said_old}); last: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(new.get("/health/primary").await.status, 200);
}

#[tokio::test]
async fn no_sentinel_answering_judges_by_role_and_says_so() {
    let primary = TestRedis::start();
    let dead = free_port();
    let extra = format!(
        "routes.primary.sentinels = \"127.0.0.1:{dead}\"\nroutes.primary.master_name = \"mymaster\"\n"
    );
    let app = spawn_app(settings_with(&primary.url(), &extra)).await;
    let answer = app.get("/health/primary").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let said = answer.json["checks"]["writes"]["sentinel"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("judged by role alone"), "{}", answer.text);
    assert!(
        said.contains(&format!("127.0.0.1:{dead}")),
        "{}",
        answer.text
    );
}

#[test]
fn sentinels_without_a_master_name_are_refused_at_load() {
    let error = Settings::from_toml("[routes.primary]\nsentinels = [\"127.0.0.1:26379\"]\n")
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(error.key, "routes.primary.master_name");
    let error =
        Settings::from_toml("[routes.primary]\nsentinels = [\"127.0.0.1\"]\nmaster_name = \"m\"\n")
            .map(|_| ())
            .expect_err("refused");
    assert!(
        error.to_string().contains("routes.primary.sentinels"),
        "{error}"
    );
}

/// One SET through HAProxy on a new connection, as a writer that opens a
/// connection per write does: whether Redis acknowledged it within 500 ms.
async fn write_through(port: u16, key: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let command = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n1\r\n", key.len());
        stream.write_all(command.as_bytes()).await?;
        let mut reply = [0u8; 5];
        stream.read_exact(&mut reply).await?;
        Ok::<bool, std::io::Error>(&reply == b"+OK\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Ok(true))
    )
}

#[tokio::test]
async fn through_haproxy_no_acknowledged_write_is_lost_across_a_freeze_and_failover() {
    let (a, b, sentinels) = watched_pair().await;
    let (sidecar_a, sidecar_b) = (sidecar(&a, &sentinels).await, sidecar(&b, &sentinels).await);
    let (haproxy, write_port, stats_port) = haproxy(&a, &sidecar_a, &b, &sidecar_b);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !backend_status(stats_port)
        .await
        .contains(&("redis-a".into(), "UP".into()))
    {
        assert!(
            Instant::now() < deadline,
            "redis-a never UP\n{}",
            haproxy.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A writer opening a connection per write every 20 ms, across a freeze
    // of the primary until Sentinel promotes the replica, its resumption,
    // and its demotion.
    let writer = tokio::spawn(async move {
        let mut acked = Vec::new();
        let started = Instant::now();
        for n in 0u32.. {
            let key = format!("w:{n}");
            if write_through(write_port, &key).await {
                acked.push((key, Instant::now()));
            }
            if started.elapsed() > Duration::from_secs(40) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acked
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let frozen_at = Instant::now();
    a.signal("STOP");
    eventually(
        "sentinel promotes the replica",
        Duration::from_secs(30),
        || sentinels[0].primary_port() == Some(b.port),
    )
    .await;
    a.signal("CONT");
    eventually(
        "sentinel demotes the old primary",
        Duration::from_secs(30),
        || {
            a.info_field("role").as_deref() == Some("slave")
                && a.info_field("master_link_status").as_deref() == Some("up")
        },
    )
    .await;
    let acked = writer.await.expect("writer");
    assert!(
        acked.len() > 100,
        "too few writes acknowledged: {}",
        acked.len()
    );
    // Redis's own asynchronous-replication window: what the primary
    // acknowledged just before the freeze may not have reached the replica.
    let window = Duration::from_millis(200);
    let lost: Vec<&String> = acked
        .iter()
        .filter(|(_, at)| !(*at + window > frozen_at && *at <= frozen_at))
        .map(|(key, _)| key)
        .filter(|key| b.cmd(&["EXISTS", key]) != "1")
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}\nHAProxy: {}",
        lost.len(),
        acked.len(),
        lost.iter().take(10).collect::<Vec<_>>(),
        haproxy.output()
    );
}
