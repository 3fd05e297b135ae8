//! `clients`: connections against maxclients, and clients blocked in
//! BLPOP-style commands.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::Ratio;
use crate::info::Snapshot;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Clients {
    pub enabled: bool,
    pub warn_ratio: Ratio,
    pub blocked_warn_above: u64,
}

impl Default for Clients {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_ratio: Ratio::of(0.80),
            blocked_warn_above: 10,
        }
    }
}

impl Check for Clients {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("connected", "clients")];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        if snap.connected_clients.is_none() && snap.blocked_clients.is_none() {
            return CheckResult::skipped("INFO has no connected_clients or blocked_clients");
        }
        let mut result = CheckResult::default();
        if let Some(connected) = snap.connected_clients {
            result = result.observe("connected", connected);
            if let Some(max) = snap.maxclients.filter(|max| *max > 0) {
                let near_limit = connected as f64 >= self.warn_ratio.get() * max as f64;
                result = result
                    .observe("max", max)
                    .fail_if(near_limit, Reason::ClientsHigh);
            }
        }
        if let Some(blocked) = snap.blocked_clients {
            result = result
                .observe("blocked", blocked)
                .fail_if(blocked > self.blocked_warn_above, Reason::BlockedClients);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn clients(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.clients.evaluate(snap, window)
    }

    fn snap(connected: u64, max: u64, blocked: u64) -> Snapshot {
        Snapshot {
            connected_clients: Some(connected),
            maxclients: Some(max),
            blocked_clients: Some(blocked),
            ..Snapshot::default()
        }
    }

    #[test]
    fn near_maxclients_warns() {
        assert_eq!(evaluate(clients, &snap(79, 100, 0)).status(), Status::Ok);
        assert_eq!(
            evaluate(clients, &snap(80, 100, 0)).reasons,
            vec![Reason::ClientsHigh]
        );
    }

    #[test]
    fn blocked_above_threshold_warns() {
        assert_eq!(evaluate(clients, &snap(1, 100, 10)).status(), Status::Ok);
        let result = evaluate(clients, &snap(90, 100, 11));
        assert_eq!(
            result.reasons,
            vec![Reason::ClientsHigh, Reason::BlockedClients]
        );
        assert_eq!(result.observed["blocked"], 11);
    }
}
