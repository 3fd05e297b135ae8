//! `slowlog`: commands slow enough to enter the slow log within the window.
//! Growth is counted by the id of the newest entry, not by SLOWLOG LEN, which
//! is capped by slowlog-max-len and says nothing about the last minutes.

use super::{CheckResult, Window};
use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::Reason;

pub fn evaluate(_snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
    CheckResult::default()
        .observe("slow_entries", window.slow)
        .observe("window_s", window.span.as_secs())
        .fail_if(
            window.slow > settings.slowlog.warn_above,
            Reason::SlowCommands,
        )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as slowlog;

    fn judge(slow: u64) -> CheckResult {
        let mut settings = CheckSettings::default();
        settings.slowlog.warn_above = 5;
        let window = Window {
            slow,
            ..Window::default()
        };
        slowlog(&Snapshot::default(), &window, &settings)
    }

    #[test]
    fn more_new_entries_than_the_threshold_warn() {
        assert_eq!(judge(5).status(), Status::Ok);
        let result = judge(6);
        assert_eq!(result.reasons, vec![Reason::SlowCommands]);
        assert_eq!(result.observed["slow_entries"], 6);
    }

    #[test]
    fn off_by_default() {
        assert!(!CheckSettings::default().slowlog.active());
    }
}
