//! `evictions`: keys evicted within the window. A full `allkeys-*` cache is
//! fine; one that is throwing keys out right now is worth a warning.

use super::{CheckResult, Window};
use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::Reason;

pub fn evaluate(_snap: &Snapshot, window: &Window, _settings: &CheckSettings) -> CheckResult {
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
        let snap = Snapshot::default();
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
}
