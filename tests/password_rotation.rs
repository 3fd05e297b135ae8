//! Rotating the sidecar's password with no break, the sequence the README
//! documents: an ACL user holds the old and the new password at once, the
//! password file is updated, the sidecar re-reads it at its next reconnect,
//! then the old password goes. Real Redis, the real `redis.password_file`,
//! and reconnects forced with CLIENT KILL so each step is really exercised.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestApp, TestRedis, eventually, settings, spawn_app};

const OLD: &str = "old-health-pw";
const NEW: &str = "new-health-pw";

/// Redis with the least-privilege health user, holding the old password.
fn redis_with_health_user() -> TestRedis {
    let old = format!(">{OLD}");
    TestRedis::with_args(&[
        "--user",
        "health",
        "on",
        &old,
        "-@all",
        "+ping",
        "+info",
        "+client|id",
    ])
}

/// Replaces the file the way the kubelet updates a Secret volume: a new
/// file renamed over the old, never a partial write.
fn write_password_file(path: &Path, password: &str) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, format!("{password}\n")).expect("write password");
    std::fs::rename(&staging, path).expect("swap password file");
}

/// The ids of the connections authenticated as `health` (a connection shows
/// `user=default` until its AUTH succeeds).
fn health_connections(redis: &TestRedis) -> Vec<u64> {
    redis
        .cmd(&["CLIENT", "LIST"])
        .lines()
        .filter(|line| line.contains(" user=health "))
        .filter_map(|line| line.strip_prefix("id="))
        .filter_map(|rest| rest.split(' ').next())
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// Kills the sidecar's connection and waits until it has dialled and
/// authenticated again: the next reconnect, on demand.
async fn force_reconnect(redis: &TestRedis) {
    let before = health_connections(redis);
    assert!(!before.is_empty(), "the sidecar holds no health connection");
    assert_ne!(
        redis.cmd(&["CLIENT", "KILL", "USER", "health"]),
        "0",
        "nothing was killed"
    );
    eventually(
        "the sidecar reconnects as health",
        Duration::from_secs(5),
        || {
            health_connections(redis)
                .iter()
                .any(|id| !before.contains(id))
        },
    )
    .await;
}

/// Probes /health/redis every 10 ms until stopped; keeps every answer that
/// was not a 200, with the probe count.
struct Prober {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Prober {
    fn start(app: &TestApp) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (app, flag) = (app.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let (mut probes, mut failures) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) {
                let answer = app.get("/health/redis").await;
                probes += 1;
                if answer.status != 200 {
                    failures.push(answer.text);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (probes, failures)
        });
        Self { stop, task }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("prober")
    }
}

async fn sidecar(redis: &TestRedis, password_file: &Path) -> TestApp {
    let mut config = settings(&format!("redis://health@127.0.0.1:{}", redis.port));
    config.redis.password_file = Some(password_file.to_owned());
    config.checks.max_age = Duration::from_millis(5);
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    app
}

#[tokio::test]
async fn rotating_through_two_passwords_never_fails_a_probe() {
    let redis = redis_with_health_user();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("password");
    write_password_file(&file, OLD);
    let app = sidecar(&redis, &file).await;
    let prober = Prober::start(&app);

    // 1. The user takes the new password beside the old one.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", &format!(">{NEW}")]),
        "OK"
    );
    force_reconnect(&redis).await;
    // 2. The Secret (here, the file) is updated; the sidecar's next
    //    reconnect reads it.
    write_password_file(&file, NEW);
    force_reconnect(&redis).await;
    // 3. The old password goes. The sidecar reconnects once more: only the
    //    new password can have let it in.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", &format!("<{OLD}")]),
        "OK"
    );
    force_reconnect(&redis).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let (probes, failures) = prober.finish().await;
    assert!(probes >= 10, "only {probes} probes ran");
    assert!(
        failures.is_empty(),
        "{} of {probes} probes failed during the rotation: {failures:?}",
        failures.len()
    );
}

#[tokio::test]
async fn removing_the_old_password_before_the_file_is_updated_is_auth_failed_until_it_is() {
    let redis = redis_with_health_user();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("password");
    write_password_file(&file, OLD);
    let app = sidecar(&redis, &file).await;

    // The single-password way: the server's password changes first.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", "resetpass", &format!(">{NEW}")]),
        "OK"
    );
    assert_ne!(redis.cmd(&["CLIENT", "KILL", "USER", "health"]), "0");
    app.wait_for("/health/redis", Duration::from_secs(2), |a| {
        common::is_down_with(a, "auth_failed")
    })
    .await;

    // The file catches up: the next reconnect reads it, no restart.
    write_password_file(&file, NEW);
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
}
