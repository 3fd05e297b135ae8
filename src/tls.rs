//! The rustls client configuration for `rediss://`: whom to trust
//! (`redis.tls.ca_file`, else the system's roots) and, for mutual TLS, which
//! certificate to present. Built once at load, so a bad file exits at start,
//! and again at every (re)connect, so rotated files need no restart.
//!
//! The verifier wraps webpki's and adds two things: a server certificate
//! that is byte for byte one in `ca_file` is trusted as it is (the pinned
//! self-signed certificate most guides make, which webpki refuses as a CA
//! used as a server's own), and each handshake leaves behind what it saw, so
//! a failure reads in words and the expiry check needs no extra connection
//! but the periodic re-read of [`fresh_dates`].

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::config::TlsSettings;

/// Why `redis.tls` cannot be used. Messages name files, never their contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Unreadable {
        key: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("{path}: {problem}")]
    NotPem {
        key: &'static str,
        path: String,
        problem: String,
    },
    /// `key` is the missing one, `other` the one set without it.
    #[error("missing, but {other} needs it")]
    Unpaired {
        key: &'static str,
        other: &'static str,
    },
    /// A readable file that rustls cannot use: an encrypted or unsupported
    /// key, a key of another pair, an X.509 v1 certificate.
    #[error("{path}: {problem}")]
    Unusable {
        key: &'static str,
        path: String,
        problem: String,
    },
    #[error("{0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("no CA certificate found on this system; set redis.tls.ca_file")]
    NoSystemRoots,
    #[error("TLS setup failed: {0}")]
    Provider(rustls::Error),
    #[error("{0}: not an X.509 certificate")]
    NotX509(String),
}

impl TlsError {
    /// The config key to blame.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Unreadable { key, .. }
            | TlsError::NotPem { key, .. }
            | TlsError::Unpaired { key, .. }
            | TlsError::Unusable { key, .. } => key,
            TlsError::NotX509(_) => CERT_FILE,
            TlsError::ServerName(_) => "redis.tls.server_name",
            TlsError::NoSystemRoots => "redis.tls.ca_file",
            TlsError::Provider(_) => "redis.tls",
        }
    }
}

const CA_FILE: &str = "redis.tls.ca_file";
const CERT_FILE: &str = "redis.tls.cert_file";
const KEY_FILE: &str = "redis.tls.key_file";

/// A client configuration for one connection, with the record its
/// handshake leaves behind.
pub struct Tls {
    pub config: ClientConfig,
    pub handshake: Arc<Handshake>,
    /// `notAfter` of the configured client certificate, in Unix seconds.
    pub client_not_after: Option<i64>,
}

/// What one handshake saw, filled in by the verifier and the client
/// certificate resolver as it runs.
#[derive(Debug, Default)]
pub struct Handshake {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    server_not_after: Option<i64>,
    refused: Option<String>,
    client_cert_asked: bool,
}

impl Handshake {
    fn update(&self, change: impl FnOnce(&mut Seen)) {
        if let Ok(mut seen) = self.seen.lock() {
            change(&mut seen);
        }
    }

    fn seen(&self) -> Seen {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `notAfter` of the server certificate this handshake verified.
    pub fn server_not_after(&self) -> Option<i64> {
        self.seen().server_not_after
    }

    /// A failed handshake in words. `failure` is how the layers below
    /// rendered the rustls error (its Debug text): used only to tell which
    /// side gave up, never shown.
    pub fn explain(&self, failure: &str, client_cert: bool) -> String {
        let seen = self.seen();
        if let Some(refused) = seen.refused {
            return refused;
        }
        if failure.contains("AlertReceived") {
            return match (client_cert, seen.client_cert_asked) {
                (false, true) => "the server requires a client certificate and none is \
                                  configured (set redis.tls.cert_file and redis.tls.key_file)"
                    .into(),
                (true, _) => "the server refused the client certificate in redis.tls.cert_file \
                              (is it signed by a CA in the server's tls-ca-cert-file?)"
                    .into(),
                (false, false) if failure.contains("HandshakeFailure") => NOTHING_IN_COMMON.into(),
                (false, false) => "the server ended the TLS handshake".into(),
            };
        }
        if failure.contains("PeerIncompatible") {
            return NOTHING_IN_COMMON.into();
        }
        "no reason given by the server or the TLS library".into()
    }
}

/// A handshake the server gave up on before asking for a client
/// certificate: no cipher suite or signature algorithm both sides have.
const NOTHING_IN_COMMON: &str = "the server and redis-health have no cipher suite or signature \
     algorithm in common: redis-health offers TLS 1.2 and 1.3 with ECDHE key exchange and \
     AES-GCM or ChaCha20-Poly1305, and verifies RSA, ECDSA P-256 or P-384 and Ed25519 \
     signatures; check Redis's tls-ciphers, tls-ciphersuites and tls-protocols, and the type \
     of the key in its tls-key-file (a P-521 key, say, cannot be used)";

/// The first flight of a TLS handshake, to ask a port that closed on a
/// plain Redis command whether it speaks TLS instead. Verifies nothing: the
/// answer's first byte is all that is read.
pub fn client_hello(host: &str) -> Option<Vec<u8>> {
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).ok()?;
    Some(hello)
}

/// The server's and the client's certificate `notAfter`, read by a
/// handshake of its own (files read afresh, nothing sent after it), so
/// the expiry follows a certificate rotated under a connection that stays
/// open. Blocking, each step bounded by `limit`; `None` if it failed.
pub fn fresh_dates(
    tls: &TlsSettings,
    host: &str,
    port: u16,
    limit: Duration,
) -> Option<(i64, Option<i64>)> {
    use std::net::ToSocketAddrs;
    let fresh = client_config(tls).ok()?;
    let name = tls.server_name.as_deref().unwrap_or(host).to_owned();
    let name = ServerName::try_from(name).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(fresh.config), name).ok()?;
    let address = (host, port).to_socket_addrs().ok()?.next()?;
    let mut socket = std::net::TcpStream::connect_timeout(&address, limit).ok()?;
    socket.set_read_timeout(Some(limit)).ok()?;
    socket.set_write_timeout(Some(limit)).ok()?;
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).ok()?;
    }
    // Closed as a client should, reading what the server still sends (its
    // session tickets): a reset would count as a rejected connection.
    connection.send_close_notify();
    while connection.wants_write() {
        connection.write_tls(&mut socket).ok()?;
    }
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let _ = std::io::copy(&mut socket, &mut std::io::sink());
    Some((fresh.handshake.server_not_after()?, fresh.client_not_after))
}

/// Reads the files and builds the client configuration (ring provider, the
/// crate's only one, named so no process-wide default is needed). A new
/// configuration per connection also means no session resumption: every
/// handshake verifies, and records, the server's certificate.
pub fn client_config(tls: &TlsSettings) -> Result<Tls, TlsError> {
    if let Some(name) = &tls.server_name {
        ServerName::try_from(name.as_str()).map_err(|_| TlsError::ServerName(name.clone()))?;
    }
    let client = match (&tls.cert_file, &tls.key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some((cert, key)),
        (Some(_), None) => {
            return Err(TlsError::Unpaired {
                key: KEY_FILE,
                other: CERT_FILE,
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::Unpaired {
                key: CERT_FILE,
                other: KEY_FILE,
            });
        }
    };
    let (roots, pinned, trust) = match &tls.ca_file {
        Some(file) => {
            let certs = certificates(CA_FILE, file)?;
            (ca_roots(file, &certs)?, certs, CA_FILE)
        }
        None => (
            system_roots()?,
            Vec::new(),
            "the system's CA roots (set redis.tls.ca_file for a private CA)",
        ),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| TlsError::Provider(rustls::Error::General(e.to_string())))?;
    let handshake = Arc::new(Handshake::default());
    let verifier = Verifier {
        webpki,
        pinned,
        trust,
        check_common_name: tls.check_common_name,
        handshake: handshake.clone(),
    };
    let (key, client_not_after) = match client {
        None => (None, None),
        Some((cert, key)) => {
            let chain = certificates(CERT_FILE, cert)?;
            let not_after = chain
                .first()
                .and_then(|c| validity(c))
                .map(|(_, not_after)| not_after)
                .ok_or_else(|| TlsError::NotX509(cert.display().to_string()))?;
            if chain.first().is_some_and(is_v1) {
                return Err(unusable(CERT_FILE, cert, V1_REFUSED));
            }
            let certified = certified_key(chain, cert, key, &provider)?;
            (Some(Arc::new(certified)), Some(not_after))
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(ClientCert {
            key,
            handshake: handshake.clone(),
        }));
    Ok(Tls {
        config,
        handshake,
        client_not_after,
    })
}

/// What an X.509 v1 certificate gets, wherever it is found: webpki
/// refuses it, and the usual source is Redis's own test script.
const V1_REFUSED: &str = "X.509 v1 certificate; rustls accepts v3 only: reissue it with \
                          extensions, or use gen-test-certs.sh's server.crt";

/// Whether a certificate is X.509 v1 (no extensions, so no subjectAltName
/// either), which webpki refuses with only a type name for a reason.
fn is_v1(cert: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(cert.as_ref())
        .is_ok_and(|(_, parsed)| parsed.version() == x509_parser::x509::X509Version::V1)
}

/// The client certificate and its key, each refusal naming the file to fix.
fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let der = private_key(key)?;
    let unsupported = key_type(&der).map_or_else(String::new, |t| format!(" (this one is {t})"));
    let signer = provider.key_provider.load_private_key(der).map_err(|_| {
        unusable(
            KEY_FILE,
            key,
            format!(
                "unsupported key type{unsupported}: rustls signs with RSA, ECDSA P-256 or \
                 P-384, and Ed25519 keys only"
            ),
        )
    })?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|error| match error {
        rustls::Error::InconsistentKeys(_) => unusable(
            KEY_FILE,
            key,
            format!(
                "does not match the certificate in {}: the key and certificate are from \
                 different pairs",
                cert.display()
            ),
        ),
        _ => unusable(CERT_FILE, cert, "the certificate cannot be read"),
    })?;
    Ok(certified)
}

/// The curve of an EC key rustls cannot sign with, found by its OID (P-521,
/// secp256k1), so the refusal can say what the file holds.
fn key_type(der: &PrivateKeyDer<'_>) -> Option<&'static str> {
    const CURVES: [(&[u8], &str); 2] = [
        (
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
            "an EC P-521 key",
        ),
        (
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a],
            "an EC secp256k1 key",
        ),
    ];
    let bytes = der.secret_der();
    CURVES
        .iter()
        .find(|(oid, _)| bytes.windows(oid.len()).any(|w| w == *oid))
        .map(|(_, name)| *name)
}

/// `notBefore` and `notAfter` of a certificate, in Unix seconds.
fn validity(cert: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let validity = parsed.validity();
    Some((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// A Unix time as RFC 3339, for bodies and messages.
pub fn date(unix_s: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_s).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// webpki's verifier, plus pinned certificates and a record of the outcome.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `ca_file`: a server presenting one of them as its
    /// own is trusted as it is.
    pinned: Vec<CertificateDer<'static>>,
    /// Who decides trust, as the operator knows it.
    trust: &'static str,
    /// `redis.tls.check_common_name`.
    check_common_name: bool,
    handshake: Arc<Handshake>,
}

/// The subject CN of a certificate with no DNS or IP subjectAltName, the
/// only kind ever checked by CN; `None` for any other.
fn common_name_only(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let has_names = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName(_) | GeneralName::IPAddress(_)))
        });
    if has_names {
        return None;
    }
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Whether a CN names the server as OpenSSL's host check would: DNS names
/// compared without case, IP addresses as written.
fn common_name_matches(cn: &str, name: &ServerName<'_>) -> bool {
    match name {
        ServerName::DnsName(dns) => cn.eq_ignore_ascii_case(dns.as_ref()),
        ServerName::IpAddress(ip) => {
            cn.parse::<std::net::IpAddr>().ok() == Some(std::net::IpAddr::from(*ip))
        }
        _ => false,
    }
}

impl Verifier {
    /// A pinned certificate skips the chain (it is trusted by being in
    /// `ca_file`) but not its validity period or name.
    fn verify_pinned(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let (not_before, not_after) = validity(cert).ok_or(CertificateError::BadEncoding)?;
        let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let at =
            |s: i64| UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        if now_s > not_after {
            return Err(CertificateError::ExpiredContext {
                time: now,
                not_after: at(not_after),
            }
            .into());
        }
        if now_s < not_before {
            return Err(CertificateError::NotValidYetContext {
                time: now,
                not_before: at(not_before),
            }
            .into());
        }
        rustls::client::verify_server_name(&ParsedCertificate::try_from(cert)?, server_name)
    }

    /// A name refusal for a certificate with only a CN, in words.
    fn no_subject_alt_name(&self, cn: &str, name: &ServerName<'_>) -> String {
        let san = match name {
            ServerName::IpAddress(_) => "IP",
            _ => "DNS",
        };
        let name = name.to_str();
        if self.check_common_name {
            return format!(
                "the server's certificate has no subjectAltName and its CN {cn:?} is not the \
                 name {name} (the URL's host, or redis.tls.server_name when set)"
            );
        }
        format!(
            "the server's certificate has no subjectAltName, only the CN {cn:?}, and rustls \
             checks names in subjectAltNames only: set redis.tls.check_common_name = true to \
             check the CN against {name} as OpenSSL-based clients do, or reissue it with one \
             (openssl x509 -req ... -extfile <(printf 'subjectAltName={san}:{name}'))"
        )
    }

    /// What went wrong with the server's certificate, in words.
    fn explain(
        &self,
        error: &rustls::Error,
        cert: &CertificateDer<'_>,
        name: &ServerName<'_>,
    ) -> String {
        let dates = validity(cert);
        let rustls::Error::InvalidCertificate(error) = error else {
            return "the server's certificate could not be checked".into();
        };
        match error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the server's certificate expired on {}",
                dates.map_or_else(|| "an unknown date".into(), |(_, end)| date(end))
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!(
                    "the server's certificate is not valid yet: it starts on {}",
                    dates.map_or_else(|| "an unknown date".into(), |(start, _)| date(start))
                )
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for the name {} (the URL's host, \
                     or redis.tls.server_name when set)",
                    name.to_str()
                )
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the server's certificate is not meant for a TLS server (extendedKeyUsage)".into()
            }
            CertificateError::Revoked => "the server's certificate is revoked".into(),
            _ => format!("the server's certificate is not trusted by {}", self.trust),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if is_v1(end_entity) {
            self.handshake.update(|seen| {
                seen.refused = Some(format!("the server's certificate is an {V1_REFUSED}"));
            });
            return Err(CertificateError::BadEncoding.into());
        }
        let outcome = if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            self.verify_pinned(end_entity, server_name, now)
                .map(|()| ServerCertVerified::assertion())
        } else {
            self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        // webpki checks the name last, after chain and dates: only the name
        // is left to judge by CN.
        let outcome = match (outcome, common_name_only(end_entity)) {
            (Err(error), Some(cn)) if is_name_error(&error) => {
                if self.check_common_name && common_name_matches(&cn, server_name) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    let refused = self.no_subject_alt_name(&cn, server_name);
                    self.handshake.update(|seen| seen.refused = Some(refused));
                    return Err(error);
                }
            }
            (outcome, _) => outcome,
        };
        match &outcome {
            Ok(_) => {
                let not_after = validity(end_entity).map(|(_, end)| end);
                self.handshake
                    .update(|seen| seen.server_not_after = not_after);
            }
            Err(error) => {
                let refused = self.explain(error, end_entity, server_name);
                self.handshake.update(|seen| seen.refused = Some(refused));
            }
        }
        outcome
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

fn is_name_error(error: &rustls::Error) -> bool {
    matches!(
        error,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    )
}

/// The client certificate, if any, noting that the server asked for one.
#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    handshake: Arc<Handshake>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.handshake.update(|seen| seen.client_cert_asked = true);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Unreadable {
        key,
        path: path.display().to_string(),
        error,
    })
}

fn not_pem(key: &'static str, path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::NotPem {
        key,
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(key, path, format!("not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(not_pem(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn unusable(key: &'static str, path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::Unusable {
        key,
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

fn ca_roots(
    path: &Path,
    certs: &[CertificateDer<'static>],
) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    // A v1 certificate is taken as a root (webpki reads its name and key);
    // one pinned as the server's own is refused by the verifier, in words.
    for cert in certs {
        roots
            .add(cert.clone())
            .map_err(|_| unusable(CA_FILE, path, "not a usable CA certificate"))?;
    }
    Ok(Arc::new(roots))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(KEY_FILE, path)?;
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's traditional encrypted PEM.
    let encrypted = [&b"ENCRYPTED PRIVATE KEY"[..], b"Proc-Type: 4,ENCRYPTED"]
        .iter()
        .any(|marker| pem.windows(marker.len()).any(|w| w == *marker));
    if encrypted {
        return Err(unusable(
            KEY_FILE,
            path,
            format!(
                "the key is encrypted with a passphrase, which redis-health cannot be given: \
                 decrypt it with `openssl pkey -in {0} -out {0}.plain` and point \
                 redis.tls.key_file at the result (readable by redis-health only)",
                path.display()
            ),
        ));
    }
    // The parser's own message is left out: it may quote the file.
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| not_pem(KEY_FILE, path, "holds no PEM private key"))
}

/// The system's roots, read once per process: unlike the configured files
/// they change with the OS image, and reading the whole store at every
/// reconnect would spend the check's time bound on it.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Arc::new(roots)
    });
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(Arc::clone(roots))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
        name: Option<&str>,
    ) -> TlsSettings {
        TlsSettings {
            ca_file: ca.map(Path::to_path_buf),
            cert_file: cert.map(Path::to_path_buf),
            key_file: key.map(Path::to_path_buf),
            server_name: name.map(str::to_owned),
            check_common_name: false,
        }
    }

    fn error_key(tls: &TlsSettings) -> &'static str {
        client_config(tls).map(|_| ()).expect_err("rejected").key()
    }

    #[test]
    fn a_ca_file_that_is_missing_or_not_pem_names_the_ca_key() {
        let missing = PathBuf::from("/nonexistent/ca.pem");
        assert_eq!(
            error_key(&settings(Some(&missing), None, None, None)),
            CA_FILE
        );
        let text = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(text.path(), "not a certificate\n").expect("write");
        let error = client_config(&settings(Some(text.path()), None, None, None))
            .map(|_| ())
            .expect_err("rejected");
        assert_eq!(error.key(), CA_FILE);
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_the_reverse() {
        let any = PathBuf::from("/nonexistent/x.pem");
        assert_eq!(error_key(&settings(None, Some(&any), None, None)), KEY_FILE);
        assert_eq!(
            error_key(&settings(None, None, Some(&any), None)),
            CERT_FILE
        );
    }

    #[test]
    fn a_key_file_error_never_quotes_the_file() {
        let key = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(key.path(), "-----BEGIN hunter2 KEY-----\nzzz\n").expect("write");
        let error = private_key(key.path()).map(|_| ()).expect_err("rejected");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    /// A self-signed `CA:TRUE` certificate for localhost, as OpenSSL 3 makes it.
    fn self_signed(dir: &Path) -> CertificateDer<'static> {
        let status = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args([
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "key.pem",
            ])
            .args(["-out", "cert.pem", "-days", "30", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost"])
            .current_dir(dir)
            .status()
            .expect("run openssl");
        assert!(status.success());
        certificates(CA_FILE, &dir.join("cert.pem"))
            .expect("certificate")
            .remove(0)
    }

    #[test]
    fn a_pinned_certificate_still_has_its_dates_and_name_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = self_signed(dir.path());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = ca_roots(dir.path(), std::slice::from_ref(&cert)).expect("roots");
        let verifier = Verifier {
            webpki: WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .expect("verifier"),
            pinned: vec![cert.clone()],
            trust: CA_FILE,
            check_common_name: false,
            handshake: Arc::default(),
        };
        let (start, end) = validity(&cert).expect("dates");
        let at = |s: i64| UnixTime::since_unix_epoch(Duration::from_secs(s as u64));
        let verify = |name: &str, now: i64| {
            let name = ServerName::try_from(name.to_owned()).expect("name");
            verifier
                .verify_server_cert(&cert, &[], &name, &[], at(now))
                .map(|_| ())
        };
        assert!(verify("localhost", start + 60).is_ok());
        assert_eq!(verifier.handshake.server_not_after(), Some(end));
        for (name, now, refused) in [
            ("localhost", end + 60, "expired on"),
            ("localhost", start - 60, "not valid yet"),
            (
                "redis.other",
                start + 60,
                "not valid for the name redis.other",
            ),
        ] {
            assert!(verify(name, now).is_err(), "{name} at {now}");
            let text = verifier.handshake.explain("", false);
            assert!(text.contains(refused), "{text}");
        }
    }

    #[test]
    fn a_common_name_matches_as_openssl_compares_hosts() {
        let name = |n: &str| ServerName::try_from(n.to_owned()).expect("name");
        assert!(common_name_matches("Server-only", &name("server-only")));
        assert!(!common_name_matches("Server-only", &name("other")));
        assert!(common_name_matches("127.0.0.1", &name("127.0.0.1")));
        assert!(!common_name_matches("localhost", &name("127.0.0.1")));
    }

    #[test]
    fn a_server_name_must_be_a_name() {
        assert_eq!(
            error_key(&settings(None, None, None, Some("not a name!"))),
            "redis.tls.server_name"
        );
    }
}
