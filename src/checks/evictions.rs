//! `evictions`: keys evicted within the window. A full `allkeys-*` cache is
//! fine; one that is throwing keys out right now is worth a warning.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::verdict::Reason;

/// `checks.evictions`: nothing to tune but whether it runs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Evictions {
    pub enabled: bool,
}

impl Default for Evictions {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Check for Evictions {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("evicted_keys", "keys")];
    const WINDOWED: bool = true;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, window: &Window) -> CheckResult {
        if snap.evicted_keys.is_none() {
            return CheckResult::skipped("INFO has no evicted_keys");
        }
        CheckResult::default()
            .observe("evicted_keys", window.evicted)
            .observe("window_s", window.span.as_secs())
            .fail_if(window.evicted > 0, Reason::Evicting)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn evictions(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.evictions.evaluate(snap, window)
    }

    #[test]
    fn growth_within_the_window_warns() {
        let snap = Snapshot {
            evicted_keys: Some(0),
            ..Snapshot::default()
        };
        let settings = CheckSettings::default();
        let quiet = Window::default();
        assert_eq!(evictions(&snap, &quiet, &settings).status(), Status::Ok);
        let evicting = Window {
            evicted: 3,
            ..Window::default()
        };
        let result = evictions(&snap, &evicting, &settings);
        assert_eq!(result.reasons, vec![Reason::Evicting]);
        assert_eq!(result.observed["evicted_keys"], 3);
    }

    #[test]
    fn without_the_counter_in_info_it_is_skipped() {
        let evicting = Window {
            evicted: 3,
            ..Window::default()
        };
        let result = evictions(&Snapshot::default(), &evicting, &CheckSettings::default());
        assert!(result.skipped_because().is_some());
        assert!(result.reasons.is_empty());
    }
}
