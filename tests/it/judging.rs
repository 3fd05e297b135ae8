//! Verdicts and figures as Redis itself decides them, against real servers:
//! a full replica, memory Redis leaves out of eviction, counter resets and
//! restarts, an idle replica, latency histograms, the slow log's first
//! entry, and what one-shot `check` leaves out.

use std::time::{Duration, Instant};

use crate::support::pipeline::mixed_pipeline;
use crate::support::*;

use redis_health::config::Settings;

/// A sidecar that checks again on every probe more than `max_age` apart,
/// and whose sampler stays out of the way.
fn on_demand(url: &str, max_age: Duration) -> Settings {
    on_demand_with(url, max_age, "")
}

/// [`on_demand`] with `extra` TOML.
fn on_demand_with(url: &str, max_age: Duration, extra: &str) -> Settings {
    settings_with(
        url,
        &format!(
            "checks.max_age = {}\nchecks.sample_interval = \"600s\"\n{extra}",
            toml_duration(max_age)
        ),
    )
}

#[tokio::test]
async fn a_replica_past_maxmemory_warns_rather_than_fails() {
    let primary = TestRedis::start();
    assert_eq!(
        primary.cmd(&["DEBUG", "POPULATE", "200000", "key", "100"]),
        "OK"
    );
    // The keys reach the replica as its primary's dataset.
    let replica = primary.replica(&["--maxmemory", "20mb", "--maxmemory-policy", "noeviction"]);
    eventually(
        "the replica holds every key, far past its maxmemory",
        Duration::from_secs(30),
        || {
            replica
                .info_field("db0")
                .is_some_and(|db| db.starts_with("keys=200000,"))
        },
    )
    .await;
    assert!(replica.info_u64("used_memory") > 30 * 1024 * 1024);

    let config = on_demand_with(
        &replica.url(),
        Duration::from_millis(50),
        "routes.redis.fail_at = \"critical\"",
    );
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let memory = &answer.json["checks"]["memory"];
    assert_eq!(memory["status"], "warn", "{}", answer.text);
    assert_eq!(memory["reason"], "memory_high");
    assert_eq!(memory["replica"], true);
    assert!(
        memory["ratio"].as_f64().is_some_and(|r| r > 1.0),
        "{memory}"
    );

    // The same figures on a primary are pressure: it would refuse writes.
    let config = on_demand_with(
        &primary.url(),
        Duration::from_millis(50),
        "routes.redis.fail_at = \"critical\"",
    );
    assert_eq!(primary.cmd(&["CONFIG", "SET", "maxmemory", "20mb"]), "OK");
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "memory_pressure");
    assert!(answer.json["checks"]["memory"].get("replica").is_none());
}

#[tokio::test]
async fn a_replication_buffer_burst_is_not_counted_as_memory_pressure() {
    let primary = TestRedis::with_args(&["--repl-backlog-size", "1mb"]);
    let replica = primary.replica(&[]);
    eventually("the replica is in sync", Duration::from_secs(10), || {
        replica.info_field("master_link_status").as_deref() == Some("up")
    })
    .await;
    // A stopped replica reads nothing: what the primary writes for it piles
    // up in its output buffer, beyond the backlog.
    replica.signal("STOP");
    let value = "v".repeat(1024 * 1024);
    let burst = [(&["SET", "big", value.as_str()][..], 40)];
    assert!(
        mixed_pipeline(primary.addr(), &burst)
            .iter()
            .all(|r| r == "OK")
    );
    let used = primary.info_u64("used_memory");
    let not_counted = primary.info_u64("mem_not_counted_for_evict");
    assert!(
        not_counted > used / 2,
        "buffer {not_counted} of {used} bytes"
    );
    // maxmemory just above used_memory, far above what Redis counts.
    let max = used + used / 100;
    assert_eq!(
        primary.cmd(&["CONFIG", "SET", "maxmemory", &max.to_string()]),
        "OK"
    );
    assert_eq!(primary.cmd(&["SET", "still", "writable"]), "OK");

    let app = spawn_app(on_demand(&primary.url(), Duration::from_millis(50))).await;
    let answer = app.get("/health/redis").await;
    replica.signal("CONT");
    let memory = &answer.json["checks"]["memory"];
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_ne!(answer.json["reason"], "memory_pressure", "{}", answer.text);
    let used_bytes = memory["used_bytes"].as_u64().expect("used_bytes");
    let counted = memory["counted_bytes"].as_u64().expect("counted_bytes");
    let not_counted = memory["not_counted_bytes"].as_u64().expect("not_counted");
    assert_eq!(counted, used_bytes - not_counted);
    assert!(used_bytes as f64 / max as f64 > 0.95, "{memory}");
    let ratio = memory["ratio"].as_f64().expect("ratio");
    assert!(
        (ratio - counted as f64 / max as f64).abs() < 0.001,
        "{memory}"
    );
    assert!(ratio < 0.95, "{memory}");
}

/// Keyspace lookups: `hits` GETs of a key that exists, `misses` of one that does not.
fn lookups(hits: usize, misses: usize) -> [(&'static [&'static str], usize); 2] {
    [(&["GET", "here"], hits), (&["GET", "absent"], misses)]
}

#[tokio::test]
async fn config_resetstat_starts_a_window_that_counts_the_traffic_after_it() {
    let redis = TestRedis::start();
    assert_eq!(redis.cmd(&["SET", "here", "1"]), "OK");
    mixed_pipeline(redis.addr(), &lookups(400, 600));
    let app = spawn_app(on_demand(&redis.url(), Duration::from_millis(10))).await;
    let first = app.get("/health/redis").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        redis.info_u64("keyspace_hits") + redis.info_u64("keyspace_misses"),
        1000
    );

    // RESETSTAT, then more hits than ever before the next sample: the
    // judged counters end above their old values.
    let [hits, misses] = lookups(3000, 1000);
    let replies = mixed_pipeline(redis.addr(), &[(&["CONFIG", "RESETSTAT"], 1), hits, misses]);
    assert_eq!(replies[0], "OK");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = app.get("/health/redis").await;
    let hit_rate = &answer.json["checks"]["hit_rate"];
    assert_eq!(hit_rate["lookups"], 4000, "{}", answer.text);
    assert_eq!(hit_rate["ratio"], 0.75, "{}", answer.text);
    assert_eq!(hit_rate["reason"], "hit_rate_low");

    // And the window goes on from the reset.
    mixed_pipeline(redis.addr(), &lookups(1000, 0));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["checks"]["hit_rate"]["lookups"], 5000);
    assert_eq!(answer.json["checks"]["hit_rate"]["ratio"], 0.8);
}

#[tokio::test]
async fn a_restart_starts_a_window_that_counts_the_traffic_since_the_start() {
    let mut redis = TestRedis::start();
    assert_eq!(redis.cmd(&["SET", "here", "1"]), "OK");
    mixed_pipeline(redis.addr(), &lookups(5000, 0));
    let app = spawn_app(on_demand(&redis.url(), Duration::from_millis(10))).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = app.get("/health/redis").await;
    assert_eq!(before.json["checks"]["hit_rate"]["lookups"], 0);

    redis.restart(&[]);
    assert_eq!(redis.cmd(&["SET", "here", "1"]), "OK");
    mixed_pipeline(redis.addr(), &lookups(300, 700));
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), |a| {
            a.json["checks"]["hit_rate"]["lookups"]
                .as_u64()
                .is_some_and(|n| n > 0)
        })
        .await;
    let hit_rate = &answer.json["checks"]["hit_rate"];
    assert_eq!(hit_rate["lookups"], 1000, "{}", answer.text);
    assert_eq!(hit_rate["ratio"], 0.3);
    assert_eq!(hit_rate["reason"], "low_hit_rate");
    assert_eq!(answer.status, 503);
    let uptime = redis.info_u64("uptime_in_seconds");
    assert!(
        hit_rate["window_s"]
            .as_u64()
            .is_some_and(|w| w <= uptime + 1),
        "window {} s, uptime {uptime} s",
        hit_rate["window_s"]
    );
}

#[tokio::test]
async fn an_idle_replica_pinged_every_two_seconds_stays_ok() {
    let primary = TestRedis::with_args(&["--repl-ping-replica-period", "2"]);
    let replica = primary.replica(&[]);
    let config = on_demand_with(
        &replica.url(),
        Duration::from_millis(50),
        "checks.replication.max_last_io = \"5s\"",
    );
    let app = spawn_app(config).await;
    app.wait_for("/health/replica", Duration::from_secs(10), |a| {
        a.json["checks"]["replication"]["master_link_status"] == "up"
    })
    .await;

    let started = Instant::now();
    let mut longest_silence = 0;
    let mut answers = 0;
    while started.elapsed() < Duration::from_secs(15) {
        let answer = app.get("/health/replica").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json["status"], "ok", "{}", answer.text);
        let last_io = answer.json["checks"]["replication"]["master_last_io_s"].as_i64();
        longest_silence = longest_silence.max(last_io.unwrap_or(0));
        answers += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answers > 50, "{answers} answers");
    assert!(
        longest_silence >= 1,
        "the link was never idle: {longest_silence}"
    );
}

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
    let count = text
        .lines()
        .find_map(|line| line.strip_prefix(&count_line))
        .and_then(|n| n.trim().parse().ok())
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

async fn scrape(app: &TestApp) -> String {
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, 200);
    answer.text
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
async fn the_first_entry_of_a_never_written_slow_log_counts() {
    let redis = TestRedis::with_args(&["--slowlog-log-slower-than", "100000"]);
    let config = on_demand_with(
        &redis.url(),
        Duration::from_millis(10),
        "checks.slowlog.warn_above = 1",
    );
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["checks"]["slowlog"]["slow_entries"], 0);
    assert_eq!(redis.cmd(&["SLOWLOG", "LEN"]), "0");

    assert_eq!(redis.cmd(&["DEBUG", "SLEEP", "0.15"]), "OK");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(
        answer.json["checks"]["slowlog"]["slow_entries"], 1,
        "{}",
        answer.text
    );
    assert_eq!(answer.json["checks"]["slowlog"]["status"], "ok");

    assert_eq!(redis.cmd(&["DEBUG", "SLEEP", "0.15"]), "OK");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["checks"]["slowlog"]["slow_entries"], 2);
    assert_eq!(answer.json["checks"]["slowlog"]["reason"], "slow_commands");
}

#[test]
fn one_shot_check_leaves_the_windowed_checks_out() {
    let redis = TestRedis::start();
    let url = redis.url();
    let output = run_binary(
        &["check", "all"],
        &[
            ("REDIS_HEALTH_REDIS__URL", &url),
            ("REDIS_HEALTH_CHECKS__SLOWLOG__WARN_ABOVE", "5"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let body: serde_json::Value = serde_json::from_str(&stdout).expect("JSON body");
    let checks = body["checks"].as_object().expect("checks");
    for windowed in ["hit_rate", "evictions", "connections", "slowlog"] {
        assert!(!checks.contains_key(windowed), "{windowed} in {stdout}");
    }
    for judged in ["ping", "memory", "persistence", "clients", "replication"] {
        assert!(
            checks.contains_key(judged),
            "{judged} missing from {stdout}"
        );
    }
    assert_eq!(redis.calls(&["slowlog|get"]), vec![0], "no SLOWLOG sent");

    let help = run_binary(&["check", "--help"], &[]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("hit_rate, evictions, connections, slowlog"),
        "{help}"
    );
}

#[tokio::test]
async fn the_slow_log_is_read_with_the_documented_acl_and_without_len() {
    let redis = TestRedis::with_args(&["--slowlog-log-slower-than", "100000"]);
    for (user, rules) in [
        ("documented", "+slowlog|get +slowlog|len"),
        ("older", "+slowlog|get"),
    ] {
        let mut args = vec!["ACL", "SETUSER", user, "on", ">pw-5e2c", "-@all"];
        args.extend(["+ping", "+info", "+client|id"]);
        args.extend(rules.split(' '));
        assert_eq!(redis.cmd(&args), "OK");
    }
    let app = |user: &str| {
        let url = format!("redis://{user}:pw-5e2c@127.0.0.1:{}", redis.port);
        spawn_app(on_demand_with(
            &url,
            Duration::from_millis(10),
            "checks.slowlog.warn_above = 5",
        ))
    };
    let documented = app("documented").await;
    let older = app("older").await;
    for app in [&documented, &older] {
        let answer = app.get("/health/redis").await;
        assert_eq!(
            answer.json["checks"]["slowlog"]["status"], "ok",
            "{}",
            answer.text
        );
    }

    assert_eq!(redis.cmd(&["DEBUG", "SLEEP", "0.15"]), "OK");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let answer = documented.get("/health/redis").await;
    assert_eq!(
        answer.json["checks"]["slowlog"]["slow_entries"], 1,
        "{}",
        answer.text
    );
    // Refused LEN, the new entries cannot be told from older ones: counted
    // from the first seen, and the check still answers.
    let answer = older.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["checks"]["slowlog"]["status"], "ok",
        "{}",
        answer.text
    );
    assert_eq!(
        answer.json["checks"]["slowlog"]["slow_entries"], 0,
        "{}",
        answer.text
    );
}
