//! The write pool: /health/primary answers 200 only where Redis
//! accepts a write now, judged against real redis-server processes and
//! what each then did with a SET.
use std::time::{Duration, Instant};

use crate::support::*;

const LIMIT: Duration = Duration::from_secs(10);

async fn app_for(redis: &TestRedis) -> TestApp {
    spawn_app(settings_with(&redis.url(), "checks.max_age = \"1ms\"")).await
}

fn wait_for_info(redis: &TestRedis, field: &str, value: &str) {
    let deadline = Instant::now() + LIMIT;
    while redis.info_field(field).as_deref() != Some(value) {
        assert!(Instant::now() < deadline, "INFO {field} never read {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A primary filled past `maxmemory 8mb` under `policy`, where SET answers
/// OOM (checked), and its sidecar's /health/primary, which must be 503
/// `memory_pressure`.
async fn full_primary_refusing_set(policy: &str) -> (TestRedis, TestApp, Answer) {
    let redis = TestRedis::with_args(&["--maxmemory-policy", policy]);
    assert_eq!(
        redis.cmd(&["DEBUG", "POPULATE", "100000", "key", "100"]),
        "OK"
    );
    assert_eq!(redis.cmd(&["CONFIG", "SET", "maxmemory", "8mb"]), "OK");
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("-OOM"), "Redis answered {set}");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "memory_pressure",
        "{}",
        primary.text
    );
    (redis, app, primary)
}

/// A Redis (with `extra` arguments) whose BGSAVE failed: its directory is
/// gone (see ../shared/reference.md).
fn redis_whose_bgsave_failed(extra: &[&str]) -> TestRedis {
    let gone = tempfile::tempdir().expect("temp dir");
    let dir = gone.path().to_string_lossy().into_owned();
    let mut args = vec!["--dir", dir.as_str()];
    args.extend_from_slice(extra);
    let redis = TestRedis::with_args(&args);
    drop(gone);
    assert!(redis.cmd(&["BGSAVE"]).contains("Background saving started"));
    wait_for_info(&redis, "rdb_last_bgsave_status", "err");
    redis
}

#[tokio::test]
async fn a_full_noeviction_primary_refuses_set_and_primary_answers_503_memory_pressure() {
    let (_redis, app, primary) = full_primary_refusing_set("noeviction").await;
    assert_eq!(
        primary.json["checks"]["writes"]["refused"], "oom",
        "{}",
        primary.text
    );
    assert_eq!(app.get("/health/alive").await.status, 200);
}

#[tokio::test]
async fn a_volatile_lru_primary_at_maxmemory_with_expiring_keys_accepts_set() {
    let redis = TestRedis::with_args(&["--maxmemory-policy", "volatile-lru"]);
    let fill =
        "for i=1,50000 do redis.call('SET','e'..i,string.rep('x',100),'EX',3600) end return 1";
    assert_eq!(redis.cmd(&["EVAL", fill, "0"]), "1");
    let used: u64 = redis
        .info_field("used_memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let max = (used * 99 / 100).to_string();
    assert_eq!(redis.cmd(&["CONFIG", "SET", "maxmemory", &max]), "OK");
    assert_eq!(redis.cmd(&["SET", "probe", "1", "EX", "3600"]), "OK");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
    let all = app.get("/health").await;
    assert_ne!(all.json["status"], "critical", "{}", all.text);
    assert_ne!(all.json["reason"], "memory_pressure", "{}", all.text);
}

#[tokio::test]
async fn a_noeviction_primary_near_maxmemory_accepts_set_and_reads_memory_near_limit() {
    let redis = TestRedis::with_args(&["--maxmemory-policy", "noeviction"]);
    redis.fill_to_ratio(0.97);
    assert_eq!(redis.cmd(&["SET", "probe", "1"]), "OK");
    let app = app_for(&redis).await;
    let node = app.get("/health/redis").await;
    assert_eq!(node.json["reason"], "memory_near_limit", "{}", node.text);
    assert_eq!(node.json["status"], "degraded", "{}", node.text);
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
}

#[tokio::test]
async fn min_replicas_to_write_without_a_replica_refuses_set_and_three_routes_say_writes_refused() {
    let redis = TestRedis::with_args(&[
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "10",
    ]);
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("-NOREPLICAS"), "Redis answered {set}");
    let app = app_for(&redis).await;
    for route in ["/health/primary", "/health/redis", "/health"] {
        let answer = app.get(route).await;
        assert_eq!(answer.status, 503, "{route}: {}", answer.text);
        assert_eq!(
            answer.json["reason"], "writes_refused",
            "{route}: {}",
            answer.text
        );
        assert_eq!(
            answer.json["checks"]["writes"]["refused"], "noreplicas",
            "{route}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn a_cache_whose_bgsave_failed_accepts_set_and_only_warns_save_failed() {
    let redis = redis_whose_bgsave_failed(&[]);
    assert_eq!(redis.cmd(&["CONFIG", "GET", "save"]), "save\n");
    assert_eq!(redis.cmd(&["SET", "probe", "1"]), "OK");
    let app = app_for(&redis).await;
    let node = app.get("/health/redis").await;
    assert_eq!(node.json["reason"], "save_failed", "{}", node.text);
    assert_eq!(node.json["status"], "warn", "{}", node.text);
    assert_eq!(
        node.json["checks"]["persistence"]["rdb_last_bgsave_status"], "err",
        "{}",
        node.text
    );
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
}

#[tokio::test]
async fn a_failed_bgsave_with_save_points_refuses_set_misconf_and_primary_answers_503() {
    let redis = redis_whose_bgsave_failed(&["--stop-writes-on-bgsave-error", "yes"]);
    assert_eq!(redis.cmd(&["CONFIG", "SET", "save", "3600 1"]), "OK");
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("-MISCONF"), "Redis answered {set}");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "persistence_failed",
        "{}",
        primary.text
    );
    let writes = &primary.json["checks"]["writes"];
    assert_eq!(writes["refused"], "misconf", "{}", primary.text);
    assert!(
        writes["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("MISCONF")),
        "{}",
        primary.text
    );
    let all = app.get("/health").await;
    assert_eq!(all.status, 503, "{}", all.text);
    assert_eq!(
        all.json["checks"]["persistence"]["rdb_last_bgsave_status"], "err",
        "{}",
        all.text
    );
    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
}

#[tokio::test]
async fn a_full_volatile_lru_primary_with_no_expiring_key_refuses_set_and_reads_memory_pressure() {
    full_primary_refusing_set("volatile-lru").await;
}

/// A sidecar with the write canary on, sampling every 200 ms, as `user`.
async fn canary_app(redis: &TestRedis, user: &str) -> TestApp {
    let url = format!("redis://{user}:pw@127.0.0.1:{}", redis.port);
    let extra = "checks.max_age = \"10ms\"\nchecks.sample_interval = \"200ms\"\n\
                 checks.writes.canary = true\n";
    spawn_app(settings_with(&url, extra)).await
}

#[tokio::test]
async fn the_canary_writes_once_per_sample_with_least_privilege_and_changes_nothing() {
    let redis = TestRedis::start();
    // The documented rule: the read rules, and +set on the canary's keys.
    add_health_user(&redis, "pw", &["+set", "~redis-health:*"]);
    let app = canary_app(&redis, "health").await;
    let answer = app
        .wait_for("/health/primary", LIMIT, |a| {
            a.json["checks"]["writes"]["canary_ms"].is_number()
        })
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let before = redis.calls(&["set"])[0];
    let started = Instant::now();
    for _ in 0..200 {
        let answer = app.get("/health/primary").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sets = redis.calls(&["set"])[0] - before;
    let samples = started.elapsed().as_millis() / 200;
    // One SET per sample, never one per probe.
    assert!(
        sets >= 1 && u128::from(sets) <= samples + 2,
        "{sets} SETs over {samples} samples"
    );
    assert!(
        redis.acl_refused().is_empty(),
        "ACL LOG: {:?}",
        redis.acl_refused()
    );
    // XX on a key that is not there: nothing written, nothing to save.
    assert_eq!(
        redis.info_field("rdb_changes_since_last_save").as_deref(),
        Some("0")
    );
    assert_eq!(redis.cmd(&["EXISTS", "redis-health:canary"]), "0");
}

#[tokio::test]
async fn a_canary_the_acl_refuses_is_writes_refused_in_redis_words() {
    let redis = TestRedis::start();
    add_health_user(&redis, "pw", &[]);
    let app = canary_app(&redis, "health").await;
    let answer = app
        .wait_for("/health/primary", LIMIT, |a| a.status == 503)
        .await;
    let writes = &answer.json["checks"]["writes"];
    assert_eq!(answer.json["reason"], "writes_refused", "{}", answer.text);
    assert_eq!(writes["refused"], "canary", "{}", answer.text);
    assert!(
        writes["canary_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("NOPERM")),
        "{}",
        answer.text
    );
    assert_eq!(
        app.get("/health/redis").await.json["reason"],
        "writes_refused"
    );
}

#[tokio::test]
async fn a_failed_aof_rewrite_accepts_set_and_only_warns_save_failed() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().join("aof");
    std::fs::create_dir(&dir).expect("aof dir");
    let redis = TestRedis::with_args(&["--appendonly", "yes", "--dir", &dir.to_string_lossy()]);
    wait_for_info(&redis, "aof_enabled", "1");
    assert_eq!(redis.cmd(&["SET", "before", "1"]), "OK");
    // The open AOF keeps taking writes; a rewrite needs a new file in the
    // directory that is gone.
    std::fs::remove_dir_all(&dir).expect("remove aof dir");
    redis.cmd(&["BGREWRITEAOF"]);
    wait_for_info(&redis, "aof_last_bgrewrite_status", "err");
    assert_eq!(
        redis.info_field("aof_last_write_status").as_deref(),
        Some("ok")
    );
    assert_eq!(redis.cmd(&["SET", "probe", "1"]), "OK");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
    let all = app.get("/health").await;
    assert_eq!(all.json["reason"], "save_failed", "{}", all.text);
    assert_eq!(
        all.json["checks"]["persistence"]["aof_last_bgrewrite_status"], "err",
        "{}",
        all.text
    );
    assert_eq!(app.get("/health/redis").await.status, 200);
}

#[tokio::test]
async fn an_aof_write_error_refuses_writes_until_aof_is_turned_off_then_only_warns() {
    // A full disk for the AOF alone: a 1 MiB tmpfs in a mount namespace of
    // the server's own, gone with it.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {dir} && exec {redis} --port {port} --bind 127.0.0.1 \
         --dir {dir} --appendonly yes --save ''",
        dir = dir.path().display(),
        redis = Server::Redis7.binary().display(),
    );
    let unshare = tool(
        "unshare",
        "apt-get install util-linux (and run the tests as root)",
    );
    let server = TestProcess::start(&unshare, &["-m", "sh", "-c", &script], &[]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + LIMIT;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis in its namespace: {}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cmd = |args: &[&str]| resp_pipeline(addr, args, 1).pop().unwrap_or_default();
    let fill = "return redis.call('set', KEYS[1], string.rep('x', 100000))";
    let mut refused = String::new();
    for n in 0..40 {
        let answer = cmd(&["EVAL", fill, "1", &format!("k{n}")]);
        if answer.starts_with('-') {
            refused = answer;
            break;
        }
    }
    assert!(refused.starts_with("-MISCONF"), "Redis answered {refused}");
    let app = spawn_app(settings_with(
        &format!("redis://{addr}"),
        "checks.max_age = \"1ms\"",
    ))
    .await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "persistence_failed",
        "{}",
        primary.text
    );

    // The usual fix: AOF off. Writes are accepted; the failed status stays.
    assert_eq!(cmd(&["CONFIG", "SET", "appendonly", "no"]), "OK");
    assert_eq!(cmd(&["SET", "after", "1"]), "OK");
    let all = app
        .wait_for("/health", LIMIT, |a| a.json["reason"] == "save_failed")
        .await;
    assert_eq!(
        all.json["checks"]["persistence"]["aof_last_write_status"], "err",
        "{}",
        all.text
    );
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
}
