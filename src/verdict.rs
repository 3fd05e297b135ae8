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

    #[test]
    fn statuses_are_ordered_by_severity() {
        assert!(Status::Ok < Status::Warn);
        assert!(Status::Warn < Status::Degraded);
        assert!(Status::Degraded < Status::Critical);
        assert!(Status::Critical < Status::Down);
    }
}
