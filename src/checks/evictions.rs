//! `evictions`: keys evicted within the window. A full `allkeys-*` cache is
//! fine; one that is throwing keys out right now is worth a warning.

use super::{CheckResult, Window};
use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::Reason;

pub fn evaluate(snap: &Snapshot, window: &Window, _settings: &CheckSettings) -> CheckResult {
    if snap.evicted_keys.is_none() {
        return CheckResult::skipped("INFO has no evicted_keys");
    }
    CheckResult::default()
        .observe("evicted_keys", window.evicted)
        .observe("window_s", window.span.as_secs())
        .fail_if(window.evicted > 0, Reason::Evicting)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as evictions;

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
