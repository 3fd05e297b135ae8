//! TLS as people set it up: the self-signed certificate of most guides,
//! chains through an intermediate, failures that read in words, and the
//! expiry of both certificates, each against a real TLS redis-server.

use std::path::Path;
use std::time::Duration;

use crate::support::tls::{
    SELF_SIGNED_ONE_LINER, TestPki, assert_tls_error, self_signed, tls_settings,
};
use crate::support::*;
use redis_health::config::Settings;

pub(crate) fn rediss_url(port: u16) -> String {
    format!("rediss://127.0.0.1:{port}")
}

fn rediss(port: u16, ca_file: Option<String>) -> Settings {
    tls_settings(&rediss_url(port), ca_file.as_deref(), "")
}

fn trusting_root(port: u16, pki: &TestPki) -> Settings {
    pki.trusting(&rediss_url(port), "")
}

/// The server name of [`named_pki`]'s server leaf, as TOML.
pub(crate) const NAMED: &str = "redis.tls.server_name = \"redis.test\"\n";

/// A PKI whose server leaf `server` names only `redis.test`, with a client
/// certificate `client`.
pub(crate) fn named_pki() -> TestPki {
    let pki = TestPki::new();
    pki.server_for("server", "redis.test");
    pki.client("client", 365);
    pki
}

/// The README's self-signed example, its three lines as they stand (the
/// port made free, the CA file's path made absolute for the sidecar).
fn readme_example() -> [String; 3] {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let line = |start: &str| {
        readme
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("README has no line starting {start:?}"))
            .to_owned()
    };
    [
        line("openssl req -x509"),
        line("redis-server --port 0 --tls-port 6380"),
        line("REDIS_HEALTH_REDIS__URL=rediss://127.0.0.1:6380 "),
    ]
}

#[tokio::test]
async fn the_readme_self_signed_example_works_and_the_name_is_still_checked() {
    let [openssl, server, sidecar] = readme_example();
    assert_eq!(
        openssl,
        SELF_SIGNED_ONE_LINER
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let dir = self_signed();
    let port = free_port().to_string();
    let in_dir = format!(
        "cd {} && exec {}",
        dir.path().display(),
        server.replace("6380", &port)
    );
    let _redis = TestProcess::start(Path::new("sh"), &["-c", &in_dir], &[]);

    let cert = dir.path().join("cert.pem").to_string_lossy().into_owned();
    let envs: Vec<(String, String)> = sidecar
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| {
            let value = value.replace("6380", &port).replace("cert.pem", &cert);
            (key.to_owned(), value)
        })
        .collect();
    assert_eq!(envs.len(), 2, "{sidecar}");
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    envs.push(("REDIS_HEALTH_CHECKS__MEMORY__WARN_NO_MAXMEMORY", "false"));
    let binary = TestBinary::start(&envs).await;
    let mut answer = (0, String::new());
    for _ in 0..100 {
        answer = binary.get("/health/redis").await;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    let json: serde_json::Value = serde_json::from_str(&answer.1).unwrap_or_default();
    assert_eq!(json["status"], "ok", "{}", answer.1);
    let expires_in = json["checks"]["tls"]["expires_in_s"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        (364 * 86400..=365 * 86400).contains(&expires_in),
        "{}",
        answer.1
    );

    // Pinned is not a free pass: the name is checked all the same.
    let config = tls_settings(
        &rediss_url(port.parse().expect("port")),
        Some(&cert),
        "redis.tls.server_name = \"redis.example.internal\"",
    );
    let app = spawn_app(config).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "not valid for the name redis.example.internal",
    );
}

#[tokio::test]
async fn a_chain_through_an_intermediate_is_trusted_with_only_the_root() {
    let pki = TestPki::new();
    pki.server("server", 365);
    let (_redis, port) = pki.redis("server", false);
    let app = spawn_app(trusting_root(port, &pki)).await;
    app.assert_every_route_ok().await;
}

#[tokio::test]
async fn an_untrusted_certificate_says_by_what() {
    let pki = TestPki::new();
    pki.server("server", 365);
    let stranger = TestPki::new();
    let (_redis, port) = pki.redis("server", false);
    let app = spawn_app(rediss(port, Some(stranger.path_str("root.pem")))).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "TLS handshake failed: the server's certificate is not trusted by redis.tls.ca_file",
    );
    let app = spawn_app(rediss(port, None)).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate is not trusted by the system's CA roots",
    );
}

#[tokio::test]
async fn a_name_mismatch_names_the_name_checked() {
    let pki = TestPki::new();
    pki.server("server", 365);
    let (_redis, port) = pki.redis("server", false);
    let config = pki.trusting(&rediss_url(port), "redis.tls.server_name = \"redis.other\"");
    let app = spawn_app(config).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate is not valid for the name redis.other",
    );
}

#[tokio::test]
async fn an_expired_certificate_says_so_with_the_date() {
    let pki = TestPki::new();
    pki.server_dated("server", "20200101000000Z", "20200201000000Z");
    let (_redis, port) = pki.redis("server", false);
    let app = spawn_app(trusting_root(port, &pki)).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate expired on 2020-02-01T00:00:00Z",
    );
}

#[tokio::test]
async fn a_certificate_not_valid_yet_says_so_with_the_date() {
    let pki = TestPki::new();
    pki.server_dated("server", "20900101000000Z", "20910101000000Z");
    let (_redis, port) = pki.redis("server", false);
    let app = spawn_app(trusting_root(port, &pki)).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate is not valid yet: it starts on 2090-01-01T00:00:00Z",
    );
}

#[tokio::test]
async fn a_server_that_requires_a_client_certificate_says_which_key_to_set() {
    let pki = TestPki::new();
    pki.server("server", 365);
    let (_redis, port) = pki.redis("server", true);
    let app = spawn_app(trusting_root(port, &pki)).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server requires a client certificate and none is configured (set redis.tls.cert_file",
    );
}

#[tokio::test]
async fn a_refused_client_certificate_says_so() {
    let pki = TestPki::new();
    pki.server("server", 365);
    // A client certificate from a CA the server does not know.
    let stranger = named_pki();
    let (_redis, port) = pki.redis("server", true);
    let config = pki.trusting(&rediss_url(port), &stranger.client_toml("client"));
    let app = spawn_app(config).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server refused the client certificate in redis.tls.cert_file",
    );
}

#[tokio::test]
async fn a_plain_port_says_it_does_not_speak_tls_and_suggests_redis_url() {
    let pki = TestPki::new();
    let redis = TestRedis::start();
    let app = spawn_app(rediss(redis.port, Some(pki.path_str("root.pem")))).await;
    let answer = app.get("/health/redis").await;
    assert_tls_error(&answer, "does not speak TLS");
    assert_tls_error(&answer, "redis://");
}

#[tokio::test]
async fn the_log_line_says_the_same_in_words() {
    let pki = TestPki::new();
    pki.server("server", 365);
    let stranger = TestPki::new();
    let (_redis, port) = pki.redis("server", false);
    let url = format!("rediss://127.0.0.1:{port}");
    let ca = stranger.path_str("root.pem");
    let binary = TestBinary::start(&[
        ("REDIS_HEALTH_REDIS__URL", &url),
        ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
    ])
    .await;
    let (status, _) = binary.get("/health/redis").await;
    assert_eq!(status, 503);
    let logs = binary.stop();
    assert!(
        logs.contains("the server's certificate is not trusted by redis.tls.ca_file"),
        "{logs}"
    );
    assert!(!logs.contains("UnknownIssuer"), "{logs}");
}

#[tokio::test]
async fn certificate_expiry_is_judged_and_exported_for_server_and_client() {
    let pki = TestPki::new();
    pki.server("server", 3);
    pki.client("client", 30);
    let (_redis, port) = pki.redis("server", true);
    let config = pki.trusting(&rediss_url(port), &pki.client_toml("client"));
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["reason"], "tls_cert_expiring",
        "{}",
        answer.text
    );
    let tls = &answer.json["checks"]["tls"];
    let day = 86_400;
    let server_in = tls["expires_in_s"].as_i64().unwrap_or_default();
    let client_in = tls["client_expires_in_s"].as_i64().unwrap_or_default();
    assert!((2 * day..=3 * day).contains(&server_in), "{tls}");
    assert!((29 * day..=30 * day).contains(&client_in), "{tls}");
    assert!(
        tls["not_after"].as_str().is_some_and(|d| d.ends_with('Z')),
        "{tls}"
    );
    assert!(tls["client_not_after"].as_str().is_some(), "{tls}");
    assert_eq!(
        app.get("/health").await.json["checks"]["tls"]["status"],
        "warn"
    );
    assert!(
        app.get("/health/replica").await.json["checks"]
            .get("tls")
            .is_none()
    );

    let metrics = app.get("/metrics").await.text;
    for cert in ["server", "client"] {
        assert!(
            metrics.contains(&format!(
                "redis_health_tls_cert_expiry_timestamp_seconds{{cert=\"{cert}\"}}"
            )),
            "{metrics}"
        );
    }

    // checks.tls.enabled = false: no tls check.
    let config = pki.trusting(
        &rediss_url(port),
        &format!("{}checks.tls.enabled = false", pki.client_toml("client")),
    );
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["status"], "ok", "{}", answer.text);
    assert!(
        answer.json["checks"].get("tls").is_none(),
        "{}",
        answer.text
    );

    // A plain connection has no tls check and no expiry metric.
    let plain = TestRedis::start();
    let app = spawn_app(settings(&plain.url())).await;
    let answer = app.get("/health/redis").await;
    assert!(
        answer.json["checks"].get("tls").is_none(),
        "{}",
        answer.text
    );
    assert!(!app.get("/metrics").await.text.contains("tls_cert_expiry"));
}

#[tokio::test]
async fn warn_before_is_configurable_in_days() {
    let pki = TestPki::new();
    pki.server("server", 3);
    let (_redis, port) = pki.redis("server", false);
    let config = pki.trusting(&rediss_url(port), "checks.tls.warn_before = \"2days\"");
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.json["status"], "ok", "{}", answer.text);

    let url = format!("rediss://127.0.0.1:{port}");
    let ca = pki.path_str("root.pem");
    for (days, status) in [("2d", "ok"), ("4d", "warn")] {
        let binary = TestBinary::start(&[
            ("REDIS_HEALTH_REDIS__URL", &url),
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
            ("REDIS_HEALTH_CHECKS__TLS__WARN_BEFORE", days),
            ("REDIS_HEALTH_CHECKS__MEMORY__WARN_NO_MAXMEMORY", "false"),
        ])
        .await;
        let (_, body) = binary.get("/health/redis").await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(json["checks"]["tls"]["status"], status, "{days}: {body}");
    }
}

#[tokio::test]
async fn tls_with_the_private_ca_is_ok_and_the_server_name_is_checked() {
    let pki = named_pki();
    let (_redis, port) = pki.redis("server", false);

    let app = spawn_app(pki.trusting(&rediss_url(port), NAMED)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.text.starts_with(r#"{"status":"ok""#),
        "{}",
        answer.text
    );
    assert_eq!(app.get("/health/primary").await.status, 200);

    // The certificate names redis.test only: checked against the URL's host,
    // it fails, and the body says why.
    let app = spawn_app(pki.trusting(&rediss_url(port), "")).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(
        (answer.status, answer.json["reason"].as_str()),
        (503, Some("error")),
        "{}",
        answer.text
    );
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert_eq!(
        error,
        "TLS handshake failed: the server's certificate is not valid for the name 127.0.0.1 \
         (the URL's host, or redis.tls.server_name when set)"
    );
}

#[tokio::test]
async fn tls_with_a_wrong_ca_is_an_error_that_says_why_and_holds_no_secret() {
    const PASSWORD: &str = "tls-secret-pw";
    let pki = named_pki();
    let stranger = named_pki();
    let (_redis, port) = pki.redis_with("server", false, &["--requirepass", PASSWORD]);
    let config = stranger.trusting(&format!("rediss://:{PASSWORD}@127.0.0.1:{port}"), NAMED);
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["status"], "down");
    assert_eq!(answer.json["reason"], "error");
    assert_eq!(
        answer.json["error"],
        "TLS handshake failed: the server's certificate is not trusted by redis.tls.ca_file"
    );
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
    assert!(
        answer.elapsed < Duration::from_secs(1),
        "{:?}",
        answer.elapsed
    );

    // Nothing listening at all is still unreachable, TLS or not.
    let closed = spawn_app(pki.trusting(&rediss_url(free_port()), NAMED)).await;
    let answer = closed.get("/health/redis").await;
    assert_eq!(answer.json["reason"], "unreachable", "{}", answer.text);
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = named_pki();
    let (_redis, port) = pki.redis("server", true);

    let config = pki.trusting(
        &rediss_url(port),
        &format!("{NAMED}{}", pki.client_toml("client")),
    );
    let app = spawn_app(config).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // Without a client certificate the server refuses the session.
    let app = spawn_app(pki.trusting(&rediss_url(port), NAMED)).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "error", "{}", answer.text);
    assert_eq!(
        answer.json["error"],
        "TLS handshake failed: the server requires a client certificate and none is configured \
         (set redis.tls.cert_file and redis.tls.key_file)"
    );
}

#[test]
fn bad_tls_settings_exit_2_naming_the_key() {
    let tls_url = ("REDIS_HEALTH_REDIS__URL", "rediss://127.0.0.1:6390");
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", "/nonexistent/ca.pem"),
        ],
        "redis.tls.ca_file",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("write");
    let not_pem = not_pem.to_string_lossy().into_owned();
    assert_config_error(
        &[],
        &[tls_url, ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &not_pem)],
        "redis.tls.ca_file",
    );
    let pki = named_pki();
    let client = pki.path_str("client.pem");
    let ca = pki.path_str("root.pem");
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
            ("REDIS_HEALTH_REDIS__TLS__CERT_FILE", &client),
        ],
        "redis.tls.key_file",
    );
    // A certificate is not a key.
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
            ("REDIS_HEALTH_REDIS__TLS__CERT_FILE", &client),
            ("REDIS_HEALTH_REDIS__TLS__KEY_FILE", &client),
        ],
        "redis.tls.key_file",
    );
    assert_config_error(
        &[],
        &[
            tls_url,
            ("REDIS_HEALTH_REDIS__TLS__SERVER_NAME", "not a name!"),
        ],
        "redis.tls.server_name",
    );
    assert_config_error(
        &[],
        &[
            ("REDIS_HEALTH_REDIS__URL", "redis://127.0.0.1:6390"),
            ("REDIS_HEALTH_REDIS__TLS__CA_FILE", &ca),
        ],
        "redis.tls",
    );
}
