//! `fragmentation`: mem_fragmentation_ratio, judged only once the dataset is
//! big enough for the ratio to mean something (tiny datasets always look
//! fragmented).

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window, round3};
use crate::config::Factor;
use crate::info::Snapshot;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fragmentation {
    pub enabled: bool,
    pub warn_above: Factor,
    pub min_used_bytes: u64,
}

impl Default for Fragmentation {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_above: Factor::of(1.5),
            min_used_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Check for Fragmentation {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("ratio", "ratio")];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let (Some(ratio), Some(used)) = (snap.mem_fragmentation_ratio, snap.used_memory) else {
            return CheckResult::skipped("INFO has no mem_fragmentation_ratio or used_memory");
        };
        let result = CheckResult::default().observe("ratio", round3(ratio));
        // Below 1.0 the OS holds less than Redis allocated: it is swapping.
        let bad = ratio > self.warn_above.get() || ratio < 1.0;
        result.fail_if(used >= self.min_used_bytes && bad, Reason::Fragmentation)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn fragmentation(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.fragmentation.evaluate(snap, window)
    }

    fn snap(ratio: f64, used: u64) -> Snapshot {
        Snapshot {
            mem_fragmentation_ratio: Some(ratio),
            used_memory: Some(used),
            ..Snapshot::default()
        }
    }

    const BIG: u64 = 100 * 1024 * 1024;

    #[test]
    fn high_or_swapping_ratio_warns_on_a_big_dataset() {
        assert_eq!(
            evaluate(fragmentation, &snap(1.51, BIG)).reasons,
            vec![Reason::Fragmentation]
        );
        assert_eq!(
            evaluate(fragmentation, &snap(0.9, BIG)).reasons,
            vec![Reason::Fragmentation]
        );
        assert_eq!(
            evaluate(fragmentation, &snap(1.5, BIG)).status(),
            Status::Ok
        );
    }

    #[test]
    fn small_dataset_is_never_judged() {
        let result = evaluate(fragmentation, &snap(7.15, 1_000_000));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["ratio"], 7.15);
    }
}
