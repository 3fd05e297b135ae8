//! `replication`, judged for the node's own role: a replica by its link to
//! its primary, a primary by its online replicas.
//!
//! A primary's replicas are about durability, not about whether the primary
//! serves: their reasons count on /health only (see `Route::judges`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::{DAY, MemoryLimit, Within};
use crate::info::{Role, Snapshot};
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replication {
    pub enabled: bool,
    /// An idle replica's `master_last_io_seconds_ago` climbs to the
    /// primary's `repl-ping-replica-period` (10 s) before each ping: the
    /// bound sits above two periods and below `repl-timeout` (60 s).
    pub max_last_io: Within<true, DAY>,
    pub min_replicas: u32,
    /// Against INFO's `lag=`: seconds since the replica's last REPLCONF
    /// ACK (sent every second), so it catches a silent replica only.
    pub max_replica_lag: Within<true, DAY>,
    /// Against the bytes a replica is behind: the primary's
    /// `master_repl_offset` less the replica's acknowledged `offset`. Unset,
    /// not judged: the bytes in flight grow with the write rate. A sound
    /// bound is `repl-backlog-size`: a replica further behind than the
    /// backlog cannot resume with a partial resync if its link drops.
    pub max_lag_bytes: Option<MemoryLimit>,
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            enabled: true,
            max_last_io: Within::of(Duration::from_secs(30)),
            min_replicas: 0,
            max_replica_lag: Within::of(Duration::from_secs(10)),
            max_lag_bytes: None,
        }
    }
}

impl Check for Replication {
    const GROUP: Group = Group::Replication;
    const MEASURES: &'static [Measure] = &[
        ("master_link_status", "status"),
        ("replicas_online", "replicas"),
    ];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        match snap.role {
            Some(Role::Replica) => replica(snap, self),
            Some(Role::Master) => primary(snap, self),
            None => CheckResult::skipped("INFO has no role"),
        }
    }
}

fn replica(snap: &Snapshot, settings: &Replication) -> CheckResult {
    let max_last_io = settings.max_last_io.get().as_secs_f64();
    let mut result = CheckResult::default().observe("role", "replica");
    if let Some(up) = snap.master_link_up {
        result = result
            .observe("master_link_status", if up { "up" } else { "down" })
            .fail_if(!up, Reason::ReplicaDisconnected);
    }
    if let Some(syncing) = snap.master_sync_in_progress {
        result = result
            .observe("master_sync_in_progress", syncing)
            .fail_if(syncing, Reason::ReplicaSyncing);
    }
    // Redis reports -1 while the link is down; that case is already judged.
    if let Some(last_io) = snap.master_last_io_seconds_ago.filter(|s| *s >= 0) {
        result = result
            .observe("master_last_io_s", last_io)
            .fail_if(last_io as f64 > max_last_io, Reason::ReplicaStale);
    }
    result
}

fn primary(snap: &Snapshot, thresholds: &Replication) -> CheckResult {
    let online: Vec<_> = snap.replicas.iter().filter(|r| r.online).collect();
    let max_lag = online.iter().filter_map(|r| r.lag_s).max();
    let behind = |offset: Option<u64>| {
        snap.master_repl_offset
            .zip(offset)
            .map(|(primary, replica)| primary.saturating_sub(replica))
    };
    let max_behind = online.iter().filter_map(|r| behind(r.offset)).max();
    // Without addresses: bodies never expose them.
    let replicas: Vec<Value> = snap
        .replicas
        .iter()
        .map(|r| json!({"state": r.state, "lag_s": r.lag_s, "lag_bytes": behind(r.offset)}))
        .collect();
    let mut result = CheckResult::default()
        .observe("role", "master")
        .observe("replicas_online", online.len())
        .observe("replicas", replicas)
        .fail_if(
            (online.len() as u64) < u64::from(thresholds.min_replicas),
            Reason::TooFewReplicas,
        );
    if let Some(lag) = max_lag {
        result = result.observe("max_replica_lag_s", lag);
    }
    if let Some(bound) = thresholds.max_lag_bytes {
        result = result.observe("max_lag_bytes", bound.bytes());
    }
    let silent =
        max_lag.is_some_and(|lag| lag as f64 > thresholds.max_replica_lag.get().as_secs_f64());
    let behind_bound = thresholds
        .max_lag_bytes
        .zip(max_behind)
        .is_some_and(|(bound, behind)| behind > bound.bytes());
    result.fail_if(silent || behind_bound, Reason::ReplicaLagging)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn replication(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.replication.evaluate(snap, window)
    }
    use crate::info::{ReplicaInfo, Role};

    fn replica(link_up: bool, syncing: bool, last_io: i64) -> Snapshot {
        Snapshot {
            role: Some(Role::Replica),
            master_link_up: Some(link_up),
            master_sync_in_progress: Some(syncing),
            master_last_io_seconds_ago: Some(last_io),
            ..Snapshot::default()
        }
    }

    fn primary(replicas: &[(bool, u64)], min_replicas: u32) -> CheckResult {
        let snap = Snapshot {
            role: Some(Role::Master),
            replicas: replicas
                .iter()
                .map(|&(online, lag)| ReplicaInfo {
                    online,
                    lag_s: Some(lag),
                    ..ReplicaInfo::default()
                })
                .collect(),
            ..Snapshot::default()
        };
        let mut settings = CheckSettings::default();
        settings.replication.min_replicas = min_replicas;
        replication(&snap, &Window::default(), &settings)
    }

    #[test]
    fn healthy_replica_is_ok() {
        let result = evaluate(replication, &replica(true, false, 1));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["master_link_status"], "up");
    }

    #[test]
    fn replica_link_states() {
        assert_eq!(
            evaluate(replication, &replica(false, false, -1)).reasons,
            vec![Reason::ReplicaDisconnected]
        );
        assert_eq!(
            evaluate(replication, &replica(false, true, -1)).reasons,
            vec![Reason::ReplicaDisconnected, Reason::ReplicaSyncing]
        );
        assert_eq!(
            evaluate(replication, &replica(true, false, 30)).status(),
            Status::Ok
        );
        assert_eq!(
            evaluate(replication, &replica(true, false, 31)).reasons,
            vec![Reason::ReplicaStale]
        );
    }

    #[test]
    fn primary_counts_only_online_replicas() {
        assert_eq!(primary(&[], 0).status(), Status::Ok);
        assert_eq!(
            primary(&[(true, 0), (false, 0)], 2).reasons,
            vec![Reason::TooFewReplicas]
        );
        let result = primary(&[(true, 0), (true, 1)], 2);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["replicas_online"], 2);
    }

    #[test]
    fn primary_with_a_lagging_replica_degrades() {
        assert_eq!(primary(&[(true, 10)], 0).status(), Status::Ok);
        let result = primary(&[(true, 2), (true, 11)], 0);
        assert_eq!(result.reasons, vec![Reason::ReplicaLagging]);
        assert_eq!(result.observed["max_replica_lag_s"], 11);
    }

    /// Behind a slow link: acknowledged a second ago, 6 MB behind.
    fn behind(bytes_behind: u64, max_lag_bytes: Option<&str>) -> CheckResult {
        let snap = Snapshot {
            role: Some(Role::Master),
            master_repl_offset: Some(10_000_000),
            replicas: vec![
                ReplicaInfo {
                    online: true,
                    state: Some("online".into()),
                    offset: Some(10_000_000 - bytes_behind),
                    lag_s: Some(1),
                },
                ReplicaInfo {
                    online: false,
                    state: Some("wait_bgsave".into()),
                    offset: Some(0),
                    lag_s: Some(0),
                },
            ],
            ..Snapshot::default()
        };
        let mut settings = CheckSettings::default();
        settings.replication.max_lag_bytes = max_lag_bytes.and_then(|b| b.parse().ok());
        replication(&snap, &Window::default(), &settings)
    }

    #[test]
    fn a_replica_behind_in_bytes_lags_though_it_acked_a_second_ago() {
        let result = behind(6_000_000, Some("1Mi"));
        assert_eq!(result.reasons, vec![Reason::ReplicaLagging]);
        assert_eq!(result.observed["max_lag_bytes"], 1 << 20);
        assert_eq!(
            result.observed["replicas"],
            serde_json::json!([
                {"state": "online", "lag_s": 1, "lag_bytes": 6_000_000},
                {"state": "wait_bgsave", "lag_s": 0, "lag_bytes": 10_000_000},
            ])
        );
        assert_eq!(behind(1 << 20, Some("1Mi")).status(), Status::Ok);
        let unset = behind(6_000_000, None);
        assert_eq!(unset.status(), Status::Ok, "unset: bytes not judged");
        assert!(!unset.observed.contains_key("max_lag_bytes"));
    }
}
