//! Fitting the tools people already run: Prometheus metrics (checked with
//! the real promtool), application/health+json, and the one-shot CLI.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::sentinel::SentinelNode;
use crate::support::*;

use serde_json::Value;

async fn scrape(app: &crate::support::TestApp) -> (String, String) {
    let response = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("scrape");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, response.text().await.expect("metrics text"))
}

/// The value of one series, e.g. `redis_health_redis_up` or
/// `redis_health_check_status{check="memory"}`.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn metrics_pass_promtool_and_cost_redis_nothing() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let config = settings_with(&redis.url(), "checks.sample_interval = \"600s\"");
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    assert_eq!(app.get("/health/redis?fail_at=warn").await.status, 503);
    assert_eq!(app.get("/health/redis?fail_at=bogus").await.status, 400);
    let padded = format!("/health/redis?pad={}", "a".repeat(3000));
    assert_eq!(app.get(&padded).await.status, 414);

    let before = redis.calls(&["ping", "info"]);
    let (content_type, text) = scrape(&app).await;
    for _ in 0..20 {
        scrape(&app).await;
    }
    let after = redis.calls(&["ping", "info"]);
    assert_eq!(after[0], before[0], "a scrape sends no PING");
    assert_eq!(after[1] - before[1], 1, "only our own INFO commandstats");

    assert!(content_type.starts_with("text/plain; version=0.0.4"));
    assert_eq!(series(&text, "redis_health_redis_up"), Some(1.0));
    assert_eq!(
        series(&text, r#"redis_health_check_status{check="memory"}"#),
        Some(1.0),
        "warn is 1:\n{text}"
    );
    assert_eq!(
        series(&text, r#"redis_health_route_status{route="/health/redis"}"#),
        Some(1.0)
    );
    let ratio = series(&text, "redis_health_memory_ratio").expect("memory ratio");
    assert!((0.8..0.95).contains(&ratio), "{ratio}");
    assert!(series(&text, "redis_health_memory_max_bytes").is_some_and(|v| v > 0.0));
    assert!(series(&text, "redis_health_ops_per_second").is_some());
    assert_eq!(series(&text, "redis_health_replicas_online"), Some(0.0));
    assert_eq!(series(&text, "redis_health_is_primary"), Some(1.0));
    for (code, count) in [("200", 1.0), ("503", 1.0), ("400", 1.0), ("414", 1.0)] {
        assert_eq!(
            series(
                &text,
                &format!(
                    r#"redis_health_probe_requests_total{{route="/health/redis",code="{code}"}}"#
                )
            ),
            Some(count),
            "{code}:\n{text}"
        );
    }
    assert!(series(&text, "redis_health_check_duration_seconds_count").is_some_and(|n| n >= 1.0));
    assert_eq!(
        series(
            &text,
            r#"redis_health_probe_duration_seconds_count{route="/health/redis"}"#
        ),
        Some(4.0),
        "{text}"
    );
    assert!(text.contains(r#"redis_health_build_info{version=""#));

    let mut promtool = Command::new(tool("promtool", "apt-get install prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    promtool
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool output");
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn metrics_say_redis_is_down_when_it_is() {
    let app = spawn_app(settings(&format!(
        "redis://127.0.0.1:{}",
        crate::support::free_port()
    )))
    .await;
    assert_eq!(app.get("/health/redis").await.status, 503);
    let (_, text) = scrape(&app).await;
    assert_eq!(series(&text, "redis_health_redis_up"), Some(0.0));
    assert_eq!(
        series(&text, r#"redis_health_check_status{check="ping"}"#),
        Some(4.0)
    );
    assert_eq!(series(&text, "redis_health_memory_used_bytes"), None);
}

async fn get_health_json(app: &crate::support::TestApp, path: &str) -> (u16, String, Value) {
    get_accepting(app, path, "application/health+json").await
}

async fn get_accepting(
    app: &crate::support::TestApp,
    path: &str,
    accept: &str,
) -> (u16, String, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", app.addr))
        .header("accept", accept)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_str(&response.text().await.expect("body")).expect("JSON body");
    (status, content_type, body)
}

#[tokio::test]
async fn accept_q_values_choose_the_body_format() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    let cases = [
        ("application/health+json", "application/health+json"),
        ("application/health+json;q=0", "application/json"),
        (
            "application/json, application/health+json;q=0.5",
            "application/json",
        ),
        (
            "application/json;q=0.5, application/health+json",
            "application/health+json",
        ),
        (
            "application/health+json, application/json",
            "application/json",
        ),
    ];
    for (accept, expected) in cases {
        let (status, content_type, body) = get_accepting(&app, "/health/redis", accept).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, expected, "Accept: {accept}");
        let draft = body.get("description").is_some();
        assert_eq!(draft, expected == "application/health+json", "{body}");
    }
}

#[tokio::test]
async fn health_json_on_request_with_the_same_codes() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let (status, content_type, body) = get_health_json(&app, "/health/redis").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/health+json");
    assert_eq!(body["status"], "warn");
    assert_eq!(body["output"], "memory_high");
    let memory = &body["checks"]["redis:memory"][0];
    assert_eq!(memory["componentType"], "datastore");
    assert_eq!(memory["status"], "warn");
    assert_eq!(memory["observedUnit"], "ratio");
    assert!(memory["observedValue"].as_f64().is_some_and(|r| r > 0.8));
    assert_eq!(memory["output"], "memory_high");
    assert!(memory["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let ping = &body["checks"]["redis:ping"][0];
    assert_eq!(
        (&ping["status"], &ping["observedUnit"]),
        (&"pass".into(), &"ms".into())
    );
    assert!(ping.get("output").is_none());
    assert!(body["checks"].get("redis:hit_rate").is_some());

    let (status, _, body) = get_health_json(&app, "/health/replica").await;
    assert_eq!((status, &body["status"]), (200, &"pass".into()));
    assert!(body["checks"].get("redis:replication").is_some());

    // Plain JSON stays the default.
    let plain = app.get("/health/redis").await;
    assert!(plain.text.starts_with(r#"{"status":"warn""#));

    redis.fill_to_ratio(0.985);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "memory_pressure");
    let (status, _, body) = get_health_json(&app, "/health/redis").await;
    assert_eq!((status, &body["status"]), (503, &"fail".into()));
    assert_eq!(body["checks"]["redis:memory"][0]["status"], "fail");
}

#[test]
fn check_command_prints_the_body_and_exits_by_verdict() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let url = redis.url();
    let ok = run_binary(&["check"], &[("REDIS_HEALTH_REDIS__URL", &url)]);
    let body: Value = serde_json::from_slice(&ok.stdout).expect("JSON on stdout");
    assert_eq!(ok.status.code(), Some(0), "{body}");
    assert_eq!(body["status"], "ok");
    assert!(body["checks"].get("memory").is_some());

    let primary = run_binary(&["check", "primary"], &[("REDIS_HEALTH_REDIS__URL", &url)]);
    assert_eq!(primary.status.code(), Some(0));
    let body: Value = serde_json::from_slice(&primary.stdout).expect("JSON on stdout");
    assert!(body["checks"].get("role").is_some());

    let closed = format!("redis://127.0.0.1:{}", crate::support::free_port());
    let down = run_binary(&["check", "all"], &[("REDIS_HEALTH_REDIS__URL", &closed)]);
    assert_eq!(down.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&down.stdout).expect("JSON on stdout");
    assert_eq!(body["reason"], "unreachable");

    let bad = run_binary(
        &["check"],
        &[("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "2")],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
}

#[test]
fn config_command_prints_the_merged_config_without_secrets() {
    const SECRET: &str = "s3cret-in-url";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    std::fs::write(&file, "[checks.memory]\nwarn_ratio = 0.7\n").expect("write config");
    let path = file.to_string_lossy().into_owned();
    let output = run_binary(
        &["config", "--config", &path],
        &[
            (
                "REDIS_HEALTH_REDIS__URL",
                &format!("redis://health:{SECRET}@db.internal:6380/2"),
            ),
            ("REDIS_HEALTH_ROUTES__REDIS__FAIL_AT", "critical"),
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(SECRET), "{text}");
    let dump: toml::Value = toml::from_str(&text).expect("the dump is TOML");
    assert_eq!(dump["checks"]["memory"]["warn_ratio"].as_float(), Some(0.7));
    assert_eq!(
        dump["checks"]["memory"]["fail_ratio"].as_float(),
        Some(0.95)
    );
    assert_eq!(
        dump["routes"]["redis"]["fail_at"].as_str(),
        Some("critical")
    );
    assert_eq!(dump["redis"]["timeout"].as_str(), Some("500ms"));
    assert_eq!(
        dump["redis"]["url"].as_str(),
        Some("redis://health:[redacted]@db.internal:6380/2")
    );
}

/// Metric names in a text, e.g. a dashboard or a rules file.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("redis_health_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() {
    let primary = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let port = primary.port.to_string();
    let replica = TestRedis::with_args(&["--replicaof", "127.0.0.1", &port]);
    let mut scraped = String::new();
    for redis in [&primary, &replica] {
        let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
        let app = spawn_app(config).await;
        // The replica's link is up, and the primary sees it online (so it
        // reports replica lag).
        app.wait_for("/health/replica", Duration::from_secs(10), |a| {
            a.status == 200
                && (a.json["role"] == "replica"
                    || a.json["checks"]["replication"]["replicas_online"] == 1)
        })
        .await;
        // A lookup, so the windowed hit ratio has something to show.
        redis.cmd(&["GET", "some-key"]);
        app.wait_for("/health/redis", Duration::from_secs(2), |a| {
            a.json["checks"]["hit_rate"]["lookups"].as_u64() > Some(0)
        })
        .await;
        scraped.push_str(&scrape(&app).await.1);
    }
    // A Sentinel exports the sentinel gauges.
    let sentinel = SentinelNode::start(primary.port, 1);
    let app = spawn_app(settings(&sentinel.url())).await;
    app.wait_for("/health/sentinel", Duration::from_secs(5), |a| {
        a.status == 200
    })
    .await;
    scraped.push_str(&scrape(&app).await.1);
    // Certificate expiry is exported on rediss:// connections only.
    let pki = crate::support::tls::TestPki::new();
    pki.server("server", 365);
    let (_tls, tls_port) = pki.redis("server", false);
    let config = pki.trusting(&format!("rediss://127.0.0.1:{tls_port}"), "");

    let app = spawn_app(config).await;
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    scraped.push_str(&scrape(&app).await.1);
    let exported = metric_names(&scraped);
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "deploy/grafana/redis-health.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).expect("read deploy file");
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no metric");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(missing.is_empty(), "{file} uses {missing:?}, not exported");
    }
}

#[tokio::test]
async fn the_sampler_keeps_metrics_within_one_sample_interval_without_probes() {
    let redis = TestRedis::start();
    let config = settings_with(&redis.url(), "checks.sample_interval = \"200ms\"");
    let app = spawn_app(config).await;
    // Scrapes 50 ms apart, at least 30 of them, until one has seen the
    // figures age towards the interval (the scrape itself refreshes
    // nothing): none may be older than the interval plus a check's round
    // trip and a scheduling hiccup.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut oldest, mut scrapes): (f64, usize) = (0.0, 0);
    while scrapes < 30 || oldest < 0.15 {
        assert!(
            std::time::Instant::now() < deadline,
            "in {scrapes} scrapes the metrics never aged to 0.15 s (oldest {oldest} s) \
             with a 0.2 s sample_interval"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, text) = scrape(&app).await;
        if let Some(age) = series(&text, "redis_health_last_check_age_seconds") {
            assert!(
                age < 0.3,
                "metrics were {age} s old with a 0.2 s sample_interval"
            );
            oldest = oldest.max(age);
        }
        scrapes += 1;
    }
}
