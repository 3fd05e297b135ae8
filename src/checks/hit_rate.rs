//! `hit_rate`: keyspace hits over lookups, over the window only, so today's
//! drop shows even on a node that has been up for weeks.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window, round3};
use crate::config::{DAY, Ratio, Within};
use crate::info::Snapshot;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HitRate {
    pub enabled: bool,
    /// The old name of `checks.window`, still read: the loader moves it
    /// there and logs that it is deprecated.
    #[serde(skip_serializing)]
    pub window: Option<Within<false, DAY>>,
    pub min_lookups: u64,
    pub warn_below: Ratio,
    pub fail_below: Ratio,
}

impl Default for HitRate {
    fn default() -> Self {
        Self {
            enabled: true,
            window: None,
            min_lookups: 1000,
            warn_below: Ratio::of(0.90),
            fail_below: Ratio::of(0.70),
        }
    }
}

impl Check for HitRate {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("ratio", "ratio"), ("lookups", "lookups")];
    const WINDOWED: bool = true;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, window: &Window) -> CheckResult {
        if snap.keyspace_hits.is_none() || snap.keyspace_misses.is_none() {
            return CheckResult::skipped("INFO has no keyspace_hits or keyspace_misses");
        }
        let lookups = window.hits + window.misses;
        let result = CheckResult::default();
        if lookups == 0 {
            return result
                .observe("lookups", 0)
                .observe("window_s", window.span.as_secs());
        }
        let ratio = window.hits as f64 / lookups as f64;
        let result = result
            .observe("ratio", round3(ratio))
            .observe("lookups", lookups)
            .observe("window_s", window.span.as_secs());
        if lookups < self.min_lookups {
            result
        } else if ratio < self.fail_below.get() {
            result.fail(Reason::LowHitRate)
        } else {
            result.fail_if(ratio < self.warn_below.get(), Reason::HitRateLow)
        }
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.warn_below < self.fail_below {
            return Err(("warn_below", "must not be below checks.hit_rate.fail_below"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn hit_rate(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.hit_rate.evaluate(snap, window)
    }
    use std::time::Duration;

    fn judge(hits: u64, misses: u64) -> CheckResult {
        let window = Window {
            span: Duration::from_secs(300),
            hits,
            misses,
            ..Window::default()
        };
        let snap = Snapshot {
            keyspace_hits: Some(hits),
            keyspace_misses: Some(misses),
            ..Snapshot::default()
        };
        hit_rate(&snap, &window, &CheckSettings::default())
    }

    #[test]
    fn without_the_counters_in_info_it_is_skipped() {
        let window = Window::default();
        let result = hit_rate(&Snapshot::default(), &window, &CheckSettings::default());
        assert!(result.skipped_because().is_some());
        assert!(!result.observed.contains_key("lookups"));
    }

    #[test]
    fn high_ratio_is_ok_with_window_shown() {
        let result = judge(940, 60);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["ratio"], 0.94);
        assert_eq!(result.observed["lookups"], 1000);
        assert_eq!(result.observed["window_s"], 300);
    }

    #[test]
    fn below_warn_warns_and_below_fail_degrades() {
        assert_eq!(judge(899, 101).reasons, vec![Reason::HitRateLow]);
        assert_eq!(judge(900, 100).status(), Status::Ok);
        assert_eq!(judge(699, 301).reasons, vec![Reason::LowHitRate]);
        assert_eq!(judge(700, 300).reasons, vec![Reason::HitRateLow]);
    }

    #[test]
    fn too_few_lookups_is_ok_with_counts_shown() {
        let result = judge(0, 999);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["lookups"], 999);
        assert_eq!(result.observed["ratio"], 0.0);
    }

    #[test]
    fn no_lookups_shows_no_ratio() {
        let result = judge(0, 0);
        assert_eq!(result.status(), Status::Ok);
        assert!(!result.observed.contains_key("ratio"));
    }
}
