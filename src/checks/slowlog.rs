//! `slowlog`: commands slow enough to enter the slow log within the window.
//! Growth is counted by the id of the newest entry, not by SLOWLOG LEN, which
//! is capped by slowlog-max-len and says nothing about the last minutes.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slowlog {
    pub enabled: bool,
    /// Warn (slow_commands) when more slow-log entries than this were added
    /// within the window; 0 turns the check off, as it costs a SLOWLOG GET
    /// per check and the `+slowlog|get` ACL permission.
    pub warn_above: u64,
}

impl Default for Slowlog {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_above: 0,
        }
    }
}

impl Slowlog {
    /// Whether checks read the slow log at all.
    pub fn active(&self) -> bool {
        self.enabled && self.warn_above > 0
    }
}

impl Check for Slowlog {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("slow_entries", "entries")];
    const WINDOWED: bool = true;

    fn enabled(&self) -> bool {
        self.active()
    }

    fn evaluate(&self, _snap: &Snapshot, window: &Window) -> CheckResult {
        CheckResult::default()
            .observe("slow_entries", window.slow)
            .observe("window_s", window.span.as_secs())
            .fail_if(window.slow > self.warn_above, Reason::SlowCommands)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn slowlog(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.slowlog.evaluate(snap, window)
    }

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
