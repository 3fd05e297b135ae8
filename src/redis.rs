//! Redis access: one persistent connection, used for one PING + one INFO per
//! check (plus CLUSTER INFO on a cluster node), with the whole exchange
//! bounded by `redis.timeout`.
//!
//! The client always talks to the configured node itself (fred's centralized
//! mode), never through cluster or sentinel routing: the sidecar judges its
//! own node, whatever the deployment around it.
//!
//! fred's own defaults would not bound a probe (10 s connect, no command
//! timeout, commands retried and queued across reconnects), so the client is
//! built without a reconnect policy and with every timeout set to ours, and
//! this module reconnects by itself: a connection that failed in any way is
//! dropped, and the next check dials afresh, reading the password file again.
//!
//! On connect fred sends AUTH (with a password; else PING), `CLIENT ID` and
//! `INFO server`. A user with only `+ping +info` is refused `CLIENT ID`, which
//! fred ignores; Redis notes it in `ACL LOG` once per connection.

use std::time::{Duration, Instant};

use fred::prelude::{
    ClientLike, ClusterInterface, Config, ConnectionConfig, Error as FredError, ErrorKind, Options,
    PerformanceConfig, Server, ServerConfig, SlowlogInterface, TlsConfig, Value,
};
use fred::types::ConnectHandle;
use fred::types::config::TlsHostMapping;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::config::{RedisSettings, current_password};
use crate::info::cluster_enabled;
use crate::verdict::Reason;

/// Why a check could not read Redis. Messages never hold a credential.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedisError {
    #[error("{0}")]
    Unreachable(String),
    #[error("no answer within redis.timeout")]
    Timeout,
    #[error("{0}")]
    AuthFailed(String),
    #[error("{0}")]
    Loading(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    MasterDown(String),
    #[error("{0}")]
    Reply(String),
    /// The TLS handshake failed (an untrusted or misnamed certificate, a
    /// refused client certificate) or the TLS files could not be used: the
    /// server is there, so this is a configuration error, not `unreachable`.
    #[error("{0}")]
    Tls(String),
}

impl RedisError {
    /// Whether the connection is no use after this error. A server that is
    /// loading, running a script or without its primary answered on a
    /// healthy connection: keep it rather than dial (and AUTH) every check.
    fn ends_connection(&self) -> bool {
        !matches!(
            self,
            RedisError::Loading(_) | RedisError::Busy(_) | RedisError::MasterDown(_)
        )
    }

    pub fn reason(&self) -> Reason {
        match self {
            RedisError::Unreachable(_) => Reason::Unreachable,
            RedisError::Timeout => Reason::Timeout,
            RedisError::AuthFailed(_) => Reason::AuthFailed,
            RedisError::Loading(_) => Reason::Loading,
            RedisError::Busy(_) => Reason::Busy,
            RedisError::MasterDown(_) => Reason::MasterDown,
            RedisError::Reply(_) | RedisError::Tls(_) => Reason::Error,
        }
    }

    /// Sorts a client error by what the operator needs to know, with the
    /// password cut out of its text should a layer below ever echo it.
    fn classify(error: &FredError, password: Option<&SecretString>) -> Self {
        let details = error.details().trim();
        let mut message = match error.kind() {
            ErrorKind::IO => readable(details),
            _ => details.to_owned(),
        };
        if let Some(secret) = password
            .map(|p| p.expose_secret())
            .filter(|p| !p.is_empty())
        {
            message = message.replace(secret, "[redacted]");
        }
        // fred renders a failed handshake as the Debug text of the io::Error
        // that tokio-rustls wraps around the rustls error.
        if let Some(tls) = message
            .strip_prefix("Custom { kind: InvalidData, error: ")
            .and_then(|rest| rest.strip_suffix(" }"))
        {
            return Self::Tls(format!("TLS handshake failed: {tls}"));
        }
        let code = message.split_whitespace().next().unwrap_or_default();
        match (error.kind(), code) {
            (ErrorKind::Auth, _) | (_, "NOAUTH" | "WRONGPASS") => Self::AuthFailed(message),
            (_, "LOADING") => Self::Loading(message),
            (_, "BUSY") => Self::Busy(message),
            (_, "MASTERDOWN") => Self::MasterDown(message),
            (ErrorKind::Timeout, _) => Self::Timeout,
            (ErrorKind::Tls, _) => Self::Tls(format!("TLS failed: {message}")),
            (ErrorKind::IO | ErrorKind::Canceled, _) => Self::Unreachable(message),
            _ => Self::Reply(message),
        }
    }
}

/// fred words an I/O failure as the Debug form of `std::io::Error`
/// (`Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }`);
/// an operator wants only the message in it.
fn readable(details: &str) -> String {
    ["message: \"", "error: \""]
        .iter()
        .find_map(|key| {
            let start = details.find(key)? + key.len();
            let end = start + details[start..].find('"')?;
            Some(details[start..end].to_owned())
        })
        .unwrap_or_else(|| details.to_owned())
}

/// What one successful check read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub latency: Duration,
    pub info: String,
    /// Id of the newest slow-log entry, when asked for and the log is not empty.
    pub slowlog_last_id: Option<u64>,
    /// Entries in the slow log: how many of them are new when the log was
    /// last seen empty.
    pub slowlog_len: Option<u64>,
    /// The CLUSTER INFO text, read only when INFO says `cluster_enabled:1`.
    pub cluster_info: Option<String>,
}

struct Connection {
    client: fred::clients::Client,
    task: ConnectHandle,
}

impl Drop for Connection {
    /// The connection task owns the socket: ending it closes the connection,
    /// so a timed-out or broken connection never lingers.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The one connection to the checked node, dialled on demand.
pub struct Redis {
    settings: RedisSettings,
    /// Whether a check also reads the slow log (only when its check runs).
    read_slowlog: bool,
    /// Whether a check reads CLUSTER INFO on a cluster node (only when the
    /// cluster check runs).
    read_cluster: bool,
    connection: Mutex<Option<Connection>>,
}

impl Redis {
    pub fn new(settings: RedisSettings, read_slowlog: bool, read_cluster: bool) -> Self {
        Self {
            settings,
            read_slowlog,
            read_cluster,
            connection: Mutex::new(None),
        }
    }

    /// One PING and one INFO (and SLOWLOG GET 1 and LEN when the slowlog check runs,
    /// CLUSTER INFO on a cluster node), within `redis.timeout` from start to
    /// end, TLS handshake included.
    pub async fn check(&self) -> Result<Reply, RedisError> {
        let timeout = self.settings.timeout;
        let mut slot = self.connection.lock().await;
        let result = match tokio::time::timeout(timeout, self.exchange(&mut slot)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::Timeout),
        };
        if result.as_ref().is_err_and(RedisError::ends_connection) {
            *slot = None;
        }
        result
    }

    async fn exchange(&self, slot: &mut Option<Connection>) -> Result<Reply, RedisError> {
        if slot
            .as_ref()
            .is_some_and(|c| c.task.is_finished() || !c.client.is_connected())
        {
            *slot = None;
        }
        if let Some(connection) = slot.as_ref() {
            match self.ask(&connection.client).await {
                // The server may have restarted since the last check: dial again
                // at once rather than report a stale socket as a dead server.
                Err(RedisError::Unreachable(_)) => *slot = None,
                other => return other,
            }
        }
        let connection = self.connect().await?;
        let reply = self.ask(&connection.client).await;
        *slot = Some(connection);
        reply
    }

    async fn connect(&self) -> Result<Connection, RedisError> {
        let (password, tls) = self.read_credentials().await?;
        let client = self.client(password.as_ref(), tls);
        let mut task = client.connect();
        // Races the connect notification against the task itself, which ends
        // with the error when the first connection fails.
        let outcome = tokio::select! {
            ready = client.wait_for_connect() => ready,
            ended = &mut task => match ended {
                Ok(Ok(())) => Err(FredError::new(ErrorKind::IO, "connection closed")),
                Ok(Err(error)) => Err(error),
                Err(join) => Err(FredError::new(ErrorKind::Unknown, join.to_string())),
            },
        };
        let connection = Connection { client, task };
        match outcome {
            Ok(()) => Ok(connection),
            Err(error) => Err(RedisError::classify(&error, password.as_ref())),
        }
    }

    /// The password and TLS configuration as the files hold them now, read
    /// on a blocking thread: a hung mount then costs a timeout, not a
    /// runtime worker that `redis.timeout` could never interrupt.
    async fn read_credentials(
        &self,
    ) -> Result<(Option<SecretString>, Option<rustls::ClientConfig>), RedisError> {
        let settings = self.settings.clone();
        let read = tokio::task::spawn_blocking(move || {
            let password = current_password(&settings).map_err(|e| {
                RedisError::AuthFailed(format!("cannot read redis.password_file: {}", e.kind()))
            })?;
            let tls = if settings.url.tls {
                let config = crate::tls::client_config(&settings.tls)
                    .map_err(|e| RedisError::Tls(format!("{}: {e}", e.key())))?;
                Some(config)
            } else {
                None
            };
            Ok((password, tls))
        });
        read.await
            .map_err(|_| RedisError::Reply("reading the credential files failed".into()))?
    }

    fn client(
        &self,
        password: Option<&SecretString>,
        tls: Option<rustls::ClientConfig>,
    ) -> fred::clients::Client {
        let url = &self.settings.url;
        let timeout = self.settings.timeout;
        let tls = tls.map(|config| TlsConfig {
            connector: config.into(),
            // Host mapping is for cluster routing, which is never used.
            hostnames: TlsHostMapping::None,
        });
        let server = Server::new_with_tls(
            url.host.clone(),
            url.port,
            self.settings.tls.server_name.clone(),
        );
        let config = Config {
            server: ServerConfig::Centralized { server },
            username: url.username.clone(),
            password: password.map(|p| p.expose_secret().to_owned()),
            // PING and INFO are server-wide: no SELECT, which a user limited
            // to `+ping +info` may not run.
            database: None,
            fail_fast: true,
            tls,
            ..Config::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: timeout,
            internal_command_timeout: timeout,
            max_command_attempts: 1,
            reconnect_on_auth_error: false,
            ..ConnectionConfig::default()
        };
        let performance = PerformanceConfig {
            default_command_timeout: timeout,
            ..PerformanceConfig::default()
        };
        fred::clients::Client::new(config, Some(performance), Some(connection), None)
    }

    async fn ask(&self, client: &fred::clients::Client) -> Result<Reply, RedisError> {
        let mut reply = ping_and_info(client).await?;
        if self.read_slowlog {
            reply.slowlog_last_id = newest_slowlog_id(client).await?;
            reply.slowlog_len = match reply.slowlog_last_id {
                Some(_) => slowlog_len(client).await?,
                None => Some(0),
            };
        }
        if self.read_cluster && cluster_enabled(&reply.info) {
            reply.cluster_info = Some(
                fail_fast(client)
                    .cluster_info()
                    .await
                    .map_err(|e| RedisError::classify(&e, None))?,
            );
        }
        Ok(reply)
    }
}

/// Fails at once, rather than wait in fred's queue, when the connection is
/// already known to be gone: the caller then dials again.
fn fail_fast(client: &fred::clients::Client) -> fred::clients::WithOptions<fred::clients::Client> {
    client.with_options(&Options {
        fail_fast: true,
        max_attempts: Some(1),
        ..Options::default()
    })
}

async fn newest_slowlog_id(client: &fred::clients::Client) -> Result<Option<u64>, RedisError> {
    let entries: Value = fail_fast(client)
        .slowlog_get(Some(1))
        .await
        .map_err(|e| RedisError::classify(&e, None))?;
    let Value::Array(entries) = entries else {
        return Ok(None);
    };
    Ok(match entries.first() {
        Some(Value::Array(entry)) => entry.first().and_then(Value::as_u64),
        _ => None,
    })
}

/// `None` when refused (an ACL user with `+slowlog|get` only): the slow
/// log is then counted from the first entry seen, as before LEN was asked.
async fn slowlog_len(client: &fred::clients::Client) -> Result<Option<u64>, RedisError> {
    match fail_fast(client).slowlog_length().await {
        Ok(len) => Ok(Some(len)),
        Err(error) => match RedisError::classify(&error, None) {
            RedisError::Reply(_) => Ok(None),
            other => Err(other),
        },
    }
}

async fn ping_and_info(client: &fred::clients::Client) -> Result<Reply, RedisError> {
    let client = fail_fast(client);
    let started = Instant::now();
    client
        .ping::<String>(None)
        .await
        .map_err(|e| RedisError::classify(&e, None))?;
    let latency = started.elapsed();
    // Plain INFO: several sections in one call is Redis 7 only.
    let info: String = client
        .info(None)
        .await
        .map_err(|e| RedisError::classify(&e, None))?;
    Ok(Reply {
        latency,
        info,
        slowlog_last_id: None,
        slowlog_len: None,
        cluster_info: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(kind: ErrorKind, details: &str) -> RedisError {
        RedisError::classify(&FredError::new(kind, details.to_owned()), None)
    }

    #[test]
    fn error_replies_map_to_their_reasons() {
        let cases = [
            (
                ErrorKind::Unknown,
                "LOADING Redis is loading the dataset in memory",
                Reason::Loading,
            ),
            (
                ErrorKind::Unknown,
                "BUSY Redis is busy running a script.",
                Reason::Busy,
            ),
            (
                ErrorKind::Unknown,
                "MASTERDOWN Link with MASTER is down",
                Reason::MasterDown,
            ),
            (
                ErrorKind::Auth,
                "WRONGPASS invalid username-password pair",
                Reason::AuthFailed,
            ),
            (
                ErrorKind::Unknown,
                "NOAUTH Authentication required.",
                Reason::AuthFailed,
            ),
            (
                ErrorKind::IO,
                "Connection refused (os error 111)",
                Reason::Unreachable,
            ),
            (
                ErrorKind::Unknown,
                "NOPERM this user has no permissions",
                Reason::Error,
            ),
            (
                ErrorKind::IO,
                "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
                Reason::Error,
            ),
        ];
        for (kind, details, reason) in cases {
            assert_eq!(classify(kind, details).reason(), reason, "{details}");
        }
    }

    #[test]
    fn io_errors_read_as_their_message() {
        let refused = classify(
            ErrorKind::IO,
            r#"Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }"#,
        );
        assert_eq!(refused.to_string(), "Connection refused");
        let dns = classify(
            ErrorKind::IO,
            r#"Custom { kind: Uncategorized, error: "failed to lookup address information: Name or service not known" }"#,
        );
        assert_eq!(
            dns.to_string(),
            "failed to lookup address information: Name or service not known"
        );
        let reply = classify(ErrorKind::Unknown, "ERR unknown command");
        assert_eq!(reply.to_string(), "ERR unknown command");
    }

    #[test]
    fn a_failed_handshake_says_what_the_certificate_check_found() {
        let error = classify(
            ErrorKind::IO,
            "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
        );
        assert_eq!(
            error,
            RedisError::Tls("TLS handshake failed: InvalidCertificate(UnknownIssuer)".into())
        );
    }

    #[test]
    fn the_password_is_cut_from_messages() {
        let secret = SecretString::from("hunter2");
        let error = FredError::new(ErrorKind::Unknown, "ERR something about hunter2");
        let classified = RedisError::classify(&error, Some(&secret));
        assert_eq!(classified.to_string(), "ERR something about [redacted]");
    }
}
