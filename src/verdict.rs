//! The shared words of a verdict: how bad ([`Status`]) and why ([`Reason`]).
//!
//! Config (`fail_at`), the checks, the reports and the metrics all speak
//! them, so they live here, below all of those, and import nothing.

use serde::Serialize;

/// How bad a check is, in order of severity; the derive order is the ranking.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Degraded,
    Critical,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a check is not ok. The snake_case names are the public API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Reason {
    // down: Redis could not be asked, or refused to answer.
    Unreachable,
    Timeout,
    AuthFailed,
    Loading,
    Busy,
    MasterDown,
    Error,
    // critical
    MemoryPressure,
    PersistenceFailed,
    ClusterDown,
    OomRisk,
    MasterOdown,
    SentinelNoQuorum,
    SentinelUnknownMaster,
    WritesRefused,
    // degraded
    LowHitRate,
    ReplicaDisconnected,
    ReplicaSyncing,
    ReplicaStale,
    TooFewReplicas,
    ReplicaLagging,
    NotPrimary,
    NotSentinelPrimary,
    MasterSdown,
    SentinelTilt,
    NotDataNode,
    NotSentinel,
    MemoryNearLimit,
    QueueBacklogHigh,
    QueueStalled,
    QueueWrongType,
    // warn
    MemoryHigh,
    LatencyHigh,
    NoMaxmemory,
    HitRateLow,
    Fragmentation,
    ClientsHigh,
    BlockedClients,
    Evicting,
    RejectedConnections,
    SlowCommands,
    RdbStale,
    RssHigh,
    MaxmemoryAboveLimit,
    ForkHeadroom,
    TlsCertExpiring,
    /// Warn, not degraded: while `cluster_state` is ok this node still
    /// serves its own slots (Redis fails the state itself when it cannot,
    /// and `cluster_down` follows), so one failing peer must not drain it.
    ClusterSlotsFailing,
    SaveFailed,
    QueueBacklog,
}

impl Reason {
    /// The snake_case name, as in bodies.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What it means, in a line: the README's reason table, as the status
    /// page shows it (a test holds the two to each other).
    pub fn meaning(self) -> &'static str {
        use Reason::*;
        match self {
            Unreachable => "connection refused or reset, DNS failure",
            Timeout => {
                "no answer within redis.timeout (or, on a reconnect, no connection within redis.connect_timeout)"
            }
            AuthFailed => "NOAUTH or WRONGPASS (or an unreadable password file)",
            Loading => "PING answers LOADING: Redis is loading its dataset",
            Busy => "BUSY: a script is running",
            MasterDown => "MASTERDOWN: a replica with replica-serve-stale-data no and no primary",
            Error => {
                "any other error reply (e.g. NOPERM), an answer that is not RESP at all (an SSH or HTTP port: Decode Error: ...), or a failed TLS handshake, said in words (see TLS)"
            }
            MemoryPressure => {
                "(writes) a primary whose memory as eviction counts it is above maxmemory while its policy can evict nothing (noeviction, or volatile-* with no key that expires): Redis answers writes OOM"
            }
            PersistenceFailed => {
                "(writes) a primary that refuses writes for a disk error: PING answered MISCONF (the body's error is Redis's text), or AOF on with aof_last_write_status:err"
            }
            WritesRefused => {
                "(writes) a primary under min-replicas-to-write with no good replica (min_slaves_good_slaves:0): Redis answers writes NOREPLICAS; the body says \"refused\": \"noreplicas\""
            }
            ClusterDown => {
                "a cluster node whose CLUSTER INFO says cluster_state:fail: the cluster cannot serve this node's keys"
            }
            OomRisk => {
                "used_memory_rss >= headroom.fail_ratio of the memory limit: the kernel's OOM killer is next"
            }
            MasterOdown => {
                "a Sentinel sees a judged master objectively down (status=odown): a quorum agrees it is down"
            }
            SentinelNoQuorum => {
                "SENTINEL CKQUORUM answers NOQUORUM for a judged master: a failover could not be authorised"
            }
            SentinelUnknownMaster => {
                "a name in sentinel.masters that this Sentinel does not monitor"
            }
            LowHitRate => "windowed hit ratio below hit_rate.fail_below",
            ReplicaDisconnected => "master_link_status:down",
            ReplicaSyncing => "master_sync_in_progress:1",
            ReplicaStale => "master_last_io_seconds_ago above replication.max_last_io",
            TooFewReplicas => {
                "a primary with fewer online replicas than replication.min_replicas; counts on /health only (the primary still serves)"
            }
            ReplicaLagging => {
                "a primary with an online replica silent longer than replication.max_replica_lag (INFO lag=, seconds since its last ACK) or further behind than replication.max_lag_bytes (master_repl_offset less its offset); counts on /health only"
            }
            NotPrimary => "/health/primary on a replica",
            NotSentinelPrimary => {
                "/health/primary on a primary that the Sentinels of routes.primary.sentinels do not name as the master: an old primary back from a freeze, whose writes would be lost"
            }
            MasterSdown => {
                "a Sentinel cannot reach a judged master (status=sdown), not yet agreed by a quorum"
            }
            SentinelTilt => {
                "the Sentinel is in TILT mode (sentinel_tilt:1): it distrusts its timer and takes no action"
            }
            NotDataNode => "/health/replica, /health/primary or /health/queues on a Sentinel",
            NotSentinel => "/health/sentinel on a data node",
            MemoryNearLimit => {
                "(memory) ratio >= memory.fail_ratio on a primary whose policy will evict nothing once full (noeviction, volatile-* with no expiring key); writes still succeed. With memory.policy_aware = false, under any policy"
            }
            MemoryHigh => {
                "ratio >= memory.warn_ratio; also at/above fail_ratio under allkeys-* or volatile-* with expiring keys (a full cache evicts, as designed) and on a replica (which neither evicts nor refuses its primary's writes)"
            }
            LatencyHigh => {
                "the round trip of PING and INFO (one pipelined round trip) above latency.warn_above"
            }
            NoMaxmemory => "maxmemory is 0: Redis grows until the OS kills it",
            HitRateLow => "windowed hit ratio below hit_rate.warn_below",
            Fragmentation => {
                "mem_fragmentation_ratio above fragmentation.warn_above, or below 1.0 (swapping), once used_memory >= fragmentation.min_used_bytes"
            }
            ClientsHigh => "connected_clients >= clients.warn_ratio of maxclients",
            BlockedClients => "blocked_clients above clients.blocked_warn_above",
            Evicting => "evicted_keys grew within the hit-rate window",
            RejectedConnections => "rejected_connections grew within the window",
            SlowCommands => {
                "more than slowlog.warn_above slow-log entries added within the window (off by default)"
            }
            RdbStale => {
                "unsaved changes while the last successful save is older than persistence.max_rdb_age (off by default)"
            }
            RssHigh => "used_memory_rss >= headroom.warn_ratio of the memory limit",
            MaxmemoryAboveLimit => {
                "maxmemory above headroom.warn_ratio of the memory limit: full, the cache would itself read rss_high, and fragmentation or a fork could get the kernel to kill Redis before Redis evicts or refuses writes"
            }
            ClusterSlotsFailing => {
                "a cluster node that sees slots in pfail or fail (cluster_slots_pfail or cluster_slots_fail above 0) while its own cluster_state is ok: it still serves its slots"
            }
            ForkHeadroom => {
                "a node that forks (AOF on, a background save since start, or replicas to feed) whose RSS plus its last fork's copy-on-write reaches the limit: the next BGSAVE, AOF rewrite or full sync could be killed"
            }
            SaveFailed => {
                "(persistence) the last RDB save, AOF rewrite or AOF write failed while Redis still accepts writes (no save points, or stop-writes-on-bgsave-error no, a failed rewrite, an AOF write error with AOF since turned off); the body shows the failing status"
            }
            TlsCertExpiring => {
                "on a rediss:// connection, the server's or the client's certificate expires within tls.warn_before (14 days)"
            }
            QueueStalled => {
                "(queues) work waits and the consumers' end has not moved for the queue's stall_after: a list's end item unchanged while the list is not empty, or a stream group behind (lag > 0) whose read position stands still; /health/queues and /health only (see Queues)"
            }
            QueueBacklogHigh => "(queues) the queue's length at or above its fail_length",
            QueueWrongType => {
                "(queues) the queue's key holds another type; the body's type names it"
            }
            QueueBacklog => "(queues) the queue's length at or above its warn_length",
        }
    }

    /// Every reason has one fixed severity.
    pub fn status(self) -> Status {
        use Reason::*;
        match self {
            Unreachable | Timeout | AuthFailed | Loading | Busy | MasterDown | Error => {
                Status::Down
            }
            MemoryPressure
            | PersistenceFailed
            | ClusterDown
            | MasterOdown
            | SentinelNoQuorum
            | SentinelUnknownMaster
            | OomRisk
            | WritesRefused => Status::Critical,
            LowHitRate | ReplicaDisconnected | ReplicaSyncing | ReplicaStale | TooFewReplicas
            | ReplicaLagging | NotPrimary | NotSentinelPrimary | MasterSdown | SentinelTilt
            | NotDataNode | NotSentinel | MemoryNearLimit | QueueBacklogHigh | QueueStalled
            | QueueWrongType => Status::Degraded,
            MemoryHigh | LatencyHigh | NoMaxmemory | HitRateLow | Fragmentation | ClientsHigh
            | BlockedClients | Evicting | RejectedConnections | SlowCommands | RdbStale
            | RssHigh | MaxmemoryAboveLimit | ForkHeadroom | TlsCertExpiring
            | ClusterSlotsFailing | SaveFailed | QueueBacklog => Status::Warn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialise_as_snake_case() {
        let json = serde_json::to_string(&[Reason::MasterDown, Reason::NoMaxmemory]).ok();
        assert_eq!(json.as_deref(), Some(r#"["master_down","no_maxmemory"]"#));
        for reason in <Reason as strum::IntoEnumIterator>::iter() {
            assert_eq!(
                serde_json::to_value(reason).ok(),
                Some(reason.as_str().into())
            );
        }
    }

    /// The README's reason table, each row's meaning with its Markdown
    /// (code spans, links) taken out, is what [`Reason::meaning`] says.
    #[test]
    fn meanings_are_the_readme_reason_table() {
        let readme = include_str!("../README.md");
        let table = readme
            .split_once("| status | reason | meaning |\n|---|---|---|\n")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let mut rows = std::collections::BTreeMap::new();
        for line in table.lines().take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = line.trim_matches('|').splitn(3, " | ").collect();
            if let [status, reason, meaning] = cells[..] {
                rows.insert(
                    reason.trim().trim_matches('`').to_owned(),
                    (status.trim().to_owned(), plain(meaning.trim())),
                );
            }
        }
        for reason in <Reason as strum::IntoEnumIterator>::iter() {
            let row = rows.remove(reason.as_str());
            assert_eq!(
                row,
                Some((
                    reason.status().as_str().to_owned(),
                    reason.meaning().to_owned()
                )),
                "README row for {}",
                reason.as_str()
            );
        }
        assert!(rows.is_empty(), "README rows for no reason: {rows:?}");
    }

    /// Markdown to the text a reader sees: `[text](#anchor)` to `text`, code
    /// spans to their contents.
    fn plain(markdown: &str) -> String {
        let mut text = String::new();
        let mut rest = markdown;
        while let Some(open) = rest.find('[') {
            let Some((label, after)) = rest[open + 1..].split_once("](") else {
                break;
            };
            let Some((_, after)) = after.split_once(')') else {
                break;
            };
            text.push_str(&rest[..open]);
            text.push_str(label);
            rest = after;
        }
        text.push_str(rest);
        text.replace('`', "")
    }

    #[test]
    fn statuses_are_ordered_by_severity() {
        assert!(Status::Ok < Status::Warn);
        assert!(Status::Warn < Status::Degraded);
        assert!(Status::Degraded < Status::Critical);
        assert!(Status::Critical < Status::Down);
    }
}
