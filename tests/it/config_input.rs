//! Careless and hostile configuration: secrets never echoed, every duration
//! bounded, foreign `REDIS_HEALTH_*` variables tolerated, files checked.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;

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

/// Runs the binary in `dir`, so a relative `config/default.toml` is there.
fn run_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redis-health"))
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
fn the_readme_states_each_duration_range() {
    let readme = include_str!("../../README.md");
    for (key, max) in duration_bounds() {
        let max = format!("`{}`", humantime::format_duration(*max));
        let key = format!("`{key}`");
        assert!(
            readme
                .lines()
                .any(|line| line.starts_with("| ") && line.contains(&key) && line.contains(&max)),
            "README has no range row for {key} up to {max}"
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

#[test]
fn a_directory_where_the_default_config_file_belongs_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("config/default.toml")).expect("mkdir");
    let output = run_in(dir.path(), &["config"], &[]);
    assert_refused_without_secret(&output, "config/default.toml: cannot read");
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
