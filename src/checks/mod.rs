//! The checks: pure functions from what Redis reported to a verdict.
//!
//! Each check lives in its own file with an `evaluate(snapshot, window,
//! thresholds)` and its tests; [`REGISTRY`] lists them with the routes they
//! belong to. Adding a check touches its file and one registry line.

mod clients;
mod cluster;
mod connections;
mod evictions;
mod fragmentation;
pub mod headroom;
mod hit_rate;
mod memory;
mod persistence;
pub mod ping;
mod replication;
mod role;
mod sentinel;
mod slowlog;
mod tls;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::{Reason, Status};

/// One check's verdict: every reason it found and the values it judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckResult {
    /// Worst first.
    pub reasons: Vec<Reason>,
    pub observed: Map<String, Value>,
}

impl CheckResult {
    pub fn status(&self) -> Status {
        self.reasons.first().map_or(Status::Ok, |r| r.status())
    }

    /// Records a value the check judged, for the body.
    pub fn observe(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.observed.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a reason, keeping the list worst first.
    pub fn fail(mut self, reason: Reason) -> Self {
        self.reasons.push(reason);
        self.reasons.sort_by_key(|r| std::cmp::Reverse(r.status()));
        self
    }

    pub fn fail_if(self, condition: bool, reason: Reason) -> Self {
        if condition { self.fail(reason) } else { self }
    }

    /// A check that judged nothing, with why (INFO lacks the fields it
    /// reads: a fork, an older server): never a bare `ok`.
    pub fn skipped(why: &'static str) -> Self {
        Self::default().observe(SKIPPED, why)
    }

    /// Why the check judged nothing, if it did not (see [`Self::skipped`]).
    pub fn skipped_because(&self) -> Option<&str> {
        self.observed.get(SKIPPED).and_then(Value::as_str)
    }
}

/// The body key of a check that judged nothing; its value says why.
const SKIPPED: &str = "skipped";

/// Counter growth over the hit-rate window, computed once per check from the
/// sample history (see [`crate::history`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub span: Duration,
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
    pub rejected: u64,
    /// Entries added to the slow log.
    pub slow: u64,
}

/// Which routes a check answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The node's own health: /health/redis and /health.
    Node,
    /// Replication for the node's role: /health/replica and /health.
    Replication,
    /// Whether the node is the primary: /health/primary only.
    Role,
    /// A Sentinel's view of its masters: /health/sentinel, and on a Sentinel
    /// /health/redis and /health too.
    Sentinel,
}

impl Group {
    /// Whether the group's checks are for a Sentinel process rather than a
    /// data node: each kind is judged by its own checks only.
    pub fn for_sentinel(self) -> bool {
        self == Group::Sentinel
    }
}

pub type Evaluate = fn(&Snapshot, &Window, &CheckSettings) -> CheckResult;

/// An observed key and its unit; the health+json body shows the first of a
/// check's measures that it observed as `observedValue`.
pub type Measure = (&'static str, &'static str);

/// A registry entry: a check and the routes and settings that govern it.
pub struct Check {
    pub name: &'static str,
    pub group: Group,
    pub evaluate: Evaluate,
    /// `checks.<name>.enabled`: a disabled check is left out of every route.
    pub enabled: fn(&CheckSettings) -> bool,
    pub measures: &'static [Measure],
    /// Whether the check means anything for this node; if not, it is left
    /// out of the body (e.g. `cluster` on a node that is not in a cluster).
    /// A check that applies but whose INFO fields are missing says so with
    /// [`CheckResult::skipped`].
    pub applies: fn(&Snapshot) -> bool,
    /// Judges counter growth over the window, so it is left out where no
    /// history is kept (`redis-health check`) rather than reported ok.
    pub windowed: bool,
}

/// `applies` for the checks that every node has.
fn always(_: &Snapshot) -> bool {
    true
}

/// Every check but `ping`, which every route runs first (see [`ping`]).
pub const REGISTRY: &[Check] = &[
    Check {
        name: "memory",
        group: Group::Node,
        evaluate: memory::evaluate,
        enabled: |s| s.memory.enabled,
        measures: &[("ratio", "ratio"), ("used_bytes", "bytes")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "hit_rate",
        group: Group::Node,
        evaluate: hit_rate::evaluate,
        enabled: |s| s.hit_rate.enabled,
        measures: &[("ratio", "ratio"), ("lookups", "lookups")],
        applies: always,
        windowed: true,
    },
    Check {
        name: "persistence",
        group: Group::Node,
        evaluate: persistence::evaluate,
        enabled: |s| s.persistence.enabled,
        measures: &[("rdb_last_bgsave_status", "status")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "fragmentation",
        group: Group::Node,
        evaluate: fragmentation::evaluate,
        enabled: |s| s.fragmentation.enabled,
        measures: &[("ratio", "ratio")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "clients",
        group: Group::Node,
        evaluate: clients::evaluate,
        enabled: |s| s.clients.enabled,
        measures: &[("connected", "clients")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "evictions",
        group: Group::Node,
        evaluate: evictions::evaluate,
        enabled: |s| s.evictions.enabled,
        measures: &[("evicted_keys", "keys")],
        applies: always,
        windowed: true,
    },
    Check {
        name: "connections",
        group: Group::Node,
        evaluate: connections::evaluate,
        enabled: |s| s.connections.enabled,
        measures: &[("rejected", "connections")],
        applies: always,
        windowed: true,
    },
    Check {
        name: "cluster",
        group: Group::Node,
        evaluate: cluster::evaluate,
        enabled: |s| s.cluster.enabled,
        measures: &[("cluster_state", "state")],
        applies: |snap| snap.cluster_enabled,
        windowed: false,
    },
    Check {
        name: "slowlog",
        group: Group::Node,
        evaluate: slowlog::evaluate,
        enabled: |s| s.slowlog.active(),
        measures: &[("slow_entries", "entries")],
        applies: always,
        windowed: true,
    },
    Check {
        name: "headroom",
        group: Group::Node,
        evaluate: headroom::evaluate,
        enabled: |s| s.headroom.enabled,
        measures: &[("ratio", "ratio"), ("rss_bytes", "bytes")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "tls",
        group: Group::Node,
        evaluate: tls::evaluate,
        enabled: |s| s.tls.enabled,
        measures: &[("expires_in_s", "s")],
        applies: |snap| snap.tls.is_some(),
        windowed: false,
    },
    Check {
        name: "replication",
        group: Group::Replication,
        evaluate: replication::evaluate,
        enabled: |s| s.replication.enabled,
        measures: &[
            ("master_link_status", "status"),
            ("replicas_online", "replicas"),
        ],
        applies: always,
        windowed: false,
    },
    Check {
        name: "role",
        group: Group::Role,
        evaluate: role::evaluate,
        // What /health/primary answers: disabling it would make every
        // replica look like a primary to a write pool.
        enabled: |_| true,
        measures: &[("role", "role")],
        applies: always,
        windowed: false,
    },
    Check {
        name: "sentinel",
        group: Group::Sentinel,
        evaluate: sentinel::evaluate,
        // What /health/sentinel answers.
        enabled: |_| true,
        measures: &[("tilt", "boolean")],
        applies: |snap| snap.sentinel.is_some(),
        windowed: false,
    },
];

/// Rounds a ratio for the body: three decimals say enough.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
pub(crate) mod test_support {
    pub use super::*;
    pub use crate::config::CheckSettings;
    pub use crate::info::Snapshot;
    pub use crate::verdict::{Reason, Status};

    pub fn evaluate(check: Evaluate, snap: &Snapshot) -> CheckResult {
        check(snap, &Window::default(), &CheckSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_stay_worst_first() {
        let result = CheckResult::default()
            .fail(Reason::ClientsHigh)
            .fail(Reason::MemoryPressure)
            .fail(Reason::LowHitRate);
        assert_eq!(
            result.reasons,
            vec![
                Reason::MemoryPressure,
                Reason::LowHitRate,
                Reason::ClientsHigh
            ]
        );
        assert_eq!(result.status(), Status::Critical);
    }
}
