//! The rustls client configuration for `rediss://`: whom to trust
//! (`redis.tls.ca_file`, else the system's roots) and, for mutual TLS, which
//! certificate to present. Built once at load, so a bad file exits at start,
//! and again at every (re)connect, so rotated files need no restart.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

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
    #[error("does not fit redis.tls.cert_file: {0}")]
    KeyRejected(rustls::Error),
    #[error("{0:?} is not a DNS name or IP address")]
    ServerName(String),
    #[error("no CA certificate found on this system; set redis.tls.ca_file")]
    NoSystemRoots,
    #[error("TLS setup failed: {0}")]
    Provider(rustls::Error),
}

impl TlsError {
    /// The config key to blame.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Unreadable { key, .. }
            | TlsError::NotPem { key, .. }
            | TlsError::Unpaired { key, .. } => key,
            TlsError::KeyRejected(_) => "redis.tls.key_file",
            TlsError::ServerName(_) => "redis.tls.server_name",
            TlsError::NoSystemRoots => "redis.tls.ca_file",
            TlsError::Provider(_) => "redis.tls",
        }
    }
}

const CA_FILE: &str = "redis.tls.ca_file";
const CERT_FILE: &str = "redis.tls.cert_file";
const KEY_FILE: &str = "redis.tls.key_file";

/// Reads the files and builds the client configuration (ring provider, the
/// crate's only one, named so no process-wide default is needed).
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig, TlsError> {
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
    let roots = match &tls.ca_file {
        Some(file) => ca_roots(file)?,
        None => system_roots()?,
    };
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Provider)?
            .with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(CERT_FILE, cert)?, private_key(key)?)
            .map_err(TlsError::KeyRejected),
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

fn ca_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(CA_FILE, path)? {
        roots
            .add(cert)
            .map_err(|e| not_pem(CA_FILE, path, format!("not a usable CA certificate ({e})")))?;
    }
    Ok(Arc::new(roots))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(KEY_FILE, path)?;
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

    #[test]
    fn a_server_name_must_be_a_name() {
        assert_eq!(
            error_key(&settings(None, None, None, Some("not a name!"))),
            "redis.tls.server_name"
        );
    }
}
