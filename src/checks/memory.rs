//! `memory`: used_memory against maxmemory, judged for the eviction policy.

use super::{CheckResult, Window, round3};
use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::Reason;

pub fn evaluate(snap: &Snapshot, _window: &Window, settings: &CheckSettings) -> CheckResult {
    let thresholds = &settings.memory;
    let (Some(used), Some(max)) = (snap.used_memory, snap.maxmemory) else {
        return CheckResult::skipped("INFO has no used_memory or maxmemory");
    };
    let result = CheckResult::default()
        .observe("used_bytes", used)
        .observe("max_bytes", max);
    let result = match &snap.maxmemory_policy {
        Some(policy) => result.observe("policy", policy.as_str()),
        None => result,
    };
    if max == 0 {
        return result.fail_if(thresholds.warn_no_maxmemory, Reason::NoMaxmemory);
    }
    let ratio = used as f64 / max as f64;
    let result = result.observe("ratio", round3(ratio));
    if ratio >= thresholds.fail_ratio.get()
        && (!thresholds.policy_aware || refuses_writes_when_full(snap.maxmemory_policy.as_deref()))
    {
        result.fail(Reason::MemoryPressure)
    } else {
        result.fail_if(ratio >= thresholds.warn_ratio.get(), Reason::MemoryHigh)
    }
}

/// Under these policies a full Redis answers writes with OOM; under
/// `allkeys-*` it evicts, which is how a cache is meant to run.
fn refuses_writes_when_full(policy: Option<&str>) -> bool {
    match policy {
        Some(policy) => policy == "noeviction" || policy.starts_with("volatile-"),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as memory;

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
    fn at_fail_ratio_under_noeviction_or_volatile_is_pressure() {
        for policy in ["noeviction", "volatile-lru", "volatile-ttl"] {
            let result = evaluate(memory, &snap(950, 1000, policy));
            assert_eq!(result.reasons, vec![Reason::MemoryPressure], "{policy}");
            assert_eq!(result.status(), Status::Critical);
        }
    }

    #[test]
    fn full_allkeys_cache_only_warns() {
        let result = evaluate(memory, &snap(999, 1000, "allkeys-lru"));
        assert_eq!(result.reasons, vec![Reason::MemoryHigh]);
    }

    #[test]
    fn policy_blind_mode_judges_allkeys_like_noeviction() {
        let mut settings = CheckSettings::default();
        settings.memory.policy_aware = false;
        let result = memory(
            &snap(999, 1000, "allkeys-lru"),
            &Window::default(),
            &settings,
        );
        assert_eq!(result.reasons, vec![Reason::MemoryPressure]);
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
}
