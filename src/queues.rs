//! Job queues held in Redis (`[[queues]]`): their definitions, what the
//! background sampler sends for them (one pipelined round trip per
//! `checks.sample_interval`, never per probe) and what it keeps between
//! samples to tell a stall from work: a hash of the item at the consumers'
//! end of each list (never the item itself) and each stream group's read
//! position, each with the time it was first seen unchanged.
//!
//! Redis sees at most two commands per queue per sample (three for BullMQ,
//! whose failed jobs are a sorted set of their own): `LLEN` + `LINDEX` for a
//! list, `XLEN` (or `XINFO STREAM` on Redis 6.2, whose groups have no lag)
//! and `XINFO GROUPS` for a stream, `ZCARD` for a sorted set. A key of another
//! type answers WRONGTYPE; the next sample sends `TYPE` alone to name it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, DAY, Within};

/// At most this many `[[queues]]`: every one costs commands each sample.
pub const MAX_QUEUES: usize = 64;

/// `[[queues]]`: the queues judged, in the order configured.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Queues(pub Vec<QueueDef>);

/// One `[[queues]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueDef {
    pub name: QueueName,
    pub kind: Kind,
    /// The Redis key, or for a preset the queue's own name.
    pub key: String,
    /// BullMQ only: the key prefix (`bull` unless the app set another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// 0 = off.
    #[serde(default)]
    pub warn_length: u64,
    /// 0 = off.
    #[serde(default)]
    pub fail_length: u64,
    /// `0s` = off.
    #[serde(default = "default_stall_after")]
    pub stall_after: Within<true, DAY>,
    /// `list` only: the end consumers take from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop_from: Option<PopFrom>,
    /// `stream` only: the one group judged (default: every group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

fn default_stall_after() -> Within<true, DAY> {
    Within::of(Duration::from_secs(300))
}

/// A queue's label in bodies and metrics: `[a-z0-9_-]{1,64}`, so it needs no
/// escaping anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

impl QueueName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for QueueName {
    type Error = &'static str;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        let allowed =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if (1..=64).contains(&name.len()) && name.bytes().all(allowed) {
            Ok(Self(name))
        } else {
            Err("must be 1 to 64 characters of a-z, 0-9, _ and -")
        }
    }
}

impl From<QueueName> for String {
    fn from(name: QueueName) -> Self {
        name.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    List,
    Stream,
    Zset,
    /// RQ: `rq:queue:<name>`, RPUSH + BLPOP.
    Rq,
    /// Celery (kombu's Redis transport): the list named after the queue, LPUSH + BRPOP.
    Celery,
    /// BullMQ: `<prefix>:<name>:wait`, LPUSH + (BR)RPOPLPUSH/LMOVE from the right.
    Bullmq,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Stream => "stream",
            Kind::Zset => "zset",
            Kind::Rq => "rq",
            Kind::Celery => "celery",
            Kind::Bullmq => "bullmq",
        }
    }

    /// The Redis type the key read must have.
    fn redis_type(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Zset => "zset",
            Kind::List | Kind::Rq | Kind::Celery | Kind::Bullmq => "list",
        }
    }
}

/// The end of a list the consumers take from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PopFrom {
    Left,
    Right,
}

impl QueueDef {
    /// The Redis key actually read.
    pub fn redis_key(&self) -> String {
        match self.kind {
            Kind::List | Kind::Stream | Kind::Zset | Kind::Celery => self.key.clone(),
            Kind::Rq => format!("rq:queue:{}", self.key),
            Kind::Bullmq => format!("{}:{}:wait", self.bullmq_prefix(), self.key),
        }
    }

    fn bullmq_prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("bull")
    }

    /// The index of the item consumers take next, for a list.
    fn end(&self) -> Option<&'static str> {
        match (self.kind, self.pop_from) {
            (Kind::List, Some(PopFrom::Left)) | (Kind::Rq, _) => Some("0"),
            (Kind::List, _) | (Kind::Celery | Kind::Bullmq, _) => Some("-1"),
            (Kind::Stream | Kind::Zset, _) => None,
        }
    }

    /// Whether the sampler's state for `self` still holds for `other`.
    fn reads_like(&self, other: &QueueDef) -> bool {
        self.redis_key() == other.redis_key()
            && self.kind == other.kind
            && self.end() == other.end()
            && self.group == other.group
    }
}

impl Queues {
    pub fn get(&self) -> &[QueueDef] {
        &self.0
    }

    /// The rules across keys serde cannot express per field; the key is
    /// named as `queues[N].<key>`, N counted from 0 as in the file.
    pub fn check_tables(&self) -> Result<(), ConfigError> {
        if self.0.len() > MAX_QUEUES {
            return Err(ConfigError::new(
                "queues",
                format!("at most {MAX_QUEUES} queues (each costs commands every sample)"),
            ));
        }
        for (index, queue) in self.0.iter().enumerate() {
            let key = |name: &str| format!("queues[{index}].{name}");
            let refuse = |name: &str, why: &str| Err(ConfigError::new(&key(name), why));
            if self.0[..index].iter().any(|q| q.name == queue.name) {
                return refuse("name", "repeats the name of an earlier queue");
            }
            if queue.key.is_empty() || queue.key.len() > 1024 {
                return refuse("key", "must be 1 to 1024 bytes");
            }
            if queue.pop_from.is_some() && queue.kind != Kind::List {
                return refuse(
                    "pop_from",
                    "only for kind = \"list\" (a preset knows its end; streams and sorted sets have none)",
                );
            }
            if queue.group.is_some() && queue.kind != Kind::Stream {
                return refuse("group", "only for kind = \"stream\"");
            }
            if queue.group.as_deref().is_some_and(str::is_empty) {
                return refuse("group", "must not be empty");
            }
            if queue.prefix.is_some() && queue.kind != Kind::Bullmq {
                return refuse("prefix", "only for kind = \"bullmq\"");
            }
            if queue.prefix.as_deref().is_some_and(str::is_empty) {
                return refuse("prefix", "must not be empty");
            }
            if queue.warn_length > 0
                && queue.fail_length > 0
                && queue.warn_length > queue.fail_length
            {
                return refuse("warn_length", "must not be above fail_length");
            }
        }
        Ok(())
    }
}

/// One command of a sample, as sent.
pub type Command = (&'static str, Vec<String>);

/// What Redis answered one command: a value, or its error reply in words.
pub type Reply = Result<fred::prelude::Value, String>;

/// What one sample read of one queue, for the check to judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub name: QueueName,
    /// The Redis key read.
    pub key: String,
    pub state: ReadState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReadState {
    Read(Backlog),
    /// The key holds another type: the one found, once `TYPE` named it.
    WrongType(Option<String>),
    /// Judged nothing, with why (a missing stream, a key another cluster
    /// node serves, a command Redis refused).
    Skipped(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    pub length: u64,
    /// How long the consumers' end has not moved while work waits (a list
    /// not empty); `None` when nothing waits or the kind has no end.
    pub unmoved_for: Option<Duration>,
    /// BullMQ's failed jobs.
    pub failed: Option<u64>,
    /// A stream's groups (those judged).
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: String,
    /// Entries not yet delivered to the group; `None` where Redis cannot
    /// say (6.2, or a lag Redis 7 marks unknown after deletions).
    pub lag: Option<u64>,
    pub pending: u64,
    pub consumers: u64,
    pub entries_read: Option<u64>,
    /// Whether entries wait for the group: lag > 0, or without a lag,
    /// pending entries or entries after its last-delivered-id.
    pub behind: bool,
    /// How long its read position has not moved while it is behind.
    pub unmoved_for: Option<Duration>,
}

/// What the sampler keeps of one queue between samples.
#[derive(Debug)]
struct Track {
    def: QueueDef,
    /// The hash of the item at the consumers' end, and since when it is there.
    end: Option<(u64, Instant)>,
    /// Each group's read position (entries-read, else last-delivered-id) and
    /// since when it is there.
    groups: HashMap<String, (String, Instant)>,
    /// The last sample met WRONGTYPE: this one asks `TYPE` alone.
    wrong_type: bool,
    /// A stream on a server whose groups carry no lag (Redis 6.2): read
    /// `XINFO STREAM` for its last id instead of `XLEN`.
    no_lag: bool,
}

/// The sampler's memory of every queue, across samples and reloads.
#[derive(Debug, Default)]
pub struct Tracker {
    tracks: HashMap<QueueName, Track>,
}

impl Tracker {
    /// The commands of one sample, per queue in `defs` order. Forgets the
    /// queues no longer configured and those whose definition changed
    /// what is read; the others keep their state across a reload.
    pub fn plan(&mut self, defs: &[QueueDef]) -> Vec<Vec<Command>> {
        self.tracks.retain(|name, track| {
            defs.iter()
                .any(|d| &d.name == name && d.reads_like(&track.def))
        });
        defs.iter()
            .map(|def| {
                let track = self
                    .tracks
                    .entry(def.name.clone())
                    .or_insert_with(|| Track {
                        def: def.clone(),
                        end: None,
                        groups: HashMap::new(),
                        wrong_type: false,
                        no_lag: false,
                    });
                track.def = def.clone();
                let key = def.redis_key();
                if track.wrong_type {
                    return vec![("TYPE", vec![key])];
                }
                match def.kind {
                    Kind::Stream if track.no_lag => vec![
                        ("XINFO", vec!["STREAM".into(), key.clone()]),
                        ("XINFO", vec!["GROUPS".into(), key]),
                    ],
                    Kind::Stream => vec![
                        ("XLEN", vec![key.clone()]),
                        ("XINFO", vec!["GROUPS".into(), key]),
                    ],
                    Kind::Zset => vec![("ZCARD", vec![key])],
                    Kind::List | Kind::Rq | Kind::Celery | Kind::Bullmq => {
                        let end = def.end().unwrap_or("-1").to_owned();
                        let mut commands =
                            vec![("LLEN", vec![key.clone()]), ("LINDEX", vec![key, end])];
                        if def.kind == Kind::Bullmq {
                            let failed = format!("{}:{}:failed", def.bullmq_prefix(), def.key);
                            commands.push(("ZCARD", vec![failed]));
                        }
                        commands
                    }
                }
            })
            .collect()
    }

    /// Turns one sample's replies (per queue, as [`Self::plan`] sent them)
    /// into readings, updating what is kept for the next sample.
    pub fn record(
        &mut self,
        defs: &[QueueDef],
        replies: Vec<Vec<Reply>>,
        now: Instant,
    ) -> Vec<Reading> {
        defs.iter()
            .zip(replies)
            .map(|(def, replies)| {
                let state = match self.tracks.get_mut(&def.name) {
                    Some(track) => track.record(replies, now),
                    None => ReadState::Skipped("not sampled yet".into()),
                };
                Reading {
                    name: def.name.clone(),
                    key: def.redis_key(),
                    state,
                }
            })
            .collect()
    }
}

impl Track {
    fn record(&mut self, replies: Vec<Reply>, now: Instant) -> ReadState {
        if self.wrong_type {
            let found = replies
                .into_iter()
                .next()
                .and_then(|r| r.ok())
                .and_then(|v| text(&v));
            return match found {
                Some(found) if found != self.def.kind.redis_type() && found != "none" => {
                    ReadState::WrongType(Some(found))
                }
                _ => {
                    // Deleted or replaced by a key of the right type: read it next sample.
                    self.wrong_type = false;
                    ReadState::Skipped("the key changed type; read again next sample".into())
                }
            };
        }
        if let Some(error) = replies.iter().find_map(|r| r.as_ref().err()) {
            if error.starts_with("WRONGTYPE") {
                self.wrong_type = true;
                self.end = None;
                self.groups.clear();
                return ReadState::WrongType(None);
            }
            if error.starts_with("MOVED") || error.starts_with("ASK") {
                return ReadState::Skipped(
                    "another cluster node serves this key: its own sidecar judges the queue".into(),
                );
            }
            if self.def.kind == Kind::Stream && error.contains("no such key") {
                self.groups.clear();
                return ReadState::Skipped(
                    "the stream does not exist (yet): no group can be judged".into(),
                );
            }
            return ReadState::Skipped(format!("Redis refused a queue command: {error}"));
        }
        let values: Vec<fred::prelude::Value> =
            replies.into_iter().filter_map(Result::ok).collect();
        match self.def.kind {
            Kind::Zset => ReadState::Read(Backlog {
                length: values.first().and_then(integer).unwrap_or(0),
                ..Backlog::default()
            }),
            Kind::Stream => self.record_stream(&values, now),
            Kind::List | Kind::Rq | Kind::Celery | Kind::Bullmq => {
                let length = values.first().and_then(integer).unwrap_or(0);
                let end = values.get(1).and_then(bytes_hash);
                let unmoved_for = match (length, end) {
                    (1.., Some(hash)) => {
                        let since = match self.end {
                            Some((seen, since)) if seen == hash => since,
                            _ => now,
                        };
                        self.end = Some((hash, since));
                        Some(now.saturating_duration_since(since))
                    }
                    _ => {
                        self.end = None;
                        None
                    }
                };
                ReadState::Read(Backlog {
                    length,
                    unmoved_for,
                    failed: values.get(2).and_then(integer),
                    groups: Vec::new(),
                })
            }
        }
    }

    fn record_stream(&mut self, values: &[fred::prelude::Value], now: Instant) -> ReadState {
        // XLEN, or on Redis 6.2 XINFO STREAM (length and last-generated-id).
        let (length, last_id) = match values.first() {
            Some(value @ (fred::prelude::Value::Array(_) | fred::prelude::Value::Map(_))) => {
                let fields = pairs(value);
                (
                    field(&fields, "length").and_then(integer).unwrap_or(0),
                    field(&fields, "last-generated-id").and_then(text),
                )
            }
            Some(value) => (integer(value).unwrap_or(0), None),
            None => (0, None),
        };
        let groups: Vec<Vec<(String, &fred::prelude::Value)>> = match values.get(1) {
            Some(fred::prelude::Value::Array(groups)) => groups.iter().map(pairs).collect(),
            _ => Vec::new(),
        };
        // Redis 6.2: no lag field at all; read the last id from then on.
        if !self.no_lag
            && groups
                .first()
                .is_some_and(|g| !g.iter().any(|(k, _)| k == "lag"))
        {
            self.no_lag = true;
        }
        let mut judged = Vec::new();
        let mut seen = Vec::new();
        for fields in &groups {
            let Some(name) = field(fields, "name").and_then(text) else {
                continue;
            };
            if self.def.group.as_ref().is_some_and(|only| *only != name) {
                continue;
            }
            let lag = field(fields, "lag").and_then(integer);
            let pending = field(fields, "pending").and_then(integer).unwrap_or(0);
            let consumers = field(fields, "consumers").and_then(integer).unwrap_or(0);
            let entries_read = field(fields, "entries-read").and_then(integer);
            let delivered = field(fields, "last-delivered-id")
                .and_then(text)
                .unwrap_or_default();
            let behind = match lag {
                Some(lag) => lag > 0,
                None => pending > 0 || last_id.as_ref().is_some_and(|last| later(last, &delivered)),
            };
            let position = match entries_read {
                Some(read) => read.to_string(),
                None => delivered,
            };
            let unmoved_for = if behind {
                let since = match self.groups.get(&name) {
                    Some((was, since)) if *was == position => *since,
                    _ => now,
                };
                self.groups.insert(name.clone(), (position, since));
                Some(now.saturating_duration_since(since))
            } else {
                self.groups.remove(&name);
                None
            };
            seen.push(name.clone());
            judged.push(Group {
                name,
                lag,
                pending,
                consumers,
                entries_read,
                behind,
                unmoved_for,
            });
        }
        self.groups.retain(|name, _| seen.contains(name));
        ReadState::Read(Backlog {
            length,
            unmoved_for: None,
            failed: None,
            groups: judged,
        })
    }
}

/// Whether stream id `a` (`ms-seq`) is after `b`.
fn later(a: &str, b: &str) -> bool {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(a) > parse(b)
}

fn integer(value: &fred::prelude::Value) -> Option<u64> {
    match value {
        fred::prelude::Value::Integer(n) => u64::try_from(*n).ok(),
        other => other.as_u64(),
    }
}

fn text(value: &fred::prelude::Value) -> Option<String> {
    value.as_string()
}

/// The item's hash: the sidecar keeps this, never the item (a job's
/// arguments may be anyone's data). `None` for a nil reply.
fn bytes_hash(value: &fred::prelude::Value) -> Option<u64> {
    let bytes = value.as_bytes()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// A flat RESP2 `[field, value, ...]` reply (or a RESP3 map) as pairs.
fn pairs(value: &fred::prelude::Value) -> Vec<(String, &fred::prelude::Value)> {
    match value {
        fred::prelude::Value::Array(items) => items
            .chunks_exact(2)
            .filter_map(|kv| Some((kv[0].as_string()?, &kv[1])))
            .collect(),
        fred::prelude::Value::Map(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
            .collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(
    fields: &[(String, &'a fred::prelude::Value)],
    name: &str,
) -> Option<&'a fred::prelude::Value> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
        .filter(|v| !matches!(v, fred::prelude::Value::Null))
}
