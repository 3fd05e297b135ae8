//! ACL users and passwords: the user in the URL with its password there or
//! in a file, legacy requirepass, passwords with URL-special characters, an
//! empty password file, the documented least-privilege ACL (across restarts,
//! and NOPERM with less), and rotating the password file without a failed
//! probe.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::faults::fast;
use crate::support::*;

/// systemd's unit hands an empty credential when there is no password
/// file: the sidecar must then send no AUTH, as with no file at all.
#[tokio::test]
async fn an_empty_password_file_means_no_password() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("redis-password");
    std::fs::write(&file, "\n").expect("write password file");
    let config = settings_with(&redis.url(), &password_file_toml(&file));
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(redis.calls(&["auth"]), vec![0], "no AUTH was sent");
}

const OLD: &str = "old-health-pw";

const NEW: &str = "new-health-pw";

/// Redis with the least-privilege health user, holding the old password.
fn redis_with_health_user() -> TestRedis {
    let old = format!(">{OLD}");
    let mut args = vec!["--user", "health", "on", &old];
    args.extend_from_slice(LEAST_PRIVILEGE);
    TestRedis::with_args(&args)
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

#[tokio::test]
async fn acl_user_in_the_url_with_its_password_there_or_in_a_file_and_legacy_requirepass() {
    let redis = TestRedis::start();
    add_health_user(&redis, "health-pw", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "health-pw\n").expect("write password");

    let in_url = settings(&format!(
        "redis://health:health-pw@127.0.0.1:{}",
        redis.port
    ));
    let in_file = settings_with(
        &format!("redis://health@127.0.0.1:{}", redis.port),
        &password_file_toml(&password_file),
    );
    for config in [in_url, in_file] {
        let app = spawn_app(config).await;
        app.assert_every_route_ok().await;
    }
    // Everything the client sends is allowed, fred's CLIENT ID on connect included.
    assert_eq!(redis.acl_refused(), Vec::<String>::new());

    // The legacy form: requirepass, the default user, no name in the URL.
    assert_eq!(
        redis.cmd(&["CONFIG", "SET", "requirepass", "legacy-pw"]),
        "OK"
    );
    let app = spawn_app(settings(&format!(
        "redis://:legacy-pw@127.0.0.1:{}",
        redis.port
    )))
    .await;
    let answer = app.get("/health").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// The ACL README.md documents for the sidecar's user.
#[tokio::test]
async fn the_documented_acl_is_enough_and_less_fails_with_noperm_and_no_secret() {
    const PASSWORD: &str = "acl-password-7d1a";
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let setuser = |user: &str, rules: &[&str]| {
        let mut args = vec!["ACL", "SETUSER", user, "on", ">acl-password-7d1a"];
        args.extend_from_slice(rules);
        assert_eq!(redis.cmd(&args), "OK");
    };
    setuser("health", crate::support::LEAST_PRIVILEGE);
    setuser("pingonly", &["-@all", "+ping"]);
    let url = |user: &str| format!("redis://{user}:{PASSWORD}@127.0.0.1:{}", redis.port);

    // A database in the URL must not make the sidecar SELECT (not allowed).
    let app = spawn_app(fast(&format!("{}/2", url("health")))).await;
    app.assert_every_route_ok().await;
    let answer = app.get("/health").await;
    assert_eq!(answer.json["role"], "master", "{}", answer.text);
    assert_eq!(
        answer.json["checks"]["memory"]["status"], "ok",
        "{}",
        answer.text
    );

    let app = spawn_app(fast(&url("pingonly"))).await;
    let answer = app.get("/health/redis").await;
    assert!(is_down_with(&answer, "error"), "{}", answer.text);
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("NOPERM"), "{}", answer.text);
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
    // What Redis refused, per user: INFO for the lesser one; nothing for
    // the documented one.
    let refused = refused_commands(&redis.cmd(&["ACL", "LOG"]));
    assert!(
        refused.contains(&("pingonly".to_owned(), "info".to_owned())),
        "{refused:?}"
    );
    let health: Vec<_> = refused
        .iter()
        .filter(|(user, _)| user == "health")
        .collect();
    assert!(health.is_empty(), "{refused:?}");
}

/// (username, command) of each `ACL LOG` entry, from its flattened reply.
fn refused_commands(log: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let (mut user, mut object) = (None, None);
    for pair in log.lines().collect::<Vec<_>>().chunks(2) {
        match pair {
            ["username", value] => user = Some(value.to_string()),
            ["object", value] => object = Some(value.to_string()),
            _ => {}
        }
        if let (Some(u), Some(o)) = (&user, &object) {
            entries.push((u.clone(), o.clone()));
            (user, object) = (None, None);
        }
    }
    entries
}

#[tokio::test]
async fn the_least_privilege_user_leaves_acl_log_empty_across_restarts() {
    let mut redis = TestRedis::with_args(&health_user());
    let config = settings_with(
        &format!("redis://health:health-pw@127.0.0.1:{}", redis.port),
        "checks.max_age = \"20ms\"",
    );
    let app = spawn_app(config).await;
    app.assert_every_route_ok().await;
    for _ in 0..2 {
        redis.restart(&[]);
        app.wait_for("/health", Duration::from_secs(5), |a| a.status == 200)
            .await;
        app.assert_every_route_ok().await;
    }
    assert_eq!(redis.acl_refused(), Vec::<String>::new());
}

#[tokio::test]
async fn a_password_with_plus_percent_at_and_colon_is_read_as_redis_cli_reads_it() {
    let redis = TestRedis::start();
    let setuser = [
        "ACL",
        "SETUSER",
        "pl+us",
        "on",
        ">pa+ss%@:x",
        "-@all",
        "+ping",
        "+info",
        "+client|id",
    ];
    assert_eq!(redis.cmd(&setuser), "OK");
    let url = format!("redis://pl+us:pa+ss%25%40%3Ax@127.0.0.1:{}", redis.port);
    let app = spawn_app(settings(&url)).await;
    app.assert_every_route_ok().await;
    assert_eq!(redis.acl_refused(), Vec::<String>::new());
}
