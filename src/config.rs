//! Configuration: typed settings loaded from defaults, an optional TOML file and
//! `REDIS_HEALTH_*` environment variables.
//!
//! Values with rules are domain types ([`Ratio`], [`RedisUrl`], [`SecretString`]),
//! so once [`load`] returns, nothing downstream checks them again.

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::error::{Actual, Kind};
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};
use secrecy::{ExposeSecret, SecretString};
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
    /// The `sentinel` section as the layers give it; [`Settings::load`]
    /// copies it into `checks.sentinel`, which is what runs.
    pub sentinel: SentinelSettings,
}

/// `sentinel`: what the sentinel check judges on a Sentinel process.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentinelSettings {
    /// The masters to judge; empty judges every master the Sentinel monitors.
    pub masters: MasterNames,
}

/// Master names: a TOML list, or one comma-separated string as an environment
/// variable holds it (`REDIS_HEALTH_SENTINEL__MASTERS=a,b`). Names are
/// non-empty, without whitespace and not repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "NamesInput", into = "Vec<String>")]
pub struct MasterNames(Vec<String>);

impl MasterNames {
    pub fn get(&self) -> &[String] {
        &self.0
    }
}

impl From<MasterNames> for Vec<String> {
    fn from(names: MasterNames) -> Self {
        names.0
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NamesInput {
    List(Vec<String>),
    Text(String),
}

impl TryFrom<NamesInput> for MasterNames {
    type Error = &'static str;

    fn try_from(input: NamesInput) -> Result<Self, Self::Error> {
        let names: Vec<String> = match input {
            NamesInput::List(names) => names,
            NamesInput::Text(text) if text.trim().is_empty() => Vec::new(),
            NamesInput::Text(text) => text.split(',').map(|n| n.trim().to_owned()).collect(),
        };
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err("a master name is empty or holds whitespace");
            }
            if names[..index].contains(name) {
                return Err("a master name is repeated");
            }
        }
        Ok(Self(names))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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
    pub level: LogLevel,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: LogLevel("info".into()),
            format: LogFormat::Text,
        }
    }
}

/// `log.level`: a level name, or filter directives that each name a level
/// (`info,redis_health=debug`). A bare word is refused: as a filter it would
/// mean "only the target of that name" and silence every line we log.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub struct LogLevel(String);

impl LogLevel {
    const NAMES: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

    /// What `check` logs: its body on stdout says the rest.
    pub fn errors_only() -> Self {
        Self("error".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let names_a_level = |directive: &str| {
            let level = directive
                .rsplit_once('=')
                .map_or(directive, |(_, level)| level);
            Self::NAMES
                .iter()
                .any(|name| name.eq_ignore_ascii_case(level.trim()))
        };
        if text.split(',').all(names_a_level)
            && tracing_subscriber::EnvFilter::try_new(&text).is_ok()
        {
            Ok(Self(text))
        } else {
            Err(
                "must be one of trace, debug, info, warn, error, off, or target=level directives"
                    .into(),
            )
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
    /// Bounds the check's commands (PING and INFO, in one round trip).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Bounds a (re)connect: TCP, TLS handshake and fred's setup commands,
    /// which are several round trips and would not fit `timeout` on a slow link.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Used only with a `rediss://` URL.
    pub tls: TlsSettings,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: RedisUrl::local(),
            password_file: None,
            timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
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

/// A parsed `redis://`, `rediss://` or `unix://` URL. Debug never prints the
/// password.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RedisUrl {
    pub tls: bool,
    pub address: Address,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Accepted for familiar URLs, never selected: PING and INFO are server-wide.
    pub database: Option<u8>,
}

/// Where Redis listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp {
        host: String,
        port: u16,
    },
    /// A Unix socket (`unix:///run/redis/redis.sock`).
    Unix(PathBuf),
}

impl RedisUrl {
    fn local() -> Self {
        Self {
            tls: false,
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 6379,
            },
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
        let scheme = match (&self.address, self.tls) {
            (Address::Unix(_), _) => "unix",
            (Address::Tcp { .. }, true) => "rediss",
            (Address::Tcp { .. }, false) => "redis",
        };
        write!(f, "{scheme}://")?;
        match (&self.username, &self.password) {
            (Some(user), Some(_)) => write!(f, "{user}:[redacted]@")?,
            (Some(user), None) => write!(f, "{user}@")?,
            (None, Some(_)) => write!(f, ":[redacted]@")?,
            (None, None) => {}
        }
        match &self.address {
            Address::Unix(path) => write!(f, "{}", path.display())?,
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}")?, // IPv6
            Address::Tcp { host, port } => write!(f, "{host}:{port}")?,
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
        if let Some(rest) = text.strip_prefix("unix://") {
            return unix_url(rest);
        }
        // The url crate's errors never echo the input, so no password leaks here.
        let url = url::Url::parse(&text).map_err(|e| format!("not a URL ({e})"))?;
        let tls = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(format!(
                    "scheme must be redis://, rediss:// or unix://, not {other}://"
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
        let (username, password) = credentials(url.username(), url.password())?;
        let database = match url.path().trim_start_matches('/') {
            "" => None,
            db => Some(
                db.parse::<u8>()
                    .map_err(|_| format!("database must be a number 0-255, not {db:?}"))?,
            ),
        };
        Ok(Self {
            tls,
            address: Address::Tcp {
                host,
                port: url.port().unwrap_or(6379),
            },
            username,
            password,
            database,
        })
    }
}

/// `unix://[user[:password]@]/path/to/redis.sock`, read by hand: the path
/// takes the place of a host, which URL parsers insist on when there is a user.
fn unix_url(rest: &str) -> Result<RedisUrl, String> {
    let slash = rest
        .find('/')
        .ok_or("a unix:// URL needs an absolute socket path, e.g. unix:///run/redis/redis.sock")?;
    let (authority, path) = rest.split_at(slash);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    if !matches!(host, "" | "localhost") {
        return Err("a unix:// URL names no host: unix://[user@]/path/to/redis.sock".into());
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((user, password)) => credentials(user, Some(password))?,
            None => credentials(info, None)?,
        },
    };
    let path = percent_decode(path).map_err(|_| "the socket path is not UTF-8".to_owned())?;
    Ok(RedisUrl {
        tls: false,
        address: Address::Unix(PathBuf::from(path)),
        username,
        password,
        database: None,
    })
}

/// The URL's user and password, percent-decoded only: a `+` stays a `+`, as
/// redis-cli and other clients read it.
fn credentials(
    user: &str,
    password: Option<&str>,
) -> Result<(Option<String>, Option<SecretString>), String> {
    let username = Some(user)
        .filter(|u| !u.is_empty())
        .map(percent_decode)
        .transpose()
        .map_err(|_| "the URL's user is not UTF-8 once percent-decoded".to_owned())?;
    let password = password
        .map(percent_decode)
        .transpose()
        .map_err(|_| "the URL's password is not UTF-8 once percent-decoded".to_owned())?
        .map(SecretString::from);
    Ok((username, password))
}

fn percent_decode(text: &str) -> Result<String, std::str::Utf8Error> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
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
    pub sentinel: RouteFailure,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFailure {
    pub fail_at: FailAt,
    /// The code answered while the route's status is warn and below
    /// `fail_at`.
    pub warn_code: WarnCode,
}

/// An HTTP code for a route in warn: a 2xx, or 429, which Consul reads as
/// its "warning" state (every other code Consul reads as critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "u64", into = "u16")]
pub struct WarnCode(u16);

impl WarnCode {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for WarnCode {
    fn default() -> Self {
        Self(200)
    }
}

impl From<WarnCode> for u16 {
    fn from(code: WarnCode) -> Self {
        code.0
    }
}

impl TryFrom<u64> for WarnCode {
    type Error = String;

    fn try_from(code: u64) -> Result<Self, Self::Error> {
        match u16::try_from(code) {
            Ok(code @ (200..=299 | 429)) => Ok(Self(code)),
            _ => Err("must be a 2xx code or 429".to_owned()),
        }
    }
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
    pub headroom: HeadroomThresholds,
    /// On a cluster node only; costs a CLUSTER INFO per check and the
    /// `+cluster|info` ACL permission.
    pub cluster: Toggle,
    /// The top-level `sentinel` section, copied here by [`Settings::load`]
    /// so the sentinel check reads it as every check reads its thresholds.
    #[serde(skip)]
    pub sentinel: SentinelSettings,
    /// On `rediss://` connections only: certificate expiry.
    pub tls: TlsThresholds,
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
            headroom: HeadroomThresholds::default(),
            cluster: Toggle::default(),
            sentinel: SentinelSettings::default(),
            tls: TlsThresholds::default(),
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsThresholds {
    pub enabled: bool,
    /// Warn (tls_cert_expiring) when the server's or the client's
    /// certificate expires within this.
    #[serde(with = "humantime_serde")]
    pub warn_before: Duration,
}

impl Default for TlsThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_before: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

impl SlowlogThresholds {
    /// Whether checks read the slow log at all.
    pub fn active(&self) -> bool {
        self.enabled && self.warn_above > 0
    }
}

/// `checks.headroom`: RSS against the memory limit the kernel enforces.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadroomThresholds {
    pub enabled: bool,
    /// The container's memory limit; unset, INFO `total_system_memory`.
    pub limit_bytes: Option<MemoryLimit>,
    pub warn_ratio: Ratio,
    pub fail_ratio: Ratio,
}

impl Default for HeadroomThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            limit_bytes: None,
            warn_ratio: Ratio(0.80),
            fail_ratio: Ratio(0.90),
        }
    }
}

/// A memory limit in bytes, more than 0, read from a byte count (what the
/// Kubernetes Downward API gives for `limits.memory`) or a Kubernetes
/// quantity such as `512Mi` or `1.5Gi`. Shown in the config dump as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryLimit(NonZeroU64);

impl MemoryLimit {
    pub fn bytes(self) -> u64 {
        self.0.get()
    }
}

/// Why a memory quantity was refused; never quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("not a byte count or a quantity such as 512Mi, 1Gi or 2G")]
    Malformed,
    #[error("must not be negative")]
    Negative,
    #[error("must be more than 0 bytes")]
    Zero,
    /// The config dump is TOML, whose integers stop at 2^63 - 1.
    #[error("must be less than 8Ei (2^63 bytes)")]
    TooLarge,
}

/// Kubernetes quantity suffixes and what each multiplies by.
const QUANTITY_SUFFIXES: [(&str, u128); 13] = [
    ("", 1),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

impl std::str::FromStr for MemoryLimit {
    type Err = QuantityError;

    /// Digits, an optional fraction, an optional suffix. A fraction of a
    /// byte rounds up, as Kubernetes rounds a memory quantity.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with('-') {
            return Err(QuantityError::Negative);
        }
        let number_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_end);
        let multiplier = QUANTITY_SUFFIXES
            .iter()
            .find_map(|(name, factor)| (*name == suffix).then_some(*factor))
            .ok_or(QuantityError::Malformed)?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(QuantityError::Malformed);
        }
        // Exact in integers: digits * multiplier / 10^(fraction digits).
        let digits = format!("{whole}{fraction}");
        // Only digits are left, so parsing fails on overflow alone.
        let scaled = digits
            .parse::<u128>()
            .map_err(|_| QuantityError::TooLarge)?
            .checked_mul(multiplier)
            .ok_or(QuantityError::TooLarge)?;
        let divisor = u32::try_from(fraction.len())
            .ok()
            .and_then(|places| 10u128.checked_pow(places))
            .ok_or(QuantityError::TooLarge)?;
        let bytes = u64::try_from(scaled.div_ceil(divisor))
            .ok()
            .filter(|bytes| i64::try_from(*bytes).is_ok())
            .ok_or(QuantityError::TooLarge)?;
        NonZeroU64::new(bytes).map(Self).ok_or(QuantityError::Zero)
    }
}

impl<'de> Deserialize<'de> for MemoryLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemoryLimitVisitor)
    }
}

/// Takes an integer (TOML, or an environment variable of digits) or a string.
struct MemoryLimitVisitor;

impl serde::de::Visitor<'_> for MemoryLimitVisitor {
    type Value = MemoryLimit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte count or a quantity such as 512Mi")
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
        NonZeroU64::new(value)
            .map(MemoryLimit)
            .ok_or_else(|| E::custom(QuantityError::Zero))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(QuantityError::Negative)),
        }
    }

    /// `true` from an environment variable arrives as a bool.
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(QuantityError::Malformed))
    }

    /// `1.5` from an environment variable arrives as a float; its decimal
    /// text is judged like any other quantity.
    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        text.parse().map_err(E::custom)
    }
}

/// The config file [`Settings::load`] reads for `path`: `path`, else
/// `$REDIS_HEALTH_CONFIG`, else `config/default.toml` (which may not exist).
pub fn config_file(path: Option<&Path>) -> PathBuf {
    path.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE))
}

/// The range one duration key must fall in.
pub struct DurationBound {
    pub key: &'static str,
    /// `Duration::ZERO` where 0 means "off" or "any", else [`NONZERO`].
    pub min: Duration,
    pub max: Duration,
    value: fn(&Settings) -> Duration,
}

/// The shortest duration that is not 0.
pub const NONZERO: Duration = Duration::from_nanos(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MONTH: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// humantime's year (365.25 days), so it reads back as `1year`.
const YEAR: Duration = Duration::from_secs(31_557_600);

const fn bound(
    key: &'static str,
    min: Duration,
    max: Duration,
    value: fn(&Settings) -> Duration,
) -> DurationBound {
    DurationBound {
        key,
        min,
        max,
        value,
    }
}

/// Every duration key and its bounds, one line each (a unit test fails for a
/// duration key missing here). The maxima refuse what no deployment means
/// (a unit typo, `u64::MAX` seconds) and keep every `Instant + duration`
/// far from overflow; the README lists them.
#[rustfmt::skip]
pub const DURATION_BOUNDS: &[DurationBound] = &[
    bound("server.header_read_timeout", NONZERO, HOUR, |s| s.server.header_read_timeout),
    bound("server.shutdown_timeout", NONZERO, HOUR, |s| s.server.shutdown_timeout),
    bound("redis.timeout", NONZERO, MINUTE, |s| s.redis.timeout),
    bound("redis.connect_timeout", NONZERO, MINUTE, |s| s.redis.connect_timeout),
    bound("checks.max_age", NONZERO, HOUR, |s| s.checks.max_age),
    bound("checks.sample_interval", NONZERO, HOUR, |s| s.checks.sample_interval),
    bound("checks.latency.warn_above", Duration::ZERO, MINUTE, |s| s.checks.latency.warn_above),
    bound("checks.hit_rate.window", NONZERO, DAY, |s| s.checks.hit_rate.window),
    bound("checks.replication.max_last_io", Duration::ZERO, DAY, |s| s.checks.replication.max_last_io),
    bound("checks.replication.max_replica_lag", Duration::ZERO, DAY, |s| s.checks.replication.max_replica_lag),
    bound("checks.persistence.max_rdb_age", Duration::ZERO, MONTH, |s| s.checks.persistence.max_rdb_age),
    bound("checks.tls.warn_before", NONZERO, YEAR, |s| s.checks.tls.warn_before),
];

impl DurationBound {
    fn check(&self, settings: &Settings) -> Result<(), ConfigError> {
        let value = (self.value)(settings);
        if value < self.min {
            Err(ConfigError::new(self.key, "must be longer than 0"))
        } else if value > self.max {
            Err(ConfigError::new(
                self.key,
                format!("must be at most {}", humantime::format_duration(self.max)),
            ))
        } else {
            Ok(())
        }
    }
}

/// The config file, read and checked to be TOML before figment sees it, so
/// no error quotes a line of it (a line may hold a password).
struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads the file (`/dev/null` too); each failure is one line naming it.
    fn read(path: PathBuf) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(&path).map_err(|e| {
            ConfigError::new(&path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigError::new(
                &path.display().to_string(),
                format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        if let Err(error) = toml::from_str::<toml::Table>(&text) {
            let at = error.span().map_or(0, |span| span.start).min(text.len());
            let before = text.get(..at).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(ConfigError::new(
                &format!("{}:{line}:{column}", path.display()),
                "not valid TOML",
            ));
        }
        Ok(Self { path, text })
    }

    /// The default file: absent is fine, anything else there must be readable.
    fn read_if_present(path: &Path) -> Result<Option<Self>, ConfigError> {
        match std::fs::symlink_metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => Self::read(path.to_path_buf()).map(Some),
        }
    }
}

impl Provider for ConfigFile {
    fn metadata(&self) -> Metadata {
        Metadata::from("TOML file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

/// Whether `name`, a variable's name after `REDIS_HEALTH_`, can be a key:
/// every key is at least two levels deep. Other names, such as the
/// `REDIS_HEALTH_PORT` Kubernetes injects for a Service named redis-health,
/// and `REDIS_HEALTH_CONFIG`, are not config keys.
fn is_key_name(name: &str) -> bool {
    name.contains("__")
}

/// The `REDIS_HEALTH_*` variables set that [`Settings::load`] ignored.
pub fn ignored_env_names() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.split_at_checked(ENV_PREFIX.len())
                .is_some_and(|(prefix, rest)| {
                    prefix.eq_ignore_ascii_case(ENV_PREFIX)
                        && !rest.eq_ignore_ascii_case("config")
                        && !is_key_name(rest)
                })
        })
        .collect()
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
        let file = match named {
            Some(file) => Some(ConfigFile::read(file)?),
            None => ConfigFile::read_if_present(Path::new(DEFAULT_CONFIG_FILE))?,
        };
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(file);
        }
        let env = Env::prefixed(ENV_PREFIX).filter(|name| is_key_name(name.as_str()));
        let figment = figment.merge(env.split("__"));
        let mut settings: Settings = figment.extract().map_err(from_figment)?;
        settings.validate()?;
        settings.checks.sentinel = settings.sentinel.clone();
        Ok(settings)
    }

    /// Defaults overlaid with `text`, a TOML document, validated as [`Self::load`]
    /// validates a file, but reading no file and no environment: what
    /// in-process callers (the tests) build settings with.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut settings: Settings = Figment::from(Toml::string(text))
            .extract()
            .map_err(from_figment)?;
        settings.validate()?;
        settings.checks.sentinel = settings.sentinel.clone();
        Ok(settings)
    }

    /// Rules that span several keys, which serde cannot express per field.
    fn validate(&self) -> Result<(), ConfigError> {
        let checks = &self.checks;
        if checks.memory.warn_ratio > checks.memory.fail_ratio {
            return Err(ConfigError::new(
                "checks.memory.warn_ratio",
                "must not be above checks.memory.fail_ratio",
            ));
        }
        if checks.headroom.warn_ratio > checks.headroom.fail_ratio {
            return Err(ConfigError::new(
                "checks.headroom.warn_ratio",
                "must not be above checks.headroom.fail_ratio",
            ));
        }
        if checks.hit_rate.warn_below < checks.hit_rate.fail_below {
            return Err(ConfigError::new(
                "checks.hit_rate.warn_below",
                "must not be below checks.hit_rate.fail_below",
            ));
        }
        for bound in DURATION_BOUNDS {
            bound.check(self)?;
        }
        if let Some(file) = &self.redis.password_file {
            read_password_file(file)
                .map_err(|e| ConfigError::new("redis.password_file", e.to_string()))?;
        }
        if self.redis.url.tls {
            crate::tls::client_config(&self.redis.tls)
                .map(|_| ())
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

/// Reads a password file, trimming the trailing newline editors and `echo`
/// add. An empty file means no password (systemd's empty credential
/// fallback, an unset Secret key).
fn read_password_file(path: &Path) -> std::io::Result<Option<SecretString>> {
    // The error names no path: a password pasted where its file belongs
    // would otherwise be printed.
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read the file: {e}")))?;
    let password = text.trim_end_matches(['\r', '\n']);
    Ok((!password.is_empty()).then(|| SecretString::from(password.to_owned())))
}

/// The password to use now: the file wins over the URL.
pub fn current_password(redis: &RedisSettings) -> std::io::Result<Option<SecretString>> {
    match &redis.password_file {
        Some(file) => read_password_file(file),
        None => Ok(redis.url.password.clone()),
    }
}

impl Settings {
    /// The keys whose values differ from `other`'s, dotted
    /// (`checks.memory.warn_ratio`), for a reload's log line: names only,
    /// never a value. A new password in `redis.url` shows as `redis.url`.
    pub fn changed_keys(&self, other: &Settings) -> Vec<String> {
        let (mine, theirs) = (flatten(self), flatten(other));
        let mut keys: Vec<String> = mine
            .iter()
            .filter(|(key, value)| theirs.get(*key) != Some(value))
            .map(|(key, _)| key.clone())
            .chain(
                theirs
                    .keys()
                    .filter(|key| !mine.contains_key(*key))
                    .cloned(),
            )
            .collect();
        let password = |s: &Settings| {
            s.redis
                .url
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
        };
        if password(self) != password(other) && !keys.iter().any(|k| k == "redis.url") {
            keys.push("redis.url".to_owned());
        }
        keys.sort();
        keys
    }
}

/// Keys a running process cannot change: the listener, connection limits
/// and the log format are set up once, at start.
pub fn needs_restart(key: &str) -> bool {
    key.starts_with("server.") || key == "log.format"
}

/// Every leaf of the settings as `dotted.key -> value`, as the config dump
/// shows them (the URL's password redacted). JSON, not TOML, so no integer
/// is out of range.
fn flatten(settings: &Settings) -> std::collections::BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        value: serde_json::Value,
        into: &mut std::collections::BTreeMap<String, serde_json::Value>,
    ) {
        match value {
            serde_json::Value::Object(table) => {
                for (key, value) in table {
                    let key = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&key, value, into);
                }
            }
            leaf => {
                into.insert(prefix.to_owned(), leaf);
            }
        }
    }
    let mut leaves = std::collections::BTreeMap::new();
    if let Ok(value) = serde_json::to_value(settings) {
        walk("", value, &mut leaves);
    }
    leaves
}

/// Turns figment's error into one line naming the key.
fn from_figment(error: figment::Error) -> ConfigError {
    let error = error.into_iter().next().unwrap_or_else(|| {
        figment::Error::from(figment::error::Kind::Message("unknown error".into()))
    });
    // serde's own messages quote the value, which may be a password: these
    // name the expected type only, and nothing spans two lines.
    let message = match &error.kind {
        Kind::UnknownField(..) => "unknown key".to_owned(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let expected = if expected.starts_with("struct ") {
                "a table of keys"
            } else {
                expected
            };
            format!("expected {expected}, found {}", type_name(actual))
        }
        Kind::UnknownVariant(_, expected) => format!("must be one of {}", expected.join(", ")),
        kind => kind
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
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

/// What a value is, never what it holds.
fn type_name(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        _ => "another type",
    }
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

    /// Every key whose default prints as a duration, with its dotted path.
    fn duration_keys(table: &toml::Table, prefix: &str, found: &mut Vec<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            match value {
                toml::Value::Table(inner) => duration_keys(inner, &format!("{path}."), found),
                toml::Value::String(text) if humantime::parse_duration(text).is_ok() => {
                    found.push(path)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn every_duration_key_is_bounded_and_its_default_within_bounds() {
        let defaults = toml::Table::try_from(Settings::default()).expect("defaults serialise");
        let mut keys = Vec::new();
        duration_keys(&defaults, "", &mut keys);
        let mut bounded: Vec<String> = DURATION_BOUNDS.iter().map(|b| b.key.to_owned()).collect();
        keys.sort();
        bounded.sort();
        assert_eq!(keys, bounded, "add the duration key to DURATION_BOUNDS");
        let defaults = Settings::default();
        for bound in DURATION_BOUNDS {
            assert!(bound.check(&defaults).is_ok(), "{}", bound.key);
            assert!(bound.min <= bound.max, "{}", bound.key);
        }
    }

    #[test]
    fn log_level_refuses_a_bare_word_that_names_no_level() {
        assert!(LogLevel::try_from("nonsense".to_owned()).is_err());
        assert!(LogLevel::try_from("info,nonsense=trace".to_owned()).is_ok());
        assert!(LogLevel::try_from("Warn".to_owned()).is_ok());
    }

    #[test]
    fn ratio_rejects_values_outside_zero_to_one() {
        assert!(Ratio::try_from(1.2).is_err());
        assert!(Ratio::try_from(-0.1).is_err());
        assert_eq!(Ratio::try_from(0.5).map(Ratio::get), Ok(0.5));
    }

    fn limit(text: &str) -> Result<u64, QuantityError> {
        text.parse::<MemoryLimit>().map(MemoryLimit::bytes)
    }

    #[test]
    fn memory_limit_reads_every_quantity_suffix() {
        for (text, bytes) in [
            ("536870912", 536_870_912),
            ("1Ki", 1 << 10),
            ("512Mi", 512 << 20),
            ("1Gi", 1 << 30),
            ("2Ti", 2 << 40),
            ("1Pi", 1 << 50),
            ("3Ei", 3 << 60),
            ("1k", 1_000),
            ("64M", 64_000_000),
            ("2G", 2_000_000_000),
            ("1T", 1_000_000_000_000),
            ("1P", 1_000_000_000_000_000),
            ("5E", 5_000_000_000_000_000_000),
        ] {
            assert_eq!(limit(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn memory_limit_reads_fractions_rounding_up_to_a_byte() {
        assert_eq!(limit("1.5Gi"), Ok(1_610_612_736));
        assert_eq!(limit("0.5Ki"), Ok(512));
        assert_eq!(limit("2.25G"), Ok(2_250_000_000));
        assert_eq!(limit("1.1Ki"), Ok(1127), "1126.4 rounds up");
        assert_eq!(limit("0.1"), Ok(1));
        assert_eq!(limit("007Mi"), Ok(7 << 20));
    }

    #[test]
    fn memory_limit_refuses_overflow_without_panicking() {
        assert_eq!(limit("9223372036854775807"), Ok(i64::MAX as u64));
        for text in [
            "9223372036854775808",
            "8Ei",
            "18446744073709551615",
            "18446744073709551616",
            "16Ei",
            "18.5E",
            "99999999999999999999999999999999999999999999Ei",
        ] {
            assert_eq!(limit(text), Err(QuantityError::TooLarge), "{text}");
        }
        assert_eq!(limit("7.99Ei"), Ok(9_211_842_821_808_707_339));
    }

    #[test]
    fn memory_limit_refuses_zero_negatives_and_other_text() {
        for zero in ["0", "0Gi", "0.0", "000"] {
            assert_eq!(limit(zero), Err(QuantityError::Zero), "{zero}");
        }
        for negative in ["-1", "-512Mi", "-0.5Gi"] {
            assert_eq!(limit(negative), Err(QuantityError::Negative), "{negative}");
        }
        for junk in [
            "", "lots", "Gi", ".", "1..2", "1.2.3", "1 Gi", " 1Gi", "1gi", "1mi", "1K", "1Gib",
            "1e9", "+1", "1m", "NaN", "inf", "1.5.Gi",
        ] {
            assert_eq!(limit(junk), Err(QuantityError::Malformed), "{junk:?}");
        }
    }

    #[test]
    fn memory_limit_deserialises_from_integers_and_strings_and_dumps_bytes() {
        let from = |toml: &str| {
            Figment::from(Toml::string(toml))
                .extract::<HeadroomThresholds>()
                .map(|t| t.limit_bytes.map(MemoryLimit::bytes))
                .map_err(|e| e.to_string())
        };
        assert_eq!(from("limit_bytes = 536870912"), Ok(Some(536_870_912)));
        assert_eq!(from("limit_bytes = \"512Mi\""), Ok(Some(536_870_912)));
        assert_eq!(from("limit_bytes = \"536870912\""), Ok(Some(536_870_912)));
        assert_eq!(from(""), Ok(None));
        for bad in [
            "limit_bytes = -5",
            "limit_bytes = 0",
            "limit_bytes = \"lots\"",
        ] {
            let err = from(bad).expect_err(bad);
            assert!(
                !err.contains("lots") && !err.contains("-5") && !err.contains("true"),
                "{err}"
            );
        }
        let mut settings = Settings::default();
        settings.checks.headroom.limit_bytes = "1Gi".parse().ok();
        let dump = toml::to_string(&settings).expect("dump");
        assert!(dump.contains("limit_bytes = 1073741824"), "{dump}");
    }

    #[test]
    fn url_parses_user_password_and_database() {
        let url = RedisUrl::try_from("rediss://health:s%40cret@redis.local:6380/2".to_owned())
            .expect("valid url");
        assert!(url.tls);
        assert_eq!(
            url.address,
            Address::Tcp {
                host: "redis.local".into(),
                port: 6380
            }
        );
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
        assert!(matches!(&url.address, Address::Tcp { host, .. } if host == "::1"));
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
    fn master_names_come_as_a_list_or_comma_separated() {
        let parse = |input| MasterNames::try_from(input).map(|n| n.get().to_vec());
        let names = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(parse(NamesInput::Text("a, b".into())), Ok(names.clone()));
        assert_eq!(parse(NamesInput::List(names.clone())), Ok(names));
        assert_eq!(parse(NamesInput::Text(" ".into())), Ok(Vec::new()));
        assert!(parse(NamesInput::Text("a,,b".into())).is_err());
        assert!(parse(NamesInput::Text("a,a".into())).is_err());
        assert!(parse(NamesInput::List(vec!["my master".into()])).is_err());
    }

    #[test]
    fn userinfo_is_percent_decoded_only() {
        let url = RedisUrl::try_from("redis://pl+us:pa+ss%25%40%3A@localhost".to_owned())
            .expect("valid url");
        assert_eq!(url.username.as_deref(), Some("pl+us"));
        assert_eq!(
            url.password.as_ref().map(|p| p.expose_secret().to_owned()),
            Some("pa+ss%@:".to_owned())
        );
    }

    #[test]
    fn unix_urls_hold_a_path_and_maybe_a_user_and_password() {
        let url = RedisUrl::try_from("unix:///run/redis/redis.sock".to_owned()).expect("valid");
        assert_eq!(url.address, Address::Unix("/run/redis/redis.sock".into()));
        assert_eq!(url.username, None);
        let url =
            RedisUrl::try_from("unix://health:p%40+w@/run/redis.sock".to_owned()).expect("valid");
        assert_eq!(url.address, Address::Unix("/run/redis.sock".into()));
        assert_eq!(url.username.as_deref(), Some("health"));
        assert_eq!(
            url.password.as_ref().map(|p| p.expose_secret().to_owned()),
            Some("p@+w".to_owned())
        );
        assert_eq!(
            format!("{url:?}"),
            "unix://health:[redacted]@/run/redis.sock"
        );
        assert!(RedisUrl::try_from("unix://relative.sock".to_owned()).is_err());
        assert!(RedisUrl::try_from("unix://host/x.sock".to_owned()).is_err());
    }

    #[test]
    fn warn_codes_are_2xx_or_429() {
        for code in [200, 204, 299, 429] {
            assert_eq!(WarnCode::try_from(code).map(WarnCode::get), Ok(code as u16));
        }
        for code in [0, 199, 300, 404, 503, 65_536 + 200, u64::MAX] {
            assert!(WarnCode::try_from(code).is_err(), "{code}");
        }
    }

    #[test]
    fn changed_keys_name_each_leaf_and_never_a_value() {
        let before = Settings::default();
        let mut after = Settings::default();
        after.checks.memory.warn_ratio = Ratio(0.5);
        after.server.max_connections = NonZeroU32::MIN;
        after.redis.url =
            RedisUrl::try_from("redis://:hunter2@127.0.0.1:6379".to_owned()).expect("valid url");
        let changed = before.changed_keys(&after);
        assert_eq!(
            changed,
            [
                "checks.memory.warn_ratio",
                "redis.url",
                "server.max_connections"
            ]
        );
        assert!(!changed.concat().contains("hunter2"));
        assert!(before.changed_keys(&Settings::default()).is_empty());
        // A new password alone, redacted alike in both dumps, still shows.
        let mut rotated = Settings::default();
        rotated.redis.url =
            RedisUrl::try_from("redis://:hunter3@127.0.0.1:6379".to_owned()).expect("valid url");
        assert_eq!(
            after.changed_keys(&rotated),
            [
                "checks.memory.warn_ratio",
                "redis.url",
                "server.max_connections"
            ]
        );
        let mut same = Settings::default();
        same.redis.url =
            RedisUrl::try_from("redis://:hunter2@127.0.0.1:6379".to_owned()).expect("valid url");
        assert_eq!(same.changed_keys(&rotated), ["redis.url"]);
        assert!(needs_restart("server.max_connections"));
        assert!(needs_restart("log.format"));
        assert!(!needs_restart("log.level"));
        assert!(!needs_restart("checks.memory.warn_ratio"));
    }

    #[test]
    fn durations_take_days() {
        let settings: Settings = Figment::from(Toml::string(
            "[checks.tls]\nwarn_before = \"14d\"\n[redis]\nconnect_timeout = \"2s\"",
        ))
        .extract()
        .expect("parses");
        assert_eq!(
            settings.checks.tls.warn_before,
            Duration::from_secs(14 * 86400)
        );
        assert_eq!(settings.redis.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn url_rejects_other_schemes_without_echoing_it() {
        let err =
            RedisUrl::try_from("http://user:hunter2@localhost".to_owned()).expect_err("rejected");
        assert!(err.contains("redis://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
