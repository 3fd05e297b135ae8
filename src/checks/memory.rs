//! `memory`: used memory against maxmemory, counted as eviction counts it
//! and judged for the eviction policy and the node's role.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window, round3};
use crate::config::Ratio;
use crate::info::{Role, Snapshot};
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Memory {
    pub enabled: bool,
    pub warn_ratio: Ratio,
    pub fail_ratio: Ratio,
    pub warn_no_maxmemory: bool,
    /// Near the limit is degraded only under a policy that would then refuse
    /// writes (`noeviction`, `volatile-*` with no expiring key); `false`
    /// judges every policy so, for operators who want a full cache flagged.
    pub policy_aware: bool,
}

impl Default for Memory {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_ratio: Ratio::of(0.80),
            fail_ratio: Ratio::of(0.95),
            warn_no_maxmemory: true,
            policy_aware: true,
        }
    }
}

impl Check for Memory {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("ratio", "ratio"), ("used_bytes", "bytes")];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let (Some(used), Some(max)) = (snap.used_memory, snap.maxmemory) else {
            return CheckResult::skipped("INFO has no used_memory or maxmemory");
        };
        let result = CheckResult::default()
            .observe("used_bytes", used)
            .observe("max_bytes", max);
        let counted = snap.counted_memory().unwrap_or(used);
        let result = match snap.mem_not_counted_for_evict {
            Some(not_counted) => result
                .observe("not_counted_bytes", not_counted)
                .observe("counted_bytes", counted),
            None => result,
        };
        let result = match &snap.maxmemory_policy {
            Some(policy) => result.observe("policy", policy.as_str()),
            None => result,
        };
        // A replica (replica-ignore-maxmemory yes, the default) neither evicts
        // nor refuses its primary's writes, and takes no client writes: full is
        // not pressure there; the OOM killer is its danger.
        let replica = snap.role == Some(Role::Replica);
        let result = if replica {
            result.observe("replica", true)
        } else {
            result
        };
        if max == 0 {
            return result.fail_if(self.warn_no_maxmemory, Reason::NoMaxmemory);
        }
        let ratio = counted as f64 / max as f64;
        let result = result.observe("ratio", round3(ratio));
        if ratio >= self.fail_ratio.get()
            && !replica
            && (!self.policy_aware || super::writes::evicts_nothing(snap))
        {
            // Still accepting writes: the `writes` check says when Redis refuses.
            result.fail(Reason::MemoryNearLimit)
        } else {
            result.fail_if(ratio >= self.warn_ratio.get(), Reason::MemoryHigh)
        }
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.warn_ratio > self.fail_ratio {
            return Err(("warn_ratio", "must not be above checks.memory.fail_ratio"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn memory(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.memory.evaluate(snap, window)
    }

    fn snap(used: u64, max: u64, policy: &str) -> Snapshot {
        Snapshot {
            used_memory: Some(used),
            maxmemory: Some(max),
            maxmemory_policy: Some(policy.into()),
            ..Snapshot::default()
        }
    }

    #[test]
    fn below_warn_ratio_is_ok_with_values_shown() {
        let result = evaluate(memory, &snap(790, 1000, "noeviction"));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["ratio"], 0.79);
        assert_eq!(result.observed["used_bytes"], 790);
        assert_eq!(result.observed["max_bytes"], 1000);
    }

    #[test]
    fn at_warn_ratio_warns() {
        let result = evaluate(memory, &snap(800, 1000, "noeviction"));
        assert_eq!(result.reasons, vec![Reason::MemoryHigh]);
    }

    #[test]
    fn at_fail_ratio_with_nothing_to_evict_is_near_limit() {
        for policy in ["noeviction", "volatile-lru", "volatile-ttl"] {
            let result = evaluate(memory, &snap(950, 1000, policy));
            assert_eq!(result.reasons, vec![Reason::MemoryNearLimit], "{policy}");
            assert_eq!(result.status(), Status::Degraded);
        }
    }

    #[test]
    fn volatile_with_expiring_keys_only_warns_even_when_full() {
        let snap = Snapshot {
            keys_with_expiry: 10,
            ..snap(1200, 1000, "volatile-lru")
        };
        assert_eq!(evaluate(memory, &snap).reasons, vec![Reason::MemoryHigh]);
    }

    #[test]
    fn full_allkeys_cache_only_warns() {
        let result = evaluate(memory, &snap(999, 1000, "allkeys-lru"));
        assert_eq!(result.reasons, vec![Reason::MemoryHigh]);
    }

    #[test]
    fn policy_blind_mode_judges_allkeys_like_noeviction() {
        // Near the limit, never memory_pressure: only the writes check says
        // Redis refuses.
        let mut settings = CheckSettings::default();
        settings.memory.policy_aware = false;
        let result = memory(
            &snap(999, 1000, "allkeys-lru"),
            &Window::default(),
            &settings,
        );
        assert_eq!(result.reasons, vec![Reason::MemoryNearLimit]);
    }

    #[test]
    fn no_maxmemory_warns_unless_turned_off() {
        let result = evaluate(memory, &snap(5, 0, "noeviction"));
        assert_eq!(result.reasons, vec![Reason::NoMaxmemory]);
        assert!(!result.observed.contains_key("ratio"));

        let mut settings = CheckSettings::default();
        settings.memory.warn_no_maxmemory = false;
        let result = memory(&snap(5, 0, "noeviction"), &Window::default(), &settings);
        assert_eq!(result.status(), Status::Ok);
    }

    /// A real INFO reply with the memory figures replaced.
    fn fixture(name: &str, used: u64, not_counted: u64, max: u64) -> Snapshot {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let text: String = text
            .lines()
            .map(|line| match line.split_once(':') {
                Some(("used_memory", _)) => format!("used_memory:{used}"),
                Some(("mem_not_counted_for_evict", _)) => {
                    format!("mem_not_counted_for_evict:{not_counted}")
                }
                Some(("maxmemory", _)) => format!("maxmemory:{max}"),
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        Snapshot::parse(&text)
    }

    #[test]
    fn buffers_redis_leaves_out_of_eviction_are_left_out_of_the_ratio() {
        // 970 of 1000 used, 100 of it replication output buffer: Redis
        // counts 870 against maxmemory and still accepts writes.
        let snap = fixture("info-redis-7.0-primary.txt", 970, 100, 1000);
        let result = evaluate(memory, &snap);
        assert_eq!(result.reasons, vec![Reason::MemoryHigh]);
        assert_eq!(result.observed["used_bytes"], 970);
        assert_eq!(result.observed["not_counted_bytes"], 100);
        assert_eq!(result.observed["counted_bytes"], 870);
        assert_eq!(result.observed["ratio"], 0.87);

        let snap = fixture("info-redis-6.2.txt", 970, 10, 1000);
        let result = evaluate(memory, &snap);
        assert_eq!(result.reasons, vec![Reason::MemoryNearLimit]);
        assert_eq!(result.observed["ratio"], 0.96);
    }

    #[test]
    fn without_the_field_used_memory_is_judged() {
        let result = evaluate(memory, &snap(960, 1000, "noeviction"));
        assert_eq!(result.reasons, vec![Reason::MemoryNearLimit]);
        assert_eq!(result.observed["ratio"], 0.96);
        assert!(!result.observed.contains_key("counted_bytes"));
        assert!(!result.observed.contains_key("not_counted_bytes"));
    }

    #[test]
    fn a_full_replica_only_warns_and_says_why() {
        let snap = fixture("info-redis-7.0-replica.txt", 1_800, 0, 1000);
        assert_eq!(snap.maxmemory_policy.as_deref(), Some("noeviction"));
        let result = evaluate(memory, &snap);
        assert_eq!(result.reasons, vec![Reason::MemoryHigh]);
        assert_eq!(result.observed["replica"], true);
        assert_eq!(result.observed["ratio"], 1.8);
        let primary = fixture("info-redis-7.0-primary.txt", 1_800, 0, 1000);
        assert_eq!(
            evaluate(memory, &primary).reasons,
            vec![Reason::MemoryNearLimit]
        );
        assert!(!evaluate(memory, &primary).observed.contains_key("replica"));
    }
}
