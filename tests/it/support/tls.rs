//! Certificates for the TLS tests, made with the openssl CLI: a root, an
//! intermediate and server leaves under it (valid, short-lived, expired, not
//! yet valid), a client certificate, and the self-signed `CA:TRUE`
//! certificate most guides make. Leaves name `localhost` and `127.0.0.1`,
//! or one host name of the test's choosing. The one way to start a TLS Redis
//! and to point the sidecar at it are here too.

use std::path::PathBuf;
use std::process::Command;

use redis_health::config::Settings;

use super::{TestRedis, free_port, settings_with, toml_str};

/// The and the README's one-liner, word for word.
pub const SELF_SIGNED_ONE_LINER: &str = "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 365 \
     -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1";

/// openssl arguments for a new EC P-256 key without a passphrase: fast to make.
const NEW_EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A root CA (`root.pem`), an intermediate (`int.pem`) and whatever leaves a
/// test asks for, in one temp directory.
pub struct TestPki {
    pub dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let unique = super::unique_name(&pki.dir);
        pki.write(
            "ca.cnf",
            "[ca]\ndefault_ca = issuer\n[issuer]\ndatabase = index.txt\n\
             new_certs_dir = issued\nserial = serial.txt\ndefault_md = sha256\n\
             policy = any\nunique_subject = no\n[any]\ncommonName = supplied\n",
        );
        pki.write("index.txt", "");
        pki.write("serial.txt", "1000\n");
        std::fs::create_dir(pki.path("issued")).expect("issued dir");
        pki.write(
            "int.ext",
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
        );
        let subject = format!("/CN=redis-health test root {unique}");
        let mut root = vec!["req", "-x509"];
        root.extend(NEW_EC_KEY);
        root.extend([
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "365",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.openssl(&root);
        pki.key_and_csr("int", &format!("redis-health test intermediate {unique}"));
        pki.openssl(&[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "2",
            "-days",
            "365",
            "-extfile",
            "int.ext",
            "-out",
            "int.pem",
        ]);
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn path_str(&self, file: &str) -> String {
        self.path(file).to_string_lossy().into_owned()
    }

    /// A server leaf `NAME.pem` (with `NAME.key`, and `NAME-chain.pem`: leaf
    /// then intermediate) valid for `days` from now.
    pub fn server(&self, name: &str, days: u32) {
        self.leaf(
            name,
            "serverAuth",
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
            &["-days", &days.to_string()],
        );
    }

    /// A server leaf whose only name is `host` (so connecting to 127.0.0.1
    /// needs `redis.tls.server_name`), valid for a year.
    pub fn server_for(&self, name: &str, host: &str) {
        self.leaf(
            name,
            "serverAuth",
            host,
            &format!("DNS:{host}"),
            &["-days", "365"],
        );
    }

    /// A server leaf valid between two dates (`YYYYMMDDHHMMSSZ`).
    pub fn server_dated(&self, name: &str, start: &str, end: &str) {
        self.leaf(
            name,
            "serverAuth",
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
            &["-startdate", start, "-enddate", end],
        );
    }

    /// A client certificate `NAME.pem` / `NAME.key` (and `NAME-chain.pem`)
    /// valid for `days`.
    pub fn client(&self, name: &str, days: u32) {
        self.leaf(
            name,
            "clientAuth",
            "localhost",
            "DNS:localhost,IP:127.0.0.1",
            &["-days", &days.to_string()],
        );
    }

    fn leaf(&self, name: &str, usage: &str, common_name: &str, san: &str, validity: &[&str]) {
        let ext = format!("{name}.ext");
        self.write(
            &ext,
            &format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage={usage}\nsubjectAltName={san}\n"
            ),
        );
        self.key_and_csr(name, common_name);
        let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "int.pem", "-keyfile",
            "int.key", "-in", &csr, "-extfile", &ext, "-out", &pem,
        ];
        args.extend_from_slice(validity);
        self.openssl(&args);
        let chain = [
            std::fs::read_to_string(self.path(&pem)).expect("leaf"),
            std::fs::read_to_string(self.path("int.pem")).expect("intermediate"),
        ]
        .concat();
        self.write(&format!("{name}-chain.pem"), &chain);
    }

    fn key_and_csr(&self, name: &str, common_name: &str) {
        let (key, csr, subject) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("/CN={common_name}"),
        );
        let mut args = vec!["req"];
        args.extend(NEW_EC_KEY);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
        self.openssl(&args);
    }

    /// A TLS-only Redis serving leaf `NAME` with the intermediate (the
    /// chain), trusting this root for client certificates.
    pub fn redis(&self, name: &str, auth_clients: bool) -> (TestRedis, u16) {
        self.redis_with(name, auth_clients, &[])
    }

    /// [`Self::redis`] with more redis-server arguments.
    pub fn redis_with(&self, name: &str, auth_clients: bool, extra: &[&str]) -> (TestRedis, u16) {
        tls_redis(
            &self.path_str(&format!("{name}-chain.pem")),
            &self.path_str(&format!("{name}.key")),
            &self.path_str("root.pem"),
            auth_clients,
            extra,
        )
    }

    /// Settings for `url` trusting this root, with `extra` TOML.
    pub fn trusting(&self, url: &str, extra: &str) -> Settings {
        tls_settings(url, Some(&self.path_str("root.pem")), extra)
    }

    /// TOML presenting client certificate `NAME` (its chain) and its key.
    pub fn client_toml(&self, name: &str) -> String {
        format!(
            "redis.tls.cert_file = {}\nredis.tls.key_file = {}\n",
            toml_str(self.path_str(&format!("{name}-chain.pem"))),
            toml_str(self.path_str(&format!("{name}.key")))
        )
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).expect("write");
    }

    fn openssl(&self, args: &[&str]) {
        run_openssl(self.dir.path(), args);
    }
}

/// Runs the openssl CLI in `dir`, failing the test with its stderr.
pub fn run_openssl(dir: &std::path::Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs [`SELF_SIGNED_ONE_LINER`] in a new directory: `cert.pem`, `key.pem`.
pub fn self_signed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let args: Vec<&str> = SELF_SIGNED_ONE_LINER.split_whitespace().skip(1).collect();
    run_openssl(dir.path(), &args);
    dir
}

/// The one way the tests start a TLS Redis: TLS on a free port with this
/// certificate (or chain), key and CA file, asking clients for a
/// certificate or not, plus `extra` arguments; returns it and the TLS port.
pub fn tls_redis(
    cert: &str,
    key: &str,
    ca: &str,
    auth_clients: bool,
    extra: &[&str],
) -> (TestRedis, u16) {
    let tls_port = free_port();
    let port = tls_port.to_string();
    let auth = if auth_clients { "yes" } else { "no" };
    // TestRedis waits on its plain port, so it keeps one; the sidecar is
    // pointed at the TLS port only.
    let mut args = vec![
        "--tls-port",
        &port,
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--tls-ca-cert-file",
        ca,
        "--tls-auth-clients",
        auth,
    ];
    args.extend_from_slice(extra);
    (TestRedis::with_args(&args), tls_port)
}

/// Settings for `url` (`rediss://...`) trusting `ca_file` when given, with
/// `extra` TOML.
pub fn tls_settings(url: &str, ca_file: Option<&str>, extra: &str) -> Settings {
    let ca = ca_file
        .map(|ca| format!("redis.tls.ca_file = {}\n", toml_str(ca)))
        .unwrap_or_default();
    settings_with(url, &format!("{ca}{extra}"))
}

/// Names of Rust types and variants that once reached operators in TLS
/// and connection errors.
const TYPE_NAMES: [&str; 11] = [
    "KeyMismatch",
    "OtherError",
    "UnsupportedCertVersion",
    "Other(",
    "Invalid",
    "Certificate(",
    "UnknownIssuer",
    "Alert",
    "Custom {",
    "Error",
    "PeerIncompatible",
];

/// Asserts `text` names no Rust type or variant.
pub fn assert_no_type_names(text: &str) {
    for name in TYPE_NAMES {
        assert!(!text.contains(name), "{text:?} holds {name}");
    }
}

/// A 503 `error` whose text holds `expected` and no type name.
pub fn assert_tls_error(answer: &super::Answer, expected: &str) {
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "error", "{}", answer.text);
    let error = answer.json["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(expected),
        "{error:?} should say {expected:?}"
    );
    assert_no_type_names(error);
}
