//! Live config reload against the real binary: SIGHUP, a ConfigMap-style
//! symlink swap with no signal, a broken file, keys that need a restart, and
//! a new `redis.url`; and in `robust`, what operators and writers really do
//! to the file and its directory.

mod robust;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A config file the binary reads through `REDIS_HEALTH_CONFIG`.
struct ConfigFile {
    dir: tempfile::TempDir,
}

impl ConfigFile {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("redis-health.toml")
    }

    fn write(&self, text: &str) {
        std::fs::write(self.path(), text).expect("write config");
    }
}

fn config_for(redis: &TestRedis, extra: &str) -> String {
    format!("[redis]\nurl = \"{}\"\n{extra}", redis.url())
}

async fn start(config: &Path) -> TestBinary {
    let path = config.to_str().expect("utf-8 path");
    TestBinary::start(&[("REDIS_HEALTH_CONFIG", path)]).await
}

/// Polls `path` until `done` holds for its status and body, within `limit`.
async fn answer_within(
    app: &TestBinary,
    path: &str,
    limit: Duration,
    done: impl Fn(u16, &Value) -> bool,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, body) = app.get(path).await;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if done(status, &json) {
            return (status, json, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answers {status} {body} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the binary has logged `text`, within `limit`.
async fn logged_within(app: &TestBinary, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !app.logs().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} within {limit:?} in {}",
            app.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WARN_FAILS: &str = "[routes.redis]\nfail_at = \"warn\"\n";

#[tokio::test]
async fn sighup_after_editing_the_file_changes_the_verdict() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    // No maxmemory: /health/redis is warn (no_maxmemory), which passes.
    config.write(&config_for(&redis, ""));
    let app = start(&config.path()).await;
    let (status, body) = app.get("/health/redis").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(r#"{"status":"warn","reason":"no_maxmemory""#),
        "{body}"
    );

    config.write(&config_for(&redis, WARN_FAILS));
    app.signal("HUP");
    let (_, body, _) = answer_within(&app, "/health/redis", Duration::from_secs(2), |s, _| {
        s == 503
    })
    .await;
    assert_eq!(body["reason"], "no_maxmemory");
    let logs = app.logs();
    let reloaded = logs
        .lines()
        .find(|line| line.contains("config reloaded"))
        .unwrap_or_else(|| panic!("no reload line in {logs}"));
    assert!(reloaded.contains("routes.redis.fail_at"), "{reloaded}");
    assert_eq!(
        metrics::value(
            &metrics::scrape_binary(&app).await,
            "redis_health_config_last_reload_successful",
            ""
        ),
        Some(1.0)
    );
    assert!(
        metrics::value(
            &metrics::scrape_binary(&app).await,
            "redis_health_config_last_reload_success_timestamp_seconds",
            ""
        )
        .is_some_and(|at| at > 1.7e9)
    );
    // Still alive, still serving.
    assert_eq!(app.get("/livez").await.0, 200);
}

/// The kubelet's ConfigMap update: `config.toml -> ..data/config.toml`,
/// `..data -> ..<timestamp>`, and an update renames a new `..data` over the
/// old one; the file's own path never sees a write.
#[tokio::test]
async fn a_configmap_symlink_swap_is_picked_up_within_two_seconds_with_no_signal() {
    let redis = TestRedis::start();
    let volume = tempfile::tempdir().expect("temp dir");
    let root = volume.path();
    let version = |name: &str, text: &str| {
        std::fs::create_dir(root.join(name)).expect("version dir");
        std::fs::write(root.join(name).join("config.toml"), text).expect("write version");
    };
    version("..2026_11_26_00_00_00.1", &config_for(&redis, ""));
    std::os::unix::fs::symlink("..2026_11_26_00_00_00.1", root.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/config.toml", root.join("config.toml")).expect("link");
    let app = start(&root.join("config.toml")).await;
    assert_eq!(app.get("/health/redis").await.0, 200);

    version("..2026_11_26_00_01_00.2", &config_for(&redis, WARN_FAILS));
    std::os::unix::fs::symlink("..2026_11_26_00_01_00.2", root.join("..data_tmp")).expect("link");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
    let (_, _, took) = answer_within(&app, "/health/redis", Duration::from_secs(2), |s, _| {
        s == 503
    })
    .await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(app.logs().contains("file changed"), "{}", app.logs());
}

#[tokio::test]
async fn a_broken_file_keeps_the_running_config_and_the_process() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, WARN_FAILS));
    let app = start(&config.path()).await;
    assert_eq!(app.get("/health/redis").await.0, 503);

    config.write(&config_for(&redis, "[checks.memory]\nwarn_ratio = 2.0\n"));
    app.signal("HUP");
    logged_within(&app, "keeping the running config", Duration::from_secs(2)).await;
    let logs = app.logs();
    let failed = logs
        .lines()
        .find(|line| line.contains("keeping the running config"))
        .unwrap_or_default();
    assert!(
        failed.contains("invalid config: checks.memory.warn_ratio"),
        "{failed}"
    );
    assert!(!failed.contains("2.0"), "the value is not quoted: {failed}");
    assert_eq!(
        metrics::value(
            &metrics::scrape_binary(&app).await,
            "redis_health_config_last_reload_successful",
            ""
        ),
        Some(0.0)
    );
    // The old verdict stands, and the process serves on.
    for _ in 0..5 {
        assert_eq!(app.get("/health/redis").await.0, 503);
    }
    assert_eq!(app.get("/livez").await.0, 200);

    // Mended, it reloads again.
    config.write(&config_for(&redis, ""));
    app.signal("HUP");
    answer_within(&app, "/health/redis", Duration::from_secs(2), |s, _| {
        s == 200
    })
    .await;
    assert_eq!(
        metrics::value(
            &metrics::scrape_binary(&app).await,
            "redis_health_config_last_reload_successful",
            ""
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_changed_server_key_is_logged_as_needing_a_restart_and_not_applied() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, "[server]\nmax_connections = 1\n"));
    let app = start(&config.path()).await;
    config.write(&config_for(
        &redis,
        "[server]\nmax_connections = 50\n[routes.redis]\nfail_at = \"warn\"\n",
    ));
    app.signal("HUP");
    answer_within(&app, "/health/redis", Duration::from_secs(2), |s, _| {
        s == 503
    })
    .await;
    let logs = app.logs();
    let warning = logs
        .lines()
        .find(|line| line.contains("takes effect only at a restart"))
        .unwrap_or_else(|| panic!("no restart warning in {logs}"));
    assert!(warning.contains("server.max_connections"), "{warning}");

    // Still one connection at a time: an idle client holds the only slot,
    // so another one gets no answer until it lets go.
    let idle = std::net::TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
    let accepted = Instant::now();
    while accepted_by(app.pid(), app.port) == 0 {
        assert!(
            accepted.elapsed() < Duration::from_secs(5),
            "the sidecar never accepted the idle connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    assert!(
        client.get(app.url("/livez")).send().await.is_err(),
        "a second connection was served: max_connections changed"
    );
    drop(idle);
    assert_eq!(app.get("/livez").await.0, 200);
}

#[tokio::test]
async fn a_new_redis_url_is_dialled_at_the_next_check() {
    let first = TestRedis::start();
    let second = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let config = ConfigFile::new();
    config.write(&config_for(&first, ""));
    let app = start(&config.path()).await;
    let (_, body) = app.get("/health/redis").await;
    assert!(body.contains(r#""max_bytes":0"#), "{body}");

    config.write(&config_for(&second, ""));
    app.signal("HUP");
    let (_, body, _) = answer_within(&app, "/health/redis", Duration::from_secs(2), |_, b| {
        b["checks"]["memory"]["max_bytes"] == 104_857_600
    })
    .await;
    assert_eq!(body["status"], "ok");
    assert!(app.logs().contains("redis.url"), "{}", app.logs());
}

#[tokio::test]
async fn a_new_log_level_applies_to_the_running_process() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, "[log]\nlevel = \"error\"\n"));
    let app = start(&config.path()).await;
    config.write(&config_for(&redis, "[log]\nlevel = \"info\"\n"));
    app.signal("HUP");
    logged_within(&app, "config reloaded", Duration::from_secs(2)).await;
    let logs = app.logs();
    assert!(
        !logs.contains("redis-health serving"),
        "info was off at start: {logs}"
    );
    assert!(logs.contains("log.level"), "{logs}");
}

/// Each reload reads the config file, which inotify reports as an access
/// in the watched directory: reads must not set off reloads, or every reload
/// would set off the next.
#[tokio::test]
async fn reading_the_config_sets_off_no_reload() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, "[log]\nlevel = \"debug\"\n"));
    let app = start(&config.path()).await;
    let nudges = |logs: &str| logs.matches("config directory changed").count();
    for _ in 0..5 {
        std::fs::read_to_string(config.path()).expect("read config");
    }
    app.signal("HUP");
    logged_within(&app, "config reloaded", Duration::from_secs(2)).await;
    // Long enough for a self-fed loop to show many times over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = app.logs();
    assert_eq!(nudges(&logs), 0, "{logs}");
    assert_eq!(logs.matches("config reloaded").count(), 1, "{logs}");
}

/// Under a low open-file limit the served connection cap is below the
/// configured one; a reload must compare what was configured, not report
/// `server.max_connections` as changed every time.
#[tokio::test]
async fn a_capped_max_connections_is_no_change_at_reload() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, ""));
    let mut command = std::process::Command::new("sh");
    command.args([
        "-c",
        "ulimit -n 256 && exec \"$0\"",
        env!("CARGO_BIN_EXE_redis-health"),
    ]);
    let path = config.path();
    let app = TestBinary::start_command(
        command,
        &[("REDIS_HEALTH_CONFIG", path.to_str().expect("utf-8 path"))],
    )
    .await;
    assert!(
        app.logs().contains("capped below the open-file limit"),
        "{}",
        app.logs()
    );
    config.write(&config_for(&redis, WARN_FAILS));
    app.signal("HUP");
    answer_within(&app, "/health/redis", Duration::from_secs(2), |s, _| {
        s == 503
    })
    .await;
    let logs = app.logs();
    assert!(!logs.contains("takes effect only at a restart"), "{logs}");
}

/// A reload that shortens `checks.sample_interval` takes effect at once,
/// not after the old interval (up to an hour) has run out.
#[tokio::test]
async fn a_shorter_sample_interval_applies_at_once() {
    let redis = TestRedis::start();
    let config = ConfigFile::new();
    config.write(&config_for(&redis, "[checks]\nsample_interval = \"1h\"\n"));
    let app = start(&config.path()).await;
    config.write(&config_for(
        &redis,
        "[checks]\nsample_interval = \"200ms\"\n",
    ));
    app.signal("HUP");
    logged_within(&app, "config reloaded", Duration::from_secs(2)).await;
    // No probes from here: only the sampler keeps the latest check fresh.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let age = metrics::value(
        &metrics::scrape_binary(&app).await,
        "redis_health_last_check_age_seconds",
        "",
    )
    .expect("last check age");
    assert!(age < 1.0, "the latest check is {age} s old");
}
