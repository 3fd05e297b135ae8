//! Real deployments: TLS (private CA, server name, mutual TLS), ACL users and
//! password forms, a Redis Cluster node and a Sentinel failover, each against
//! real servers this test starts.

use std::time::{Duration, Instant};

use crate::support::sentinel::SentinelNode;
use crate::support::*;

/// The least-privilege user the README documents (plus `+cluster|info` on
/// cluster nodes).
fn add_health_user(redis: &TestRedis, password: &str, extra: &[&str]) {
    let rule = format!(">{password}");
    let mut args = vec![
        "ACL",
        "SETUSER",
        "health",
        "on",
        &rule,
        "-@all",
        "+ping",
        "+info",
        "+client|id",
    ];
    args.extend_from_slice(extra);
    assert_eq!(redis.cmd(&args), "OK");
}

#[tokio::test]
async fn acl_user_in_the_url_with_its_password_there_or_in_a_file_and_legacy_requirepass() {
    let redis = TestRedis::start();
    add_health_user(&redis, "health-pw", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "health-pw\n").expect("write password");

    let in_url = settings(&format!(
        "redis://health:health-pw@127.0.0.1:{}",
        redis.port
    ));
    let in_file = settings_with(
        &format!("redis://health@127.0.0.1:{}", redis.port),
        &password_file_toml(&password_file),
    );
    for config in [in_url, in_file] {
        let app = spawn_app(config).await;
        app.assert_every_route_ok().await;
    }
    // Everything the client sends is allowed, fred's CLIENT ID on connect included.
    assert_eq!(redis.acl_refused(), Vec::<String>::new());

    // The legacy form: requirepass, the default user, no name in the URL.
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "requirepass", "legacy-pw"]),
        "OK"
    );
    let app = spawn_app(settings(&format!(
        "redis://:legacy-pw@127.0.0.1:{}",
        redis.port
    )))
    .await;
    let answer = app.get("/health").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_plain_node_is_sent_no_cluster_command_and_has_no_cluster_check() {
    let redis = TestRedis::start();
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;
    for _ in 0..3 {
        let answer = app.get("/health").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert!(
            answer.json["checks"].get("cluster").is_none(),
            "{}",
            answer.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(redis.calls(&["ping"])[0] >= 3, "the checks ran");
    assert_eq!(redis.calls(&["cluster|info", "cluster"]), [0, 0]);
}

#[tokio::test]
async fn a_cluster_node_reports_the_cluster_and_turns_critical_when_it_is_down() {
    let mut nodes = start_cluster(3);
    let node = &nodes[0];
    add_health_user(node, "cluster-pw", &["+cluster|info"]);
    let routing = [
        "cluster|slots",
        "cluster|nodes",
        "cluster|shards",
        "readonly",
    ];
    let routing_before = node.calls(&routing);
    let info_before = node.calls(&["cluster|info"])[0];

    let url = format!("redis://health:cluster-pw@127.0.0.1:{}", node.port);
    let config = settings_with(&url, "checks.max_age = \"50ms\"");
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let cluster = &answer.json["checks"]["cluster"];
    assert_eq!(cluster["status"], "ok", "{}", answer.text);
    assert_eq!(cluster["cluster_state"], "ok");
    assert_eq!(cluster["slots_assigned"], 16384);
    assert_eq!(cluster["slots_ok"], 16384);
    assert_eq!(cluster["slots_pfail"], 0);
    assert_eq!(cluster["slots_fail"], 0);
    assert_eq!(cluster["known_nodes"], 3);
    // CLUSTER INFO on the node itself, and no cluster routing at all.
    assert!(node.calls(&["cluster|info"])[0] > info_before);
    assert_eq!(node.calls(&routing), routing_before);
    assert_eq!(node.acl_refused(), Vec::<String>::new());

    // checks.cluster.enabled = false: no check and no CLUSTER INFO.
    let config = settings_with(&url, "checks.cluster.enabled = false");
    let quiet = spawn_app(config).await;
    let info_before = node.calls(&["cluster|info"])[0];
    let answer = quiet.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.json["checks"].get("cluster").is_none(),
        "{}",
        answer.text
    );
    assert_eq!(node.calls(&["cluster|info"])[0], info_before);

    // Two of three primaries gone: this node is fine itself, but in the
    // minority, so its slots cannot be served.
    nodes[1].kill();
    nodes[2].kill();
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(10), |a| {
            a.json["reason"] == "cluster_down"
        })
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical");
    let cluster = &answer.json["checks"]["cluster"];
    assert_eq!(cluster["cluster_state"], "fail", "{}", answer.text);
    assert_eq!(cluster["status"], "critical");
    assert_eq!(
        answer.json["reasons"],
        serde_json::json!(["cluster_down", "cluster_slots_failing"])
    );
    assert!(cluster["slots_pfail"].as_u64() > Some(0), "{}", answer.text);
    // The process itself still answers: not a liveness failure.
    assert_eq!(app.get("/health/alive").await.status, 200);
}

#[tokio::test]
async fn after_a_sentinel_failover_the_promoted_replica_answers_primary() {
    let mut primary = TestRedis::start();
    let port = primary.port.to_string();
    let replica = TestRedis::with_args(&["--replicaof", "127.0.0.1", &port]);
    eventually("replica link up", Duration::from_secs(10), || {
        replica.info_field("master_link_status").as_deref() == Some("up")
    })
    .await;
    let sentinel = SentinelNode::start(primary.port, 1);
    let replica_port = replica.port.to_string();
    eventually("sentinel sees the replica", Duration::from_secs(10), || {
        sentinel
            .cmd(&["SENTINEL", "replicas", "mymaster"])
            .contains(&replica_port)
    })
    .await;

    let config = settings_with(&replica.url(), "checks.max_age = \"100ms\"");
    let app = spawn_app(config).await;
    let answer = app.get("/health/primary").await;
    assert_eq!(
        (answer.status, answer.json["reason"].as_str()),
        (503, Some("not_primary")),
        "{}",
        answer.text
    );

    primary.kill();
    eventually(
        "sentinel promotes the replica",
        Duration::from_secs(20),
        || replica.info_field("role").as_deref() == Some("master"),
    )
    .await;
    let promoted = Instant::now();
    let answer = app
        .wait_for("/health/primary", Duration::from_secs(3), |a| {
            a.status == 200
        })
        .await;
    let delay = promoted.elapsed();
    assert_eq!(answer.json["role"], "master", "{}", answer.text);
    assert!(delay < Duration::from_secs(2), "{delay:?}");
    // Sentinel names the same node once it has seen the promotion through.
    eventually(
        "sentinel names the new primary",
        Duration::from_secs(10),
        || sentinel.primary_port() == Some(replica.port),
    )
    .await;
}
