//! `role`: whether this node is the primary, so a load balancer can send
//! writes to whichever node holds the role now.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::verdict::Reason;

/// Always on, with nothing to tune: what /health/primary answers.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Role;

impl Check for Role {
    const GROUP: Group = Group::Role;
    const MEASURES: &'static [Measure] = &[("role", "role")];

    fn enabled(&self) -> bool {
        true
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let result = CheckResult::default();
        match snap.role {
            Some(crate::info::Role::Master) => result.observe("role", "master"),
            Some(crate::info::Role::Replica) => {
                result.observe("role", "replica").fail(Reason::NotPrimary)
            }
            None => result.fail(Reason::NotPrimary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::info::Role;

    fn role(snap: &Snapshot, window: &Window, _: &CheckSettings) -> CheckResult {
        super::Role.evaluate(snap, window)
    }

    #[test]
    fn master_is_ok_and_replica_is_not_primary() {
        let master = Snapshot {
            role: Some(Role::Master),
            ..Snapshot::default()
        };
        assert_eq!(evaluate(role, &master).status(), Status::Ok);
        let replica = Snapshot {
            role: Some(Role::Replica),
            ..Snapshot::default()
        };
        assert_eq!(evaluate(role, &replica).reasons, vec![Reason::NotPrimary]);
    }
}
