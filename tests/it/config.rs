//! Configuration input: TOML file, environment and flags, their layering,
//! every refusal that exits 2 (naming the key, never the secret), duration
//! bounds, logging settings, and the `config` and `check` commands.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

#[test]
fn check_command_prints_the_body_and_exits_by_verdict() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let url = redis.url();
    let ok = run_binary(&["check"], &[("REDIS_HEALTH_REDIS__URL", &url)]);
    let body: Value = serde_json::from_slice(&ok.stdout).expect("JSON on stdout");
    assert_eq!(ok.status.code(), Some(0), "{body}");
    assert_eq!(body["status"], "ok");
    assert!(body["checks"].get("memory").is_some());

    let primary = run_binary(&["check", "primary"], &[("REDIS_HEALTH_REDIS__URL", &url)]);
    assert_eq!(primary.status.code(), Some(0));
    let body: Value = serde_json::from_slice(&primary.stdout).expect("JSON on stdout");
    assert!(body["checks"].get("role").is_some());

    let closed = format!("redis://127.0.0.1:{}", crate::support::free_port());
    let down = run_binary(&["check", "all"], &[("REDIS_HEALTH_REDIS__URL", &closed)]);
    assert_eq!(down.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&down.stdout).expect("JSON on stdout");
    assert_eq!(body["reason"], "unreachable");

    let bad = run_binary(
        &["check"],
        &[("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "2")],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
}

#[test]
fn config_command_prints_the_merged_config_without_secrets() {
    const SECRET: &str = "s3cret-in-url";
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    std::fs::write(&file, "[checks.memory]\nwarn_ratio = 0.7\n").expect("write config");
    let path = file.to_string_lossy().into_owned();
    let output = run_binary(
        &["config", "--config", &path],
        &[
            (
                "REDIS_HEALTH_REDIS__URL",
                &format!("redis://health:{SECRET}@db.internal:6380/2"),
            ),
            ("REDIS_HEALTH_ROUTES__REDIS__FAIL_AT", "critical"),
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(SECRET), "{text}");
    let dump: toml::Value = toml::from_str(&text).expect("the dump is TOML");
    assert_eq!(dump["checks"]["memory"]["warn_ratio"].as_float(), Some(0.7));
    assert_eq!(
        dump["checks"]["memory"]["fail_ratio"].as_float(),
        Some(0.95)
    );
    assert_eq!(
        dump["routes"]["redis"]["fail_at"].as_str(),
        Some("critical")
    );
    assert_eq!(dump["redis"]["timeout"].as_str(), Some("500ms"));
    assert_eq!(
        dump["redis"]["url"].as_str(),
        Some("redis://health:[redacted]@db.internal:6380/2")
    );
}

const PASSWORD: &str = "hunter2";

/// The variable that sets a dotted config key.
fn env_name(key: &str) -> String {
    format!("REDIS_HEALTH_{}", key.replace('.', "__").to_uppercase())
}

/// Exit 2, one line naming `key`, and the password nowhere in the output.
fn assert_refused_without_secret(output: &Output, key: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("redis-health: invalid config: {key}")),
        "should name {key}: {stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains(PASSWORD), "password shown: {text}");
    }
}

/// Runs the binary in `dir`, so relative paths are read from there.
fn run_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redis-health"));
    without_test_variables(&mut command);
    command
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-health")
}

#[test]
fn a_toml_syntax_error_names_line_and_column_and_quotes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("health.toml"),
        format!("[redis]\nurl = \"redis://:{PASSWORD}@localhost\n"),
    )
    .expect("write config");
    let output = run_in(dir.path(), &["config", "--config", "health.toml"], &[]);
    assert_refused_without_secret(&output, "health.toml:2:");
}

#[test]
fn a_type_error_names_the_key_and_type_never_the_value() {
    let url = format!("redis://:{PASSWORD}@h");
    // A URL given where a section belongs, from the environment ...
    let output = run_binary(&["config"], &[("REDIS_HEALTH_REDIS__TLS", &url)]);
    assert_refused_without_secret(
        &output,
        "redis.tls: expected a table of keys, found a string",
    );
    // ... and from the file.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("h.toml"), format!("redis = \"{url}\"\n")).expect("write");
    let output = run_in(dir.path(), &["config", "--config", "h.toml"], &[]);
    assert_refused_without_secret(&output, "redis: expected a table of keys, found a string");
    // A string where a number or a name from a list belongs.
    let output = run_binary(
        &["config"],
        &[("REDIS_HEALTH_SERVER__MAX_CONNECTIONS", &url)],
    );
    assert_refused_without_secret(&output, "server.max_connections:");
    let output = run_binary(&["config"], &[("REDIS_HEALTH_LOG__FORMAT", PASSWORD)]);
    assert_refused_without_secret(&output, "log.format: must be one of text, json");
}

/// The dotted keys whose value in the TOML `text` parses as a humantime
/// duration.
fn duration_keys(text: &str) -> BTreeSet<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(table) => walk(&key, table, out),
                toml::Value::String(text) if humantime::parse_duration(text).is_ok() => {
                    out.insert(key);
                }
                _ => {}
            }
        }
    }
    let table: toml::Table = text.parse().expect("TOML");
    let mut keys = BTreeSet::new();
    walk("", &table, &mut keys);
    keys
}

/// Every duration key and its largest value, found from the outside: the
/// keys `redis-health config` prints as durations, each set to the largest
/// number of seconds, whose refusal names the key and says
/// `must be at most MAX`.
fn duration_bounds() -> &'static [(String, Duration)] {
    static BOUNDS: OnceLock<Vec<(String, Duration)>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let output = run_binary(&["config"], &[]);
        assert_eq!(output.status.code(), Some(0), "redis-health config");
        let keys = duration_keys(&String::from_utf8_lossy(&output.stdout));
        // A duration key the shipped config holds is a duration key here too,
        // so a new one is covered without naming it.
        let shipped = duration_keys(include_str!("../../config/default.toml"));
        assert!(!shipped.is_empty(), "config/default.toml holds no duration");
        let missing: Vec<_> = shipped.difference(&keys).collect();
        assert!(missing.is_empty(), "not printed as durations: {missing:?}");
        keys.into_iter()
            .map(|key| {
                let var = env_name(&key);
                let output = run_binary(&["config"], &[(&var, "18446744073709551615s")]);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert_eq!(output.status.code(), Some(2), "{var}: {stderr}");
                assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
                let (_, max) = stderr
                    .trim_end()
                    .split_once(&format!("invalid config: {key}: must be at most "))
                    .unwrap_or_else(|| panic!("{key} has no stated maximum: {stderr}"));
                // The layer that set it follows, as for every refused key.
                let max = max.split(" (from ").next().unwrap_or(max);
                let max = humantime::parse_duration(max)
                    .unwrap_or_else(|e| panic!("{key}: maximum {max:?}: {e}"));
                (key, max)
            })
            .collect()
    })
}

#[test]
fn every_duration_key_accepts_its_maximum_and_refuses_one_nanosecond_more() {
    for (key, max) in duration_bounds() {
        let var = env_name(key);
        let largest = humantime::format_duration(*max).to_string();
        let output = run_binary(&["config"], &[(&var, &largest)]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{var}={largest}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let beyond = humantime::format_duration(*max + Duration::from_nanos(1)).to_string();
        assert_config_error(&["config"], &[(&var, &beyond)], key);
        // 0 is either allowed (it means "off" or "any") or refused as such.
        let output = run_binary(&["config"], &[(&var, "0s")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(0) {
            assert_config_error(&["config"], &[(&var, "0s")], key);
            assert!(
                stderr.contains(&format!("invalid config: {key}: must be longer than 0")),
                "{var}=0s: {stderr}"
            );
        }
    }
}

#[test]
fn the_configuration_reference_states_each_duration_range() {
    let reference = include_str!("../../docs/configuration.md");
    for (key, max) in duration_bounds() {
        let max = format!("`{}`", humantime::format_duration(*max));
        let key = format!("`{key}`");
        assert!(
            reference
                .lines()
                .any(|line| line.starts_with("| ") && line.contains(&key) && line.contains(&max)),
            "docs/configuration.md has no range row for {key} up to {max}"
        );
    }
}

#[test]
fn a_max_age_of_zero_exits_2() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__MAX_AGE", "0s")],
        "checks.max_age",
    );
}

#[tokio::test]
async fn every_duration_at_its_maximum_serves() {
    let redis = TestRedis::start();
    let url = redis.url();
    let values: Vec<(String, String)> = duration_bounds()
        .iter()
        .map(|(key, max)| (env_name(key), humantime::format_duration(*max).to_string()))
        .collect();
    let mut envs: Vec<(&str, &str)> = values
        .iter()
        .map(|(var, value)| (var.as_str(), value.as_str()))
        .collect();
    envs.push(("REDIS_HEALTH_REDIS__URL", &url));
    let binary = TestBinary::start(&envs).await;
    for _ in 0..3 {
        let (status, body) = binary.get("/health/redis").await;
        assert_eq!(status, 200, "{body}");
    }
    let logs = binary.stop();
    assert!(!logs.contains("panicked"), "{logs}");
}

/// What Kubernetes injects into every pod of the namespace for a Service
/// named `redis-health` with port 8080 (named `metrics`) at 10.96.0.5.
const SERVICE_LINKS: [(&str, &str); 8] = [
    ("REDIS_HEALTH_SERVICE_HOST", "10.96.0.5"),
    ("REDIS_HEALTH_SERVICE_PORT", "8080"),
    ("REDIS_HEALTH_SERVICE_PORT_METRICS", "8080"),
    ("REDIS_HEALTH_PORT", "tcp://10.96.0.5:8080"),
    ("REDIS_HEALTH_PORT_8080_TCP", "tcp://10.96.0.5:8080"),
    ("REDIS_HEALTH_PORT_8080_TCP_PROTO", "tcp"),
    ("REDIS_HEALTH_PORT_8080_TCP_PORT", "8080"),
    ("REDIS_HEALTH_PORT_8080_TCP_ADDR", "10.96.0.5"),
];

#[tokio::test]
async fn kubernetes_service_links_are_ignored_with_one_debug_line() {
    let mut envs = SERVICE_LINKS.to_vec();
    envs.push(("REDIS_HEALTH_LOG__LEVEL", "debug"));
    let output = run_binary(&["config"], &envs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("ignored")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for (name, _) in SERVICE_LINKS {
        assert!(
            lines[0].split([' ', '"']).any(|word| word == name),
            "{name} not named: {stderr}"
        );
    }
    assert!(lines[0].contains("DEBUG"), "{stderr}");

    // The sidecar serves with them set.
    let binary = TestBinary::start(&SERVICE_LINKS).await;
    assert_eq!(binary.get("/livez").await.0, 200);
}

#[test]
fn names_with_double_underscore_stay_strict() {
    assert_config_error(&[], &[("REDIS_HEALTH_SERVER__PORT", "8080")], "server.port");
    assert_config_error(&[], &[("REDIS_HEALTH_PORT__X", "1")], "port");
}

#[test]
fn an_unreadable_or_non_utf8_config_file_is_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("latin1.toml"), b"# caf\xe9\n").expect("write");
    let output = run_in(dir.path(), &["config", "--config", "latin1.toml"], &[]);
    assert_refused_without_secret(&output, "latin1.toml: not UTF-8");
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    let output = run_in(
        dir.path(),
        &["config"],
        &[("REDIS_HEALTH_CONFIG", "conf.d")],
    );
    assert_refused_without_secret(&output, "conf.d: cannot read");
    assert_config_error(
        &["--config", "/nonexistent/health.toml"],
        &[],
        "/nonexistent/health.toml",
    );
}

/// Run inside another project, the binary reads none of its files: only
/// `--config` or `REDIS_HEALTH_CONFIG` name a file.
#[test]
fn another_programs_config_default_toml_is_never_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    std::fs::write(
        dir.path().join("config/default.toml"),
        "[database]\nhost = \"db\"\n",
    )
    .expect("write");
    let output = run_in(dir.path(), &["config"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("# merged: defaults, then no config file, then "),
        "{stdout}"
    );
    // Named, it is read (and refused for its keys).
    let output = run_in(
        dir.path(),
        &["config", "--config", "config/default.toml"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn dev_null_is_an_empty_config_file() {
    let output = run_binary(&["config", "--config", "/dev/null"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("max_age = \"1s\""), "{stdout}");
}

#[test]
fn the_config_flag_wins_over_the_config_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("flag.toml"), "[checks]\nmax_age = \"7s\"\n").expect("write");
    std::fs::write(dir.path().join("env.toml"), "[checks]\nmax_age = \"9s\"\n").expect("write");
    let output = run_in(
        dir.path(),
        &["config", "--config", "flag.toml"],
        &[("REDIS_HEALTH_CONFIG", "env.toml")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("max_age = \"7s\""), "{stdout}");
}

#[test]
fn log_level_takes_level_names_and_directives_that_name_a_level() {
    for level in [
        "trace",
        "debug",
        "info",
        "warn",
        "error",
        "off",
        "INFO",
        "info,fred=debug",
        "redis_health=debug",
    ] {
        let output = run_binary(&["config"], &[("REDIS_HEALTH_LOG__LEVEL", level)]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{level}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for level in ["nonsense", "info,nonsense", "loud=!", "", "redis_health="] {
        assert_config_error(
            &["config"],
            &[("REDIS_HEALTH_LOG__LEVEL", level)],
            "log.level",
        );
    }
}

#[test]
fn the_readme_error_example_is_what_the_binary_prints() {
    let output = run_binary(
        &["config"],
        &[("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "1.5")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let readme = include_str!("../../README.md");
    assert!(
        readme.lines().any(|line| line == stderr.trim_end()),
        "README lacks: {stderr}"
    );
}

#[test]
fn an_unpaired_client_certificate_names_the_missing_key() {
    let url = ("REDIS_HEALTH_REDIS__URL", "rediss://127.0.0.1:6390");
    let output = run_binary(
        &["config"],
        &[url, ("REDIS_HEALTH_REDIS__TLS__CERT_FILE", "/x/client.pem")],
    );
    assert_refused_without_secret(
        &output,
        "redis.tls.key_file: missing, but redis.tls.cert_file needs it",
    );
    let output = run_binary(
        &["config"],
        &[url, ("REDIS_HEALTH_REDIS__TLS__KEY_FILE", "/x/client.key")],
    );
    assert_refused_without_secret(
        &output,
        "redis.tls.cert_file: missing, but redis.tls.key_file needs it",
    );
}

#[tokio::test]
async fn text_logs_to_a_file_carry_no_colour_codes() {
    let binary = TestBinary::start(&[]).await;
    assert_eq!(binary.get("/livez").await.0, 200);
    let logs = binary.stop();
    assert!(logs.contains("redis-health serving"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escapes in {logs:?}");
}

#[test]
fn a_value_of_the_wrong_type_exits_2() {
    assert_config_error(&[], &[("REDIS_HEALTH_LOG__LEVEL", "loud=!")], "log.level");
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__HIT_RATE__MIN_LOOKUPS", "many")],
        "checks.hit_rate.min_lookups",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__TIMEOUT", "soon")],
        "redis.timeout",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_SERVER__LISTEN", "nowhere")],
        "server.listen",
    );
}

#[test]
fn a_ratio_outside_zero_to_one_exits_2() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "1.5")],
        "checks.memory.fail_ratio",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__CLIENTS__WARN_RATIO", "-0.1")],
        "checks.clients.warn_ratio",
    );
}

#[test]
fn contradictory_thresholds_exit_2() {
    assert_config_error(
        &[],
        &[
            ("REDIS_HEALTH_CHECKS__MEMORY__WARN_RATIO", "0.9"),
            ("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "0.8"),
        ],
        "checks.memory.warn_ratio",
    );
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__HIT_RATE__WARN_BELOW", "0.5")],
        "checks.hit_rate.warn_below",
    );
}

#[test]
fn a_zero_limit_or_duration_exits_2() {
    for (var, key, value) in [
        (
            "REDIS_HEALTH_SERVER__MAX_CONNECTIONS",
            "server.max_connections",
            "0",
        ),
        (
            "REDIS_HEALTH_SERVER__MAX_CONNECTIONS",
            "server.max_connections",
            "-1",
        ),
        (
            "REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT",
            "server.header_read_timeout",
            "0s",
        ),
        (
            "REDIS_HEALTH_SERVER__SHUTDOWN_TIMEOUT",
            "server.shutdown_timeout",
            "0ms",
        ),
        ("REDIS_HEALTH_REDIS__TIMEOUT", "redis.timeout", "0s"),
        (
            "REDIS_HEALTH_REDIS__CONNECT_TIMEOUT",
            "redis.connect_timeout",
            "0s",
        ),
        (
            "REDIS_HEALTH_CHECKS__TLS__WARN_BEFORE",
            "checks.tls.warn_before",
            "0d",
        ),
    ] {
        assert_config_error(&[], &[(var, value)], key);
    }
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_SERVER__HEADER_READ_TIMEOUT", "later")],
        "server.header_read_timeout",
    );
}

#[test]
fn a_url_that_is_not_redis_exits_2_without_echoing_the_password() {
    let output = run_binary(
        &[],
        &[("REDIS_HEALTH_REDIS__URL", "http://u:hunter2@localhost")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid config: redis.url:"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn an_unknown_key_exits_2_from_env_and_from_file() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_CHECKS__MEMORY__WARN_RATE", "0.5")],
        "checks.memory.warn_rate",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    std::fs::write(&file, "[redis]\ntimeout = \"1s\"\nhots = \"x\"\n").expect("write config");
    let path = file.to_string_lossy().into_owned();
    assert_config_error(&["serve", "--config", &path], &[], "redis.hots");
    assert_config_error(&[], &[("REDIS_HEALTH_CONFIG", &path)], "redis.hots");
}

#[test]
fn an_unreadable_password_file_or_config_file_exits_2() {
    assert_config_error(
        &[],
        &[("REDIS_HEALTH_REDIS__PASSWORD_FILE", "/nonexistent/pw")],
        "redis.password_file",
    );
    assert_config_error(
        &["--config", "/nonexistent/health.toml"],
        &[],
        "/nonexistent/health.toml",
    );
}

/// A password pasted where its file's path belongs is not echoed back.
#[test]
fn a_password_given_as_the_password_file_is_never_printed() {
    let output = run_binary(
        &["config"],
        &[("REDIS_HEALTH_REDIS__PASSWORD_FILE", "redis://:hunter2@h")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("redis.password_file: cannot read the file"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
}

#[test]
fn version_and_help() {
    let version = run_binary(&["--version"], &[]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("redis-health "));
    let help = run_binary(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
}

#[tokio::test]
async fn file_then_env_layers_are_honoured() {
    let redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    // The file sets a warn ratio every node exceeds; the env then lifts fail_ratio.
    std::fs::write(
        &file,
        "[checks.memory]\nwarn_ratio = 0.0\nfail_ratio = 0.5\n",
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_CONFIG", &path),
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_CHECKS__MEMORY__FAIL_RATIO", "0.9"),
    ])
    .await;
    let (status, body) = binary.get("/health/redis").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(r#"{"status":"warn","reason":"memory_high""#),
        "{body}"
    );
}

#[tokio::test]
async fn no_password_in_bodies_or_trace_logs() {
    const PASSWORD: &str = "correct-horse-battery-staple";
    const WRONG: &str = "wrong-horse-battery-staple";
    let redis = TestRedis::with_args(&["--requirepass", PASSWORD, "--maxmemory", "100mb"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{WRONG}\n")).expect("write password");
    let wrong_url = format!("redis://:{WRONG}@127.0.0.1:{}", redis.port);
    let right_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let file = password_file.to_string_lossy().into_owned();
    let plain_url = redis.url();

    let right_file = dir.path().join("right-password");
    std::fs::write(&right_file, format!("{PASSWORD}\n")).expect("write password");
    let right_file = right_file.to_string_lossy().into_owned();

    for (envs, expected) in [
        (vec![("REDIS_HEALTH_REDIS__URL", wrong_url.as_str())], 503),
        (vec![("REDIS_HEALTH_REDIS__URL", right_url.as_str())], 200),
        (
            vec![
                ("REDIS_HEALTH_REDIS__URL", plain_url.as_str()),
                ("REDIS_HEALTH_REDIS__PASSWORD_FILE", file.as_str()),
            ],
            503,
        ),
        (
            vec![
                ("REDIS_HEALTH_REDIS__URL", plain_url.as_str()),
                ("REDIS_HEALTH_REDIS__PASSWORD_FILE", right_file.as_str()),
            ],
            200,
        ),
    ] {
        let mut envs = envs;
        envs.push(("RUST_LOG", "trace"));
        let binary = TestBinary::start(&envs).await;
        let (status, body) = binary.get("/health/redis").await;
        let (_, metrics) = binary.get("/metrics").await;
        let logs = binary.stop();
        assert!(metrics.contains("redis_health_redis_up"), "{metrics}");
        assert_eq!(status, expected, "{body}");
        if expected == 503 {
            assert!(body.contains(r#""reason":"auth_failed""#), "{body}");
        }
        assert!(!logs.is_empty(), "trace logging produced output");
        for secret in [PASSWORD, WRONG] {
            assert!(!body.contains(secret), "password in body: {body}");
            assert!(!metrics.contains(secret), "password in /metrics: {metrics}");
            assert!(!logs.contains(secret), "password in logs:\n{logs}");
        }
    }
}

#[tokio::test]
async fn json_logs_say_once_when_a_route_changes_status() {
    let mut redis = TestRedis::with_args(&["--maxmemory", "100mb"]);
    let url = redis.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_LOG__FORMAT", "json"),
        ("REDIS_HEALTH_CHECKS__MAX_AGE", "10ms"),
    ])
    .await;
    for _ in 0..5 {
        assert_eq!(binary.get("/health/redis").await.0, 200);
    }
    redis.kill();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while binary.get("/health/redis").await.0 != 503 {
        assert!(std::time::Instant::now() < deadline, "never went down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(binary.get("/health/redis").await.0, 503);
    }
    let logs = binary.stop();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let changes: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "health status changed")
        .filter(|l| {
            l["fields"]["routes"]
                .as_str()
                .is_some_and(|routes| routes.split(',').any(|r| r == "/health/redis"))
        })
        .map(|l| {
            let field = |k: &str| l["fields"][k].as_str().unwrap_or_default().to_owned();
            (field("to"), field("reason"))
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("ok".to_owned(), String::new()),
            ("down".to_owned(), "unreachable".to_owned())
        ],
        "{logs}"
    );
}
