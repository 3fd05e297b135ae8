//! /health/primary as Sentinel decides (`routes.primary.sentinels`): an old
//! primary back from a freeze, still `role:master` until Sentinel demotes it,
//! is never a second 200 beside the promoted one.

mod common;

use std::time::{Duration, Instant};

use common::sentinel::SentinelNode;
use common::{TestApp, TestRedis, eventually, spawn_app};
use redis_health::config::Settings;

/// A sidecar for `redis` asking `sentinels` who the master is.
async fn sidecar(redis: &TestRedis, sentinels: &[SentinelNode]) -> TestApp {
    let addrs: Vec<String> = sentinels
        .iter()
        .map(|s| format!("\"127.0.0.1:{}\"", s.port))
        .collect();
    let toml = format!(
        "server.listen = \"127.0.0.1:0\"\n\
         [redis]\nurl = \"{}\"\n\
         [checks]\nmax_age = \"50ms\"\n\
         [checks.memory]\nwarn_no_maxmemory = false\n\
         [routes.primary]\nsentinels = [{}]\nmaster_name = \"mymaster\"\n",
        redis.url(),
        addrs.join(", ")
    );
    spawn_app(Settings::from_toml(&toml).expect("valid test config")).await
}

#[tokio::test]
async fn a_primary_back_from_a_freeze_is_never_a_second_200() {
    let primary = TestRedis::start();
    let port = primary.port.to_string();
    let replica = TestRedis::with_args(&["--replicaof", "127.0.0.1", &port]);
    eventually("replica link up", Duration::from_secs(10), || {
        replica.info_field("master_link_status").as_deref() == Some("up")
    })
    .await;
    let sentinels = SentinelNode::group(primary.port, 3, 2);
    eventually(
        "sentinels see the replica and each other",
        Duration::from_secs(15),
        || {
            sentinels.iter().all(|s| {
                let master = s.master0();
                master.contains("slaves=1") && master.contains("sentinels=3")
            })
        },
    )
    .await;
    let old = sidecar(&primary, &sentinels).await;
    let new = sidecar(&replica, &sentinels).await;
    let answer = old
        .wait_for("/health/primary", Duration::from_secs(5), |a| {
            a.status == 200
        })
        .await;
    assert!(
        answer.json["checks"]["role"]["sentinel"].is_string(),
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
    let dead = common::free_port();
    let toml = format!(
        "server.listen = \"127.0.0.1:0\"\n\
         [redis]\nurl = \"{}\"\n\
         [checks.memory]\nwarn_no_maxmemory = false\n\
         [routes.primary]\nsentinels = \"127.0.0.1:{dead}\"\nmaster_name = \"mymaster\"\n",
        primary.url()
    );
    let app = spawn_app(Settings::from_toml(&toml).expect("valid test config")).await;
    let answer = app.get("/health/primary").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let said = answer.json["checks"]["role"]["sentinel"]
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
