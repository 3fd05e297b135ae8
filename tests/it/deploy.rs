//! What deploy/systemd ships, run as systemd would run it: the binary with
//! exactly the environment the unit's `Environment=` lines give, and an
//! instance config made from the shipped example.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestRedis, free_port, run_binary};

const UNIT: &str = include_str!("../../deploy/systemd/redis-health@.service");
const EXAMPLE: &str = include_str!("../../deploy/systemd/6379.toml");

/// The variables the unit's `Environment=` lines set, `%` specifiers as
/// systemd expands them for the instance `instance` (`%d`: the credentials
/// directory).
fn unit_environment(instance: &str, credentials: &str) -> Vec<(String, String)> {
    UNIT.lines()
        .filter_map(|line| line.trim().strip_prefix("Environment="))
        .flat_map(|assignments| assignments.split_whitespace())
        .map(|assignment| {
            let (name, value) = assignment
                .split_once('=')
                .unwrap_or_else(|| panic!("Environment= without a value: {assignment}"));
            let value = value.replace("%i", instance).replace("%d", credentials);
            (name.to_owned(), value)
        })
        .collect()
}

/// `redis-health --config CONFIG check`, run as the unit runs it.
fn check_as_the_unit_runs(
    instance: &str,
    credentials: &str,
    config: &Path,
    dir: &Path,
) -> std::process::Output {
    let mut check = Command::new(env!("CARGO_BIN_EXE_redis-health"));
    as_the_unit_runs(&mut check, instance, credentials);
    check
        .args(["--config".as_ref(), config.as_os_str(), "check".as_ref()])
        .current_dir(dir)
        .output()
        .expect("run redis-health check")
}

/// The unit's environment, plus what systemd itself sets for a service with
/// credentials, and nothing of the test's own.
fn as_the_unit_runs(command: &mut Command, instance: &str, credentials: &str) {
    command
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
        .env("CREDENTIALS_DIRECTORY", credentials)
        .envs(unit_environment(instance, credentials));
}

/// The shipped example made into an instance config the way its comment
/// says: the Redis port and the health port changed, then `edit` applied.
fn instance_config(
    dir: &tempfile::TempDir,
    redis_port: u16,
    health_port: u16,
    edit: impl Fn(String) -> String,
) -> std::path::PathBuf {
    let text = EXAMPLE
        .replace("127.0.0.1:6379", &format!("127.0.0.1:{redis_port}"))
        .replace("127.0.0.1:8379", &format!("127.0.0.1:{health_port}"));
    let path = dir.path().join(format!("{redis_port}.toml"));
    std::fs::write(&path, edit(text)).expect("write the instance config");
    path
}

#[test]
fn the_unit_sets_no_config_key() {
    let keys: Vec<String> = unit_environment("6379", "/run/credentials/x")
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("REDIS_HEALTH_"))
        .collect();
    assert!(
        keys.is_empty(),
        "the unit overrides the config file with {keys:?}"
    );
}

#[test]
fn the_example_listens_on_the_loopback_only() {
    let output = run_binary(
        &[
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd/6379.toml"),
            "config",
        ],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config = String::from_utf8_lossy(&output.stdout);
    assert!(config.contains("listen = \"127.0.0.1:8379\""), "{config}");
}

#[tokio::test]
async fn a_url_password_and_text_logs_hold_under_the_units_environment() {
    let redis = TestRedis::with_args(&["--requirepass", "unit-secret"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    // What SetCredential= leaves when no password file exists: empty.
    std::fs::write(credentials.join("redis-password"), "\n").expect("write");
    let credentials = credentials.to_str().expect("utf-8 path");
    let health_port = free_port();
    let config = instance_config(&dir, redis.port, health_port, |text| {
        text.replace("redis://127.0.0.1:", "redis://:unit-secret@127.0.0.1:")
    });
    let instance = redis.port.to_string();

    let output = check_as_the_unit_runs(&instance, credentials, &config, dir.path());
    let body = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{body}");
    assert!(!body.contains("auth_failed"), "{body}");

    let log = dir.path().join("stderr.log");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_redis-health"));
    as_the_unit_runs(&mut serve, &instance, credentials);
    let mut child = serve
        .args(["--config".as_ref(), config.as_os_str(), "serve".as_ref()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start redis-health");
    let url = format!("http://127.0.0.1:{health_port}/health/redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match reqwest::get(&url).await {
            Ok(response) => break response.status().as_u16(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(error) => panic!("redis-health did not listen on {url}: {error}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log).expect("read the log");
    assert_eq!(status, 200, "{logs}");
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        !first.is_empty() && !first.starts_with('{'),
        "[log] format = \"text\" gave: {logs}"
    );
}

#[test]
fn the_credential_named_in_the_example_is_read_when_used() {
    let redis = TestRedis::with_args(&["--requirepass", "credential-secret"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let instance = redis.port.to_string();
    // The example's password_file line names the directory systemd makes
    // for the unit's credentials (CREDENTIALS_DIRECTORY) and the unit's
    // credential name; here that directory is a temporary one.
    let line = "# password_file = \"/run/credentials/redis-health@6379.service/redis-password\"";
    assert!(
        EXAMPLE.contains(line),
        "the example names no credential file"
    );
    assert!(
        UNIT.contains("LoadCredential=redis-password:"),
        "the unit loads no credential redis-password"
    );
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    std::fs::write(credentials.join("redis-password"), "credential-secret\n").expect("write");
    let credentials = credentials.to_str().expect("utf-8 path").to_owned();
    let config = instance_config(&dir, redis.port, free_port(), |text| {
        text.replace(
            line,
            &format!("password_file = \"{credentials}/redis-password\""),
        )
    });

    let output = check_as_the_unit_runs(&instance, &credentials, &config, dir.path());
    let body = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{body}");
}

/// deploy/debian/redis-health.1, the package's man page, is rendered from
/// the CLI definition; `REGENERATE=1 cargo test --test it man_page` writes it.
#[test]
fn the_man_page_is_rendered_from_the_cli() {
    use clap::CommandFactory;
    let mut rendered = Vec::new();
    clap_mangen::Man::new(redis_health::cli::Cli::command())
        .render(&mut rendered)
        .expect("render the man page");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/debian/redis-health.1");
    if std::env::var_os("REGENERATE").is_some() {
        std::fs::write(path, &rendered).expect("write the man page");
    }
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{path} differs from the CLI definition: regenerate it with `REGENERATE=1 cargo test --test it man_page`"
    );
}
