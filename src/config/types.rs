//! Value types for config keys with rules: once one is built, its value holds
//! the rule, so nothing downstream checks it again.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::verdict::Status;

/// A duration key's value, bounded by its type: at most `MAX_S` seconds and,
/// unless `ZERO_OK`, more than 0. The maxima refuse what no deployment means
/// (a unit typo, `u64::MAX` seconds) and keep every `Instant + duration` far
/// from overflow; the README lists them. Read and shown as humantime text
/// (`500ms`, `5m`, `14d`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Within<const ZERO_OK: bool, const MAX_S: u64>(Duration);

/// The longest bounds, in seconds, as the keys use them.
pub const MINUTE: u64 = 60;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;
pub const MONTH: u64 = 30 * DAY;
/// humantime's year (365.25 days), so it reads back as `1year`.
pub const YEAR: u64 = 31_557_600;

impl<const ZERO_OK: bool, const MAX_S: u64> Within<ZERO_OK, MAX_S> {
    /// A value known to be in range (a default); out of range it is clamped.
    pub const fn of(value: Duration) -> Self {
        let max = Duration::from_secs(MAX_S);
        if value.as_nanos() > max.as_nanos() {
            Self(max)
        } else {
            Self(value)
        }
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    /// The range this key allows, for its error message.
    fn refuse(value: Duration) -> Option<String> {
        let max = Duration::from_secs(MAX_S);
        if value > max {
            Some(format!(
                "must be at most {}",
                humantime::format_duration(max)
            ))
        } else if !ZERO_OK && value.is_zero() {
            Some("must be longer than 0".to_owned())
        } else {
            None
        }
    }
}

impl<const ZERO_OK: bool, const MAX_S: u64> TryFrom<Duration> for Within<ZERO_OK, MAX_S> {
    type Error = String;

    fn try_from(value: Duration) -> Result<Self, Self::Error> {
        match Self::refuse(value) {
            Some(why) => Err(why),
            None => Ok(Self(value)),
        }
    }
}

impl<const ZERO_OK: bool, const MAX_S: u64> fmt::Debug for Within<ZERO_OK, MAX_S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<const ZERO_OK: bool, const MAX_S: u64> Serialize for Within<ZERO_OK, MAX_S> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de, const ZERO_OK: bool, const MAX_S: u64> Deserialize<'de> for Within<ZERO_OK, MAX_S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(DurationVisitor::<ZERO_OK, MAX_S>)
    }
}

struct DurationVisitor<const ZERO_OK: bool, const MAX_S: u64>;

impl<const ZERO_OK: bool, const MAX_S: u64> serde::de::Visitor<'_>
    for DurationVisitor<ZERO_OK, MAX_S>
{
    type Value = Within<ZERO_OK, MAX_S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        let value = match humantime::parse_duration(text) {
            Ok(value) => value,
            // Too large to hold at all is beyond the bound too.
            Err(humantime::DurationError::NumberOverflow) => Duration::MAX,
            Err(_) => {
                return Err(E::custom(
                    "expected a duration such as 500ms, 10s, 5m or 14d",
                ));
            }
        };
        Within::try_from(value).map_err(E::custom)
    }
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

/// `host:port` addresses: a TOML list, or one comma-separated string as an
/// environment variable holds it (`REDIS_HEALTH_ROUTES__PRIMARY__SENTINELS=
/// a:26379,b:26379`). Each has a host and a port; none is repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "NamesInput", into = "Vec<String>")]
pub struct HostPorts(Vec<(String, u16)>);

impl HostPorts {
    pub fn get(&self) -> &[(String, u16)] {
        &self.0
    }
}

impl From<HostPorts> for Vec<String> {
    fn from(addrs: HostPorts) -> Self {
        addrs
            .0
            .into_iter()
            .map(|(host, port)| {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            })
            .collect()
    }
}

impl TryFrom<NamesInput> for HostPorts {
    type Error = &'static str;

    fn try_from(input: NamesInput) -> Result<Self, Self::Error> {
        let names = MasterNames::try_from(input)
            .map_err(|_| "an address is empty, holds whitespace or is repeated")?;
        let mut addrs = Vec::with_capacity(names.0.len());
        for name in names.0 {
            let (host, port) = name
                .rsplit_once(':')
                .ok_or("each address is host:port, e.g. 10.0.0.5:26379")?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or("a port is not a number from 1 to 65535")?;
            if host.is_empty() {
                return Err("each address is host:port, e.g. 10.0.0.5:26379");
            }
            addrs.push((host.to_owned(), port));
        }
        Ok(Self(addrs))
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

    pub fn info() -> Self {
        Self("info".into())
    }

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

/// A fraction within 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize, Serialize)]
#[serde(try_from = "f64")]
pub struct Ratio(f64);

impl Ratio {
    /// A default known to be a ratio; anything else is clamped into 0..=1.
    pub const fn of(value: f64) -> Self {
        Self(value.clamp(0.0, 1.0))
    }

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
    /// A default known to be positive.
    pub const fn of(value: f64) -> Self {
        Self(value)
    }

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

/// `server.listen`: an IP and port, or `localhost:PORT`, which binds
/// 127.0.0.1 only: one listener, on the loopback address every client and
/// the kubelet's exec/port-forward paths reach (a client that resolves
/// localhost to ::1 first falls back to 127.0.0.1). Any other host name is
/// refused rather than looked up: a listener must not move with DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Listen(SocketAddr);

impl Listen {
    pub const fn new(addr: SocketAddr) -> Self {
        Self(addr)
    }

    pub fn get(self) -> SocketAddr {
        self.0
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self(addr));
        }
        let localhost = text
            .rsplit_once(':')
            .filter(|(host, _)| host.eq_ignore_ascii_case("localhost"))
            .and_then(|(_, port)| port.parse::<u16>().ok());
        match localhost {
            Some(port) => Ok(Self(SocketAddr::from(([127, 0, 0, 1], port)))),
            None => Err(
                "must be an IP:port such as 127.0.0.1:8080 or [::]:8080, or localhost:PORT"
                    .to_owned(),
            ),
        }
    }
}

impl TryFrom<String> for Listen {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Listen> for String {
    fn from(listen: Listen) -> Self {
        listen.0.to_string()
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_an_ip_and_port_or_localhost() {
        let listen = |text: &str| text.parse::<Listen>().map(|l| l.get().to_string());
        assert_eq!(listen("[::]:8080").as_deref(), Ok("[::]:8080"));
        assert_eq!(listen("127.0.0.1:0").as_deref(), Ok("127.0.0.1:0"));
        assert_eq!(listen("LocalHost:9").as_deref(), Ok("127.0.0.1:9"));
        for bad in [
            "redis-health:8080",
            "localhost:",
            "localhost:70000",
            "[::1]",
            "",
        ] {
            assert!(listen(bad).is_err(), "{bad}");
        }
    }
    use figment::Figment;
    use figment::providers::{Format, Toml};

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
                .extract::<crate::checks::headroom::Headroom>()
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
        let mut settings = crate::config::Settings::default();
        settings.checks.headroom.limit_bytes = "1Gi".parse().ok();
        let dump = toml::to_string(&settings).expect("dump");
        assert!(dump.contains("limit_bytes = 1073741824"), "{dump}");
    }

    #[test]
    fn sentinel_addresses_are_host_and_port() {
        let parse = |input| HostPorts::try_from(input).map(|a| a.get().to_vec());
        assert_eq!(
            parse(NamesInput::Text("a:26379, [::1]:26380".into())),
            Ok(vec![("a".into(), 26379), ("::1".into(), 26380)])
        );
        assert_eq!(parse(NamesInput::Text(String::new())), Ok(Vec::new()));
        for bad in ["a", "a:0", "a:x", ":26379", "a:1,a:1"] {
            assert!(parse(NamesInput::Text(bad.into())).is_err(), "{bad}");
        }
        let shown: Vec<String> = HostPorts(vec![("::1".into(), 1)]).into();
        assert_eq!(shown, ["[::1]:1"]);
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
    fn warn_codes_are_2xx_or_429() {
        for code in [200, 204, 299, 429] {
            assert_eq!(WarnCode::try_from(code).map(WarnCode::get), Ok(code as u16));
        }
        for code in [0, 199, 300, 404, 503, 65_536 + 200, u64::MAX] {
            assert!(WarnCode::try_from(code).is_err(), "{code}");
        }
    }

    #[test]
    fn durations_are_bounded_by_their_type() {
        type Timeout = Within<false, MINUTE>;
        type Off = Within<true, DAY>;
        let parse = |text: &str| -> Result<Duration, String> {
            serde_json::from_value::<Timeout>(serde_json::json!(text))
                .map(Within::get)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0s"), Err("must be longer than 0".into()));
        assert_eq!(parse("61s"), Err("must be at most 1m".into()));
        assert_eq!(
            parse("18446744073709551615s"),
            Err("must be at most 1m".into())
        );
        assert!(parse("soon").is_err_and(|e| e.contains("a duration such as")));
        assert_eq!(
            serde_json::from_value::<Off>(serde_json::json!("0s"))
                .map(Within::get)
                .ok(),
            Some(Duration::ZERO)
        );
        assert_eq!(
            serde_json::to_value(Timeout::of(Duration::from_millis(1500))).ok(),
            Some(serde_json::json!("1s 500ms"))
        );
    }
}
