//! `clients`: connections against maxclients, and clients blocked in
//! BLPOP-style commands.

use super::{CheckResult, Window};
use crate::config::CheckSettings;
use crate::info::Snapshot;
use crate::verdict::Reason;

pub fn evaluate(snap: &Snapshot, _window: &Window, settings: &CheckSettings) -> CheckResult {
    let thresholds = &settings.clients;
    if snap.connected_clients.is_none() && snap.blocked_clients.is_none() {
        return CheckResult::skipped("INFO has no connected_clients or blocked_clients");
    }
    let mut result = CheckResult::default();
    if let Some(connected) = snap.connected_clients {
        result = result.observe("connected", connected);
        if let Some(max) = snap.maxclients.filter(|max| *max > 0) {
            let near_limit = connected as f64 >= thresholds.warn_ratio.get() * max as f64;
            result = result
                .observe("max", max)
                .fail_if(near_limit, Reason::ClientsHigh);
        }
    }
    if let Some(blocked) = snap.blocked_clients {
        result = result.observe("blocked", blocked).fail_if(
            blocked > thresholds.blocked_warn_above,
            Reason::BlockedClients,
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as clients;

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
