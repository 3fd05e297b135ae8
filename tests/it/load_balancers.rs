//! The shipped load-balancer and monitor configs, run for real: HAProxy
//! sending writes to whichever node's sidecar says it is the primary, the
//! Prometheus blackbox exporter matching `"status":"ok"`, and Prometheus
//! scraping the sidecar through the shipped relabelling.

use std::time::Duration;

use crate::support::*;

fn deploy_file(path: &str) -> String {
    format!("{}/deploy/{path}", env!("CARGO_MANIFEST_DIR"))
}

async fn sidecar(redis: &TestRedis) -> TestApp {
    spawn_app(settings_with(&redis.url(), "checks.max_age = \"100ms\"")).await
}

/// Each server's status in the backend, from HAProxy's CSV stats.
pub(crate) async fn backend_status(stats_port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{stats_port}/stats;csv");
    let Ok(csv) = async { reqwest::get(url).await?.text().await }.await else {
        return Vec::new();
    };
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (Some(proxy), Some(server), Some(status)) =
        (column("pxname"), column("svname"), column("status"))
    else {
        return Vec::new();
    };
    let mut servers: Vec<(String, String)> = lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|row| row.get(proxy) == Some(&"redis_primary"))
        .filter(|row| row.get(server).is_some_and(|s| s.starts_with("redis-")))
        .map(|row| (row[server].to_owned(), row[status].to_owned()))
        .collect();
    servers.sort();
    servers
}

/// Polls HAProxy's stats until the backend's servers are in these states;
/// returns how long that took.
async fn wait_for_servers(
    stats_port: u16,
    expected: [(&str, &str); 2],
    haproxy: &TestProcess,
) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let servers = backend_status(stats_port).await;
        let reached = servers.len() == expected.len()
            && servers
                .iter()
                .zip(expected)
                .all(|((server, state), (want_server, want_state))| {
                    server == want_server && state == want_state
                });
        if reached {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "HAProxy never showed {expected:?}; last {servers:?}\n{}",
            haproxy.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Real HAProxy running deploy/haproxy/haproxy.cfg as shipped, with the
/// addresses from its environment variables; returns it with its write and
/// stats ports.
pub(crate) fn haproxy(
    a: &TestRedis,
    sidecar_a: &TestApp,
    b: &TestRedis,
    sidecar_b: &TestApp,
) -> (TestProcess, u16, u16) {
    let (write_port, stats_port) = (free_port(), free_port());
    let env = [
        ("REDIS_WRITE_BIND", format!("127.0.0.1:{write_port}")),
        ("HAPROXY_STATS_BIND", format!("127.0.0.1:{stats_port}")),
        ("REDIS_A", a.addr().to_string()),
        ("REDIS_A_HEALTH_PORT", sidecar_a.addr.port().to_string()),
        ("REDIS_B", b.addr().to_string()),
        ("REDIS_B_HEALTH_PORT", sidecar_b.addr.port().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = deploy_file("haproxy/haproxy.cfg");
    let haproxy = TestProcess::start(
        &tool("haproxy", "apt-get install haproxy"),
        &["-db", "-f", &config],
        &env,
    );
    (haproxy, write_port, stats_port)
}

#[tokio::test]
async fn haproxy_follows_the_primary_through_a_failover() {
    let a = TestRedis::start();
    let a_port = a.port.to_string();
    let b = TestRedis::with_args(&["--replicaof", "127.0.0.1", &a_port]);
    let (sidecar_a, sidecar_b) = (sidecar(&a).await, sidecar(&b).await);
    sidecar_b
        .wait_for("/health/replica", Duration::from_secs(10), |r| {
            r.status == 200
        })
        .await;

    let (haproxy, write_port, stats_port) = haproxy(&a, &sidecar_a, &b, &sidecar_b);
    wait_for_servers(
        stats_port,
        [("redis-a", "UP"), ("redis-b", "DOWN")],
        &haproxy,
    )
    .await;

    let through = std::net::SocketAddr::from(([127, 0, 0, 1], write_port));
    assert_eq!(
        crate::support::resp_pipeline(through, &["SET", "before", "1"], 1),
        ["OK"]
    );
    assert_eq!(
        a.cmd(&["GET", "before"]),
        "1",
        "the write reached the primary"
    );

    // Fail over: b becomes the primary, a its replica.
    assert_eq!(b.cmd(&["REPLICAOF", "NO", "ONE"]), "OK");
    let b_port = b.port.to_string();
    assert_eq!(a.cmd(&["REPLICAOF", "127.0.0.1", &b_port]), "OK");
    let took = wait_for_servers(
        stats_port,
        [("redis-a", "DOWN"), ("redis-b", "UP")],
        &haproxy,
    )
    .await;
    // Two failed/passed checks a second apart, plus the sidecars' max_age.
    assert!(took < Duration::from_secs(5), "took {took:?}");

    assert_eq!(
        crate::support::resp_pipeline(through, &["SET", "after", "2"], 1),
        ["OK"]
    );
    assert_eq!(
        b.cmd(&["GET", "after"]),
        "2",
        "the write reached the new primary"
    );
}

#[tokio::test]
async fn haproxy_never_spreads_writes_over_two_primaries() {
    // Mid-failover: both nodes are primaries and both sidecars answer 200.
    let (a, b) = (TestRedis::start(), TestRedis::start());
    let (sidecar_a, sidecar_b) = (sidecar(&a).await, sidecar(&b).await);
    let (haproxy, write_port, stats_port) = haproxy(&a, &sidecar_a, &b, &sidecar_b);
    wait_for_servers(stats_port, [("redis-a", "UP"), ("redis-b", "UP")], &haproxy).await;

    let through = std::net::SocketAddr::from(([127, 0, 0, 1], write_port));
    for i in 0..20 {
        // One new connection per write.
        let key = format!("write-{i}");
        assert_eq!(
            crate::support::resp_pipeline(through, &["SET", &key, "1"], 1),
            ["OK"]
        );
    }
    let keys = |redis: &TestRedis| redis.cmd(&["DBSIZE"]);
    assert_eq!(
        (keys(&a), keys(&b)),
        ("20".to_owned(), "0".to_owned()),
        "all 20 writes land on the first server that is UP"
    );
}

/// `probe_success` from the exporter's answer for one target.
async fn blackbox_probe(exporter_port: u16, target: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:{exporter_port}/probe?module=redis_health&target={target}");
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    metrics::value(&text, "probe_success", "")
}

#[tokio::test]
async fn blackbox_exporter_sees_ok_and_then_memory_pressure() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = sidecar(&redis).await;
    let port = free_port();
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    let config = format!("--config.file={}", deploy_file("blackbox/blackbox.yml"));
    let exporter = TestProcess::start(
        &tool(
            "prometheus-blackbox-exporter",
            "apt-get install prometheus-blackbox-exporter",
        ),
        &[&config, &listen],
        &[],
    );
    let target = format!("http://{}/health", app.addr);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let healthy = loop {
        if let Some(success) = blackbox_probe(port, &target).await {
            break success;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the exporter did not answer:\n{}",
            exporter.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(healthy, 1.0, "{}", exporter.output());

    redis.fill_to_ratio(1.05);
    app.wait_for("/health", Duration::from_secs(2), |a| {
        a.json["reason"] == "memory_pressure"
    })
    .await;
    assert_eq!(blackbox_probe(port, &target).await, Some(0.0));

    // A warning still serves but is not "ok": the module pages on it too.
    redis.fill_to_ratio(0.87);
    app.wait_for("/health", Duration::from_secs(2), |a| {
        a.json["reason"] == "memory_high"
    })
    .await;
    assert_eq!(blackbox_probe(port, &target).await, Some(0.0));
}

/// The labels Kubernetes pod discovery gives one container port of an
/// annotated pod (the annotations of deploy/kubernetes/redis.yaml).
fn discovered(
    address: &str,
    pod: &str,
    container: &str,
    port_name: &str,
    annotation_port: u16,
) -> serde_json::Value {
    serde_json::json!({
        "targets": [address],
        "labels": {
            "__meta_kubernetes_namespace": "default",
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": port_name,
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
            "__meta_kubernetes_pod_annotation_prometheus_io_port": annotation_port.to_string(),
        }
    })
}

#[tokio::test]
async fn prometheus_scrapes_only_the_sidecar_as_job_redis_health() {
    let redis = TestRedis::start();
    let app = sidecar(&redis).await;
    let port = app.addr.port();
    // Debian's Prometheus has no Kubernetes discovery: a file lists what pod
    // discovery would (the example pod's two container ports, and another
    // annotated pod); the relabelling is the shipped file's.
    let dir = tempfile::tempdir().expect("temp dir");
    let targets = dir.path().join("targets.json");
    let pods = serde_json::json!([
        discovered(
            &format!("127.0.0.1:{port}"),
            "redis-0",
            "redis-health",
            "health",
            port
        ),
        discovered(&redis.addr().to_string(), "redis-0", "redis", "redis", port),
        discovered("127.0.0.1:9", "web-0", "web", "http", 9),
    ]);
    std::fs::write(&targets, pods.to_string()).expect("write targets");
    let shipped = std::fs::read_to_string(deploy_file("prometheus/prometheus.yml"))
        .expect("read prometheus.yml");
    let discovery = "    kubernetes_sd_configs:\n      - role: pod\n";
    assert!(shipped.contains(discovery), "{shipped}");
    let config = shipped
        .replace(
            discovery,
            &format!(
                "    file_sd_configs:\n      - files: [{}]\n",
                targets.display()
            ),
        )
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
    std::fs::copy(
        deploy_file("prometheus/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .expect("copy rules");

    let web = free_port();
    let prometheus = TestProcess::start(
        &tool("prometheus", "apt-get install prometheus"),
        &[
            &format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{web}"),
        ],
        &[],
    );
    let url = format!("http://127.0.0.1:{web}/api/v1/targets");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (active, dropped) = loop {
        let answer = async { reqwest::get(&url).await?.text().await }.await;
        let answer: Option<serde_json::Value> = answer
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        if let Some(data) = answer.map(|a| a["data"].clone()) {
            let active = data["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if active.iter().any(|t| t["health"] == "up") {
                break (active, data["droppedTargets"].clone());
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped the sidecar:\n{}",
            prometheus.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(active.len(), 1, "{active:?}");
    let target = &active[0];
    assert_eq!(
        target["scrapeUrl"],
        format!("http://127.0.0.1:{port}/metrics")
    );
    let labels = &target["labels"];
    assert_eq!(
        (&labels["job"], &labels["namespace"], &labels["pod"]),
        (
            &serde_json::json!("redis-health"),
            &serde_json::json!("default"),
            &serde_json::json!("redis-0")
        ),
        "{labels}"
    );
    assert_eq!(dropped.as_array().map(Vec::len), Some(2), "{dropped}");
}
