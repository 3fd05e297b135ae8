//! Redis access: one persistent connection, used for one PING + one INFO per
//! check, sent as one pipelined round trip (plus CLUSTER INFO on a cluster
//! node, one SENTINEL CKQUORUM per judged master on a Sentinel). A (re)connect is bounded by `redis.connect_timeout`, the check's
//! commands by `redis.timeout`: a probe takes at most their sum. The
//! sampler also reads the `[[queues]]` on the same connection, one
//! pipelined round trip per sample within `redis.timeout` (see
//! [`crate::queues`]).
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
//! `INFO server`, each a round trip: the least-privilege user therefore
//! needs `+client|id` beside `+ping +info`.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fred::prelude::{
    ClientLike, ClusterInterface, Config, ConnectionConfig, Error as FredError, ErrorKind, Options,
    PerformanceConfig, Server, ServerConfig, SlowlogInterface, TlsConfig, Value,
};
use fred::types::ConnectHandle;
use fred::types::RespVersion;
use fred::types::config::TlsHostMapping;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::config::{Address, RedisSettings, Settings};
use crate::info::{Canary, CertDates, ClusterInfo, Snapshot};
use crate::sentinels::Sentinels;
use crate::tls::{Handshake, Tls};
use crate::verdict::Reason;

/// Why a check could not read Redis. Messages never hold a credential.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedisError {
    #[error("{0}")]
    Unreachable(String),
    /// The bound that ran out, by its config key.
    #[error("no answer within {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    AuthFailed(String),
    /// `redis.password_file` could not be read: ours to fix, not Redis's.
    #[error("cannot read redis.password_file: {0}")]
    PasswordFile(String),
    #[error("{0}")]
    Loading(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    MasterDown(String),
    /// Redis answered a command with an error this module has no better
    /// word for (NOPERM, an unknown command, ...).
    #[error("{0}")]
    Reply(String),
    /// The check could not finish for a reason of the sidecar's own.
    #[error("{0}")]
    Internal(String),
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
            RedisError::Timeout(_) => Reason::Timeout,
            RedisError::AuthFailed(_) | RedisError::PasswordFile(_) => Reason::AuthFailed,
            RedisError::Loading(_) => Reason::Loading,
            RedisError::Busy(_) => Reason::Busy,
            RedisError::MasterDown(_) => Reason::MasterDown,
            RedisError::Reply(_) | RedisError::Tls(_) | RedisError::Internal(_) => Reason::Error,
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
            (ErrorKind::Timeout, _) => Self::Timeout("redis.timeout"),
            (ErrorKind::Tls, _) => Self::Tls(format!("TLS failed: {message}")),
            (ErrorKind::IO | ErrorKind::Canceled, _) => Self::Unreachable(message),
            _ => Self::Reply(message),
        }
    }
}

/// Redis's answer to `AUTH <password>` when the default user has no
/// password. fred's codec replaces that answer with OK (for old servers
/// without `requirepass`), so what reaches us is the NOAUTH of the next
/// command. On a connection just dialled, a NOAUTH after a password-only
/// AUTH can only follow this answer (a wrong password is WRONGPASS, a
/// right one lets the command through), so it is restored from that.
const DEFAULT_USER_HAS_NO_PASSWORD: &str = "ERR AUTH <password> called without any password \
     configured for the default user. Are you sure your configuration is correct? (Redis's \
     answer to the password in redis.url; its default user is off: name a user in the URL, \
     redis://user:password@host)";

/// What Redis answers INFO with when `rename-command INFO ""` (or a new
/// name) took it away, in words: every check reads INFO.
const INFO_MISSING: &str = "INFO is disabled or renamed on this server (rename-command INFO); \
     redis-health needs it: every check reads INFO, so keep it under its own name";

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

/// What one check read: INFO parsed once into a [`Snapshot`], with what
/// the other commands of the check add to it, and the round trip of PING
/// and INFO.
#[derive(Debug)]
pub struct Observation {
    pub latency: Duration,
    pub snapshot: Snapshot,
}

struct Connection {
    client: fred::clients::Client,
    task: ConnectHandle,
    /// What the TLS handshake saw, on `rediss://`.
    tls: Option<TlsRecord>,
    /// Whether it sent `AUTH <password>` with no user, which the default
    /// user may have answered with an error fred hides.
    password_only: bool,
}

/// The handshake record of a TLS connection and its client certificate's
/// end, with what the latest handshake of its own read since.
struct TlsRecord {
    handshake: Arc<Handshake>,
    client_not_after: Option<i64>,
    fresh: Arc<std::sync::Mutex<Fresh>>,
}

/// Certificate dates re-read beside a connection that stays open, so the
/// expiry follows a rotated certificate without a reconnect.
struct Fresh {
    at: Instant,
    /// The server's and the client's `notAfter`, once re-read.
    dates: Option<(i64, Option<i64>)>,
    running: bool,
}

/// How old the dates may grow before a handshake of its own re-reads them.
const REREAD_DATES_EVERY: Duration = Duration::from_secs(600);

impl TlsRecord {
    fn new(handshake: Arc<Handshake>, client_not_after: Option<i64>) -> Self {
        let fresh = Fresh {
            at: Instant::now(),
            dates: None,
            running: false,
        };
        Self {
            handshake,
            client_not_after,
            fresh: Arc::new(std::sync::Mutex::new(fresh)),
        }
    }

    /// The dates as of now: one clock read per check, not per probe.
    fn dates(&self) -> CertDates {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let fresh = self.fresh.lock().ok().and_then(|f| f.dates);
        let (server, client) = match fresh {
            Some((server, client)) => (Some(server), client),
            None => (self.handshake.server_not_after(), self.client_not_after),
        };
        CertDates {
            checked_at_s: now,
            server_not_after: server,
            client_not_after: client,
        }
    }

    /// Starts a handshake of its own, in the background, when the dates
    /// are older than [`REREAD_DATES_EVERY`] or expiring (then at every
    /// check, so a renewal shows at the next sample); one at a time.
    fn reread_if_due(&self, dates: &CertDates, settings: &Settings) {
        let warn_before =
            i64::try_from(settings.checks.tls.warn_before.get().as_secs()).unwrap_or(i64::MAX);
        let expiring = [dates.server_not_after, dates.client_not_after]
            .into_iter()
            .flatten()
            .any(|end| end.saturating_sub(dates.checked_at_s) < warn_before);
        let Address::Tcp { host, port } = &settings.redis.url.address else {
            return;
        };
        {
            let Ok(mut fresh) = self.fresh.lock() else {
                return;
            };
            if fresh.running || !(expiring || fresh.at.elapsed() >= REREAD_DATES_EVERY) {
                return;
            }
            fresh.running = true;
        }
        let (tls, host, port) = (settings.redis.tls.clone(), host.clone(), *port);
        let limit = settings.redis.connect_timeout.get();
        let fresh = Arc::clone(&self.fresh);
        tokio::task::spawn_blocking(move || {
            let dates = crate::tls::fresh_dates(&tls, &host, port, limit);
            if let Ok(mut fresh) = fresh.lock() {
                fresh.running = false;
                fresh.at = Instant::now();
                // A failed re-read keeps what is known; the check's own
                // connection reports what is wrong.
                fresh.dates = dates.or(fresh.dates);
            }
        });
    }
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
    /// The settings this connection was dialled for: `redis.*`, and which
    /// checks are in force, for the commands beyond PING and INFO.
    settings: Arc<Settings>,
    /// Whether a check also reads the slow log: only when its check runs,
    /// by a prober that keeps the history it judges.
    read_slowlog: bool,
    /// `routes.primary.sentinels`, asked beside each check when set.
    sentinels: Option<Sentinels>,
    connection: Mutex<Option<Connection>>,
}

impl Redis {
    pub fn new(settings: Arc<Settings>, keeps_history: bool) -> Self {
        Self {
            read_slowlog: keeps_history && settings.checks.slowlog.active(),
            sentinels: Sentinels::new(&settings.routes.primary, &settings.redis),
            settings,
            connection: Mutex::new(None),
        }
    }

    fn redis(&self) -> &RedisSettings {
        &self.settings.redis
    }

    /// One PING and one INFO (and SLOWLOG GET 1 and LEN when the slowlog check runs,
    /// CLUSTER INFO on a cluster node, SENTINEL CKQUORUM per judged master on
    /// a Sentinel) within `redis.timeout`, after a
    /// (re)connect within `redis.connect_timeout` when there is no open
    /// connection: at most their sum in all.
    /// The write canary (`checks.writes.canary`) on the open connection,
    /// within `redis.timeout`: `None` when it is off, or when there is no
    /// connection or no answer (the next check judges those).
    pub async fn canary(&self) -> Option<Canary> {
        let writes = &self.settings.checks.writes;
        if !writes.canary {
            return None;
        }
        let slot = self.connection.lock().await;
        let client = &slot.as_ref().filter(|c| c.client.is_connected())?.client;
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        let ttl_ms = (2 * self.settings.checks.sample_interval.get().as_millis()).to_string();
        let args = vec![writes.key.as_str(), &now_ms, "XX", "PX", &ttl_ms];
        let started = Instant::now();
        let client = fail_fast(client);
        let sent = client.custom::<Value, _>(fred::cmd!("SET"), args);
        let answer = tokio::time::timeout(self.redis().timeout.get(), sent)
            .await
            .ok()?;
        let rtt = started.elapsed();
        let refused = match answer {
            Ok(_) => None,
            Err(error) => match RedisError::classify(&error, None) {
                RedisError::Unreachable(_) | RedisError::Timeout(_) => return None,
                other => Some(other.to_string()),
            },
        };
        Some(Canary { refused, rtt })
    }

    /// One sample of the queues: every command of `commands` in one
    /// pipelined round trip on the open connection, within `redis.timeout`.
    /// `None` when there is no connection or no answer in time (the next
    /// check judges those); else one reply per command, an error reply in
    /// words.
    pub async fn sample_queues(
        &self,
        commands: &[crate::queues::Command],
    ) -> Option<Vec<crate::queues::Reply>> {
        let slot = self.connection.lock().await;
        let client = &slot.as_ref().filter(|c| c.client.is_connected())?.client;
        let pipeline = client.pipeline().with_options(&Options {
            fail_fast: true,
            max_attempts: Some(1),
            ..Options::default()
        });
        for (name, args) in commands {
            let () = pipeline
                .custom(fred::cmd!(*name), args.clone())
                .await
                .ok()?;
        }
        let replies = tokio::time::timeout(self.redis().timeout.get(), pipeline.try_all::<Value>())
            .await
            .ok()?;
        // An error reply is the queue's finding; a lost connection is none.
        let replies = replies
            .into_iter()
            .map(|reply| match reply {
                Ok(value) => Some(Ok(value)),
                Err(error) if error.is_moved() || error.is_ask() => {
                    Some(Err(error.details().trim().to_owned()))
                }
                Err(error) => match RedisError::classify(&error, None) {
                    RedisError::Reply(message) => Some(Err(message)),
                    _ => None,
                },
            })
            .collect::<Option<Vec<_>>>()?;
        (replies.len() == commands.len()).then_some(replies)
    }

    pub async fn check(&self) -> Result<Observation, RedisError> {
        let mut slot = self.connection.lock().await;
        // Each step has its own bound; this one keeps a check that asked on
        // a connection that then died, and had to dial again, within the
        // documented sum as well.
        let whole = self.redis().connect_timeout.get() + self.redis().timeout.get();
        let checked = bounded(
            whole,
            "redis.connect_timeout + redis.timeout",
            self.exchange(&mut slot),
        );
        // Sentinel is asked at the same time, within the same bound.
        let asked = async {
            match &self.sentinels {
                Some(sentinels) => Some(sentinels.ask().await),
                None => None,
            }
        };
        let (mut result, answer) = tokio::join!(checked, asked);
        if let (Ok(observation), Some(sentinels), Some(answer)) =
            (&mut result, &self.sentinels, answer)
        {
            let view = sentinels.view(answer, observation.snapshot.run_id.as_deref());
            observation.snapshot.sentinel_view = Some(view);
        }
        if result.as_ref().is_err_and(RedisError::ends_connection) {
            *slot = None;
        }
        result
    }

    async fn exchange(&self, slot: &mut Option<Connection>) -> Result<Observation, RedisError> {
        if slot
            .as_ref()
            .is_some_and(|c| c.task.is_finished() || !c.client.is_connected())
        {
            *slot = None;
        }
        if let Some(connection) = slot.as_ref() {
            match self.ask(connection).await {
                // The server may have restarted since the last check: dial again
                // at once rather than report a stale socket as a dead server.
                Err(RedisError::Unreachable(_)) => *slot = None,
                other => return other,
            }
        }
        let connection = match bounded(
            self.redis().connect_timeout.get(),
            "redis.connect_timeout",
            self.connect(),
        )
        .await
        {
            Err(RedisError::Timeout(key)) => Err(self.why_no_tls_answer(key).await),
            Err(RedisError::Unreachable(message)) => Err(self.why_closed(message).await),
            other => other,
        }?;
        let reply = match self.ask(&connection).await {
            Err(RedisError::AuthFailed(m))
                if m.starts_with("NOAUTH") && connection.password_only =>
            {
                Err(RedisError::AuthFailed(DEFAULT_USER_HAS_NO_PASSWORD.into()))
            }
            other => other,
        };
        *slot = Some(connection);
        reply
    }

    async fn connect(&self) -> Result<Connection, RedisError> {
        match self.dial(false).await {
            // A primary that refuses writes for a disk error refuses PING too,
            // fred's setup PING included; with RESP3 fred sends HELLO instead,
            // which Redis answers, so the check can still read INFO.
            Err(RedisError::Reply(message)) if message.starts_with("MISCONF") => {
                self.dial(true).await
            }
            other => other,
        }
    }

    async fn dial(&self, resp3: bool) -> Result<Connection, RedisError> {
        let (password, tls) = self.read_credentials().await?;
        let (config, record) = match tls {
            Some(tls) => (
                Some(tls.config),
                Some(TlsRecord::new(tls.handshake, tls.client_not_after)),
            ),
            None => (None, None),
        };
        let client = self.client(password.as_ref(), config, resp3);
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
        let Err(error) = outcome else {
            return Ok(Connection {
                client,
                task,
                tls: record,
                password_only: password.is_some() && self.redis().url.username.is_none(),
            });
        };
        task.abort();
        Err(match RedisError::classify(&error, password.as_ref()) {
            RedisError::Tls(failure) => match &record {
                Some(record) => RedisError::Tls(format!(
                    "TLS handshake failed: {}",
                    record
                        .handshake
                        .explain(&failure, self.redis().tls.cert_file.is_some())
                )),
                None => RedisError::Tls(failure),
            },
            RedisError::Unreachable(message) => match &self.redis().url.address {
                Address::Unix(path) => {
                    RedisError::Unreachable(format!("{}: {message}", path.display()))
                }
                Address::Tcp { .. } => RedisError::Unreachable(message),
            },
            // fred's own bound on its setup commands, which is ours.
            RedisError::Timeout(_) => RedisError::Timeout("redis.connect_timeout"),
            other => other,
        })
    }

    /// A `rediss://` connect that timed out may have reached a plain Redis
    /// port: it never answers a TLS hello (it waits for the end of an inline
    /// command), so that looks like a hung server. On this failure path only,
    /// one plain PING within `redis.timeout` tells the two apart.
    async fn why_no_tls_answer(&self, key: &'static str) -> RedisError {
        let Address::Tcp { host, port } = &self.redis().url.address else {
            return RedisError::Timeout(key);
        };
        if !self.redis().url.tls {
            return RedisError::Timeout(key);
        }
        let plain = async {
            let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.write_all(b"PING\r\n").await?;
            let mut first = [0u8; 1];
            let read = stream.read(&mut first).await?;
            // Every RESP reply to PING starts so: +PONG, -NOAUTH, -ERR...
            Ok::<bool, std::io::Error>(read == 1 && matches!(first[0], b'+' | b'-'))
        };
        match tokio::time::timeout(self.redis().timeout.get(), plain).await {
            Ok(Ok(true)) => RedisError::Tls(
                "TLS handshake failed: the server does not speak TLS on this port \
                 (it answers plain Redis); use a redis:// URL for it"
                    .into(),
            ),
            _ => RedisError::Timeout(key),
        }
    }

    /// A `redis://` connect that the server closed may have reached a TLS
    /// port: Redis drops a connection whose first bytes are no TLS record.
    /// On this failure path only, one TLS hello within `redis.timeout`
    /// tells the two apart: a TLS port answers with a handshake record or
    /// an alert.
    async fn why_closed(&self, message: String) -> RedisError {
        let Address::Tcp { host, port } = &self.redis().url.address else {
            return RedisError::Unreachable(message);
        };
        let Some(hello) = crate::tls::client_hello(host).filter(|_| !self.redis().url.tls) else {
            return RedisError::Unreachable(message);
        };
        let tls = async {
            let mut stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.write_all(&hello).await?;
            let mut first = [0u8; 1];
            let read = stream.read(&mut first).await?;
            // A TLS record: 0x16 handshake, 0x15 alert.
            Ok::<bool, std::io::Error>(read == 1 && matches!(first[0], 0x15 | 0x16))
        };
        match tokio::time::timeout(self.redis().timeout.get(), tls).await {
            Ok(Ok(true)) => RedisError::Tls("this port speaks TLS: use rediss://".into()),
            _ => RedisError::Unreachable(message),
        }
    }

    /// The password and TLS configuration as the files hold them now, read
    /// on a blocking thread: a hung mount then costs a timeout, not a
    /// runtime worker that `redis.timeout` could never interrupt.
    async fn read_credentials(&self) -> Result<(Option<SecretString>, Option<Tls>), RedisError> {
        let settings = self.redis().clone();
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
            .map_err(|_| RedisError::Internal("reading the credential files failed".into()))?
    }

    fn client(
        &self,
        password: Option<&SecretString>,
        tls: Option<rustls::ClientConfig>,
        resp3: bool,
    ) -> fred::clients::Client {
        let url = &self.redis().url;
        let connect_timeout = self.redis().connect_timeout.get();
        let tls = tls.map(|config| TlsConfig {
            connector: config.into(),
            // Host mapping is for cluster routing, which is never used.
            hostnames: TlsHostMapping::None,
        });
        let server = match &url.address {
            Address::Tcp { host, port } => ServerConfig::Centralized {
                server: Server::new_with_tls(
                    host.clone(),
                    *port,
                    self.redis().tls.server_name.clone(),
                ),
            },
            Address::Unix(path) => ServerConfig::Unix { path: path.clone() },
        };
        let config = Config {
            server,
            username: url.username.clone(),
            password: password.map(|p| p.expose_secret().to_owned()),
            // PING and INFO are server-wide: no SELECT, which a user limited
            // to `+ping +info` may not run.
            database: None,
            version: if resp3 {
                RespVersion::RESP3
            } else {
                RespVersion::RESP2
            },
            fail_fast: true,
            tls,
            ..Config::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: connect_timeout,
            internal_command_timeout: connect_timeout,
            max_command_attempts: 1,
            reconnect_on_auth_error: false,
            ..ConnectionConfig::default()
        };
        let performance = PerformanceConfig {
            default_command_timeout: self.redis().timeout.get(),
            ..PerformanceConfig::default()
        };
        fred::clients::Client::new(config, Some(performance), Some(connection), None)
    }

    /// The check's commands on an open connection, within `redis.timeout`:
    /// PING and INFO, then what the checks in force need beyond INFO.
    async fn ask(&self, connection: &Connection) -> Result<Observation, RedisError> {
        let client = &connection.client;
        bounded(self.redis().timeout.get(), "redis.timeout", async {
            let (latency, info, misconf) = ping_and_info(client).await?;
            let mut snapshot = Snapshot::parse(&info);
            snapshot.misconf = misconf;
            if let Some(record) = &connection.tls {
                let dates = record.dates();
                record.reread_if_due(&dates, &self.settings);
                snapshot.tls = Some(dates);
            }
            if let Some(sentinel) = &mut snapshot.sentinel {
                // A Sentinel has no slow log or cluster state to read.
                for master in &mut sentinel.masters {
                    if self.settings.sentinel.judges(&master.name) {
                        master.quorum_ok = Some(quorum(client, &master.name).await?);
                    }
                }
                return Ok(Observation { latency, snapshot });
            }
            if self.read_slowlog {
                snapshot.slowlog_last_id = newest_slowlog_id(client).await?;
                snapshot.slowlog_len = match snapshot.slowlog_last_id {
                    Some(_) => slowlog_len(client).await?,
                    None => Some(0),
                };
            }
            if self.settings.checks.cluster.enabled && snapshot.cluster_enabled {
                let text: String = fail_fast(client)
                    .cluster_info()
                    .await
                    .map_err(|e| RedisError::classify(&e, None))?;
                snapshot.cluster = Some(ClusterInfo::parse(&text));
            }
            Ok(Observation { latency, snapshot })
        })
        .await
    }
}

/// `work` within `limit`, else a timeout naming the key that set it.
async fn bounded<T>(
    limit: Duration,
    key: &'static str,
    work: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(RedisError::Timeout(key)))
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

/// `SENTINEL CKQUORUM` for one judged master: whether it answered OK. A
/// NOQUORUM answer is the finding; any other error (a refused command, a
/// lost connection) fails the check.
async fn quorum(client: &fred::clients::Client, name: &str) -> Result<bool, RedisError> {
    let answer: Result<String, FredError> = fail_fast(client)
        .custom(fred::cmd!("SENTINEL"), vec!["CKQUORUM", name])
        .await;
    match answer {
        Ok(_) => Ok(true),
        Err(error) if error.details().starts_with("NOQUORUM") => Ok(false),
        Err(error) => Err(RedisError::classify(&error, None)),
    }
}

/// PING and INFO in one pipelined round trip: on a slow link a check costs
/// one round trip, not two. The latency is that round trip's.
/// PING and INFO, pipelined; a PING answered MISCONF (a primary refusing
/// writes for a disk error) is that answer, not a failure: INFO still says why.
async fn ping_and_info(
    client: &fred::clients::Client,
) -> Result<(Duration, String, Option<String>), RedisError> {
    let pipeline = client.pipeline().with_options(&Options {
        fail_fast: true,
        max_attempts: Some(1),
        ..Options::default()
    });
    let classify = |e: FredError| RedisError::classify(&e, None);
    // Queued in memory; nothing is sent until `try_all`.
    let () = pipeline.ping(None).await.map_err(classify)?;
    // Plain INFO: several sections in one call is Redis 7 only.
    let () = pipeline.info(None).await.map_err(classify)?;
    let started = Instant::now();
    let mut replies = pipeline.try_all::<Value>().await.into_iter();
    let latency = started.elapsed();
    let misconf = match replies
        .next()
        .unwrap_or_else(|| Err(FredError::new(ErrorKind::Unknown, "no reply to PING")))
        .map_err(classify)
    {
        Ok(_) => None,
        Err(RedisError::Reply(message)) if message.starts_with("MISCONF") => Some(message),
        Err(error) => return Err(error),
    };
    let info: String = replies
        .next()
        .unwrap_or_else(|| Err(FredError::new(ErrorKind::Unknown, "no reply to INFO")))
        .and_then(|v| v.convert())
        .map_err(|e| match classify(e) {
            // Redis 6 quotes the name with backticks, 7 and later with quotes.
            RedisError::Reply(m) if m.starts_with("ERR unknown command") && m.contains("INFO") => {
                RedisError::Reply(INFO_MISSING.into())
            }
            other => other,
        })?;
    Ok((latency, info, misconf))
}

/// Reads a password file, trimming the trailing newline editors and `echo`
/// add. An empty file means no password (systemd's empty credential
/// fallback, an unset Secret key). Also what config validation runs.
pub fn read_password_file(path: &Path) -> std::io::Result<Option<SecretString>> {
    // The error names no path: a password pasted where its file belongs
    // would otherwise be printed.
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read the file: {e}")))?;
    let password = text.trim_end_matches(['\r', '\n']);
    Ok((!password.is_empty()).then(|| SecretString::from(password.to_owned())))
}

/// The password to use now: the file wins over the URL.
fn current_password(redis: &RedisSettings) -> std::io::Result<Option<SecretString>> {
    match &redis.password_file {
        Some(file) => read_password_file(file),
        None => Ok(redis.url.password.clone()),
    }
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
    fn a_failed_handshake_is_a_tls_error() {
        let error = classify(
            ErrorKind::IO,
            "Custom { kind: InvalidData, error: InvalidCertificate(UnknownIssuer) }",
        );
        assert!(matches!(error, RedisError::Tls(_)), "{error:?}");
    }

    #[test]
    fn the_password_is_cut_from_messages() {
        let secret = SecretString::from("hunter2");
        let error = FredError::new(ErrorKind::Unknown, "ERR something about hunter2");
        let classified = RedisError::classify(&error, Some(&secret));
        assert_eq!(classified.to_string(), "ERR something about [redacted]");
    }
}
