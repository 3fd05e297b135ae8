//! The verdicts of the checks against real redis-server processes: memory,
//! persistence, loading, busy scripts, the hit-rate and other windows, the
//! slow log, rdb_stale, a replica's memory and buffers, idle replicas, and
//! the one-shot check's choice of checks.

use std::time::{Duration, Instant};

use crate::support::pipeline::mixed_pipeline;
use crate::support::*;

#[tokio::test]
async fn memory_pressure_under_noeviction_only_memory_high_under_allkeys_lru() {
    let redis = TestRedis::start();
    // maxmemory below used_memory: under noeviction Redis refuses writes.
    redis.fill_to_ratio(1.05);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical");
    assert_eq!(answer.json["reason"], "memory_pressure");
    assert_eq!(answer.json["checks"]["memory"]["policy"], "noeviction");
    assert!(
        answer.json["checks"]["memory"]["ratio"]
            .as_f64()
            .is_some_and(|r| r >= 0.95)
    );

    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]),
        "OK"
    );
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    assert_eq!(answer.json["status"], "warn");
    assert_eq!(answer.json["reason"], "memory_high");
    assert_eq!(answer.json["checks"]["memory"]["status"], "warn");
}

#[tokio::test]
async fn memory_high_warns_but_serves() {
    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let app = spawn_app(settings(&redis.url())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer
            .text
            .starts_with(r#"{"status":"warn","reason":"memory_high""#),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["checks"]["memory"]["status"], "warn");
}

#[tokio::test]
async fn persistence_failure_is_critical() {
    let redis = TestRedis::start();
    let data = redis.dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    // `dir` is a protected config in Redis 7: the server must allow it.
    let mut redis = redis;
    redis.restart(&["--enable-protected-configs", "yes"]);
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "dir", &data.to_string_lossy()]),
        "OK"
    );
    // Save points and stop-writes-on-bgsave-error (on by default): a failed
    // save then refuses writes with MISCONF (server.c
    // writeCommandsDeniedByDiskError). Without save points it would not.
    assert_eq!(redis.cmd(&["CONFIG", "SET", "save", "3600 1"]), "OK");
    std::fs::remove_dir(&data).expect("remove data dir");
    assert!(redis.cmd(&["BGSAVE"]).contains("Background saving started"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.info_field("rdb_last_bgsave_status").as_deref() != Some("err") {
        assert!(Instant::now() < deadline, "BGSAVE did not fail");
        std::thread::sleep(Duration::from_millis(20));
    }
    let app = spawn_app(settings(&redis.url())).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical");
    assert_eq!(answer.json["reason"], "persistence_failed");
    assert_eq!(
        answer.json["checks"]["persistence"]["rdb_last_bgsave_status"],
        "err"
    );
}

#[tokio::test]
async fn loading_is_told_apart_from_a_dead_server() {
    let mut redis = TestRedis::start();
    redis.restart_loading();
    let app = spawn_app(settings(&redis.url())).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "loading"), "{}", answer.text);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("LOADING"))
    );
}

#[tokio::test]
async fn a_running_script_is_busy() {
    let redis = TestRedis::with_args(&["--lua-time-limit", "50"]);
    let config = settings_with(&redis.url(), "checks.max_age = \"10ms\"");
    let app = spawn_app(config).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    let dialled = || -> u64 {
        redis
            .info_field("total_connections_received")
            .and_then(|n| n.parse().ok())
            .expect("total_connections_received")
    };
    let before = dialled();

    let addr = redis.addr();
    let script = std::thread::spawn(move || {
        crate::support::resp_pipeline(addr, &["EVAL", "while true do end", "0"], 1)
    });
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "busy", "{}", answer.text);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await; // past max_age
        assert_eq!(app.get("/health/redis").await.json["reason"], "busy");
    }
    assert!(redis.cmd(&["SCRIPT", "KILL"]).starts_with("OK"));
    let _ = script.join();
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    // The script's, SCRIPT KILL's and this INFO's connections: the sidecar
    // kept its own through BUSY rather than dialling again every check.
    assert_eq!(dialled() - before, 3);
}

#[tokio::test]
async fn hit_rate_is_windowed_low_after_long_history_of_hits_then_clears() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let window = Duration::from_secs(2);
    let config = settings_with(
        &redis.url(),
        &format!(
            "[checks]\nmax_age = \"50ms\"\nsample_interval = \"100ms\"\n\
             hit_rate.window = {}\nhit_rate.min_lookups = 100",
            toml_duration(window)
        ),
    );
    let app = spawn_app(config).await;

    // A first check gives the window its baseline; then a long history of hits...
    assert_eq!(app.get("/health/redis").await.status, 200);
    assert_eq!(redis.cmd(&["SET", "present", "1"]), "OK");
    redis.pipeline(&["GET", "present"], 10_000);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| {
            a.json["checks"]["hit_rate"]["lookups"] == 10_000
        })
        .await;
    assert_eq!(answer.json["checks"]["hit_rate"]["ratio"], 1.0);
    // ...that leaves the window.
    app.wait_for("/health/redis", window * 3, |a| {
        a.json["checks"]["hit_rate"]["lookups"] == 0
    })
    .await;

    // Lifetime ratio stays above 0.9 (10000 / 11000); the window sees only misses.
    redis.pipeline(&["GET", "absent"], 1_000);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 503)
        .await;
    assert_eq!(answer.json["reason"], "low_hit_rate", "{}", answer.text);
    assert_eq!(answer.json["status"], "degraded");
    assert_eq!(answer.json["checks"]["hit_rate"]["ratio"], 0.0);
    assert_eq!(answer.json["checks"]["hit_rate"]["lookups"], 1_000);

    // With no lookups the misses leave the window and the check clears.
    let answer = app
        .wait_for("/health/redis", window * 3, |a| a.status == 200)
        .await;
    assert_eq!(answer.json["checks"]["hit_rate"]["status"], "ok");
}

#[tokio::test]
async fn slow_commands_warn_when_the_slow_log_grows() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "[checks]\nmax_age = \"10ms\"\nsample_interval = \"100ms\"\nslowlog.warn_above = 10",
    );
    let app = spawn_app(config).await;

    let quiet = app.get("/health/redis").await;
    assert_eq!(quiet.status, 200, "{}", quiet.text);
    assert_eq!(quiet.json["checks"]["slowlog"]["status"], "ok");

    // Every command is slow from now on.
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        "OK"
    );
    redis.pipeline(&["GET", "k"], 50);
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(3), |a| {
            a.json["reason"] == "slow_commands"
        })
        .await;
    assert_eq!(answer.status, 200, "a warning serves: {}", answer.text);
    assert_eq!(answer.json["checks"]["slowlog"]["status"], "warn");
    assert!(
        answer.json["checks"]["slowlog"]["slow_entries"]
            .as_u64()
            .is_some_and(|n| n > 10),
        "{}",
        answer.text
    );
    assert!(redis.calls(&["slowlog|get"])[0] > 0);
}

#[tokio::test]
async fn unsaved_changes_older_than_max_rdb_age_are_rdb_stale() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = settings_with(
        &redis.url(),
        "checks.max_age = \"10ms\"\nchecks.persistence.max_rdb_age = \"1s\"",
    );
    let app = spawn_app(config).await;

    // Nothing unsaved: however old the last save, nothing is at risk.
    assert_eq!(redis.cmd(&["SAVE"]), "OK");
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["checks"]["persistence"]["status"], "ok");

    assert_eq!(redis.cmd(&["SET", "unsaved", "1"]), "OK");
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), |a| {
            a.json["reason"] == "rdb_stale"
        })
        .await;
    assert_eq!(answer.status, 200, "a warning serves: {}", answer.text);
    assert_eq!(
        answer.json["checks"]["persistence"]["rdb_changes_since_last_save"],
        1
    );
    assert!(
        answer.json["checks"]["persistence"]["rdb_last_save_age_s"]
            .as_u64()
            .is_some_and(|age| age > 1)
    );

    assert_eq!(redis.cmd(&["SAVE"]), "OK");
    app.wait_for("/health/redis", Duration::from_secs(2), |a| {
        a.json["checks"]["persistence"]["status"] == "ok"
    })
    .await;
}

#[tokio::test]
async fn alive_while_loading() {
    let mut redis = TestRedis::start();
    redis.restart_loading();
    let config = settings_with(
        &redis.url(),
        "redis.timeout = \"300ms\"\nchecks.max_age = \"10ms\"",
    );
    let app = spawn_app(config).await;

    let ready = app.get("/health/redis").await;
    assert!(is_down_with(&ready, "loading"), "{}", ready.text);
    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
    // Alive: the top level agrees with the 200; the ping says why.
    assert_eq!(alive.json["status"], "ok", "{}", alive.text);
    assert_eq!(alive.json["reasons"], serde_json::json!([]));
    assert_eq!(alive.json["checks"]["ping"]["status"], "down");
    assert_eq!(alive.json["checks"]["ping"]["reason"], "loading");
    assert!(alive.json["checks"].get("memory").is_none());
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
