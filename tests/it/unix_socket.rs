//! Unix sockets: every route over a socket with the password in the URL or a
//! file, a missing or refusing socket, and the rule that the path is absolute.

use std::time::Duration;

use crate::support::*;

/// A redis-server listening on a Unix socket only (`--port 0`), with the
/// least-privilege user.
struct SocketRedis {
    socket: String,
    _process: TestProcess,
    _dir: tempfile::TempDir,
}

impl SocketRedis {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("redis.sock").to_string_lossy().into_owned();
        let data = dir.path().to_string_lossy().into_owned();
        let mut args = vec![
            "--port",
            "0",
            "--unixsocket",
            &socket,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &data,
        ];
        args.extend_from_slice(&health_user());
        let process = TestProcess::start(&Server::Redis7.binary(), &args, &[]);
        let path = socket.clone();
        eventually(
            "redis-server listens on its socket",
            Duration::from_secs(10),
            || std::os::unix::net::UnixStream::connect(&path).is_ok(),
        )
        .await;
        Self {
            socket,
            _process: process,
            _dir: dir,
        }
    }

    fn cmd(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(tool("redis-cli", "apt-get install redis-tools"))
            .args(["-s", &self.socket])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

#[tokio::test]
async fn every_route_works_over_a_unix_socket_with_the_password_in_the_url_or_a_file() {
    let redis = SocketRedis::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "health-pw\n").expect("write password");

    let in_url = settings(&format!("unix://health:health-pw@{}", redis.socket));
    let in_file = settings_with(
        &format!("unix://health@{}", redis.socket),
        &password_file_toml(&password_file),
    );
    for config in [in_url, in_file] {
        let app = spawn_app(config).await;
        app.assert_every_route_ok().await;
        assert_eq!(app.get("/metrics").await.status, 200);
    }
    assert_eq!(redis.cmd(&["ACL", "LOG"]), "");
}

#[tokio::test]
async fn a_missing_or_refusing_socket_is_unreachable_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.sock");
    // A socket file nobody listens on any more: connecting is refused.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    for path in [&missing, &stale] {
        let app = spawn_app(settings(&format!("unix://{}", path.display()))).await;
        let answer = app.get("/health/redis").await;
        assert!(is_down_with(&answer, "unreachable"), "{}", answer.text);
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{}: ", path.display())),
            "{error}"
        );
    }
}

#[test]
fn the_socket_path_must_be_absolute() {
    crate::support::assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__URL", "unix://redis.sock")],
        "redis.url",
    );
}
