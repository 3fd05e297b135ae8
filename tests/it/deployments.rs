//! Real deployments: TLS (private CA, server name, mutual TLS), ACL users and
//! password forms, a Redis Cluster node and a Sentinel failover, each against
//! real servers this test starts.

use std::time::{Duration, Instant};

use crate::support::sentinel::SentinelNode;
use crate::support::{
    TestCerts, TestRedis, assert_config_error, eventually, free_port, settings, spawn_app,
    start_cluster,
};
use redis_health::config::Settings;

/// Settings for `rediss://127.0.0.1:port` trusting `certs`' CA.
fn tls_settings(port: u16, certs: &TestCerts, server_name: Option<&str>) -> Settings {
    let mut config = settings(&format!("rediss://127.0.0.1:{port}"));
    config.redis.tls.ca_file = Some(certs.path("ca.pem"));
    config.redis.tls.server_name = server_name.map(str::to_owned);
    config
}

fn tls_redis(certs: &TestCerts, auth_clients: bool, extra: &[&str]) -> (TestRedis, u16) {
    let tls_port = free_port();
    let args = certs.server_args(tls_port, auth_clients);
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect();
    (TestRedis::with_args(&args), tls_port)
}

#[tokio::test]
async fn tls_with_the_private_ca_is_ok_and_the_server_name_is_checked() {
    let certs = TestCerts::new("redis.test");
    let (_redis, port) = tls_redis(&certs, false, &[]);

    let app = spawn_app(tls_settings(port, &certs, Some("redis.test"))).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.starts_with(r#"{"status":"ok""#),
        "{}",
        answer.text
    );
    assert_eq!(app.get("/health/primary").await.status, 200);

    // The certificate names redis.test only: checked against the URL's host,
    // it fails, and the body says why.
    let app = spawn_app(tls_settings(port, &certs, None)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(
        (answer.status, answer.json["reason"].as_str()),
        (503, Some("error")),
        "{}",
        answer.text
    );
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert_eq!(
        error,
        "TLS handshake failed: the server's certificate is not valid for the name 127.0.0.1 \
         (the URL's host, or redis.tls.server_name when set)"
    );
}

#[tokio::test]
async fn tls_with_a_wrong_ca_is_an_error_that_says_why_and_holds_no_secret() {
    const PASSWORD: &str = "tls-secret-pw";
    let certs = TestCerts::new("redis.test");
    let stranger = TestCerts::new("redis.test");
    let (_redis, port) = tls_redis(&certs, false, &["--requirepass", PASSWORD]);
    let mut config = tls_settings(port, &stranger, Some("redis.test"));
    config.redis.url = format!("rediss://:{PASSWORD}@127.0.0.1:{port}")
        .try_into()
        .expect("url");
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "down");
    assert_eq!(answer.json["reason"], "error");
    assert_eq!(
        answer.json["error"],
        "TLS handshake failed: the server's certificate is not trusted by redis.tls.ca_file"
    );
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
    assert!(
        answer.elapsed < Duration::from_secs(1),
        "{:?}",
        answer.elapsed
    );

    // Nothing listening at all is still unreachable, TLS or not.
    let closed = spawn_app(tls_settings(free_port(), &certs, Some("redis.test"))).await;
    let answer = closed.get("/health/redis").await;
    assert_eq!(answer.json["reason"], "unreachable", "{}", answer.text);
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let certs = TestCerts::new("redis.test");
    let (_redis, port) = tls_redis(&certs, true, &[]);

    let mut config = tls_settings(port, &certs, Some("redis.test"));
    config.redis.tls.cert_file = Some(certs.path("client.pem"));
    config.redis.tls.key_file = Some(certs.path("client.key"));
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // Without a client certificate the server refuses the session.
    let app = spawn_app(tls_settings(port, &certs, Some("redis.test"))).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "error", "{}", answer.text);
    assert_eq!(
        answer.json["error"],
        "TLS handshake failed: the server requires a client certificate and none is configured \
         (set redis.tls.cert_file and redis.tls.key_file)"
    );
}

#[tokio::test]
async fn a_frozen_tls_server_is_a_timeout_within_the_bound_handshake_included() {
    let certs = TestCerts::new("redis.test");
    let (redis, port) = tls_redis(&certs, false, &[]);
    let mut config = tls_settings(port, &certs, Some("redis.test"));
    config.redis.timeout = Duration::from_millis(300);
    config.redis.connect_timeout = Duration::from_millis(300);
    config.checks.max_age = Duration::from_millis(10);
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);

    redis.signal("STOP");
    // The first probe times out on the kept connection (redis.timeout); the
    // second dials again, and the kernel completes TCP while the TLS
    // handshake hangs (redis.connect_timeout, then a plain PING that tells a
    // hung server from a plain port, within redis.timeout).
    for (attempt, bound) in [(0, 300), (1, 300 + 300)] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = app.get("/health/redis").await;
        assert_eq!(
            answer.json["reason"], "timeout",
            "{attempt}: {}",
            answer.text
        );
        assert!(
            answer.elapsed < Duration::from_millis(bound + 200),
            "{attempt}: answered after {:?}",
            answer.elapsed
        );
    }
    redis.signal("CONT");
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
}

#[test]
fn bad_tls_settings_exit_2_naming_the_key() {
    let tls_url = ("REDIS_HEALTH_REDIS__URL", "rediss://127.0.0.1:6390");
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", "/nonexistent/ca.pem"),
        ],
        "redis.tls.ca_file",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("write");
    let not_pem = not_pem.to_string_lossy().into_owned();
    assert_config_error(
        &[],
        &[tls_url, ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &not_pem)],
        "redis.tls.ca_file",
    );
    let certs = TestCerts::new("redis.test");
    let client = certs.path("client.pem").to_string_lossy().into_owned();
    let ca = certs.path("ca.pem").to_string_lossy().into_owned();
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
            ("REDIS_HEALTH_REDIS__TLS__CERT_FILE", &client),
        ],
        "redis.tls.key_file",
    );
    // A certificate is not a key.
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
            ("REDIS_HEALTH_REDIS__TLS__CERT_FILE", &client),
            ("REDIS_HEALTH_REDIS__TLS__KEY_FILE", &client),
        ],
        "redis.tls.key_file",
    );
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__SERVER_NAME", "not a name!"),
        ],
        "redis.tls.server_name",
    );
    assert_config_error(
        &[],
        &[
            ("REDIS_HEALTH_REDIS__URL", "redis://127.0.0.1:6390"),
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
        ],
        "redis.tls",
    );
}

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
    let mut in_file = settings(&format!("redis://health@127.0.0.1:{}", redis.port));
    in_file.redis.password_file = Some(password_file);
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
    let mut config = settings(&redis.url());
    config.checks.max_age = Duration::from_millis(10);
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
    let mut config = settings(&url);
    config.checks.max_age = Duration::from_millis(50);
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
    let mut config = settings(&url);
    config.checks.cluster.enabled = false;
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

    let mut config = settings(&replica.url());
    config.checks.max_age = Duration::from_millis(100);
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
