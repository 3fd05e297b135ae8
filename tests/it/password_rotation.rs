//! Rotating the sidecar's password with no break, the sequence the README
//! documents: an ACL user holds the old and the new password at once, the
//! password file is updated, the sidecar re-reads it at its next reconnect,
//! then the old password goes. Real Redis, the real `redis.password_file`,
//! and reconnects forced with CLIENT KILL so each step is really exercised.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;

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

/// Kills the sidecar's connection, then probes until the sidecar has dialled
/// and authenticated again (its next reconnect, on demand). Every probe on
/// the way must be a 200; returns how many ran.
async fn reconnect_probing(redis: &TestRedis, app: &TestApp) -> usize {
    let before = health_connections(redis);
    assert!(!before.is_empty(), "the sidecar holds no health connection");
    assert_ne!(
        redis.cmd(&["CLIENT", "KILL", "USER", "health"]),
        "0",
        "nothing was killed"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut probes = 0;
    loop {
        let answer = app.get("/health/redis").await;
        probes += 1;
        assert_eq!(answer.status, 200, "probe {probes}: {}", answer.text);
        if health_connections(redis)
            .iter()
            .any(|id| !before.contains(id))
        {
            return probes;
        }
        assert!(Instant::now() < deadline, "the sidecar did not reconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Redis with the health user on its old password, the password file
/// holding it, and a sidecar reading the file that answers 200.
async fn start() -> (TestRedis, tempfile::TempDir, PathBuf, TestApp) {
    let redis = redis_with_health_user();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("password");
    write_password_file(&file, OLD);
    let config = settings_with(
        &format!("redis://health@127.0.0.1:{}", redis.port),
        &format!("{}checks.max_age = \"5ms\"", password_file_toml(&file)),
    );

    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    (redis, dir, file, app)
}

#[tokio::test]
async fn rotating_through_two_passwords_never_fails_a_probe() {
    let (redis, _dir, file, app) = start().await;

    // 1. The user takes the new password beside the old one.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", &format!(">{NEW}")]),
        "OK"
    );
    reconnect_probing(&redis, &app).await;
    // 2. The Secret (here, the file) is updated; the sidecar's next
    //    reconnect reads it.
    write_password_file(&file, NEW);
    reconnect_probing(&redis, &app).await;
    // 3. The old password goes. The sidecar reconnects once more: only the
    //    new password can have let it in.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", &format!("<{OLD}")]),
        "OK"
    );
    reconnect_probing(&redis, &app).await;
    for _ in 0..5 {
        let answer = app.get("/health/redis").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn removing_the_old_password_before_the_file_is_updated_is_auth_failed_until_it_is() {
    let (redis, _dir, file, app) = start().await;

    // The single-password way: the server's password changes first.
    assert_eq!(
        redis.cmd(&["ACL", "SETUSER", "health", "resetpass", &format!(">{NEW}")]),
        "OK"
    );
    assert_ne!(redis.cmd(&["CLIENT", "KILL", "USER", "health"]), "0");
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(2), |a| {
            is_down_with(a, "auth_failed")
        })
        .await;
    for secret in [OLD, NEW] {
        assert!(!answer.text.contains(secret), "{}", answer.text);
    }
    // It stays so, and the sidecar stays up, while the file is stale: a
    // fresh check (checks.max_age is 5 ms) still fails.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "auth_failed"), "{}", answer.text);
    assert_eq!(app.get("/livez").await.status, 200);

    // The file catches up: the next reconnect reads it, no restart.
    write_password_file(&file, NEW);
    let rotated = Instant::now();
    app.wait_for("/health/redis", Duration::from_secs(2), |a| a.status == 200)
        .await;
    assert!(
        rotated.elapsed() < Duration::from_millis(200) + Duration::from_secs(1),
        "ok again {:?} after the file was updated",
        rotated.elapsed()
    );
}
