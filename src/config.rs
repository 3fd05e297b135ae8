//! Configuration: typed settings loaded from defaults, an optional TOML file and
//! `REDIS_HEALTH_*` environment variables.
//!
//! Values with rules are domain types ([`Ratio`], [`RedisUrl`], [`SecretString`]),
//! so once [`load`] returns, nothing downstream checks them again.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

use crate::verdict::Status;

/// Environment variable naming the config file (same as `--config`).
const CONFIG_ENV: &str = "REDIS_HEALTH_CONFIG";
/// Prefix of the environment variables that override config keys.
const ENV_PREFIX: &str = "REDIS_HEALTH_";
/// File read from the working directory when no file is named.
const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

/// Why the configuration cannot be used; the message is one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid config: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
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
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Connections served at once; more wait in the kernel's accept backlog.
    pub max_connections: NonZeroU32,
    /// A client must send a whole request head within this, on a new
    /// connection and between requests on a kept-alive one, so slow or idle
    /// clients cannot hold a connection slot.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            // Evaluated at compile time: never fails at run time.
            max_connections: const { NonZeroU32::new(1024).expect("1024 is not zero") },
            header_read_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
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
    /// Bounds a whole check: connect (TLS handshake included), PING and INFO.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Used only with a `rediss://` URL.
    pub tls: TlsSettings,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: RedisUrl::local(),
            password_file: None,
            timeout: Duration::from_millis(500),
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
}

impl TlsSettings {
    fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.server_name.is_some()
    }
}

/// A parsed `redis://` or `rediss://` URL. Debug never prints the password.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RedisUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Accepted for familiar URLs, never selected: PING and INFO are server-wide.
    pub database: Option<u8>,
}

impl RedisUrl {
    fn local() -> Self {
        Self {
            tls: false,
            host: "127.0.0.1".into(),
            port: 6379,
            username: None,
            password: None,
            database: None,
        }
    }
}

impl Serialize for RedisUrl {
    /// The config dump shows the URL as Debug does: password redacted.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{self:?}"))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", if self.tls { "rediss" } else { "redis" })?;
        match (&self.username, &self.password) {
            (Some(user), Some(_)) => write!(f, "{user}:[redacted]@")?,
            (Some(user), None) => write!(f, "{user}@")?,
            (None, Some(_)) => write!(f, ":[redacted]@")?,
            (None, None) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?; // IPv6
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if let Some(db) = self.database {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        // The url crate's errors never echo the input, so no password leaks here.
        let url = url::Url::parse(&text).map_err(|e| format!("not a URL ({e})"))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(format!(
                    "scheme must be redis:// or rediss://, not {other}://"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
        let password = url.password().map(|p| SecretString::from(decode(p)));
        let database = match url.path().trim_start_matches('/') {
            "" => None,
            db => Some(
                db.parse::<u8>()
                    .map_err(|_| format!("database must be a number 0-255, not {db:?}"))?,
            ),
        };
        Ok(Self {
            tls,
            host,
            port: url.port().unwrap_or(6379),
            username,
            password,
            database,
        })
    }
}

/// A fraction within 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize, Serialize)]
#[serde(try_from = "f64")]
pub struct Ratio(f64);

impl Ratio {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Ratio {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("{value} is not a ratio between 0 and 1"))
        }
    }
}

/// A positive, finite factor such as a fragmentation ratio.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize, Serialize)]
#[serde(try_from = "f64")]
pub struct Factor(f64);

impl Factor {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Factor {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if value.is_finite() && value > 0.0 {
            Ok(Self(value))
        } else {
            Err(format!("{value} must be a positive number"))
        }
    }
}

/// The lowest status at which a route answers 503. Never `ok`: a route that
/// fails when healthy would take every node out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub struct FailAt(Status);

impl FailAt {
    pub fn get(self) -> Status {
        self.0
    }
}

impl Default for FailAt {
    fn default() -> Self {
        Self(Status::Degraded)
    }
}

impl std::str::FromStr for FailAt {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "warn" => Ok(Self(Status::Warn)),
            "degraded" => Ok(Self(Status::Degraded)),
            "critical" => Ok(Self(Status::Critical)),
            "down" => Ok(Self(Status::Down)),
            other => Err(format!(
                "{other:?} is not one of warn, degraded, critical, down"
            )),
        }
    }
}

impl TryFrom<String> for FailAt {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// Per-route settings: which status fails each route (`/health/alive` has
/// one fixed rule and no settings).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteSettings {
    pub redis: RouteFailure,
    pub replica: RouteFailure,
    pub primary: RouteFailure,
    pub all: RouteFailure,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFailure {
    pub fail_at: FailAt,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckSettings {
    /// A probe reuses the last completed check while it is younger than this.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The background sampler's period, so windows fill without probes.
    #[serde(with = "humantime_serde")]
    pub sample_interval: Duration,
    pub memory: MemoryThresholds,
    pub latency: LatencyThresholds,
    pub hit_rate: HitRateThresholds,
    pub fragmentation: FragmentationThresholds,
    pub clients: ClientThresholds,
    pub replication: ReplicationThresholds,
    pub persistence: PersistenceThresholds,
    pub evictions: Toggle,
    pub connections: Toggle,
    pub slowlog: SlowlogThresholds,
    /// On a cluster node only; costs a CLUSTER INFO per check and the
    /// `+cluster|info` ACL permission.
    pub cluster: Toggle,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(1),
            sample_interval: Duration::from_secs(5),
            memory: MemoryThresholds::default(),
            latency: LatencyThresholds::default(),
            hit_rate: HitRateThresholds::default(),
            fragmentation: FragmentationThresholds::default(),
            clients: ClientThresholds::default(),
            replication: ReplicationThresholds::default(),
            persistence: PersistenceThresholds::default(),
            evictions: Toggle::default(),
            connections: Toggle::default(),
            slowlog: SlowlogThresholds::default(),
            cluster: Toggle::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryThresholds {
    pub enabled: bool,
    pub warn_ratio: Ratio,
    pub fail_ratio: Ratio,
    pub warn_no_maxmemory: bool,
    /// Judge `allkeys-*` caches by hit rate, not by how full they are.
    pub policy_aware: bool,
}

impl Default for MemoryThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_ratio: Ratio(0.80),
            fail_ratio: Ratio(0.95),
            warn_no_maxmemory: true,
            policy_aware: true,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyThresholds {
    #[serde(with = "humantime_serde")]
    pub warn_above: Duration,
}

impl Default for LatencyThresholds {
    fn default() -> Self {
        Self {
            warn_above: Duration::from_millis(100),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HitRateThresholds {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub min_lookups: u64,
    pub warn_below: Ratio,
    pub fail_below: Ratio,
}

impl Default for HitRateThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(300),
            min_lookups: 1000,
            warn_below: Ratio(0.90),
            fail_below: Ratio(0.70),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FragmentationThresholds {
    pub enabled: bool,
    pub warn_above: Factor,
    pub min_used_bytes: u64,
}

impl Default for FragmentationThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_above: Factor(1.5),
            min_used_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientThresholds {
    pub enabled: bool,
    pub warn_ratio: Ratio,
    pub blocked_warn_above: u64,
}

impl Default for ClientThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_ratio: Ratio(0.80),
            blocked_warn_above: 10,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationThresholds {
    pub enabled: bool,
    /// An idle replica's `master_last_io_seconds_ago` climbs to the
    /// primary's `repl-ping-replica-period` (10 s) before each ping: the
    /// bound sits above two periods and below `repl-timeout` (60 s).
    #[serde(with = "humantime_serde")]
    pub max_last_io: Duration,
    pub min_replicas: u32,
    #[serde(with = "humantime_serde")]
    pub max_replica_lag: Duration,
}

impl Default for ReplicationThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            max_last_io: Duration::from_secs(30),
            min_replicas: 0,
            max_replica_lag: Duration::from_secs(10),
        }
    }
}

/// A check with nothing to tune but whether it runs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistenceThresholds {
    pub enabled: bool,
    /// Warn (rdb_stale) when the last successful save is older than this
    /// while there are unsaved changes; 0 turns it off, as pure caches never save.
    #[serde(with = "humantime_serde")]
    pub max_rdb_age: Duration,
}

impl Default for PersistenceThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            max_rdb_age: Duration::ZERO,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlowlogThresholds {
    pub enabled: bool,
    /// Warn (slow_commands) when more slow-log entries than this were added
    /// within the window; 0 turns the check off, as it costs a SLOWLOG GET
    /// per check and the `+slowlog|get` ACL permission.
    pub warn_above: u64,
}

impl Default for SlowlogThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_above: 0,
        }
    }
}

impl SlowlogThresholds {
    /// Whether checks read the slow log at all.
    pub fn active(&self) -> bool {
        self.enabled && self.warn_above > 0
    }
}

impl Settings {
    /// Loads the layers: defaults, then a TOML file, then `REDIS_HEALTH_*` variables.
    ///
    /// The file is `path` if given, else `$REDIS_HEALTH_CONFIG`, else
    /// `config/default.toml` when it exists.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let named = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let mut figment = Figment::new();
        match named {
            Some(file) => {
                if !file.is_file() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("cannot read {}", file.display()),
                    ));
                }
                figment = figment.merge(Toml::file_exact(file));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        let figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__"));
        let settings: Settings = figment.extract().map_err(from_figment)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules that span several keys, which serde cannot express per field.
    fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("log.level", e.to_string()))?;
        let checks = &self.checks;
        if checks.memory.warn_ratio > checks.memory.fail_ratio {
            return Err(ConfigError::new(
                "checks.memory.warn_ratio",
                "must not be above checks.memory.fail_ratio",
            ));
        }
        if checks.hit_rate.warn_below < checks.hit_rate.fail_below {
            return Err(ConfigError::new(
                "checks.hit_rate.warn_below",
                "must not be below checks.hit_rate.fail_below",
            ));
        }
        for (key, value) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("server.shutdown_timeout", self.server.shutdown_timeout),
            ("redis.timeout", self.redis.timeout),
            ("checks.sample_interval", checks.sample_interval),
            ("checks.hit_rate.window", checks.hit_rate.window),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be longer than 0"));
            }
        }
        if let Some(file) = &self.redis.password_file {
            read_password_file(file)
                .map_err(|e| ConfigError::new("redis.password_file", e.to_string()))?;
        }
        if self.redis.url.tls {
            crate::tls::client_config(&self.redis.tls)
                .map_err(|e| ConfigError::new(e.key(), e.to_string()))?;
        } else if self.redis.tls.is_set() {
            return Err(ConfigError::new(
                "redis.tls",
                "set, but redis.url is not rediss://",
            ));
        }
        Ok(())
    }
}

/// Reads a password file, trimming the trailing newline editors and `echo` add.
fn read_password_file(path: &Path) -> std::io::Result<SecretString> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
    })?;
    Ok(SecretString::from(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// The password to use now: the file wins over the URL.
pub fn current_password(redis: &RedisSettings) -> std::io::Result<Option<SecretString>> {
    match &redis.password_file {
        Some(file) => read_password_file(file).map(Some),
        None => Ok(redis.url.password.clone()),
    }
}

/// Turns figment's error into one line naming the key.
fn from_figment(error: figment::Error) -> ConfigError {
    let error = error.into_iter().next().unwrap_or_else(|| {
        figment::Error::from(figment::error::Kind::Message("unknown error".into()))
    });
    let message = match &error.kind {
        figment::error::Kind::UnknownField(..) => "unknown key".to_owned(),
        kind => kind.to_string(),
    };
    let key = if error.path.is_empty() {
        "config".to_owned()
    } else {
        error.path.join(".")
    };
    let source = match &error.metadata {
        Some(meta) if meta.name.contains("environment") => {
            format!(
                " (from {ENV_PREFIX}{})",
                error.path.join("__").to_uppercase()
            )
        }
        Some(meta) => format!(
            " (from {})",
            meta.source
                .as_ref()
                .map_or(meta.name.to_string(), |s| s.to_string())
        ),
        None => String::new(),
    };
    ConfigError::new(&key, format!("{message}{source}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

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
    fn ratio_rejects_values_outside_zero_to_one() {
        assert!(Ratio::try_from(1.2).is_err());
        assert!(Ratio::try_from(-0.1).is_err());
        assert_eq!(Ratio::try_from(0.5).map(Ratio::get), Ok(0.5));
    }

    #[test]
    fn url_parses_user_password_and_database() {
        let url = RedisUrl::try_from("rediss://health:s%40cret@redis.local:6380/2".to_owned())
            .expect("valid url");
        assert!(url.tls);
        assert_eq!(url.host, "redis.local");
        assert_eq!(url.port, 6380);
        assert_eq!(url.username.as_deref(), Some("health"));
        assert_eq!(
            url.password.as_ref().map(|p| p.expose_secret().to_owned()),
            Some("s@cret".to_owned())
        );
        assert_eq!(url.database, Some(2));
    }

    #[test]
    fn url_debug_keeps_ipv6_brackets() {
        let url = RedisUrl::try_from("redis://[::1]:6380".to_owned()).expect("valid url");
        assert_eq!(url.host, "::1");
        assert_eq!(format!("{url:?}"), "redis://[::1]:6380");
    }

    #[test]
    fn url_debug_never_shows_the_password() {
        let url = RedisUrl::try_from("redis://:hunter2@localhost".to_owned()).expect("valid url");
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "redis://:[redacted]@localhost:6379");
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

    #[test]
    fn url_rejects_other_schemes_without_echoing_it() {
        let err =
            RedisUrl::try_from("http://user:hunter2@localhost".to_owned()).expect_err("rejected");
        assert!(err.contains("redis://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
