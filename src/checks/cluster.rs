//! `cluster`: what this node says about the Redis Cluster it belongs to
//! (CLUSTER INFO), present only on a node with `cluster_enabled:1`. A node
//! that is fine itself still cannot serve its keys while the cluster is down.
//!
//! `cluster_state` is Redis's own verdict (cluster.c `clusterUpdateState`):
//! it turns `fail` when a slot is unserved and `cluster-require-full-coverage`
//! is yes, or when this node sits in a minority partition. While it says
//! `ok` the node serves its slots, so failing slots elsewhere only warn.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::verdict::Reason;

/// `checks.cluster`: on a cluster node only; costs a CLUSTER INFO per check
/// and the `+cluster|info` ACL permission.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    pub enabled: bool,
}

impl Default for Cluster {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Check for Cluster {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("cluster_state", "state")];

    fn applies(snap: &Snapshot) -> bool {
        snap.cluster_enabled
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let Some(cluster) = &snap.cluster else {
            return CheckResult::default();
        };
        let mut result = CheckResult::default();
        if let Some(state) = &cluster.state {
            result = result.observe("cluster_state", state.as_str());
        }
        for (key, value) in [
            ("slots_assigned", cluster.slots_assigned),
            ("slots_ok", cluster.slots_ok),
            ("slots_pfail", cluster.slots_pfail),
            ("slots_fail", cluster.slots_fail),
            ("known_nodes", cluster.known_nodes),
        ] {
            if let Some(value) = value {
                result = result.observe(key, value);
            }
        }
        let failing = cluster.slots_pfail.unwrap_or(0) > 0 || cluster.slots_fail.unwrap_or(0) > 0;
        result
            .fail_if(
                cluster.state.as_deref() == Some("fail"),
                Reason::ClusterDown,
            )
            .fail_if(failing, Reason::ClusterSlotsFailing)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn cluster(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.cluster.evaluate(snap, window)
    }
    use crate::info::ClusterInfo;

    fn node(state: &str, pfail: u64, fail: u64) -> Snapshot {
        Snapshot {
            cluster_enabled: true,
            cluster: Some(ClusterInfo {
                state: Some(state.into()),
                slots_assigned: Some(16384),
                slots_ok: Some(16384 - pfail - fail),
                slots_pfail: Some(pfail),
                slots_fail: Some(fail),
                known_nodes: Some(3),
            }),
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_healthy_cluster_is_ok_and_shows_its_numbers() {
        let result = evaluate(cluster, &node("ok", 0, 0));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["cluster_state"], "ok");
        assert_eq!(result.observed["slots_assigned"], 16384);
        assert_eq!(result.observed["slots_ok"], 16384);
        assert_eq!(result.observed["known_nodes"], 3);
    }

    #[test]
    fn failing_slots_of_a_peer_only_warn_while_the_state_is_ok() {
        for (pfail, fail) in [(1, 0), (0, 5461)] {
            let result = evaluate(cluster, &node("ok", pfail, fail));
            assert_eq!(result.reasons, vec![Reason::ClusterSlotsFailing]);
            assert_eq!(result.status(), Status::Warn);
        }
    }

    #[test]
    fn a_failed_cluster_is_critical() {
        let result = evaluate(cluster, &node("fail", 10923, 0));
        assert_eq!(
            result.reasons,
            vec![Reason::ClusterDown, Reason::ClusterSlotsFailing]
        );
        assert_eq!(result.status(), Status::Critical);
        let result = evaluate(cluster, &node("fail", 0, 0));
        assert_eq!(result.reasons, vec![Reason::ClusterDown]);
    }
}
