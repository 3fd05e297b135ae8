//! `replication`, judged for the node's own role: a replica by its link to
//! its primary, a primary by its online replicas.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::{DAY, Within};
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
    pub max_replica_lag: Within<true, DAY>,
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            enabled: true,
            max_last_io: Within::of(Duration::from_secs(30)),
            min_replicas: 0,
            max_replica_lag: Within::of(Duration::from_secs(10)),
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
    let mut result = CheckResult::default()
        .observe("role", "master")
        .observe("replicas_online", online.len())
        .fail_if(
            (online.len() as u64) < u64::from(thresholds.min_replicas),
            Reason::TooFewReplicas,
        );
    if let Some(lag) = max_lag {
        result = result.observe("max_replica_lag_s", lag).fail_if(
            lag as f64 > thresholds.max_replica_lag.get().as_secs_f64(),
            Reason::ReplicaLagging,
        );
    }
    result
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
}
