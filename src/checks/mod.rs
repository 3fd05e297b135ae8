//! The checks: pure functions from what Redis reported to a verdict.
//!
//! A check is one file here, as a collector is in node_exporter: its
//! settings type (the `checks.<name>` section: serde, defaults, and the
//! rules across its own keys in [`Check::validate`]), its [`Check`] impl
//! (the routes it answers for, what it measures, its pure `evaluate`) and
//! its tests. The INFO fields it reads are parsed in one place,
//! [`crate::info::Snapshot`].
//!
//! Adding a check touches:
//! 1. its file here, with its settings type implementing [`Check`], and its
//!    `mod` line below;
//! 2. one line in the [`registry!`] call below, which makes both its
//!    `checks.<name>` config section and its [`REGISTRY`] entry (a check
//!    that answers for a set of routes no [`Group`] names yet adds the
//!    group here and its routes in `routes.rs`'s `Route::runs`);
//! 3. the reason codes it adds, in `verdict.rs` (the shared vocabulary);
//! 4. its section in `config/default.toml` (a unit test holds the file to
//!    the defaults) and its row in the README;
//! 5. only if it reads what INFO does not say: the fields in `info.rs` and
//!    the command in `redis.rs`'s `ask`, which sends every extra command of
//!    a check within the same `redis.timeout`.

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
mod queues;
mod replication;
mod role;
pub mod sentinel;
pub mod slowlog;
mod tls;
mod writes;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfigError, DAY, HOUR, Settings, Within};
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

/// Counter growth over `checks.window`, computed once per check from the
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
    /// Whether a primary accepts a write now: /health/primary, /health/redis
    /// and /health.
    Writes,
    /// A Sentinel's view of its masters: /health/sentinel and
    /// /health/sentinel/ready, and on a Sentinel /health/redis and /health too.
    Sentinel,
    /// The job queues (`[[queues]]`): /health/queues and /health only; a
    /// stalled worker is no reason to drain Redis.
    Queues,
}

impl Group {
    /// Whether the group's checks are for a Sentinel process rather than a
    /// data node: each kind is judged by its own checks only.
    pub fn for_sentinel(self) -> bool {
        self == Group::Sentinel
    }
}

/// An observed key and its unit; the health+json body shows the first of a
/// check's measures that it observed as `observedValue`.
pub type Measure = (&'static str, &'static str);

/// A check, implemented by its settings type: what it needs to know is its
/// own section of the config.
pub trait Check: std::fmt::Debug + Default + Serialize + DeserializeOwned + Send + Sync {
    /// Which routes it answers for.
    const GROUP: Group;
    /// What the health+json body shows of it.
    const MEASURES: &'static [Measure];
    /// Judges counter growth over the window, so it is left out where no
    /// history is kept (`redis-health check`) rather than reported ok.
    const WINDOWED: bool = false;
    /// Judges the connection rather than the process behind it, so it runs
    /// on a Sentinel as on a data node (its group then says only which
    /// routes).
    const EITHER_KIND: bool = false;

    /// Whether the check means anything for this node; if not, it is left
    /// out of the body (e.g. `cluster` on a node that is not in a cluster).
    /// A check that applies but whose INFO fields are missing says so with
    /// [`CheckResult::skipped`].
    fn applies(_snap: &Snapshot) -> bool {
        true
    }

    /// `checks.<name>.enabled`: a disabled check is left out of every route.
    fn enabled(&self) -> bool;

    fn evaluate(&self, snap: &Snapshot, window: &Window) -> CheckResult;

    /// Rules across this check's own keys, which serde cannot express per
    /// field: the key (within the section) and what is wrong.
    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        Ok(())
    }
}

/// A registry entry: a check with its settings looked up in the config.
pub struct Entry {
    pub name: &'static str,
    pub group: Group,
    pub measures: &'static [Measure],
    pub windowed: bool,
    pub either_kind: bool,
    pub applies: fn(&Snapshot) -> bool,
    pub enabled: fn(&Settings) -> bool,
    pub evaluate: fn(&Settings, &Snapshot, &Window) -> CheckResult,
    pub validate: fn(&Settings) -> Result<(), ConfigError>,
}

/// One [`Entry`]: `$check`'s facts, and its settings found by `$get` in
/// the config, whose section is `$section` (for error keys).
macro_rules! entry {
    ($name:ident, $check:ty, |$s:ident| $get:expr, $section:expr) => {
        Entry {
            name: stringify!($name),
            group: <$check as Check>::GROUP,
            measures: <$check as Check>::MEASURES,
            windowed: <$check as Check>::WINDOWED,
            either_kind: <$check as Check>::EITHER_KIND,
            applies: <$check as Check>::applies,
            enabled: |$s| {
                let check: &$check = $get;
                check.enabled()
            },
            evaluate: |$s, snap, window| {
                let check: &$check = $get;
                check.evaluate(snap, window)
            },
            validate: |$s| {
                let check: &$check = $get;
                check
                    .validate()
                    .map_err(|(key, why)| ConfigError::new(&format!("{}.{key}", $section), why))
            },
        }
    };
}

/// Builds [`CheckSettings`] (the `checks` section: the shared keys, then one
/// section per check) and [`REGISTRY`] from one list. Checks whose settings
/// live elsewhere say where, after `=>`.
macro_rules! registry {
    (
        checks { $($name:ident: $check:ty,)* }
        elsewhere { $($other:ident: $other_check:ty => |$s:ident| $get:expr,)* }
    ) => {
        /// `checks`: the keys every check shares, then each check's section.
        #[derive(Debug, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct CheckSettings {
            /// A probe reuses the last completed check while it is younger than this.
            pub max_age: Within<false, HOUR>,
            /// The background sampler's period, so windows fill without probes.
            pub sample_interval: Within<false, HOUR>,
            /// The window of every windowed check (counter growth over it).
            pub window: Within<false, DAY>,
            /// The `ping` check's thresholds (`checks.latency` before).
            #[serde(alias = "latency")]
            pub ping: ping::Ping,
            $(pub $name: $check,)*
        }

        impl Default for CheckSettings {
            fn default() -> Self {
                Self {
                    max_age: Within::of(Duration::from_secs(1)),
                    sample_interval: Within::of(Duration::from_secs(5)),
                    window: Within::of(Duration::from_secs(300)),
                    ping: ping::Ping::default(),
                    $($name: <$check>::default(),)*
                }
            }
        }

        /// Every check but `ping`, which every route runs first (see [`ping`]).
        pub const REGISTRY: &[Entry] = &[
            $(entry!($name, $check, |s| &s.checks.$name, concat!("checks.", stringify!($name))),)*
            $(entry!($other, $other_check, |$s| $get, stringify!($other)),)*
        ];
    };
}

registry! {
    checks {
        memory: memory::Memory,
        hit_rate: hit_rate::HitRate,
        persistence: persistence::Persistence,
        fragmentation: fragmentation::Fragmentation,
        clients: clients::Clients,
        evictions: evictions::Evictions,
        connections: connections::Connections,
        cluster: cluster::Cluster,
        slowlog: slowlog::Slowlog,
        headroom: headroom::Headroom,
        tls: tls::Tls,
        replication: replication::Replication,
        writes: writes::Writes,
    }
    elsewhere {
        // What /health/primary answers; no settings: disabling it would make
        // every replica look like a primary to a write pool.
        role: role::Role => |_s| &role::Role,
        // What /health/sentinel answers, from the top-level `sentinel` section.
        sentinel: sentinel::Sentinel => |s| &s.sentinel,
        // The top-level `[[queues]]`: what /health/queues answers.
        queues: crate::queues::Queues => |s| &s.queues,
    }
}

/// Rounds a ratio for the body: three decimals say enough.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
pub(crate) mod test_support {
    pub use super::*;
    pub use crate::info::Snapshot;
    pub use crate::verdict::{Reason, Status};

    /// A check as its tests call it: by the whole `checks` section.
    pub type Evaluate = fn(&Snapshot, &Window, &CheckSettings) -> CheckResult;

    /// `check` by the default settings, over an empty window.
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
