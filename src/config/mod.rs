//! Configuration: typed settings loaded from defaults, an optional TOML file and
//! `REDIS_HEALTH_*` environment variables.
//!
//! Values with rules are domain types ([`types`], [`RedisUrl`]), so once
//! [`Settings::load`] returns, nothing downstream checks them again. Each
//! check's own settings live in its file under `checks/`; this is the tree
//! that holds them, beside the server, log, Redis and route settings.

mod diff;
mod load;
mod types;
mod url;

use std::net::{Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::checks::CheckSettings;
pub use diff::{needs_redial, needs_restart};
pub use load::{config_file, env_key_names, ignored_env_names};
pub use types::{
    DAY, Factor, FailAt, HOUR, HostPorts, Listen, LogLevel, MINUTE, MONTH, MasterNames,
    MemoryLimit, QuantityError, Ratio, WarnCode, Within, YEAR,
};
pub use url::{Address, RedisUrl};

/// Why the configuration cannot be used; the message is one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid config: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Every setting, validated: nothing downstream checks these again.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub redis: RedisSettings,
    pub checks: CheckSettings,
    pub routes: RouteSettings,
    /// The sentinel check's settings: a section of its own, as it judges a
    /// Sentinel process rather than a data node.
    pub sentinel: crate::checks::sentinel::Sentinel,
    /// `[[queues]]`: the job queues judged (see [`crate::queues`]).
    pub queues: crate::queues::Queues,
    /// Deprecated names found while loading, for a log line once logging
    /// is set up; never part of the config itself.
    #[serde(skip)]
    pub deprecated: Vec<&'static str>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// `[::]:8080` by default: IPv6 and IPv4 on one dual-stack socket, so
    /// an IPv6-only cluster's kubelet reaches it too (see `server::bind`).
    pub listen: Listen,
    /// Connections served at once; more wait in the kernel's accept backlog.
    pub max_connections: NonZeroU32,
    /// A client must send a whole request head within this, on a new
    /// connection and between requests on a kept-alive one, so slow or idle
    /// clients cannot hold a connection slot.
    pub header_read_timeout: Within<false, HOUR>,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub shutdown_timeout: Within<false, HOUR>,
    /// The HTML page at `/`; off, `/` is a 404, for a port reachable from
    /// beyond the pod.
    pub status_page: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: Listen::new(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8080))),
            // Evaluated at compile time: never fails at run time.
            max_connections: const { NonZeroU32::new(1024).expect("1024 is not zero") },
            header_read_timeout: Within::of(Duration::from_secs(5)),
            shutdown_timeout: Within::of(Duration::from_secs(5)),
            status_page: true,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub level: LogLevel,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: LogLevel::info(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: RedisUrl,
    /// Read at every (re)connect so a rotated secret needs no restart.
    pub password_file: Option<PathBuf>,
    /// Bounds every command of a check once connected: PING and INFO in one
    /// round trip, and whatever else the checks in force send (SLOWLOG,
    /// CLUSTER INFO, SENTINEL CKQUORUM); and each sample of the queues.
    pub timeout: Within<false, MINUTE>,
    /// Bounds a (re)connect: TCP, TLS handshake and fred's setup commands,
    /// which are several round trips and would not fit `timeout` on a slow link.
    pub connect_timeout: Within<false, MINUTE>,
    /// Used only with a `rediss://` URL.
    pub tls: TlsSettings,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: RedisUrl::local(),
            password_file: None,
            timeout: Within::of(Duration::from_millis(500)),
            connect_timeout: Within::of(Duration::from_secs(1)),
            tls: TlsSettings::default(),
        }
    }
}

/// `redis.tls`: how a `rediss://` connection trusts the server and proves
/// itself. The files are read again at every (re)connect, like the password
/// file, so rotated certificates need no restart.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM CA certificate(s) to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the server certificate must hold, when it is not the URL's host
    /// (e.g. connecting to 127.0.0.1 with a certificate for the service name).
    pub server_name: Option<String>,
    /// Check a server certificate that has no DNS or IP subjectAltName by
    /// its CN, as OpenSSL-based clients do (Redis's gen-test-certs.sh makes
    /// such certificates); one with subjectAltNames is never checked by CN.
    pub check_common_name: bool,
}

impl TlsSettings {
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.server_name.is_some()
            || self.check_common_name
    }
}

/// Per-route settings: which status fails each route (`/health/alive` has
/// one fixed rule and no settings).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteSettings {
    pub redis: RouteFailure,
    pub replica: RouteFailure,
    pub primary: PrimaryRoute,
    pub all: RouteFailure,
    pub sentinel: RouteFailure,
    pub queues: RouteFailure,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFailure {
    pub fail_at: FailAt,
    /// The code answered while the route's status is warn and below
    /// `fail_at`.
    pub warn_code: WarnCode,
}

/// `routes.primary`: when it fails, and optionally the Sentinels that decide
/// which node is the primary. A node that believes it is primary while
/// Sentinel names another (an old primary back from a freeze) takes writes
/// that are lost when Sentinel demotes it: with Sentinels set, it answers
/// 503 `not_sentinel_primary`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrimaryRoute {
    pub fail_at: FailAt,
    pub warn_code: WarnCode,
    /// `host:port` of each Sentinel, asked in order until one answers.
    pub sentinels: HostPorts,
    /// The master's name in the Sentinels' config; needed with `sentinels`.
    pub master_name: Option<String>,
    /// The Sentinels' password (`requirepass` in sentinel.conf), read at
    /// every (re)connect like `redis.password_file`.
    pub sentinel_password_file: Option<PathBuf>,
}

impl PrimaryRoute {
    /// Rules across its keys.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let named = self
            .master_name
            .as_deref()
            .is_some_and(|name| !name.is_empty() && !name.contains(char::is_whitespace));
        if !self.sentinels.get().is_empty() && !named {
            return Err(ConfigError::new(
                "routes.primary.master_name",
                "needed with routes.primary.sentinels: the master's name in sentinel.conf, without whitespace",
            ));
        }
        if let Some(file) = &self.sentinel_password_file {
            crate::redis::read_password_file(file).map_err(|e| {
                ConfigError::new("routes.primary.sentinel_password_file", e.to_string())
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::{Format, Toml};

    #[test]
    fn the_shipped_config_file_holds_exactly_the_defaults() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");
        let from_file: Settings = Figment::from(Toml::file_exact(file))
            .extract()
            .expect("config/default.toml parses");
        assert_eq!(
            format!("{from_file:?}"),
            format!("{:?}", Settings::default())
        );
    }

    #[test]
    fn settings_debug_never_shows_the_password() {
        let mut settings = Settings::default();
        settings.redis.url =
            RedisUrl::try_from("redis://health:hunter2@localhost/1".to_owned()).expect("valid url");
        settings.redis.password_file = Some(PathBuf::from("/run/secrets/redis"));
        for shown in [format!("{settings:?}"), format!("{settings:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("redis://health:[redacted]@localhost:6379/1"),
                "{shown}"
            );
        }
    }
}
