//! Which node Sentinel names as the master (`routes.primary.sentinels`): one
//! `SENTINEL MASTER <name>` per check, to the first Sentinel that answers,
//! over a connection kept open between checks.
//!
//! A primary frozen past `down-after-milliseconds` is failed over; when it
//! resumes it still says `role:master` until Sentinel demotes it, about ten
//! seconds later, and every write it takes then is lost. Redis cannot tell
//! it is the old primary; Sentinel can. The answer is compared by run id,
//! which needs no mapping between the addresses Sentinel and the sidecar use.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::{PrimaryRoute, RedisSettings};

/// What the Sentinels said of the master, for the role check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentinelView {
    /// The master Sentinel names (its address as Sentinel knows it), which
    /// Sentinel said so, and whether that master is this node: `None` when
    /// it cannot be told (see [`Sentinels::names_me`]).
    Master {
        address: String,
        sentinel: String,
        names_me: Option<bool>,
    },
    /// No Sentinel answered within the bounds: why, for the body.
    NoAnswer(String),
}

/// The Sentinels to ask, and the connection to the one that answered last.
pub struct Sentinels {
    addrs: Vec<(String, u16)>,
    master_name: String,
    password_file: Option<PathBuf>,
    connect_timeout: Duration,
    timeout: Duration,
    open: Mutex<Option<Open>>,
    /// The address Sentinel gave for the master while naming this node's
    /// run id: right after a failover Sentinel knows the new master's
    /// address before its run id, and this tells an old primary that the
    /// master has moved away from it.
    my_address: std::sync::Mutex<Option<String>>,
}

struct Open {
    index: usize,
    stream: BufStream<TcpStream>,
}

impl Sentinels {
    /// `None` unless `routes.primary.sentinels` is set (load checks that a
    /// master name comes with it).
    pub fn new(route: &PrimaryRoute, redis: &RedisSettings) -> Option<Self> {
        let master_name = route.master_name.clone()?;
        (!route.sentinels.get().is_empty()).then(|| Self {
            addrs: route.sentinels.get().to_vec(),
            master_name,
            password_file: route.sentinel_password_file.clone(),
            connect_timeout: redis.connect_timeout.get(),
            timeout: redis.timeout.get(),
            open: Mutex::new(None),
            my_address: std::sync::Mutex::new(None),
        })
    }

    /// Asks the Sentinel that answered last, then the others in order, all
    /// within `redis.connect_timeout + redis.timeout`: a dead Sentinel is
    /// refused at once, a hung one costs at most what is left.
    pub async fn ask(&self) -> Result<Answer, String> {
        let deadline = Instant::now() + self.connect_timeout + self.timeout;
        let mut open = self.open.lock().await;
        let first = open.as_ref().map_or(0, |o| o.index);
        let order = (0..self.addrs.len()).map(|i| (first + i) % self.addrs.len());
        let mut failures = Vec::new();
        for index in order {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failures.push("no time left".to_owned());
                break;
            }
            let reused = open.take().filter(|o| o.index == index);
            match tokio::time::timeout(left, self.ask_one(index, reused)).await {
                Ok(Ok(((run_id, address), stream))) => {
                    *open = Some(Open { index, stream });
                    return Ok(Answer {
                        run_id,
                        address,
                        sentinel: self.name(index),
                    });
                }
                Ok(Err(error)) => failures.push(format!("{}: {error}", self.name(index))),
                Err(_) => failures.push(format!("{}: no answer in time", self.name(index))),
            }
        }
        Err(failures.join("; "))
    }

    /// What `answer` says of this node, whose run id the same check read.
    pub fn view(&self, answer: Result<Answer, String>, my_run_id: Option<&str>) -> SentinelView {
        match answer {
            Ok(Answer {
                run_id,
                address,
                sentinel,
            }) => SentinelView::Master {
                names_me: self.names_me(&run_id, &address, my_run_id),
                address,
                sentinel,
            },
            Err(why) => SentinelView::NoAnswer(why),
        }
    }

    /// Whether the master Sentinel names is this node: by run id when
    /// Sentinel knows it; else (Sentinel has not read the new master's INFO
    /// yet) by whether its address is the one it gave while naming this
    /// node; else it cannot be told.
    fn names_me(&self, run_id: &str, address: &str, mine: Option<&str>) -> Option<bool> {
        let mut remembered = self
            .my_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !run_id.is_empty() {
            let me = mine == Some(run_id);
            if me {
                *remembered = Some(address.to_owned());
            }
            return Some(me);
        }
        remembered.as_deref().map(|known| known == address)
    }

    fn name(&self, index: usize) -> String {
        let (host, port) = &self.addrs[index];
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// On the kept connection if there is one, else (or if it has gone
    /// stale since) on a new one.
    async fn ask_one(
        &self,
        index: usize,
        reused: Option<Open>,
    ) -> Result<(Named, BufStream<TcpStream>), String> {
        if let Some(open) = reused
            && let Ok(answer) = query(&self.master_name, open.stream).await
        {
            return Ok(answer);
        }
        let stream = self.dial(index).await?;
        query(&self.master_name, stream).await
    }

    async fn dial(&self, index: usize) -> Result<BufStream<TcpStream>, String> {
        let (host, port) = &self.addrs[index];
        let connect = TcpStream::connect((host.as_str(), *port));
        let tcp = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| "no connection within redis.connect_timeout".to_owned())?
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let mut stream = BufStream::new(tcp);
        if let Some(file) = &self.password_file {
            let file = file.clone();
            let password =
                tokio::task::spawn_blocking(move || crate::redis::read_password_file(&file))
                    .await
                    .map_err(|_| "reading routes.primary.sentinel_password_file failed".to_owned())?
                    .map_err(|e| {
                        format!(
                            "cannot read routes.primary.sentinel_password_file: {}",
                            e.kind()
                        )
                    })?;
            if let Some(password) = password {
                match command(&mut stream, &["AUTH", password.expose_secret()]).await? {
                    Reply::Ok => {}
                    other => return Err(other.explain()),
                }
            }
        }
        Ok(stream)
    }
}

/// `SENTINEL MASTER <name>` on `stream`, handed back for the next check.
async fn query(
    name: &str,
    mut stream: BufStream<TcpStream>,
) -> Result<(Named, BufStream<TcpStream>), String> {
    let reply = command(&mut stream, &["SENTINEL", "MASTER", name]).await?;
    let Reply::Fields(fields) = reply else {
        return Err(reply.explain());
    };
    let field = |key: &str| {
        fields
            .chunks(2)
            .find(|pair| pair[0] == key)
            .and_then(|pair| pair.get(1).cloned())
            .unwrap_or_default()
    };
    let named = (field("runid"), format!("{}:{}", field("ip"), field("port")));
    Ok((named, stream))
}

/// The master's run id (empty until Sentinel has read its INFO) and address.
type Named = (String, String);

/// One Sentinel's answer: the master's run id (empty until Sentinel has read
/// its INFO), its address, and which Sentinel gave it.
pub struct Answer {
    run_id: String,
    address: String,
    sentinel: String,
}

/// The replies this module reads.
enum Reply {
    Ok,
    Error(String),
    /// An array of bulk strings, as `SENTINEL MASTER` answers.
    Fields(Vec<String>),
    Other,
}

impl Reply {
    fn explain(&self) -> String {
        match self {
            Reply::Error(text) => text.clone(),
            _ => "an answer that is not a master's fields".to_owned(),
        }
    }
}

/// Longest line or string read: a master's fields are a few hundred bytes.
const MAX_BYTES: usize = 64 * 1024;

/// Sends one command as a RESP array and reads its reply.
async fn command(stream: &mut BufStream<TcpStream>, args: &[&str]) -> Result<Reply, String> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(&out).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let head = line(stream).await?;
    match head.split_at_checked(1) {
        Some(("+", _)) => Ok(Reply::Ok),
        Some(("-", text)) => Ok(Reply::Error(text.to_owned())),
        Some(("*", count)) => {
            let count: usize = count.parse().map_err(|_| "a malformed reply".to_owned())?;
            let mut fields = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                fields.push(bulk(stream).await?);
            }
            Ok(Reply::Fields(fields))
        }
        _ => Ok(Reply::Other),
    }
}

async fn line(stream: &mut BufStream<TcpStream>) -> Result<String, String> {
    let mut text = String::new();
    let read = (&mut *stream)
        .take(MAX_BYTES as u64)
        .read_line(&mut text)
        .await
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Err("the Sentinel closed the connection".to_owned());
    }
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

async fn bulk(stream: &mut BufStream<TcpStream>) -> Result<String, String> {
    let head = line(stream).await?;
    let len: usize = head
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= MAX_BYTES)
        .ok_or("a malformed reply")?;
    let mut data = vec![0; len + 2];
    stream
        .read_exact(&mut data)
        .await
        .map_err(|e| e.to_string())?;
    data.truncate(len);
    String::from_utf8(data).map_err(|_| "a reply that is not text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentinels() -> Sentinels {
        let route: PrimaryRoute =
            toml::from_str("sentinels = [\"127.0.0.1:26379\"]\nmaster_name = \"mymaster\"")
                .expect("valid route");
        Sentinels::new(&route, &RedisSettings::default()).expect("sentinels set")
    }

    #[test]
    fn a_master_is_this_node_by_run_id_then_by_the_address_it_had() {
        let s = sentinels();
        let (me, other) = ("a".repeat(40), "b".repeat(40));
        // Before any answer naming this node, an unknown run id tells nothing.
        assert_eq!(s.names_me("", "10.0.0.1:6379", Some(&me)), None);
        assert_eq!(s.names_me(&me, "10.0.0.1:6379", Some(&me)), Some(true));
        // A failover: the new master's address, its run id not read yet.
        assert_eq!(s.names_me("", "10.0.0.2:6379", Some(&me)), Some(false));
        assert_eq!(s.names_me("", "10.0.0.1:6379", Some(&me)), Some(true));
        assert_eq!(s.names_me(&other, "10.0.0.2:6379", Some(&me)), Some(false));
    }
}
