//! The headroom check against real redis-server processes: RSS against a
//! configured memory limit, maxmemory above it, the machine's RAM when no
//! limit is set, a real BGSAVE's copy-on-write, and a bad limit.

use std::time::{Duration, Instant};

use redis_health::config::Settings;

use crate::support::*;

fn with_limit(redis: &TestRedis, limit: &str) -> Settings {
    settings_with(
        &redis.url(),
        &format!("checks.headroom.limit_bytes = {}", toml_str(limit)),
    )
}

#[tokio::test]
async fn rss_near_the_configured_limit_is_critical_oom_risk() {
    let redis = TestRedis::start();
    assert_eq!(
        redis.cmd(&["DEBUG", "POPULATE", "100000", "key", "100"]),
        "OK"
    );
    // Redis refreshes used_memory_rss in its cron (every 100 ms): wait until
    // two reads 150 ms apart agree, so the figure is the populated one.
    let mut rss = redis.info_u64("used_memory_rss");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let now = redis.info_u64("used_memory_rss");
        if now == rss {
            break;
        }
        assert!(Instant::now() < deadline, "used_memory_rss never settled");
        rss = now;
    }
    // RSS at about 97% of the limit: past fail_ratio (0.95).
    let limit = (rss as f64 / 0.97) as u64;
    let app = spawn_app(with_limit(&redis, &limit.to_string())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "critical", "{}", answer.text);
    assert_eq!(answer.json["reason"], "oom_risk", "{}", answer.text);
    let headroom = &answer.json["checks"]["headroom"];
    assert_eq!(headroom["status"], "critical");
    assert_eq!(headroom["limit_bytes"], limit);
    assert_eq!(headroom["limit_source"], "config");
    let ratio = headroom["ratio"].as_f64().expect("ratio");
    assert!((0.95..1.0).contains(&ratio), "{ratio}");
    assert!(headroom["rss_bytes"].as_u64().is_some_and(|r| r > 0));
    assert_eq!(app.get("/health").await.json["reason"], "oom_risk");

    let metrics = app.get("/metrics").await.text;
    assert_eq!(
        metrics::value(&metrics, "redis_health_memory_limit_bytes", ""),
        Some(limit as f64)
    );
    let shown_rss =
        metrics::value(&metrics, "redis_health_memory_rss_bytes", "").expect("rss gauge");
    assert!((shown_rss / limit as f64) >= 0.95, "{shown_rss}");
}

#[tokio::test]
async fn maxmemory_above_the_limit_warns() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let app = spawn_app(with_limit(&redis, "64Mi")).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["status"], "warn", "{}", answer.text);
    assert_eq!(
        answer.json["reasons"],
        serde_json::json!(["maxmemory_above_limit"])
    );
    let headroom = &answer.json["checks"]["headroom"];
    assert_eq!(headroom["reason"], "maxmemory_above_limit");
    assert_eq!(headroom["limit_bytes"], 67_108_864);
    assert_eq!(headroom["limit_source"], "config");
}

#[tokio::test]
async fn without_a_limit_the_machines_ram_is_the_limit() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let headroom = &answer.json["checks"]["headroom"];
    assert_eq!(headroom["status"], "ok", "{}", answer.text);
    assert_eq!(headroom["limit_source"], "system");
    assert_eq!(
        headroom["limit_bytes"],
        redis.info_u64("total_system_memory")
    );
    assert_eq!(headroom["last_cow_bytes"], 0);
}

/// A BGSAVE whose child is slowed (`rdb-key-save-delay`) while every value
/// is rewritten in place: the child keeps the old pages, so
/// rdb_last_cow_size is most of the data set. A limit below RSS plus that
/// COW, yet well above RSS, is what the next fork would push past.
#[tokio::test]
async fn a_real_bgsave_under_writes_shows_the_next_fork_would_not_fit() {
    let redis = TestRedis::start();
    assert_eq!(
        redis.cmd(&["DEBUG", "POPULATE", "20000", "key", "1000"]),
        "OK"
    );
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1"]),
        "OK"
    );
    assert_eq!(redis.cmd(&["BGSAVE"]), "Background saving started");
    let rewrite = "for i = 0, 19999 do redis.call('SETRANGE', 'key:' .. i, 0, 'y') end return 1";
    assert_eq!(redis.cmd(&["EVAL", rewrite, "0"]), "1");
    assert_eq!(
        redis.info_field("rdb_bgsave_in_progress").as_deref(),
        Some("1"),
        "the writes must land while the child runs"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while redis.info_field("rdb_bgsave_in_progress").as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        redis.info_field("rdb_last_bgsave_status").as_deref(),
        Some("ok")
    );
    let cow = redis.info_u64("rdb_last_cow_size");
    let rss = redis.info_u64("used_memory_rss");
    assert!(cow > rss / 2, "cow {cow} of rss {rss}");
    let limit = rss + cow * 9 / 10;
    let app = spawn_app(with_limit(&redis, &limit.to_string())).await;

    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["reasons"],
        serde_json::json!(["fork_headroom"]),
        "{}",
        answer.text
    );
    let headroom = &answer.json["checks"]["headroom"];
    assert_eq!(headroom["last_cow_bytes"], cow);
    assert!(headroom["ratio"].as_f64().is_some_and(|r| r < 0.8));
}

#[test]
fn a_limit_that_is_no_quantity_exits_2_naming_the_key_without_the_value() {
    let key = "checks.headroom.limit_bytes";
    for value in [
        "lots",
        "0",
        "-512Mi",
        "99999999999999999999999",
        "16Ei",
        "1e9",
    ] {
        let env = [("REDIS_HEALTH_CHECKS__HEADROOM__LIMIT_BYTES", value)];
        assert_config_error(&[], &env, key);
        let stderr = String::from_utf8_lossy(&run_binary(&["config"], &env).stderr).into_owned();
        // "0" is too short to tell a quote from the message's own words.
        if value.len() > 1 {
            assert!(!stderr.contains(value), "{value} quoted: {stderr}");
        }
    }
    assert_config_error(
        &[],
        &[
            ("REDIS_HEALTH_CHECKS__HEADROOM__WARN_RATIO", "0.95"),
            ("REDIS_HEALTH_CHECKS__HEADROOM__FAIL_RATIO", "0.9"),
        ],
        "checks.headroom.warn_ratio",
    );
}

#[test]
fn the_config_dump_shows_the_limit_in_bytes() {
    for (value, bytes) in [
        ("536870912", "536870912"),
        ("1.5Gi", "1610612736"),
        ("2G", "2000000000"),
    ] {
        let output = run_binary(
            &["config"],
            &[("REDIS_HEALTH_CHECKS__HEADROOM__LIMIT_BYTES", value)],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{value}: {stdout}");
        assert!(
            stdout.contains(&format!("limit_bytes = {bytes}\n")),
            "{value}: {stdout}"
        );
    }
}

/// A cache filled through `maxmemory` under allkeys-lru with 1 KB values, as
/// a client fills it (pipelined SETs of distinct keys), until Redis evicts.
fn fill_until_evicting(redis: &TestRedis) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(redis.addr()).expect("connect");
    let value = "x".repeat(1000);
    let mut sent = 0u64;
    while redis.info_u64("evicted_keys") < 10_000 {
        let mut batch = Vec::with_capacity(1 << 21);
        for n in sent..sent + 20_000 {
            let key = format!("k{n}");
            batch.extend_from_slice(
                format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                    key.len(),
                    value.len()
                )
                .as_bytes(),
            );
        }
        sent += 20_000;
        stream.write_all(&batch).expect("write");
        // Twenty thousand "+OK\r\n" replies.
        let mut replies = vec![0u8; 20_000 * 5];
        stream.read_exact(&mut replies).expect("replies");
        assert!(sent < 2_000_000, "Redis never evicted");
    }
}

/// Item 9 of the write-pool issue: a full cache whose maxmemory raises no
/// `maxmemory_above_limit` never reads `oom_risk`; one whose maxmemory is
/// close enough to the limit that RSS may reach it is told so by
/// `maxmemory_above_limit`, whatever RSS then reads.
#[tokio::test]
async fn a_full_cache_is_told_about_its_maxmemory_before_it_reads_oom_risk() {
    const LIMIT: u64 = 200 << 20;
    for (share, flagged) in [(0.80, false), (0.88, true)] {
        let maxmemory = ((LIMIT as f64) * share) as u64;
        let redis = TestRedis::with_args(&[
            "--maxmemory",
            &maxmemory.to_string(),
            "--maxmemory-policy",
            "allkeys-lru",
        ]);
        fill_until_evicting(&redis);
        let app = spawn_app(with_limit(&redis, &LIMIT.to_string())).await;
        let answer = app.get("/health/redis").await;
        let reasons: Vec<&str> = answer.json["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
            .collect();
        let above = reasons.contains(&"maxmemory_above_limit");
        assert_eq!(
            above, flagged,
            "maxmemory at {share} of the limit: {}",
            answer.text
        );
        assert!(
            above || !reasons.contains(&"oom_risk"),
            "oom_risk with no maxmemory_above_limit: {}",
            answer.text
        );
        if !flagged {
            assert_eq!(answer.status, 200, "{}", answer.text);
        }
    }
}
