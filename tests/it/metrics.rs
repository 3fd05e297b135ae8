//! /metrics: the scrape (checked with the real promtool), Redis down, the
//! metric names the shipped dashboard and alerts use, the latency
//! histograms, and the sampler that keeps the gauges fresh without probes.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::metrics::{scrape, scrape_with_type, value};
use crate::support::sentinel::SentinelNode;
use crate::support::*;

/// The `le` bounds and counts of one histogram series, in order, with its
/// `_count`.
fn histogram(text: &str, name: &str, labels: &str) -> (Vec<(f64, u64)>, u64) {
    let buckets = text
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{name}_bucket{{")))
        .filter(|line| line.contains(labels))
        .map(|line| {
            let le = line
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("le");
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("bound")
            };
            let count = line
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("count");
            (bound, count)
        })
        .collect();
    let count_line = if labels.is_empty() {
        format!("{name}_count ")
    } else {
        format!("{name}_count{{{labels}}} ")
    };
    let count = value(text, &format!("{name}_count"), labels)
        .map(|n| n as u64)
        .unwrap_or_else(|| panic!("{count_line} in\n{text}"));
    (buckets, count)
}

/// How many observations a histogram holds at or below `bound`.
fn at_most(buckets: &[(f64, u64)], bound: f64) -> u64 {
    buckets
        .iter()
        .find(|(le, _)| (*le - bound).abs() < 1e-9)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no bucket le={bound}"))
}

fn assert_well_formed(name: &str, buckets: &[(f64, u64)], count: u64) {
    assert!(!buckets.is_empty(), "{name}: no buckets");
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{name}: buckets decrease: {buckets:?}"
    );
    assert_eq!(
        buckets.last().copied(),
        Some((f64::INFINITY, count)),
        "{name}: +Inf is not _count"
    );
}

#[tokio::test]
async fn latency_histograms_count_each_probe_and_check_once() {
    let redis = TestRedis::start();
    let app = spawn_app(on_demand(&redis.url(), Duration::from_secs(1))).await;
    // Fast: one check, then answers from the cache.
    for _ in 0..10 {
        assert_eq!(app.get("/health/redis").await.status, 200);
    }
    // Slow: each probe waits on a check that Redis holds up for 300 ms.
    let slow = 3;
    for _ in 0..slow {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let addr = redis.addr();
        let sleeper = std::thread::spawn(move || {
            crate::support::resp_pipeline(addr, &["DEBUG", "SLEEP", "0.3"], 1)
        });
        // The probe goes once Redis is really asleep.
        wait_until_busy(addr, Duration::from_secs(5));
        let answer = app.get("/health/redis").await;
        assert!(
            answer.elapsed >= Duration::from_millis(150),
            "{:?}",
            answer.elapsed
        );
        sleeper.join().expect("DEBUG SLEEP");
    }

    let text = scrape(&app).await;
    let probes = "redis_health_probe_duration_seconds";
    let (buckets, count) = histogram(&text, probes, r#"route="/health/redis""#);
    assert_well_formed(probes, &buckets, count);
    assert_eq!(count, 10 + slow, "{text}");
    assert_eq!(at_most(&buckets, 0.1024), 10, "{buckets:?}");
    assert_eq!(at_most(&buckets, 1.6384), count, "{buckets:?}");
    // Routes never probed have empty buckets, not made-up ones.
    let (idle, idle_count) = histogram(&text, probes, r#"route="/health/primary""#);
    assert_well_formed(probes, &idle, idle_count);
    assert!(idle.iter().all(|(_, n)| *n == 0), "{idle:?}");

    let checks = "redis_health_check_duration_seconds";
    let (buckets, count) = histogram(&text, checks, "");
    assert_well_formed(checks, &buckets, count);
    assert!(count > slow, "{buckets:?}");
    assert_eq!(at_most(&buckets, 0.128), count - slow, "{buckets:?}");
    assert_eq!(at_most(&buckets, 2.048), count, "{buckets:?}");
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
    let (content_type, text) = scrape_with_type(&app).await;
    for _ in 0..20 {
        scrape(&app).await;
    }
    let after = redis.calls(&["ping", "info"]);
    assert_eq!(after[0], before[0], "a scrape sends no PING");
    assert_eq!(after[1] - before[1], 1, "only our own INFO commandstats");

    assert!(content_type.starts_with("text/plain; version=0.0.4"));
    assert_eq!(value(&text, "redis_health_redis_up", ""), Some(1.0));
    assert_eq!(
        value(&text, "redis_health_check_status", r#"check="memory""#),
        Some(1.0),
        "warn is 1:\n{text}"
    );
    assert_eq!(
        value(
            &text,
            "redis_health_route_status",
            r#"route="/health/redis""#
        ),
        Some(1.0)
    );
    let ratio = value(&text, "redis_health_memory_ratio", "").expect("memory ratio");
    assert!((0.8..0.95).contains(&ratio), "{ratio}");
    assert!(value(&text, "redis_health_memory_max_bytes", "").is_some_and(|v| v > 0.0));
    assert!(value(&text, "redis_health_ops_per_second", "").is_some());
    assert_eq!(value(&text, "redis_health_replicas_online", ""), Some(0.0));
    assert_eq!(value(&text, "redis_health_is_primary", ""), Some(1.0));
    for (code, count) in [("200", 1.0), ("503", 1.0), ("400", 1.0), ("414", 1.0)] {
        assert_eq!(
            value(
                &text,
                "redis_health_probe_requests_total",
                &format!(r#"route="/health/redis",code="{code}""#)
            ),
            Some(count),
            "{code}:\n{text}"
        );
    }
    assert!(
        value(&text, "redis_health_check_duration_seconds_count", "").is_some_and(|n| n >= 1.0)
    );
    assert_eq!(
        value(
            &text,
            "redis_health_probe_duration_seconds_count",
            r#"route="/health/redis""#
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
    let text = scrape(&app).await;
    assert_eq!(value(&text, "redis_health_redis_up", ""), Some(0.0));
    assert_eq!(
        value(&text, "redis_health_check_status", r#"check="ping""#),
        Some(4.0)
    );
    assert_eq!(value(&text, "redis_health_memory_used_bytes", ""), None);
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
    // A stream queue with a group, so the queue gauges are exported too.
    primary.cmd(&["XGROUP", "CREATE", "events", "workers", "$", "MKSTREAM"]);
    let queue = "checks.sample_interval = \"200ms\"\n[[queues]]\nname = \"events\"\nkind = \"stream\"\nkey = \"events\"";
    for redis in [&primary, &replica] {
        let config = settings_with(&redis.url(), &format!("checks.max_age = \"10ms\"\n{queue}"));
        let app = spawn_app(config).await;
        app.wait_for("/health/queues", Duration::from_secs(10), |a| {
            a.json["checks"]["queues"]["queues"]["events"]["groups"]["workers"]["lag"] == 0
        })
        .await;
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
        scraped.push_str(&scrape(&app).await);
    }
    // A Sentinel exports the sentinel gauges.
    let sentinel = SentinelNode::start(primary.port, 1);
    let app = spawn_app(settings(&sentinel.url())).await;
    app.wait_for("/health/sentinel", Duration::from_secs(5), |a| {
        a.status == 200
    })
    .await;
    scraped.push_str(&scrape(&app).await);
    // Certificate expiry is exported on rediss:// connections only.
    let pki = crate::support::tls::TestPki::new();
    pki.server("server", 365);
    let (_tls, tls_port) = pki.redis("server", false);
    let config = pki.trusting(&format!("rediss://127.0.0.1:{tls_port}"), "");

    let app = spawn_app(config).await;
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    scraped.push_str(&scrape(&app).await);
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
        let text = scrape(&app).await;
        if let Some(age) = value(&text, "redis_health_last_check_age_seconds", "") {
            assert!(
                age < 0.3,
                "metrics were {age} s old with a 0.2 s sample_interval"
            );
            oldest = oldest.max(age);
        }
        scrapes += 1;
    }
}
