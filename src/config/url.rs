//! `redis.url`: a `redis://`, `rediss://` or `unix://` URL, parsed once into
//! where Redis listens and who the sidecar is there.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

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

/// `host:port`, `[v6]:port` or `unix:/path`: where a log line says Redis
/// is, never with a user or password.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl RedisUrl {
    pub(super) fn local() -> Self {
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

/// Linux's `sun_path` is 108 bytes, one of them the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

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
    if path.len() > MAX_SOCKET_PATH {
        // Else every check fails to dial with only "path too long".
        return Err(format!(
            "the socket path is longer than the kernel takes (sun_path): at most \
             {MAX_SOCKET_PATH} bytes, this one is {}",
            path.len()
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

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
    fn url_rejects_other_schemes_without_echoing_it() {
        let err =
            RedisUrl::try_from("http://user:hunter2@localhost".to_owned()).expect_err("rejected");
        assert!(err.contains("redis://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
