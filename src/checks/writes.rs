//! `writes`: whether a primary accepts a write now, judged from INFO as
//! Redis 7.0's `processCommand` decides (server.c): OOM when memory is over
//! maxmemory and eviction can free nothing, MISCONF on a disk error
//! (`writeCommandsDeniedByDiskError`), NOREPLICAS when too few good
//! replicas; and, with `routes.primary.sentinels`, an old primary Sentinel
//! no longer names, whose writes will be lost. What refuses nothing (memory near the limit, a failed save
//! Redis ignores) is left to the `memory` and `persistence` checks.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::{Canary, Role, Snapshot};
use crate::sentinels::SentinelView;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Writes {
    /// On by default: its rules read INFO only and send nothing to Redis.
    pub enabled: bool,
    /// Also try a write once per `checks.sample_interval`, from the sampler
    /// (never per probe): `SET <key> <ms> XX PX <2 intervals>`. Redis
    /// judges it as any write before running it (OOM, NOREPLICAS, MISCONF,
    /// READONLY, ACL), and with XX on a key that is not there it changes
    /// nothing: no dirty count (so never `rdb_stale`), no replication
    /// traffic, no key left behind, no keyspace miss.
    pub canary: bool,
    /// The canary's key; the ACL user needs `+set` on it.
    pub key: String,
}

impl Default for Writes {
    fn default() -> Self {
        Self {
            enabled: true,
            canary: false,
            key: "redis-health:canary".to_owned(),
        }
    }
}

impl Check for Writes {
    const GROUP: Group = Group::Writes;
    const MEASURES: &'static [Measure] = &[("refused", "reason")];

    /// Only a primary takes client writes; a replica answers READONLY by design.
    fn applies(snap: &Snapshot) -> bool {
        snap.role == Some(Role::Master)
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.key.is_empty() {
            return Err(("key", "must not be empty"));
        }
        Ok(())
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let mut result = self.canary_result(snap);
        // server.c processCommand: `if (server.maxmemory && !isInsideYieldingLongCommand())
        // { int out_of_memory = (performEvictions() == EVICT_FAIL); ... reject_cmd_on_oom ...
        // rejectCommand(c, shared.oomerr) }`; evict.c getMaxmemoryState returns OK while
        // used_memory - freeMemoryGetNotCountedMemory() <= maxmemory, and performEvictions
        // frees nothing under noeviction or a volatile-* policy over an empty expires dict.
        if let Some(counted) = over_maxmemory(snap).filter(|_| evicts_nothing(snap)) {
            result = result
                .observe("refused", "oom")
                .observe("counted_bytes", counted)
                .fail(Reason::MemoryPressure);
        }
        // server.c processCommand: `int deny_write_type = writeCommandsDeniedByDiskError();
        // if (deny_write_type != DISK_ERROR_TYPE_NONE && (is_write_command || c->cmd->proc ==
        // pingCommand))` on a primary: rejectCommand(c, shared.bgsaveerr) or the AOF error.
        if let Some(message) = &snap.misconf {
            result = result
                .observe("refused", "misconf")
                .observe("error", message.as_str())
                .fail(Reason::PersistenceFailed);
        }
        // server.c writeCommandsDeniedByDiskError: `else if (server.aof_state != AOF_OFF)
        // { if (server.aof_last_write_status == C_ERR) return DISK_ERROR_TYPE_AOF; }`.
        if snap.misconf.is_none()
            && snap.aof_enabled == Some(true)
            && snap.aof_last_write_ok == Some(false)
        {
            result = result
                .observe("refused", "misconf")
                .observe("aof_last_write_status", "err")
                .fail(Reason::PersistenceFailed);
        }
        // server.c processCommand: `if (is_write_command && !checkGoodReplicasStatus())
        // { rejectCommand(c, shared.noreplicaserr) }`; INFO shows min_slaves_good_slaves
        // only while min-replicas-to-write and min-replicas-max-lag are both set.
        if snap.min_slaves_good_slaves == Some(0) {
            result = result
                .observe("refused", "noreplicas")
                .observe("good_replicas", 0)
                .fail(Reason::WritesRefused);
        }
        sentinel_agrees(result, snap)
    }
}

/// On a node that says it is the primary, whether Sentinel says so too
/// (`routes.primary.sentinels`): another run id named means this node is an
/// old primary, still `role:master` until Sentinel demotes it, whose writes
/// will be lost. No Sentinel answering leaves the verdict to the role, and
/// the body says so.
pub fn sentinel_agrees(result: CheckResult, snap: &Snapshot) -> CheckResult {
    match &snap.sentinel_view {
        None => result,
        Some(SentinelView::NoAnswer(why)) => result.observe(
            "sentinel",
            format!("no Sentinel answered, judged by role alone: {why}"),
        ),
        Some(SentinelView::Master {
            address,
            sentinel,
            names_me,
        }) => {
            let result = result
                .observe("sentinel", sentinel.as_str())
                .observe("sentinel_master", address.as_str());
            match names_me {
                Some(me) => result.fail_if(!me, Reason::NotSentinelPrimary),
                None => result.observe(
                    "sentinel_master_is_this_node",
                    "not known yet (Sentinel has not read its run id): judged by role alone",
                ),
            }
        }
    }
}

impl Writes {
    /// What the last canary said, when it runs: its round trip, or Redis's
    /// refusal in Redis's words.
    fn canary_result(&self, snap: &Snapshot) -> CheckResult {
        let result = CheckResult::default();
        if !self.canary {
            return result;
        }
        if snap.cluster_enabled {
            return result.observe(
                "canary",
                "skipped: on a cluster node the key's slot may be another node's",
            );
        }
        match &snap.canary {
            None => result.observe("canary", "not run yet: it runs once per sample"),
            Some(Canary { refused: None, rtt }) => {
                result.observe("canary_ms", super::round3(rtt.as_secs_f64() * 1000.0))
            }
            Some(Canary {
                refused: Some(error),
                rtt,
            }) => result
                .observe("canary_ms", super::round3(rtt.as_secs_f64() * 1000.0))
                .observe("refused", "canary")
                .observe("canary_error", error.as_str())
                .fail(Reason::WritesRefused),
        }
    }
}

/// Memory as eviction counts it, when it is above maxmemory (evict.c
/// `getMaxmemoryState`: `if (mem_used <= server.maxmemory) return C_OK`).
fn over_maxmemory(snap: &Snapshot) -> Option<u64> {
    let max = snap.maxmemory.filter(|max| *max > 0)?;
    let counted = snap
        .used_memory?
        .saturating_sub(snap.mem_not_counted_for_evict.unwrap_or(0));
    (counted > max).then_some(counted)
}

/// Whether the policy can free nothing, so a full Redis refuses writes
/// (evict.c `performEvictions`: `noeviction` goes straight to `cant_free`; a
/// `volatile-*` policy samples `db->expires` only, empty when no key expires).
/// An unknown policy is taken to refuse, as Redis's default `noeviction` does.
pub(super) fn evicts_nothing(snap: &Snapshot) -> bool {
    match snap.maxmemory_policy.as_deref() {
        Some(policy) if policy.starts_with("volatile-") => snap.keys_with_expiry == 0,
        Some(policy) => policy == "noeviction",
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;
    use crate::info::Role;
    use crate::sentinels::SentinelView;

    fn writes(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.writes.evaluate(snap, window)
    }

    fn primary() -> Snapshot {
        Snapshot {
            role: Some(Role::Master),
            used_memory: Some(500),
            maxmemory: Some(1000),
            maxmemory_policy: Some("noeviction".into()),
            aof_enabled: Some(false),
            aof_last_write_ok: Some(true),
            ..Snapshot::default()
        }
    }

    fn full(policy: &str, expiring: u64) -> Snapshot {
        Snapshot {
            used_memory: Some(1001),
            maxmemory_policy: Some(policy.into()),
            keys_with_expiry: expiring,
            ..primary()
        }
    }

    #[test]
    fn applies_on_a_primary_only() {
        assert!(super::Writes::applies(&primary()));
        let replica = Snapshot {
            role: Some(Role::Replica),
            ..primary()
        };
        assert!(!super::Writes::applies(&replica));
    }

    #[test]
    fn a_primary_with_room_accepts_writes() {
        let result = evaluate(writes, &primary());
        assert_eq!(result.status(), Status::Ok);
        assert!(!result.observed.contains_key("refused"));
    }

    #[test]
    fn over_maxmemory_with_nothing_to_evict_is_memory_pressure() {
        for snap in [
            full("noeviction", 5),
            full("volatile-lru", 0),
            full("volatile-ttl", 0),
        ] {
            let result = evaluate(writes, &snap);
            assert_eq!(result.reasons, vec![Reason::MemoryPressure], "{snap:?}");
            assert_eq!(result.observed["refused"], "oom");
            assert_eq!(result.observed["counted_bytes"], 1001);
        }
    }

    #[test]
    fn over_maxmemory_with_something_to_evict_accepts_writes() {
        for snap in [
            full("volatile-lru", 1),
            full("allkeys-lru", 0),
            full("allkeys-random", 0),
        ] {
            assert_eq!(evaluate(writes, &snap).status(), Status::Ok, "{snap:?}");
        }
    }

    #[test]
    fn at_maxmemory_or_over_it_only_by_buffers_accepts_writes() {
        let at = Snapshot {
            used_memory: Some(1000),
            ..full("noeviction", 0)
        };
        assert_eq!(evaluate(writes, &at).status(), Status::Ok);
        let buffers = Snapshot {
            used_memory: Some(1200),
            mem_not_counted_for_evict: Some(300),
            ..full("noeviction", 0)
        };
        assert_eq!(evaluate(writes, &buffers).status(), Status::Ok);
        let no_limit = Snapshot {
            maxmemory: Some(0),
            ..full("noeviction", 0)
        };
        assert_eq!(evaluate(writes, &no_limit).status(), Status::Ok);
    }

    #[test]
    fn an_aof_write_error_refuses_only_while_aof_is_on() {
        let on = Snapshot {
            aof_enabled: Some(true),
            aof_last_write_ok: Some(false),
            ..primary()
        };
        let result = evaluate(writes, &on);
        assert_eq!(result.reasons, vec![Reason::PersistenceFailed]);
        assert_eq!(result.observed["refused"], "misconf");
        let off = Snapshot {
            aof_enabled: Some(false),
            ..on
        };
        assert_eq!(evaluate(writes, &off).status(), Status::Ok);
    }

    #[test]
    fn a_ping_answered_misconf_is_persistence_failed_with_the_error() {
        let snap = Snapshot {
            misconf: Some("MISCONF Redis is configured to save RDB snapshots".into()),
            rdb_last_bgsave_ok: Some(false),
            ..primary()
        };
        let result = evaluate(writes, &snap);
        assert_eq!(result.reasons, vec![Reason::PersistenceFailed]);
        assert_eq!(result.observed["refused"], "misconf");
        assert_eq!(
            result.observed["error"],
            "MISCONF Redis is configured to save RDB snapshots"
        );
    }

    #[test]
    fn no_good_replica_under_min_replicas_is_writes_refused() {
        let snap = Snapshot {
            min_slaves_good_slaves: Some(0),
            ..primary()
        };
        let result = evaluate(writes, &snap);
        assert_eq!(result.reasons, vec![Reason::WritesRefused]);
        assert_eq!(result.observed["refused"], "noreplicas");
        let one = Snapshot {
            min_slaves_good_slaves: Some(1),
            ..primary()
        };
        assert_eq!(evaluate(writes, &one).status(), Status::Ok);
    }

    #[test]
    fn a_primary_sentinel_does_not_name_is_not_the_sentinel_primary() {
        let view = |names_me| SentinelView::Master {
            address: "10.0.0.2:6379".into(),
            sentinel: "10.0.0.9:26379".into(),
            names_me,
        };
        let master = |view| Snapshot {
            role: Some(Role::Master),
            sentinel_view: view,
            ..Snapshot::default()
        };
        let agreed = evaluate(writes, &master(Some(view(Some(true)))));
        assert_eq!(agreed.status(), Status::Ok);
        assert_eq!(agreed.observed["sentinel_master"], "10.0.0.2:6379");
        let old = evaluate(writes, &master(Some(view(Some(false)))));
        assert_eq!(old.reasons, vec![Reason::NotSentinelPrimary]);
        let unknown = evaluate(writes, &master(Some(view(None))));
        assert_eq!(unknown.status(), Status::Ok);
        let silent = evaluate(
            writes,
            &master(Some(SentinelView::NoAnswer(
                "10.0.0.9:26379: refused".into(),
            ))),
        );
        assert_eq!(silent.status(), Status::Ok);
        assert!(
            silent.observed["sentinel"]
                .as_str()
                .is_some_and(|s| s.contains("judged by role alone"))
        );
    }

    #[test]
    fn a_refused_canary_is_writes_refused_in_redis_words_and_a_cluster_skips_it() {
        let settings = super::Writes {
            canary: true,
            ..super::Writes::default()
        };
        let with = |canary| Snapshot {
            canary,
            ..primary()
        };
        let rtt = std::time::Duration::from_micros(250);
        let ok = settings.evaluate(
            &with(Some(crate::info::Canary { refused: None, rtt })),
            &Window::default(),
        );
        assert_eq!(ok.status(), Status::Ok);
        assert_eq!(ok.observed["canary_ms"], 0.25);
        let refused = settings.evaluate(
            &with(Some(crate::info::Canary {
                refused: Some("READONLY You can't write against a read only replica.".into()),
                rtt,
            })),
            &Window::default(),
        );
        assert_eq!(refused.reasons, vec![Reason::WritesRefused]);
        assert_eq!(refused.observed["refused"], "canary");
        let cluster = Snapshot {
            cluster_enabled: true,
            ..with(None)
        };
        let skipped = settings.evaluate(&cluster, &Window::default());
        assert!(
            skipped.observed["canary"]
                .as_str()
                .is_some_and(|s| s.starts_with("skipped"))
        );
        // Off by default: nothing about a canary in the body.
        assert!(
            !evaluate(writes, &with(None))
                .observed
                .contains_key("canary")
        );
    }
}
