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
/// File read from the working directory when no file is named.
const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

/// Which config file is read, decided here only: `--config`, else
/// `$REDIS_HEALTH_CONFIG` (each must exist), else `config/default.toml` in
/// the working directory, read only if it is there.
pub struct ConfigPath {
    pub path: PathBuf,
    /// Named by the operator, so it must exist.
    pub named: bool,
}

pub fn config_file(path: Option<&Path>) -> ConfigPath {
    let named = path
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
    match named {
        Some(path) => ConfigPath { path, named: true },
        None => ConfigPath {
            path: PathBuf::from(DEFAULT_CONFIG_FILE),
            named: false,
        },
    }
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
    /// Loads the layers: defaults, then the file [`config_file`] names, then
    /// `REDIS_HEALTH_*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let ConfigPath { path, named } = config_file(path);
        let file = if named {
            Some(ConfigFile::read(path)?)
        } else {
            ConfigFile::read_if_present(&path)?
        };
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
