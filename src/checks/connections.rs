//! `connections`: connections refused because maxclients was reached, within
//! the window.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::verdict::Reason;

/// `checks.connections`: nothing to tune but whether it runs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connections {
    pub enabled: bool,
}

impl Default for Connections {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Check for Connections {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("rejected", "connections")];
    const WINDOWED: bool = true;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, window: &Window) -> CheckResult {
        if snap.rejected_connections.is_none() {
            return CheckResult::skipped("INFO has no rejected_connections");
        }
        CheckResult::default()
            .observe("rejected", window.rejected)
            .observe("window_s", window.span.as_secs())
            .fail_if(window.rejected > 0, Reason::RejectedConnections)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn connections(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.connections.evaluate(snap, window)
    }

    #[test]
    fn rejections_within_the_window_warn() {
        let snap = Snapshot {
            rejected_connections: Some(0),
            ..Snapshot::default()
        };
        let settings = CheckSettings::default();
        assert_eq!(
            connections(&snap, &Window::default(), &settings).status(),
            Status::Ok
        );
        let rejecting = Window {
            rejected: 1,
            ..Window::default()
        };
        let result = connections(&snap, &rejecting, &settings);
        assert_eq!(result.reasons, vec![Reason::RejectedConnections]);
    }

    #[test]
    fn without_the_counter_in_info_it_is_skipped() {
        let result = connections(
            &Snapshot::default(),
            &Window::default(),
            &CheckSettings::default(),
        );
        assert!(result.skipped_because().is_some());
        assert!(result.reasons.is_empty());
    }
}
