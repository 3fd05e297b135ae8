//! Redis Cluster: a plain node is sent no cluster command; a cluster node
//! reports the cluster and turns critical when it is down.

use std::time::Duration;

use crate::support::*;

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
