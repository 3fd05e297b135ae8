//! Sentinel: /health/sentinel against a real group of a primary, a replica
//! and three Sentinels (quorum 2, down after 1 s), the routes for the other
//! kind of process, /metrics, the least-privilege Sentinel ACL user, and a
//! data node's role after a Sentinel failover.

use std::time::{Duration, Instant};

use redis_health::config::Settings;

use crate::support::sentinel::SentinelNode;
use crate::support::*;

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

/// A primary with one replica whose link is up.
async fn primary_and_replica() -> (TestRedis, TestRedis) {
    let primary = TestRedis::start();
    let port = primary.port.to_string();
    let replica = TestRedis::with_args(&["--replicaof", "127.0.0.1", &port]);
    eventually("replica link up", Duration::from_secs(10), || {
        replica.info_field("master_link_status").as_deref() == Some("up")
    })
    .await;
    (primary, replica)
}

/// Three Sentinels, quorum 2, that see each other and the replica.
async fn three_sentinels(primary: &TestRedis) -> Vec<SentinelNode> {
    let sentinels = SentinelNode::group(primary.port, 3, 2);
    for sentinel in &sentinels {
        eventually("sentinels see each other", Duration::from_secs(15), || {
            let master = sentinel.master0();
            master.contains("sentinels=3") && master.contains("slaves=1")
        })
        .await;
    }
    sentinels
}

fn quick(url: &str) -> Settings {
    quick_with(url, "")
}

fn quick_with(url: &str, extra: &str) -> Settings {
    settings_with(url, &format!("checks.max_age = \"100ms\"\n{extra}"))
}

fn check_names(answer: &crate::support::Answer) -> Vec<String> {
    answer.json["checks"]
        .as_object()
        .map(|checks| checks.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_healthy_group_is_ok_until_two_sentinels_stop_and_quorum_is_lost() {
    let (primary, _replica) = primary_and_replica().await;
    let mut sentinels = three_sentinels(&primary).await;
    let app = spawn_app(quick(&sentinels[0].url())).await;

    let answer = app.get("/health/sentinel").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let check = &answer.json["checks"]["sentinel"];
    assert_eq!(check["tilt"], false, "{}", answer.text);
    assert_eq!(
        check["masters"]["mymaster"],
        serde_json::json!({
            "status": "ok",
            "address": format!("127.0.0.1:{}", primary.port),
            "replicas": 1,
            "sentinels": 3,
            "quorum_ok": true,
        }),
        "{}",
        answer.text
    );
    // On a Sentinel the general routes judge it as a Sentinel, and the
    // data-node routes say it is none.
    for path in ["/health/redis", "/health"] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert_eq!(check_names(&answer), ["ping", "sentinel"], "{path}");
    }
    for path in ["/health/replica", "/health/primary"] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.text);
        assert_eq!(answer.json["status"], "degraded", "{path}");
        assert_eq!(answer.json["reason"], "not_data_node", "{path}");
    }
    assert_eq!(app.get("/health/alive").await.status, 200);
    let text = metrics::scrape(&app).await;
    for line in [
        "redis_health_sentinel_tilt 0.0",
        "redis_health_sentinel_master_status{master=\"mymaster\"} 0.0",
        "redis_health_sentinel_quorum_ok{master=\"mymaster\"} 1.0",
        "redis_health_route_status{route=\"/health/sentinel\"} 0.0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // The data-node routes' verdicts are route statuses, not check statuses:
    // a Sentinel must not fire the replication alert.
    assert!(!text.contains("check=\"replication\""), "{text}");

    sentinels[1].stop();
    sentinels[2].stop();
    let stopped = Instant::now();
    let answer = app
        .wait_for("/health/sentinel", Duration::from_secs(15), |a| {
            a.status == 503
        })
        .await;
    let took = stopped.elapsed();
    assert_eq!(
        answer.json["reason"], "sentinel_no_quorum",
        "{}",
        answer.text
    );
    assert_eq!(answer.json["status"], "critical");
    assert_eq!(
        answer.json["checks"]["sentinel"]["masters"]["mymaster"]["quorum_ok"],
        false
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    println!("quorum loss seen {took:?} after two Sentinels stopped");
    let text = metrics::scrape(&app).await;
    assert!(
        text.contains("redis_health_sentinel_quorum_ok{master=\"mymaster\"} 0.0"),
        "{text}"
    );
    // The process itself answers: not a liveness failure, and readiness at
    // critical fails as the Kubernetes example asks.
    assert_eq!(app.get("/health/alive").await.status, 200);
    let answer = app.get("/health/sentinel?fail_at=critical").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
}

#[tokio::test]
async fn a_killed_primary_goes_down_then_back_at_the_promoted_replicas_address() {
    let (mut primary, replica) = primary_and_replica().await;
    let sentinels = three_sentinels(&primary).await;
    let app = spawn_app(quick(&sentinels[0].url())).await;
    assert_eq!(app.get("/health/sentinel").await.status, 200);

    primary.kill();
    let killed = Instant::now();
    let mut seen = Vec::new();
    let promoted = format!("127.0.0.1:{}", replica.port);
    let last = loop {
        let answer = app.get("/health/sentinel").await;
        let master = &answer.json["checks"]["sentinel"]["masters"]["mymaster"];
        if let Some(reason) = answer.json["reason"].as_str()
            && seen.last().map(String::as_str) != Some(reason)
        {
            seen.push(reason.to_owned());
        }
        if answer.status == 200 && master["address"] == promoted.as_str() {
            break answer;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover; seen {seen:?}; last {}\n{}",
            answer.text,
            sentinels[0].log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "after the kill: {seen:?}; ok again after {:?}",
        killed.elapsed()
    );
    assert!(
        seen.iter()
            .any(|r| r == "master_sdown" || r == "master_odown"),
        "{seen:?}"
    );
    assert_eq!(
        last.json["checks"]["sentinel"]["masters"]["mymaster"]["status"],
        "ok"
    );
}

#[tokio::test]
async fn a_sentinel_stopped_for_3_s_reports_tilt() {
    let (primary, _replica) = primary_and_replica().await;
    let sentinel = SentinelNode::start(primary.port, 1);
    let app = spawn_app(quick(&sentinel.url())).await;
    assert_eq!(app.get("/health/sentinel").await.status, 200);

    sentinel.signal("STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    sentinel.signal("CONT");
    let answer = app
        .wait_for("/health/sentinel", Duration::from_secs(10), |a| {
            a.json["reason"] == "sentinel_tilt"
        })
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "degraded");
    assert_eq!(answer.json["checks"]["sentinel"]["tilt"], true);
    let text = metrics::scrape(&app).await;
    assert!(
        text.lines().any(|l| l == "redis_health_sentinel_tilt 1.0"),
        "{text}"
    );
    // Readiness at critical lets a Sentinel in TILT keep serving, per
    // request or by routes.sentinel.fail_at.
    let answer = app.get("/health/sentinel?fail_at=critical").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let config = quick_with(&sentinel.url(), "routes.sentinel.fail_at = \"critical\"");
    let app = spawn_app(config).await;
    let answer = app.get("/health/sentinel").await;
    assert_eq!(answer.json["reason"], "sentinel_tilt", "{}", answer.text);
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn sentinel_masters_judges_only_the_named_masters_and_flags_unknown_ones() {
    let (primary, _replica) = primary_and_replica().await;
    let sentinel = SentinelNode::start(primary.port, 1);

    let config = quick_with(&sentinel.url(), "[sentinel]\nmasters = [\"mymaster\"]");
    let app = spawn_app(config).await;
    let answer = app.get("/health/sentinel").await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let config = quick_with(
        &sentinel.url(),
        "[sentinel]\nmasters = [\"mymaster\", \"nosuch\"]",
    );
    let app = spawn_app(config).await;
    let answer = app.get("/health/sentinel").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "sentinel_unknown_master");
    assert_eq!(answer.json["status"], "critical");
    let masters = &answer.json["checks"]["sentinel"]["masters"];
    assert_eq!(masters["mymaster"]["quorum_ok"], true, "{}", answer.text);
    assert!(masters.get("nosuch").is_none(), "{}", answer.text);

    // The same from the environment, comma-separated, through the CLI.
    let url = sentinel.url();
    let check = |masters: &str| {
        let envs = [
            ("REDIS_HEALTH_REDIS__URL", url.as_str()),
            ("REDIS_HEALTH_SENTINEL__MASTERS", masters),
        ];
        let output = run_binary(&["check", "sentinel"], &envs);
        let body = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.code(), body)
    };
    let (code, body) = check("mymaster,nosuch");
    assert_eq!(code, Some(1), "{body}");
    assert!(
        body.contains("\"reason\":\"sentinel_unknown_master\""),
        "{body}"
    );
    let (code, body) = check("mymaster");
    assert_eq!(code, Some(0), "{body}");
}

#[test]
fn sentinel_masters_from_the_environment_is_a_comma_separated_list() {
    let output = run_binary(&["config"], &[("REDIS_HEALTH_SENTINEL__MASTERS", "a, b")]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("masters = [\"a\", \"b\"]"), "{text}");
    for bad in ["a,,b", "a,a", "my master"] {
        assert_config_error(
            &["config"],
            &[("REDIS_HEALTH_SENTINEL__MASTERS", bad)],
            "sentinel.masters",
        );
    }
}

#[tokio::test]
async fn a_data_node_is_no_sentinel_and_is_sent_no_sentinel_command() {
    let redis = TestRedis::start();
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");

    let app = spawn_app(config).await;
    for _ in 0..3 {
        let answer = app.get("/health/sentinel").await;
        assert_eq!(answer.status, 503, "{}", answer.text);
        assert_eq!(answer.json["status"], "degraded");
        assert_eq!(answer.json["reason"], "not_sentinel");
        let answer = app.get("/health").await;
        assert!(
            answer.json["checks"].get("sentinel").is_none(),
            "{}",
            answer.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!metrics::scrape(&app).await.contains("check=\"sentinel\""));
    let stats = redis.cmd(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_info:"), "{stats}");
    assert!(!stats.contains("cmdstat_sentinel"), "{stats}");
    // An unknown command would not be in commandstats, but is an error reply.
    assert_eq!(
        redis.info_field("total_error_replies").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn the_least_privilege_sentinel_user_is_refused_nothing() {
    let (primary, _replica) = primary_and_replica().await;
    let sentinel = SentinelNode::start(primary.port, 1);
    let mut setuser = vec!["ACL", "SETUSER", "health", "on", ">health-pw"];
    setuser.extend_from_slice(crate::support::LEAST_PRIVILEGE);
    setuser.push("+sentinel|ckquorum");
    assert_eq!(sentinel.cmd(&setuser), "OK");
    // A fresh connection per check would show a refused connect-time command too.
    let config = settings_with(
        &format!("redis://health:health-pw@127.0.0.1:{}", sentinel.port),
        "checks.max_age = \"10ms\"",
    );
    let app = spawn_app(config).await;
    for _ in 0..3 {
        let answer = app.get("/health/sentinel").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(
            answer.json["checks"]["sentinel"]["masters"]["mymaster"]["quorum_ok"],
            true
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sentinel.cmd(&["ACL", "LOG"]), "", "ACL LOG is not empty");
    // Without +sentinel|ckquorum the check cannot judge quorum and says so.
    assert_eq!(
        sentinel.cmd(&["ACL", "SETUSER", "health", "-sentinel|ckquorum"]),
        "OK"
    );
    let answer = app
        .wait_for("/health/sentinel", Duration::from_secs(3), |a| {
            a.status == 503
        })
        .await;
    assert_eq!(answer.json["reason"], "error", "{}", answer.text);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("NOPERM")),
        "{}",
        answer.text
    );
}
