//! `role`: whether this node is the primary, so a load balancer can send
//! writes to whichever node holds the role now.

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::sentinels::SentinelView;
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
            Some(crate::info::Role::Master) => {
                sentinel_agrees(result.observe("role", "master"), snap)
            }
            Some(crate::info::Role::Replica) => {
                result.observe("role", "replica").fail(Reason::NotPrimary)
            }
            None => result.fail(Reason::NotPrimary),
        }
    }
}

/// On a node that says it is the primary, whether Sentinel says so too
/// (`routes.primary.sentinels`): another run id named means this node is an
/// old primary, still `role:master` until Sentinel demotes it, whose writes
/// will be lost. No Sentinel answering leaves the verdict to the role, and
/// the body says so.
pub fn sentinel_agrees(result: CheckResult, snap: &Snapshot) -> CheckResult {
    match &snap.sentinel_view {
        None => result,
        Some(SentinelView::NoAnswer(why)) => result.observe(
            "sentinel",
            format!("no Sentinel answered, judged by role alone: {why}"),
        ),
        Some(SentinelView::Master {
            address,
            sentinel,
            names_me,
        }) => {
            let result = result
                .observe("sentinel", sentinel.as_str())
                .observe("sentinel_master", address.as_str());
            match names_me {
                Some(me) => result.fail_if(!me, Reason::NotSentinelPrimary),
                None => result.observe(
                    "sentinel_master_is_this_node",
                    "not known yet (Sentinel has not read its run id): judged by role alone",
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::info::Role;
    use crate::sentinels::SentinelView;

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

    #[test]
    fn a_primary_sentinel_does_not_name_is_not_the_sentinel_primary() {
        let view = |names_me| SentinelView::Master {
            address: "10.0.0.2:6379".into(),
            sentinel: "10.0.0.9:26379".into(),
            names_me,
        };
        let master = |view| Snapshot {
            role: Some(Role::Master),
            sentinel_view: view,
            ..Snapshot::default()
        };
        let agreed = evaluate(role, &master(Some(view(Some(true)))));
        assert_eq!(agreed.status(), Status::Ok);
        assert_eq!(agreed.observed["sentinel_master"], "10.0.0.2:6379");
        let old = evaluate(role, &master(Some(view(Some(false)))));
        assert_eq!(old.reasons, vec![Reason::NotSentinelPrimary]);
        let unknown = evaluate(role, &master(Some(view(None))));
        assert_eq!(unknown.status(), Status::Ok);
        let silent = evaluate(
            role,
            &master(Some(SentinelView::NoAnswer(
                "10.0.0.9:26379: refused".into(),
            ))),
        );
        assert_eq!(silent.status(), Status::Ok);
        assert!(
            silent.observed["sentinel"]
                .as_str()
                .is_some_and(|s| s.contains("judged by role alone"))
        );
    }
}
