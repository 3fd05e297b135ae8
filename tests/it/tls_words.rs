//! Every refusal in words (issue 26): what a TLS or connection problem
//! reads as in the body or the config error, never a Rust type's name,
//! each against certificates made here with openssl and, where the server
//! takes part, a real TLS redis-server.

use std::path::Path;

use crate::support::spawn_app;
use crate::support::tls::{
    TestPki, assert_no_type_names, assert_tls_error, run_openssl, tls_redis,
};
use redis_health::config::{ConfigError, Settings};

/// Settings as a file would give them: a sidecar on a free port against
/// `url`, with `extra` TOML lines in `[redis]`.
fn load(url: &str, redis_extra: &str) -> Result<Settings, ConfigError> {
    Settings::from_toml(&format!(
        "server.listen = \"127.0.0.1:0\"\n[redis]\nurl = \"{url}\"\ntimeout = \"500ms\"\n\
         {redis_extra}\n[checks.memory]\nwarn_no_maxmemory = false\n"
    ))
}

fn tls_lines(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> String {
    let mut lines = String::from("[redis.tls]\n");
    for (name, path) in [("ca_file", ca), ("cert_file", cert), ("key_file", key)] {
        if let Some(path) = path {
            lines.push_str(&format!("{name} = \"{}\"\n", path.display()));
        }
    }
    lines
}

/// The config error a file with these TLS files gets: its key and message.
fn refused(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> (String, String) {
    let error = load("rediss://127.0.0.1:6380", &tls_lines(ca, cert, key))
        .map(|_| ())
        .expect_err("refused at load");
    assert_no_type_names(&error.message);
    (error.key, error.message)
}

/// A self-signed certificate for localhost with a new key made by
/// `newkey` (openssl `-newkey` and `-pkeyopt` arguments): `NAME.pem`, `NAME.key`.
fn self_signed(dir: &Path, name: &str, newkey: &[&str]) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(newkey);
    args.extend([
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &pem,
        "-days",
        "30",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    run_openssl(dir, &args);
}

/// `gen-test-certs.sh`'s `redis.crt`: signed by the PKI's root with no
/// extensions, which OpenSSL issues as X.509 v1. `NAME.crt`, `NAME.key`.
fn v1_certificate(pki: &TestPki, name: &str) {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let dir = pki.dir.path();
    run_openssl(dir, &["genrsa", "-out", &key, "2048"]);
    run_openssl(
        dir,
        &[
            "req",
            "-new",
            "-sha256",
            "-subj",
            "/O=Redis Test/CN=Generic-cert",
            "-key",
            &key,
            "-out",
            &csr,
        ],
    );
    run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-sha256",
            "-in",
            &csr,
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "77",
            "-days",
            "365",
            "-out",
            &crt,
        ],
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &crt])
        .current_dir(dir)
        .output()
        .expect("openssl x509 -text");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"),
        "openssl made no v1 certificate"
    );
}

#[test]
fn a_key_of_another_pair_says_they_do_not_match() {
    let pki = TestPki::new();
    pki.client("client", 30);
    pki.client("other", 30);
    let (key, message) = refused(
        Some(&pki.path("root.pem")),
        Some(&pki.path("client.pem")),
        Some(&pki.path("other.key")),
    );
    assert_eq!(key, "redis.tls.key_file");
    assert!(
        message.contains("does not match the certificate in")
            && message.contains("client.pem")
            && message.contains("different pairs"),
        "{message}"
    );
}

#[test]
fn a_p521_key_says_which_key_types_are_supported() {
    let dir = tempfile::tempdir().expect("temp dir");
    self_signed(
        dir.path(),
        "p521",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1"],
    );
    let (key, message) = refused(
        None,
        Some(&dir.path().join("p521.pem")),
        Some(&dir.path().join("p521.key")),
    );
    assert_eq!(key, "redis.tls.key_file");
    assert!(
        message.contains("unsupported key type (this one is an EC P-521 key)")
            && message.contains("RSA, ECDSA P-256 or P-384, and Ed25519"),
        "{message}"
    );
}

#[test]
fn an_encrypted_key_says_how_to_decrypt_it_in_both_pem_forms() {
    let pki = TestPki::new();
    pki.client("client", 30);
    let dir = pki.dir.path();
    // PKCS#8 (`ENCRYPTED PRIVATE KEY`) and OpenSSL's traditional form
    // (`Proc-Type: 4,ENCRYPTED`).
    run_openssl(
        dir,
        &[
            "pkey",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "pkcs8.key",
        ],
    );
    run_openssl(
        dir,
        &[
            "ec",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "traditional.key",
        ],
    );
    for (file, marker) in [
        ("pkcs8.key", "ENCRYPTED PRIVATE KEY"),
        ("traditional.key", "Proc-Type: 4,ENCRYPTED"),
    ] {
        let pem = std::fs::read_to_string(pki.path(file)).expect("key");
        assert!(pem.contains(marker), "{file} is not in the form meant");
        let (key, message) = refused(
            Some(&pki.path("root.pem")),
            Some(&pki.path("client.pem")),
            Some(&pki.path(file)),
        );
        assert_eq!(key, "redis.tls.key_file", "{file}");
        assert!(
            message.contains("encrypted with a passphrase")
                && message.contains(&format!("openssl pkey -in {}", pki.path_str(file))),
            "{file}: {message}"
        );
    }
}

const V1_WORDS: &str = "X.509 v1 certificate; rustls accepts v3 only: reissue it with \
                        extensions, or use gen-test-certs.sh's server.crt";

#[test]
fn a_v1_client_certificate_says_v3_only() {
    let pki = TestPki::new();
    v1_certificate(&pki, "redis");
    let (key, message) = refused(
        Some(&pki.path("root.pem")),
        Some(&pki.path("redis.crt")),
        Some(&pki.path("redis.key")),
    );
    assert_eq!(key, "redis.tls.cert_file");
    assert!(message.contains(V1_WORDS), "{message}");
}

/// Redis's docs pin `redis.crt` on both sides: in `ca_file` it loads (a v1
/// certificate is a usable root), and serving it is refused in words.
#[tokio::test]
async fn a_v1_certificate_pinned_in_the_ca_file_says_v3_only() {
    let pki = TestPki::new();
    v1_certificate(&pki, "redis");
    let crt = pki.path_str("redis.crt");
    let (_redis, port) = tls_redis(&crt, &pki.path_str("redis.key"), &crt, false, &[]);
    let url = format!("rediss://127.0.0.1:{port}");
    let settings = load(&url, &tls_lines(Some(&pki.path("redis.crt")), None, None))
        .expect("a v1 certificate loads as a root");
    let app = spawn_app(settings).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        &format!("the server's certificate is an {V1_WORDS}"),
    );
}

#[tokio::test]
async fn a_v1_server_certificate_says_v3_only() {
    let pki = TestPki::new();
    v1_certificate(&pki, "redis");
    let (_redis, port) = tls_redis(
        &pki.path_str("redis.crt"),
        &pki.path_str("redis.key"),
        &pki.path_str("root.pem"),
        false,
        &[],
    );
    let url = format!("rediss://127.0.0.1:{port}");
    let settings =
        load(&url, &tls_lines(Some(&pki.path("root.pem")), None, None)).expect("valid settings");
    let app = spawn_app(settings).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        &format!("TLS handshake failed: the server's certificate is an {V1_WORDS}"),
    );
}

const NOTHING_IN_COMMON: &str = "no cipher suite or signature algorithm in common: \
                                 redis-health offers TLS 1.2 and 1.3 with ECDHE key exchange";

#[tokio::test]
async fn a_server_limited_to_rsa_key_exchange_says_what_redis_health_offers() {
    let dir = tempfile::tempdir().expect("temp dir");
    self_signed(dir.path(), "rsa", &["-newkey", "rsa:2048"]);
    let (pem, key) = (dir.path().join("rsa.pem"), dir.path().join("rsa.key"));
    let (pem_s, key_s) = (pem.to_string_lossy(), key.to_string_lossy());
    let tls_port = crate::support::free_port();
    let _redis = crate::support::TestRedis::with_args(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &pem_s,
        "--tls-key-file",
        &key_s,
        "--tls-ca-cert-file",
        &pem_s,
        "--tls-auth-clients",
        "no",
        "--tls-protocols",
        "TLSv1.2",
        "--tls-ciphers",
        "AES256-GCM-SHA384",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let app = spawn_app(load(&url, &tls_lines(Some(&pem), None, None)).expect("settings")).await;
    let answer = app.get("/health/redis").await;
    assert_tls_error(&answer, NOTHING_IN_COMMON);
    assert_tls_error(&answer, "tls-ciphers");
}

#[tokio::test]
async fn a_server_with_a_p521_key_says_what_redis_health_offers() {
    let dir = tempfile::tempdir().expect("temp dir");
    self_signed(
        dir.path(),
        "p521",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1"],
    );
    let pem = dir.path().join("p521.pem");
    let (_redis, port) = tls_redis(
        &pem.to_string_lossy(),
        &dir.path().join("p521.key").to_string_lossy(),
        &pem.to_string_lossy(),
        false,
        &[],
    );
    let url = format!("rediss://127.0.0.1:{port}");
    let app = spawn_app(load(&url, &tls_lines(Some(&pem), None, None)).expect("settings")).await;
    let answer = app.get("/health/redis").await;
    assert_tls_error(&answer, NOTHING_IN_COMMON);
    assert_tls_error(&answer, "P-521");
}

#[tokio::test]
async fn a_plain_url_on_a_tls_port_says_use_rediss() {
    let pki = TestPki::new();
    pki.server("server", 30);
    let (_redis, port) = pki.redis("server", false);
    let app = spawn_app(load(&format!("redis://127.0.0.1:{port}"), "").expect("settings")).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "this port speaks TLS: use rediss://",
    );
}

/// Every health route, `/health/alive` included.
const ALL_ROUTES: [&str; 5] = [
    "/health/redis",
    "/health/replica",
    "/health/primary",
    "/health",
    "/health/alive",
];

#[tokio::test]
async fn info_renamed_or_disabled_says_redis_health_needs_it_on_every_route() {
    let redis = crate::support::TestRedis::with_args(&["--rename-command", "INFO", ""]);
    let app = spawn_app(load(&redis.url(), "").expect("settings")).await;
    for route in ALL_ROUTES {
        let answer = app.get(route).await;
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("INFO is disabled or renamed")
                && error.contains("redis-health needs it"),
            "{route}: {}",
            answer.text
        );
        // /health/alive keeps its rule: Redis answered, so it is alive.
        let status = if route == "/health/alive" { 200 } else { 503 };
        assert_eq!(answer.status, status, "{route}: {}", answer.text);
    }
}

#[tokio::test]
async fn the_default_users_own_auth_answer_reaches_the_body() {
    let redis =
        crate::support::TestRedis::with_args(&["--user", "default", "off", "nopass", "+@all"]);
    let url = format!("redis://:pw@127.0.0.1:{}", redis.port);
    let app = spawn_app(load(&url, "").expect("settings")).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "auth_failed", "{}", answer.text);
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "AUTH <password> called without any password configured for the default user"
        ),
        "{}",
        answer.text
    );
    assert!(!error.contains("NOAUTH"), "{}", answer.text);
}

#[test]
fn a_unix_socket_path_over_the_kernels_limit_is_refused_at_load() {
    let path = format!("/run/{}/redis.sock", "r".repeat(97));
    assert_eq!(path.len(), 113);
    let error = load(&format!("unix://{path}"), "")
        .map(|_| ())
        .expect_err("refused at load");
    assert_eq!(error.key, "redis.url");
    assert!(
        error.message.contains("at most 107 bytes, this one is 113"),
        "{}",
        error.message
    );
    let fits = format!("/run/{}/redis.sock", "r".repeat(91));
    assert_eq!(fits.len(), 107);
    assert!(load(&format!("unix://{fits}"), "").is_ok());
}

/// What Redis's `utils/gen-test-certs.sh` makes, its commands as they
/// stand (less the DH parameters and client certificate): `ca.crt`, and
/// `server.crt` (X.509 v3, CN `Server-only`, no subjectAltName) with
/// `server.key`.
fn gen_test_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("openssl.cnf"),
        "[ server_cert ]\nkeyUsage = digitalSignature, keyEncipherment\nnsCertType = server\n",
    )
    .expect("openssl.cnf");
    let script = "openssl genrsa -out ca.key 4096 && \
        openssl req -x509 -new -nodes -sha256 -key ca.key -days 3650 \
          -subj '/O=Redis Test/CN=Certificate Authority' -out ca.crt && \
        openssl genrsa -out server.key 2048 && \
        openssl req -new -sha256 -subj '/O=Redis Test/CN=Server-only' -key server.key | \
        openssl x509 -req -sha256 -CA ca.crt -CAkey ca.key -CAserial ca.txt -CAcreateserial \
          -days 365 -extfile openssl.cnf -extensions server_cert -out server.crt";
    let output = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir.path())
        .output()
        .expect("run sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

fn tls_section(ca: &Path, extra: &str) -> String {
    format!("{}{extra}\n", tls_lines(Some(ca), None, None))
}

#[tokio::test]
async fn gen_test_certs_server_crt_is_checked_by_its_cn_when_asked() {
    let certs = gen_test_certs();
    let path = |f: &str| certs.path().join(f).to_string_lossy().into_owned();
    let (_redis, port) = tls_redis(
        &path("server.crt"),
        &path("server.key"),
        &path("ca.crt"),
        false,
        &[],
    );
    let url = format!("rediss://127.0.0.1:{port}");
    let ca = certs.path().join("ca.crt");

    // Without the option: the error says why, names the CN and the option.
    let settings =
        load(&url, &tls_section(&ca, "server_name = \"Server-only\"")).expect("settings");
    let app = spawn_app(settings).await;
    let answer = app.get("/health/redis").await;
    for words in [
        "the server's certificate has no subjectAltName, only the CN \"Server-only\"",
        "set redis.tls.check_common_name = true",
        "subjectAltName=DNS:Server-only",
    ] {
        assert_tls_error(&answer, words);
    }

    // With it: every route is ok, and the expiry is read as for any other.
    let settings = load(
        &url,
        &tls_section(
            &ca,
            "server_name = \"Server-only\"\ncheck_common_name = true",
        ),
    )
    .expect("settings");
    let app = spawn_app(settings).await;
    app.assert_every_route_ok().await;
    let answer = app.get("/health/redis").await;
    let expires_in = answer.json["checks"]["tls"]["expires_in_s"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        (364 * 86_400..=365 * 86_400).contains(&expires_in),
        "{}",
        answer.text
    );

    // The CN is still the name checked: the URL's host is not it.
    let settings = load(&url, &tls_section(&ca, "check_common_name = true")).expect("settings");
    let app = spawn_app(settings).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "has no subjectAltName and its CN \"Server-only\" is not the name 127.0.0.1",
    );

    // Nor does the CN bypass the chain: another CA's certificate is refused.
    let stranger = gen_test_certs();
    let settings = load(
        &url,
        &tls_section(
            &stranger.path().join("ca.crt"),
            "server_name = \"Server-only\"\ncheck_common_name = true",
        ),
    )
    .expect("settings");
    let app = spawn_app(settings).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate is not trusted by redis.tls.ca_file",
    );
}

#[tokio::test]
async fn a_certificate_with_subject_alt_names_is_never_checked_by_its_cn() {
    let dir = tempfile::tempdir().expect("temp dir");
    run_openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=redis.cn.test",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
    );
    let cert = dir.path().join("cert.pem");
    let (_redis, port) = tls_redis(
        &cert.to_string_lossy(),
        &dir.path().join("key.pem").to_string_lossy(),
        &cert.to_string_lossy(),
        false,
        &[],
    );
    let url = format!("rediss://127.0.0.1:{port}");
    let settings = load(
        &url,
        &tls_section(
            &cert,
            "server_name = \"redis.cn.test\"\ncheck_common_name = true",
        ),
    )
    .expect("settings");
    let app = spawn_app(settings).await;
    assert_tls_error(
        &app.get("/health/redis").await,
        "the server's certificate is not valid for the name redis.cn.test",
    );
}

/// A Sentinel serving TLS only on `tls_port` with this PKI's leaf `NAME`,
/// watching a plain primary; it keeps a plain port to be waited on.
fn tls_sentinel(pki: &TestPki, name: &str, primary: u16) -> (crate::support::TestProcess, u16) {
    let (port, tls_port) = (crate::support::free_port(), crate::support::free_port());
    let config = pki.path("sentinel.conf");
    // Sentinel rewrites its config file, so it must be its own, writable.
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\ntls-port {tls_port}\n\
             tls-cert-file {chain}\ntls-key-file {key}\ntls-ca-cert-file {root}\n\
             tls-auth-clients no\nsentinel monitor mymaster 127.0.0.1 {primary} 1\n",
            dir = pki.dir.path().display(),
            chain = pki.path_str(&format!("{name}-chain.pem")),
            key = pki.path_str(&format!("{name}.key")),
            root = pki.path_str("root.pem"),
        ),
    )
    .expect("write sentinel.conf");
    let config = config.to_string_lossy().into_owned();
    let sentinel = crate::support::TestProcess::start(
        &crate::support::Server::Redis7.binary(),
        &[&config, "--sentinel"],
        &[],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "sentinel did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (sentinel, tls_port)
}

#[tokio::test]
async fn a_tls_sentinel_has_the_tls_check_and_its_expiry_warning() {
    let primary = crate::support::TestRedis::start();
    let pki = TestPki::new();
    pki.server("server", 3);
    let (_sentinel, port) = tls_sentinel(&pki, "server", primary.port);
    let url = format!("rediss://127.0.0.1:{port}");
    let settings =
        load(&url, &tls_lines(Some(&pki.path("root.pem")), None, None)).expect("settings");
    let app = spawn_app(settings).await;
    for route in ["/health/redis", "/health"] {
        let answer = app.get(route).await;
        assert!(
            answer.json["checks"].get("sentinel").is_some(),
            "{route}: {}",
            answer.text
        );
        let tls = &answer.json["checks"]["tls"];
        assert_eq!(tls["status"], "warn", "{route}: {}", answer.text);
        assert_eq!(
            tls["reason"], "tls_cert_expiring",
            "{route}: {}",
            answer.text
        );
        let day = 86_400;
        let expires_in = tls["expires_in_s"].as_i64().unwrap_or_default();
        assert!((2 * day..=3 * day).contains(&expires_in), "{route}: {tls}");
    }
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("redis_health_tls_cert_expiry_timestamp_seconds{cert=\"server\"}"),
        "{metrics}"
    );
}

/// The README's gen-test-certs.sh example, its lines as they stand (the
/// port made free, the script's files made by [`gen_test_certs`] under
/// `tests/tls/` as the script leaves them), checked with the binary.
#[tokio::test]
async fn the_readme_gen_test_certs_example_works() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split_once("**Redis's own test certificates.**")
        .map(|(_, rest)| rest)
        .expect("README has the gen-test-certs.sh section");
    let line = |start: &str| {
        section
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("section has no line starting {start:?}"))
            .to_owned()
    };
    let (server, sidecar) = (line("redis-server "), line("REDIS_HEALTH_REDIS__URL="));
    let certs = gen_test_certs();
    let tls_dir = certs.path().join("tests/tls");
    std::fs::create_dir_all(&tls_dir).expect("tests/tls");
    for file in ["ca.crt", "server.crt", "server.key"] {
        std::fs::rename(certs.path().join(file), tls_dir.join(file)).expect("move");
    }
    let port = crate::support::free_port().to_string();
    let in_dir = format!(
        "cd {} && exec {}",
        certs.path().display(),
        server.replace("6380", &port)
    );
    let _redis = crate::support::TestProcess::start(Path::new("sh"), &["-c", &in_dir], &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ca = tls_dir.join("ca.crt").to_string_lossy().into_owned();
    let envs: Vec<(String, String)> = sidecar
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(key, value)| {
            let value = value
                .replace("6380", &port)
                .replace("tests/tls/ca.crt", &ca);
            (key.to_owned(), value)
        })
        .collect();
    assert_eq!(envs.len(), 4, "{sidecar}");
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    envs.push(("REDIS_HEALTH_CHECKS__MEMORY__WARN_NO_MAXMEMORY", "false"));
    let binary = crate::support::TestBinary::start(&envs).await;
    let mut answer = (0, String::new());
    for _ in 0..100 {
        answer = binary.get("/health/redis").await;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
}

/// The server certificate's exported expiry, Unix seconds.
fn expiry(metrics: &str) -> Option<f64> {
    crate::support::metrics::value(
        metrics,
        "redis_health_tls_cert_expiry_timestamp_seconds",
        "cert=\"server\"",
    )
}

#[tokio::test]
async fn the_last_known_expiry_stays_exported_while_redis_is_unreachable() {
    let pki = TestPki::new();
    pki.server("server", 30);
    let (mut redis, port) = pki.redis("server", false);
    let url = format!("rediss://127.0.0.1:{port}");
    let toml = format!(
        "server.listen = \"127.0.0.1:0\"\n[redis]\nurl = \"{url}\"\ntimeout = \"500ms\"\n\
         {}[checks]\nmax_age = \"50ms\"\n[checks.memory]\nwarn_no_maxmemory = false\n",
        tls_lines(Some(&pki.path("root.pem")), None, None)
    );
    let app = spawn_app(Settings::from_toml(&toml).expect("settings")).await;
    assert_eq!(app.get("/health/redis").await.status, 200);
    let before = expiry(&app.get("/metrics").await.text).expect("expiry exported");

    redis.kill();
    app.wait_for("/health/redis", std::time::Duration::from_secs(5), |a| {
        a.json["reason"] == "unreachable"
    })
    .await;
    let metrics = app.get("/metrics").await.text;
    assert!(metrics.contains("redis_health_redis_up 0"), "{metrics}");
    assert_eq!(expiry(&metrics), Some(before), "{metrics}");
}

#[tokio::test]
async fn the_expiry_follows_a_certificate_rotated_under_an_open_connection() {
    let pki = TestPki::new();
    pki.server("server", 3);
    pki.server("renewed", 365);
    let (redis, port) = pki.redis("server", false);
    let url = format!("rediss://127.0.0.1:{port}");
    let toml = format!(
        "server.listen = \"127.0.0.1:0\"\n[redis]\nurl = \"{url}\"\ntimeout = \"500ms\"\n\
         {}[checks]\nmax_age = \"50ms\"\n[checks.memory]\nwarn_no_maxmemory = false\n",
        tls_lines(Some(&pki.path("root.pem")), None, None)
    );
    let app = spawn_app(Settings::from_toml(&toml).expect("settings")).await;
    let answer = app.get("/health/redis").await;
    assert_eq!(
        answer.json["checks"]["tls"]["status"], "warn",
        "{}",
        answer.text
    );
    let connections = redis.info_field("total_connections_received");

    // Redis takes the renewed certificate; the sidecar's connection stays.
    let (chain, key) = (
        pki.path_str("renewed-chain.pem"),
        pki.path_str("renewed.key"),
    );
    assert_eq!(
        redis.cmd(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &chain,
            "tls-key-file",
            &key
        ]),
        "OK"
    );
    let answer = app
        .wait_for("/health/redis", std::time::Duration::from_secs(5), |a| {
            a.json["checks"]["tls"]["status"] == "ok"
        })
        .await;
    let expires_in = answer.json["checks"]["tls"]["expires_in_s"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        (364 * 86_400..=365 * 86_400).contains(&expires_in),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["status"], "ok", "{}", answer.text);
    let metrics = app.get("/metrics").await.text;
    let exported = expiry(&metrics).expect("expiry exported");
    let not_after = answer.json["checks"]["tls"]["not_after"]
        .as_str()
        .unwrap_or_default();
    assert!(!not_after.is_empty(), "{}", answer.text);
    // One handshake of its own beside the check's connection (and the
    // CONFIG SET's and INFO's), not a reconnect per check.
    let now: u64 = redis
        .info_field("total_connections_received")
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let before: u64 = connections.and_then(|v| v.parse().ok()).unwrap_or_default();
    assert!(
        now - before <= 6,
        "{before} -> {now} connections; expiry {exported}"
    );
}
