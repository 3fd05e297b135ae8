//! Reload against what operators and writers really do: files caught
//! mid-write, directories moved, deleted, replaced or linked, files deleted
//! and put back, and SIGHUP storms; each test against the real binary and
//! real Redis servers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::start;
use crate::support::{TestBinary, TestRedis, assert_config_error};
use serde_json::Value;

const MB: u64 = 1024 * 1024;

/// A Redis whose verdict names it: `maxmemory` of `mb` MiB.
fn redis_of(mb: u64) -> TestRedis {
    TestRedis::with_args(&["--maxmemory", &format!("{mb}mb")])
}

/// A complete config pointing at `redis`, padded with a comment so a copy
/// of it takes several writes.
fn config_for(redis: &TestRedis, extra: &str) -> String {
    format!(
        "[redis]\nurl = \"{}\"\n{extra}# {}\n",
        redis.url(),
        "padding ".repeat(24)
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

/// `checks.memory.max_bytes` of one /health/redis answer, if it has one.
async fn max_bytes(app: &TestBinary) -> Option<u64> {
    let (_, body) = app.get("/health/redis").await;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    json["checks"]["memory"]["max_bytes"].as_u64()
}

async fn metric(app: &TestBinary, name: &str) -> Option<f64> {
    crate::support::metrics::value(&crate::support::metrics::scrape_binary(app).await, name, "")
}

/// Polls until `done` holds for what `look` returns, within `limit`; the
/// time it took.
async fn within<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    limit: Duration,
    mut look: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let seen = look().await;
        if done(&seen) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: still {seen:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serves_redis(app: &TestBinary, redis_mb: u64, limit: Duration) -> Duration {
    within(
        &format!("answers from the {redis_mb} MiB Redis"),
        limit,
        || max_bytes(app),
        |seen| *seen == Some(redis_mb * MB),
    )
    .await
}

async fn metric_is(app: &TestBinary, name: &str, value: f64, limit: Duration) -> Duration {
    within(
        name,
        limit,
        || metric(app, name),
        |seen| *seen == Some(value),
    )
    .await
}

async fn logged(app: &TestBinary, text: &str, limit: Duration) -> Duration {
    within(
        &format!("log line {text:?}"),
        limit,
        || async { app.logs() },
        |logs| logs.contains(text),
    )
    .await
}

fn hang_up(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn mv(from: &Path, to: &Path) {
    std::fs::rename(from, to).expect("rename");
}

/// A config file at `<root>/cfg/redis-health.toml`.
struct ConfigDir {
    root: tempfile::TempDir,
}

impl ConfigDir {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join("cfg")).expect("mkdir");
        Self { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("cfg")
    }

    fn file(&self) -> PathBuf {
        self.dir().join("redis-health.toml")
    }
}

#[test]
fn an_empty_config_file_is_refused_by_config() {
    let dir = ConfigDir::new();
    write(&dir.file(), "");
    let path = dir.file().display().to_string();
    assert_config_error(&["config", "--config", &path], &[], &path);
}

#[tokio::test]
async fn an_emptied_file_keeps_the_running_config_and_says_so() {
    let a = redis_of(100);
    let dir = ConfigDir::new();
    write(&dir.file(), &config_for(&a, ""));
    let app = start(&dir.file()).await;
    serves_redis(&app, 100, Duration::from_secs(3)).await;

    write(&dir.file(), "");
    app.signal("HUP");
    let name = "redis_health_config_last_reload_successful";
    metric_is(&app, name, 0.0, Duration::from_secs(3)).await;
    logged(&app, "the file is empty", Duration::from_secs(1)).await;
    assert_eq!(max_bytes(&app).await, Some(100 * MB));
}

/// Two Redis servers; a writer switches the config between them, copying
/// in pieces or truncating first and writing later, while SIGHUPs arrive and
/// probes run: no answer may come from anything but one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_caught_mid_write_never_puts_another_redis_on_a_probe() {
    let a = redis_of(100);
    let b = redis_of(200);
    let dir = ConfigDir::new();
    let texts = [config_for(&a, ""), config_for(&b, "")];
    write(&dir.file(), &texts[0]);
    let app = start(&dir.file()).await;
    serves_redis(&app, 100, Duration::from_secs(3)).await;

    let file = dir.file();
    let pid = app.pid();
    let writer = std::thread::spawn(move || {
        for round in 0..8 {
            let text = texts[(round + 1) % 2].as_bytes();
            let mut out = std::fs::File::create(&file).expect("truncate");
            hang_up(pid);
            if round % 2 == 0 {
                // A copy in 16-byte pieces: every prefix is invalid TOML or
                // already holds the whole URL line.
                for piece in text.chunks(16) {
                    out.write_all(piece).expect("write");
                    std::thread::sleep(Duration::from_millis(5));
                }
            } else {
                // `: > f; sleep; cat good > f`: empty for longer than the
                // quiet period, so it is read empty.
                drop(out);
                std::thread::sleep(Duration::from_millis(250));
                hang_up(pid);
                std::fs::write(&file, text).expect("write");
            }
            std::thread::sleep(Duration::from_millis(400));
        }
    });
    let mut seen = Vec::new();
    while !writer.is_finished() {
        seen.push(max_bytes(&app).await);
    }
    writer.join().expect("writer");
    assert!(
        seen.iter()
            .all(|m| *m == Some(100 * MB) || *m == Some(200 * MB)),
        "an answer not from either Redis: {seen:?}"
    );
    assert!(
        seen.contains(&Some(200 * MB)),
        "the switch was never applied"
    );
    // The last file written points at the 100 MiB Redis.
    serves_redis(&app, 100, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_deleted_file_put_back_unchanged_is_a_successful_reload() {
    let a = redis_of(100);
    let dir = ConfigDir::new();
    let text = config_for(&a, "");
    write(&dir.file(), &text);
    let app = start(&dir.file()).await;
    let name = "redis_health_config_last_reload_successful";

    std::fs::remove_file(dir.file()).expect("rm");
    metric_is(&app, name, 0.0, Duration::from_secs(3)).await;
    write(&dir.file(), &text);
    metric_is(&app, name, 1.0, Duration::from_secs(3)).await;
}

/// `mv cfg cfg.old`: the watch is lost, which a WARN line and the metric
/// say, SIGHUP still reloads, and a new `cfg` is watched again.
#[tokio::test]
async fn a_moved_directory_is_reported_and_watched_again_when_back() {
    let (a, b) = (redis_of(100), redis_of(200));
    let dir = ConfigDir::new();
    write(&dir.file(), &config_for(&a, ""));
    let app = start(&dir.file()).await;
    let watching = "redis_health_config_watching";
    metric_is(&app, watching, 1.0, Duration::from_secs(1)).await;

    mv(&dir.dir(), &dir.root.path().join("cfg.old"));
    metric_is(&app, watching, 0.0, Duration::from_secs(1)).await;
    logged(&app, "the config directory is gone", Duration::from_secs(1)).await;
    assert!(
        app.logs()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("config directory is gone")),
        "{}",
        app.logs()
    );
    let path = dir.file().display().to_string();
    app.signal("HUP");
    logged(
        &app,
        &format!("{path}: cannot read"),
        Duration::from_secs(2),
    )
    .await;

    std::fs::create_dir(dir.dir()).expect("mkdir");
    write(&dir.file(), &config_for(&b, ""));
    metric_is(&app, watching, 1.0, Duration::from_secs(1)).await;
    serves_redis(&app, 200, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_deleted_and_recreated_directory_is_watched_again() {
    let (a, b) = (redis_of(100), redis_of(200));
    let dir = ConfigDir::new();
    write(&dir.file(), &config_for(&a, ""));
    let app = start(&dir.file()).await;
    serves_redis(&app, 100, Duration::from_secs(3)).await;

    std::fs::remove_dir_all(dir.dir()).expect("rm -r");
    std::fs::create_dir(dir.dir()).expect("mkdir");
    write(&dir.file(), &config_for(&b, ""));
    serves_redis(&app, 200, Duration::from_secs(2)).await;
    // Edits in the new directory are seen too.
    write(&dir.file(), &config_for(&a, ""));
    serves_redis(&app, 100, Duration::from_secs(2)).await;
}

/// `mv cfg cfg.old; mkdir cfg; cp cfg.old/* cfg/`, then an edit in the new
/// directory, with no SIGHUP.
#[tokio::test]
async fn a_replaced_directory_is_watched_again_within_a_second() {
    let (a, b) = (redis_of(100), redis_of(200));
    let dir = ConfigDir::new();
    write(&dir.file(), &config_for(&a, ""));
    let app = start(&dir.file()).await;
    serves_redis(&app, 100, Duration::from_secs(3)).await;

    let old = dir.root.path().join("cfg.old");
    mv(&dir.dir(), &old);
    std::fs::create_dir(dir.dir()).expect("mkdir");
    std::fs::copy(old.join("redis-health.toml"), dir.file()).expect("cp");
    let took = logged(
        &app,
        "watching the config directory again",
        Duration::from_secs(1),
    )
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    write(&dir.file(), &config_for(&b, ""));
    serves_redis(&app, 200, Duration::from_secs(2)).await;
    // The old directory no longer drives reloads.
    write(&old.join("redis-health.toml"), &config_for(&a, ""));
    hang_up(app.pid());
    logged(
        &app,
        r#"cause="SIGHUP" changed="none""#,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(max_bytes(&app).await, Some(200 * MB));
}

/// A config path that is a symlink into another directory: an edit to the
/// target is seen with no SIGHUP.
#[tokio::test]
async fn an_edit_behind_a_symlinked_config_path_is_reloaded() {
    let (a, b) = (redis_of(100), redis_of(200));
    let dir = ConfigDir::new();
    let real = dir.root.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    let target = real.join("config.toml");
    write(&target, &config_for(&a, ""));
    std::os::unix::fs::symlink(&target, dir.file()).expect("symlink");
    let app = start(&dir.file()).await;
    serves_redis(&app, 100, Duration::from_secs(3)).await;

    write(&target, &config_for(&b, ""));
    serves_redis(&app, 200, Duration::from_secs(2)).await;
}

/// 1,000 SIGHUPs with the file unchanged, then one that changes a route's
/// key: Redis sees no new connection, and one check only (the changed one's).
#[tokio::test]
async fn a_sighup_storm_costs_redis_no_connection_and_no_check() {
    let redis = TestRedis::start();
    let dir = ConfigDir::new();
    let quiet = "[checks]\nsample_interval = \"30m\"\nmax_age = \"30m\"\n";
    write(&dir.file(), &config_for(&redis, quiet));
    let app = start(&dir.file()).await;
    assert_eq!(app.get("/health/redis").await.0, 200);

    let connections = |redis: &TestRedis| -> u64 {
        redis
            .info_field("total_connections_received")
            .and_then(|n| n.parse().ok())
            .expect("total_connections_received")
    };
    let before = connections(&redis);
    let pings = redis.calls(&["ping"])[0];
    for _ in 0..1000 {
        app.signal("HUP");
    }
    let changed = format!("{quiet}[routes.redis]\nfail_at = \"warn\"\n");
    write(&dir.file(), &config_for(&redis, &changed));
    app.signal("HUP");
    logged(&app, "changed=routes.redis.fail_at", Duration::from_secs(5)).await;
    assert_eq!(redis.calls(&["ping"])[0], pings + 1, "{}", app.logs());
    // Each of the three reads above is a connection of its own; the
    // sidecar's is the one it had.
    assert_eq!(connections(&redis), before + 3, "{}", app.logs());
}
