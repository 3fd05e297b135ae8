//! `role`: whether this node is the primary, so a load balancer can send
//! writes to whichever node holds the role now.

use super::{CheckResult, Window};
use crate::config::CheckSettings;
use crate::info::{Role, Snapshot};
use crate::verdict::Reason;

pub fn evaluate(snap: &Snapshot, _window: &Window, _settings: &CheckSettings) -> CheckResult {
    let result = CheckResult::default();
    match snap.role {
        Some(Role::Master) => result.observe("role", "master"),
        Some(Role::Replica) => result.observe("role", "replica").fail(Reason::NotPrimary),
        None => result.fail(Reason::NotPrimary),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as role;
    use crate::info::Role;

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
