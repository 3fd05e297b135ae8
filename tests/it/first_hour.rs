//! What a new user meets in the first hour: query parameters and variable
//! names with a typo fail loudly, the README's Consul and readiness URLs
//! agree, the logs say what is checked, and the default listener takes
//! IPv6 and IPv4.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn a_near_miss_of_a_query_parameter_is_a_400_naming_the_right_one() {
    let redis = TestRedis::start();
    let app = spawn_app(settings(&redis.url())).await;
    for (query, known) in [
        ("failat=critical", "fail_at"),
        ("Fail_At=critical", "fail_at"),
        ("FAIL-AT=warn", "fail_at"),
        ("warn-code=429", "warn_code"),
        ("warncode=429", "warn_code"),
    ] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert_eq!(answer.json["status"], "error", "{query}");
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("did you mean {known}?")),
            "{query}: {error}"
        );
    }
    for query in [
        "warn_code=503",
        "warn_code=abc",
        "warn_code=",
        "warn_code=404",
    ] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
        assert!(
            answer.json["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("warn_code: must be a 2xx code or 429")),
            "{query}: {}",
            answer.text
        );
    }
    // Cache busters and other names stay ignored.
    for query in ["_=1701", "t=5&cachebuster=x", "fail=1", "warn_code=204&_=2"] {
        let answer = app.get(&format!("/health/redis?{query}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    }
}

/// A README section: the text from its `## title` to the next `## `.
fn readme_section(title: &str) -> String {
    let readme = include_str!("../../README.md");
    let heading = format!("\n## {title}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README has no section {title:?}"));
    let rest = &readme[start + heading.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The fenced blocks of `lang` in `text`.
fn fenced(text: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    text.split(&open)
        .skip(1)
        .filter_map(|block| block.split("```").next().map(str::to_owned))
        .collect()
}

/// The README's Consul setup (every TOML block of its section, and its
/// check URL) beside its Kubernetes readiness URL: a node in warn is a
/// warning in Consul, 429, and stays ready for the kubelet (200-399).
#[tokio::test]
async fn the_readmes_readiness_url_never_answers_429_with_the_consul_example() {
    let consul = readme_section("Consul");
    let config = fenced(&consul, "toml").join("\n");
    let check: serde_json::Value = serde_json::from_str(&fenced(&consul, "json")[0])
        .expect("the README's Consul check is JSON");
    let consul_url = check["service"]["check"]["http"]
        .as_str()
        .expect("a check URL");
    let consul_path = &consul_url[consul_url.find("/health").expect("a health path")..];
    let readiness = "/health/redis?fail_at=critical";
    assert!(
        include_str!("../../README.md").contains(&format!("path: \"{readiness}\"")),
        "the README's readiness probe is no longer {readiness}"
    );

    let redis = TestRedis::start();
    redis.fill_to_ratio(0.87);
    let extra = format!("checks.max_age = \"10ms\"\n{config}");
    let app = spawn_app(settings_with(&redis.url(), &extra)).await;
    let warned = app.get(consul_path).await;
    assert_eq!(warned.status, 429, "{consul_path}: {}", warned.text);
    assert_eq!(warned.json["reason"], "memory_high");
    let ready = app.get(readiness).await;
    assert_eq!(ready.status, 200, "{readiness}: {}", ready.text);
    assert_eq!(ready.json["reason"], "memory_high");
}

#[test]
fn a_redis_health_variable_without_double_underscore_exits_2_naming_the_meant_one() {
    for (name, meant) in [
        ("REDIS_HEALTH_REDIS_URL", "REDIS_HEALTH_REDIS__URL"),
        (
            "REDIS_HEALTH_CHECKS_MEMORY_WARN_RATIO",
            "REDIS_HEALTH_CHECKS__MEMORY__WARN_RATIO",
        ),
        ("REDIS_HEALTH_LOG_FORMAT", "REDIS_HEALTH_LOG__FORMAT"),
        (
            "REDIS_HEALTH_REDIS_PASSWORD_FILE",
            "REDIS_HEALTH_REDIS__PASSWORD_FILE",
        ),
    ] {
        for args in [&["config"][..], &["serve"][..], &["check"][..]] {
            let value = "redis://:typo-secret@127.0.0.1:6999";
            let output = run_binary(args, &[(name, value)]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.contains(&format!("invalid config: {name}:"))
                    && stderr.contains(&format!("did you mean {meant}?")),
                "{name}: {stderr}"
            );
            assert!(!stderr.contains("typo-secret"), "{stderr}");
            assert!(output.stdout.is_empty());
        }
    }
    // No section at all: still refused, with the shape of a key name.
    let output = run_binary(&["config"], &[("REDIS_HEALTH_URL", "x")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("REDIS_HEALTH_URL: not a config key: keys are REDIS_HEALTH_<SECTION>__<KEY>"),
        "{stderr}"
    );
    // The documented name and the service links still load.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), "[checks]\nmax_age = \"3s\"\n").expect("write");
    let path = file.path().to_string_lossy().into_owned();
    let output = run_binary(
        &["config"],
        &[
            ("REDIS_HEALTH_CONFIG", &path),
            ("REDIS_HEALTH_METRICS_SERVICE_PORT_HTTP", "9121"),
            ("REDIS_HEALTH_PORT_8080_TCP_ADDR", "10.0.0.1"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with(&format!(
            "# merged: defaults, then {path}, then no REDIS_HEALTH_* key variables\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("max_age = \"3s\""), "{stdout}");
}

/// The startup line says what is checked; a down line names the address;
/// a status change is one line listing the routes, and the Sentinel routes
/// of a data node never log.
#[tokio::test]
async fn the_logs_say_which_redis_which_file_and_which_routes_changed() {
    let mut redis = TestRedis::start();
    let url = format!("redis://:not-logged@{}", redis.addr());
    redis.cmd(&["CONFIG", "SET", "requirepass", "not-logged"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("health.toml");
    std::fs::write(
        &file,
        "[checks]\nmax_age = \"10ms\"\nmemory.warn_no_maxmemory = false\n",
    )
    .expect("write");
    let file = file.to_string_lossy().into_owned();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_CONFIG", &file),
    ])
    .await;
    assert_eq!(binary.get("/health/redis").await.0, 200);
    redis.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while binary.get("/health/redis").await.0 != 503 {
        assert!(std::time::Instant::now() < deadline, "never went down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = binary.stop();
    assert!(!logs.contains("not-logged"), "{logs}");
    let serving: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("redis-health serving"))
        .collect();
    assert_eq!(serving.len(), 1, "{logs}");
    for field in [
        format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        format!("redis=\"{}\"", redis.addr()),
        format!("config=\"{file}\""),
    ] {
        assert!(serving[0].contains(&field), "{field} not in {}", serving[0]);
    }
    let changes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("health status changed"))
        .collect();
    assert_eq!(changes.len(), 2, "one line per change: {logs}");
    let data_routes = "routes=\"/health/redis,/health/replica,/health/primary,/health,/health/alive,/health/queues\"";
    assert!(
        changes[0].contains(data_routes) && changes[0].contains("to=\"ok\""),
        "{}",
        changes[0]
    );
    assert!(
        changes[1].contains(data_routes) && changes[1].contains("to=\"down\""),
        "{}",
        changes[1]
    );
    assert!(changes[1].contains("WARN"), "{}", changes[1]);
    assert!(
        changes[1].contains(&format!("redis={}", redis.addr())),
        "{}",
        changes[1]
    );
    assert!(!logs.contains("/health/sentinel"), "{logs}");
}

/// Real HTTP to a binary on `[::]:PORT` over both loopbacks, one socket.
/// The binary with `server.listen = listen` (on `port`, which TestBinary
/// waits for on 127.0.0.1), checking `redis`.
async fn listening_on(listen: &str, port: u16, redis: &TestRedis) -> TestBinary {
    let url = redis.url();
    TestBinary::start_on(
        Command::new(env!("CARGO_BIN_EXE_redis-health")),
        port,
        &[
            ("REDIS_HEALTH_REDIS__URL", &url),
            ("REDIS_HEALTH_SERVER__LISTEN", listen),
            ("REDIS_HEALTH_CHECKS__MEMORY__WARN_NO_MAXMEMORY", "false"),
        ],
    )
    .await
}

#[tokio::test]
async fn the_default_listen_address_takes_ipv6_and_ipv4() {
    assert!(
        std::fs::read_to_string("/proc/net/if_inet6")
            .is_ok_and(|t| t.contains("00000000000000000000000000000001")),
        "this machine has no ::1: the dual-stack test needs IPv6 loopback (ip -6 addr add ::1/128 dev lo)"
    );
    let redis = TestRedis::start();
    let port = free_port();
    // TestBinary waits on 127.0.0.1: the IPv4 half.
    let binary = listening_on(&format!("[::]:{port}"), port, &redis).await;
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let response = reqwest::get(format!("{base}/health/redis"))
            .await
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "{base}");
    }
    let logs = binary.stop();
    assert!(logs.contains(&format!("listen=[::]:{port}")), "{logs}");
    // ... and it is the default.
    let output = run_binary(&["config"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("listen = \"[::]:8080\""), "{stdout}");
}

#[tokio::test]
async fn listen_takes_localhost_and_says_what_it_takes_otherwise() {
    let redis = TestRedis::start();
    let port = free_port();
    let binary = listening_on(&format!("localhost:{port}"), port, &redis).await;
    assert_eq!(binary.get("/livez").await.0, 200);
    drop(binary);
    for bad in ["example.com:8080", "localhost", ":8080", "localhost:99999"] {
        let output = run_binary(&["config"], &[("REDIS_HEALTH_SERVER__LISTEN", bad)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("invalid config: server.listen: must be an IP:port such as 127.0.0.1:8080 or [::]:8080"),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn a_port_in_use_names_the_address_and_server_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run_binary(&["serve"], &[("REDIS_HEALTH_SERVER__LISTEN", &addr)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (server.listen):"))
            && stderr.contains("in use"),
        "{stderr}"
    );
}

/// On a Sentinel the data-node routes (`/health/replica`, `/health/primary`)
/// never log, as the Sentinel routes never do on a data node.
#[tokio::test]
async fn a_sentinel_logs_no_change_for_the_data_node_routes() {
    let primary = TestRedis::start();
    let sentinel = crate::support::sentinel::SentinelNode::start(primary.port, 1);
    let url = sentinel.url();
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_SENTINEL__MASTERS", "mymaster"),
    ])
    .await;
    let (status, body) = binary.get("/health/sentinel").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(binary.get("/health/replica").await.0, 503);
    let logs = binary.stop();
    let changes: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("health status changed"))
        .collect();
    assert_eq!(changes.len(), 1, "{logs}");
    assert!(
        changes[0].contains(
            "routes=\"/health/redis,/health,/health/alive,/health/sentinel,/health/sentinel/ready\""
        ),
        "{}",
        changes[0]
    );
}
