//! Loading: defaults, then one TOML file, then `REDIS_HEALTH_*` variables,
//! validated, with every failure said in one line that names the key and
//! quotes no value.

use std::path::{Path, PathBuf};

use figment::error::{Actual, Kind};
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::{ConfigError, Settings};

/// Environment variable naming the config file (same as `--config`).
const CONFIG_ENV: &str = "REDIS_HEALTH_CONFIG";
/// Prefix of the environment variables that override config keys.
const ENV_PREFIX: &str = "REDIS_HEALTH_";

/// Which config file is read, decided here only: `--config`, else
/// `$REDIS_HEALTH_CONFIG`, else none (defaults and `REDIS_HEALTH_*` only).
/// Never a file found by looking around: one in the working directory
/// would be another program's as often as ours. The package's units name
/// theirs (`--config /etc/redis-health/<instance>.toml`).
pub fn config_file(path: Option<&Path>) -> Option<PathBuf> {
    path.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from))
}

/// The config file, read and checked to be TOML before figment sees it, so
/// no error quotes a line of it (a line may hold a password).
struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads the file (`/dev/null` too, as no keys); each failure is one line naming it.
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
        // An empty regular file is what a reader sees mid-write (`: > f`,
        // or a copy caught before its first byte): applying it would put
        // every key back to its default, `redis.url` included. `/dev/null`
        // (not a regular file) still stands for "no file".
        let regular = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        if regular && text.trim().is_empty() {
            return Err(ConfigError::new(
                &path.display().to_string(),
                "the file is empty; write at least one key (an empty file is taken as one caught mid-write)",
            ));
        }
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
/// every key is at least two levels deep.
fn is_key_name(name: &str) -> bool {
    name.contains("__")
}

/// Whether `name` (the whole variable name) has a shape Kubernetes injects
/// for a Service (`enableServiceLinks`): `<SVC>_SERVICE_HOST`,
/// `<SVC>_SERVICE_PORT`, `<SVC>_SERVICE_PORT_<PORTNAME>`, `<SVC>_PORT`,
/// `<SVC>_PORT_<n>_<PROTO>` and its `_PROTO`, `_PORT` and `_ADDR` forms.
/// A Service named redis-health, or redis-health-anything, gives such names.
fn is_service_link(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split('_').collect();
    let ends = |tail: &[&str]| words.len() > tail.len() && words.ends_with(tail);
    if ends(&["SERVICE", "HOST"]) || ends(&["SERVICE", "PORT"]) || ends(&["PORT"]) {
        return true;
    }
    if let Some(at) = upper.find("_SERVICE_PORT_") {
        return at > 0 && upper.len() > at + "_SERVICE_PORT_".len();
    }
    // ..._PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]
    let protocol = |word: &str| matches!(word, "TCP" | "UDP" | "SCTP");
    let number = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    let link = |tail: &[&str]| {
        tail.len() == 3 && tail[0] == "PORT" && number(tail[1]) && protocol(tail[2])
    };
    let n = words.len();
    (n > 3 && link(&words[n - 3..]))
        || (n > 4
            && matches!(words[n - 1], "PROTO" | "PORT" | "ADDR")
            && link(&words[n - 4..n - 1]))
}

/// The `REDIS_HEALTH_*` variables set that [`Settings::load`] ignored: the
/// Kubernetes service links.
pub fn ignored_env_names() -> Vec<String> {
    prefixed_env_names()
        .filter(|name| is_service_link(name))
        .collect()
}

/// The `REDIS_HEALTH_*` key variables set (with `__`), by name: what
/// `redis-health config` says it merged.
pub fn env_key_names() -> Vec<String> {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.split_at_checked(ENV_PREFIX.len())
                .is_some_and(|(prefix, rest)| {
                    prefix.eq_ignore_ascii_case(ENV_PREFIX) && is_key_name(rest)
                })
        })
        .collect();
    names.sort();
    names
}

/// Names of the variables set that start with `REDIS_HEALTH_` (any case),
/// other than `REDIS_HEALTH_CONFIG` and the key names (with `__`).
fn prefixed_env_names() -> impl Iterator<Item = String> {
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
}

/// A `REDIS_HEALTH_` variable that is neither a key (no `__`), nor
/// `REDIS_HEALTH_CONFIG`, nor a service link: a typo (`REDIS_HEALTH_REDIS_URL`)
/// that, ignored, would check another Redis than meant. One line naming
/// it and the key name it likely meant; never its value.
fn refuse_typos() -> Result<(), ConfigError> {
    let Some(name) = prefixed_env_names().find(|name| !is_service_link(name)) else {
        return Ok(());
    };
    let rest = name[ENV_PREFIX.len()..].to_ascii_lowercase();
    let message = match meant_key(&rest) {
        Some(key) => format!(
            "not a config key (sections and keys are separated by __): did you mean {ENV_PREFIX}{}?",
            key.join("__").to_ascii_uppercase()
        ),
        None => format!(
            "not a config key: keys are {ENV_PREFIX}<SECTION>__<KEY>, e.g. {ENV_PREFIX}REDIS__URL"
        ),
    };
    Err(ConfigError::new(&name, message))
}

/// The key path `rest` (lower case, `_` for every separator) likely means,
/// read off the real key tree: `redis_url` is `redis.url`,
/// `checks_memory_warn_ratio` is `checks.memory.warn_ratio`. `None` when
/// it starts with no section.
fn meant_key(rest: &str) -> Option<Vec<String>> {
    let tree = toml::Table::try_from(Settings::default()).ok()?;
    let mut path = Vec::new();
    let mut table = &tree;
    let mut rest = rest;
    loop {
        // Longest first: `warn_ratio` before `warn`.
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort_by_key(|key| std::cmp::Reverse(key.len()));
        let step = keys.into_iter().find_map(|key| {
            if rest == key.as_str() {
                Some((key, None))
            } else {
                let below = rest.strip_prefix(key.as_str())?.strip_prefix('_')?;
                table
                    .get(key.as_str())?
                    .as_table()
                    .map(|t| (key, Some((t, below))))
            }
        });
        match step {
            Some((key, None)) => {
                path.push(key.clone());
                return Some(path);
            }
            Some((key, Some((below, remainder)))) => {
                path.push(key.clone());
                table = below;
                rest = remainder;
            }
            // A key the defaults leave out (an unset path) under a known
            // section: the rest is taken as its name.
            None if !path.is_empty() => {
                path.push(rest.to_owned());
                return Some(path);
            }
            None => return None,
        }
    }
}

impl Settings {
    /// Loads the layers: defaults, then the file [`config_file`] names, then
    /// `REDIS_HEALTH_*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        refuse_typos()?;
        let file = config_file(path).map(ConfigFile::read).transpose()?;
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(file);
        }
        let env = Env::prefixed(ENV_PREFIX).filter(|name| is_key_name(name.as_str()));
        Self::extract(figment.merge(env.split("__")))
    }

    /// Defaults overlaid with `text`, a TOML document, validated as [`Self::load`]
    /// validates a file, but reading no file and no environment: what
    /// in-process callers (the tests) build settings with.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Toml::string(text)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let mut settings: Settings = figment.extract().map_err(from_figment)?;
        settings.follow_renames(&figment)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Keys renamed for what they mean, whose old names still load: each
    /// found is applied and noted for one deprecation line in the log.
    fn follow_renames(&mut self, figment: &Figment) -> Result<(), ConfigError> {
        let given = |key: &str| figment.find_value(key).is_ok();
        if let Some(window) = self.checks.hit_rate.window.take() {
            if given("checks.window") {
                return Err(ConfigError::new(
                    "checks.hit_rate.window",
                    "renamed to checks.window; set checks.window only",
                ));
            }
            self.checks.window = window;
            self.deprecated
                .push("checks.hit_rate.window is now checks.window");
        }
        // Read by serde's alias; noted here.
        if given("checks.latency") {
            self.deprecated.push("checks.latency is now checks.ping");
        }
        Ok(())
    }

    /// One WARN line per old key name the config used; called once logging
    /// is set up.
    pub fn log_deprecated(&self) {
        for rename in &self.deprecated {
            tracing::warn!("deprecated config key: {rename}; the old name still works for now");
        }
    }

    /// Rules that span several keys, which serde cannot express per field:
    /// each check's own rules, then those of the connection.
    fn validate(&self) -> Result<(), ConfigError> {
        for check in crate::checks::REGISTRY {
            (check.validate)(self)?;
        }
        self.routes.primary.validate()?;
        self.queues.check_tables()?;
        if let Some(file) = &self.redis.password_file {
            crate::redis::read_password_file(file)
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
        Kind::MissingField(_) => "missing: this key is required".to_owned(),
        kind => kind
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let mut path = error.path.clone();
    // A required key of an array's table (`[[queues]]`) is named itself.
    if let Kind::MissingField(field) = &error.kind {
        path.push(field.to_string());
    }
    let key = if path.is_empty() {
        "config".to_owned()
    } else {
        array_key(&path)
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

/// A dotted key with array indices as the README names them: `queues[0].kind`.
fn array_key(path: &[String]) -> String {
    path.iter().fold(String::new(), |mut key, part| {
        if part.bytes().all(|b| b.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
        key
    })
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
    use std::time::Duration;

    #[test]
    fn old_names_still_load_and_are_noted() {
        let settings = Settings::from_toml(
            "[checks.hit_rate]\nwindow = \"10m\"\n[checks.latency]\nwarn_above = \"5ms\"",
        )
        .expect("old names load");
        assert_eq!(settings.checks.window.get(), Duration::from_secs(600));
        assert_eq!(
            settings.checks.ping.warn_above.get(),
            Duration::from_millis(5)
        );
        assert_eq!(
            settings.deprecated,
            [
                "checks.hit_rate.window is now checks.window",
                "checks.latency is now checks.ping"
            ]
        );
        let both =
            Settings::from_toml("[checks]\nwindow = \"1m\"\n[checks.hit_rate]\nwindow = \"2m\"");
        assert_eq!(
            both.map(|_| ()).map_err(|e| e.key),
            Err("checks.hit_rate.window".to_owned())
        );
        assert!(
            Settings::from_toml("[checks]\nwindow = \"1m\"").is_ok_and(|s| s.deprecated.is_empty())
        );
    }

    #[test]
    fn the_meant_key_is_read_off_the_key_tree() {
        let meant = |rest: &str| meant_key(rest).map(|path| path.join("."));
        for (rest, key) in [
            ("redis_url", "redis.url"),
            ("redis_password_file", "redis.password_file"),
            ("checks_memory_warn_ratio", "checks.memory.warn_ratio"),
            ("routes_redis_warn_code", "routes.redis.warn_code"),
            ("redis_tls_ca_file", "redis.tls.ca_file"),
            ("server_listen", "server.listen"),
            ("log_format", "log.format"),
        ] {
            assert_eq!(meant(rest).as_deref(), Some(key), "{rest}");
        }
        assert_eq!(meant("nothing_here"), None);
    }

    #[test]
    fn service_link_shapes() {
        for name in [
            "REDIS_HEALTH_SERVICE_HOST",
            "REDIS_HEALTH_SERVICE_PORT",
            "REDIS_HEALTH_SERVICE_PORT_METRICS",
            "REDIS_HEALTH_SERVICE_PORT_HTTP_METRICS",
            "REDIS_HEALTH_PORT",
            "REDIS_HEALTH_PORT_8080_TCP",
            "REDIS_HEALTH_PORT_8080_TCP_PROTO",
            "REDIS_HEALTH_PORT_8080_TCP_PORT",
            "REDIS_HEALTH_PORT_8080_TCP_ADDR",
            "REDIS_HEALTH_METRICS_PORT_9121_UDP",
        ] {
            assert!(is_service_link(name), "{name}");
        }
        for name in [
            "REDIS_HEALTH_REDIS_URL",
            "REDIS_HEALTH_LOG_FORMAT",
            "REDIS_HEALTH_PORT_X_TCP",
            "REDIS_HEALTH_PORT_8080_TCP_HOST",
        ] {
            assert!(!is_service_link(name), "{name}");
        }
    }

    #[test]
    fn durations_take_days() {
        let settings: Settings = Figment::from(Toml::string(
            "[checks.tls]\nwarn_before = \"14d\"\n[redis]\nconnect_timeout = \"2s\"",
        ))
        .extract()
        .expect("parses");
        assert_eq!(
            settings.checks.tls.warn_before.get(),
            Duration::from_secs(14 * 86400)
        );
        assert_eq!(settings.redis.connect_timeout.get(), Duration::from_secs(2));
    }
}
