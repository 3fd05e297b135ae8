//! `sentinel`: what a Sentinel process says about the masters it monitors
//! (INFO's Sentinel section) and whether it could authorise a failover of
//! each (`SENTINEL CKQUORUM`). Judges every monitored master, or only those
//! named in `sentinel.masters`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::MasterNames;
use crate::info::{MasterStatus, Snapshot};
use crate::verdict::Reason;

/// The top-level `sentinel` section: what the check judges on a Sentinel.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sentinel {
    /// The masters to judge; empty judges every master the Sentinel monitors.
    pub masters: MasterNames,
}

impl Sentinel {
    /// Whether the master of this name is judged (and so asked CKQUORUM for).
    pub fn judges(&self, name: &str) -> bool {
        let named = self.masters.get();
        named.is_empty() || named.iter().any(|n| n == name)
    }
}

impl Check for Sentinel {
    const GROUP: Group = Group::Sentinel;
    const MEASURES: &'static [Measure] = &[("tilt", "boolean")];

    fn applies(snap: &Snapshot) -> bool {
        snap.sentinel.is_some()
    }

    /// What /health/sentinel answers.
    fn enabled(&self) -> bool {
        true
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        evaluate(self, snap)
    }
}

fn evaluate(settings: &Sentinel, snap: &Snapshot) -> CheckResult {
    let Some(sentinel) = &snap.sentinel else {
        return CheckResult::default();
    };
    let named = settings.masters.get();
    let judged: Vec<_> = sentinel
        .masters
        .iter()
        .filter(|m| settings.judges(&m.name))
        .collect();
    let any = |status| judged.iter().any(|m| m.status == Some(status));
    let unknown: Vec<&String> = named
        .iter()
        .filter(|name| !sentinel.masters.iter().any(|m| m.name == **name))
        .collect();
    let masters: Map<String, Value> = judged
        .iter()
        .map(|m| {
            let body = json!({
                "status": m.status,
                "address": m.address,
                "replicas": m.replicas,
                "sentinels": m.sentinels,
                "quorum_ok": m.quorum_ok,
            });
            (m.name.clone(), body)
        })
        .collect();
    let mut result = CheckResult::default();
    if let Some(tilt) = sentinel.tilt {
        result = result
            .observe("tilt", tilt)
            .fail_if(tilt, Reason::SentinelTilt);
    }
    if !unknown.is_empty() {
        // Which names, so the operator can tell a typo from a lost master.
        result = result.observe("unknown_masters", json!(unknown));
    }
    result
        .observe("masters", masters)
        .fail_if(any(MasterStatus::Odown), Reason::MasterOdown)
        .fail_if(any(MasterStatus::Sdown), Reason::MasterSdown)
        .fail_if(
            judged.iter().any(|m| m.quorum_ok == Some(false)),
            Reason::SentinelNoQuorum,
        )
        .fail_if(!unknown.is_empty(), Reason::SentinelUnknownMaster)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::Status;

    fn fixture(name: &str) -> Snapshot {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        Snapshot::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }

    trait WithQuorum {
        fn with_quorum(self, answers: &[(String, bool)]) -> Self;
    }

    impl WithQuorum for Snapshot {
        /// What `SENTINEL CKQUORUM` answered for each master asked.
        fn with_quorum(mut self, answers: &[(String, bool)]) -> Self {
            if let Some(sentinel) = &mut self.sentinel {
                for master in &mut sentinel.masters {
                    master.quorum_ok = answers
                        .iter()
                        .find(|(name, _)| *name == master.name)
                        .map(|(_, ok)| *ok);
                }
            }
            self
        }
    }

    fn judge(snap: &Snapshot, masters: &[&str]) -> CheckResult {
        let names = masters.join(",");
        let settings = Sentinel {
            masters: serde_json::from_value::<MasterNames>(json!(names))
                .expect("valid master names"),
        };
        settings.evaluate(snap, &Window::default())
    }

    #[test]
    fn healthy_sentinel_is_ok_and_shows_each_master() {
        let snap = fixture("info-sentinel-7.0.txt")
            .with_quorum(&[("mymaster".into(), true), ("other".into(), true)]);
        let result = judge(&snap, &[]);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["tilt"], false);
        assert_eq!(
            result.observed["masters"]["mymaster"],
            json!({"status": "ok", "address": "127.0.0.1:27101", "replicas": 1,
                   "sentinels": 3, "quorum_ok": true})
        );
        assert!(result.observed["masters"].get("other").is_some());
    }

    #[test]
    fn tilt_and_odown_are_reported_worst_first() {
        let result = judge(&fixture("info-sentinel-7.0-tilt.txt"), &[]);
        assert_eq!(
            result.reasons,
            vec![Reason::MasterOdown, Reason::SentinelTilt]
        );
        assert_eq!(result.status(), Status::Critical);
    }

    #[test]
    fn only_the_named_masters_are_judged() {
        let snap = fixture("info-sentinel-7.0-odown.txt");
        let result = judge(&snap, &["mymaster"]);
        assert_eq!(result.status(), Status::Ok);
        assert!(result.observed["masters"].get("other").is_none());
        assert_eq!(judge(&snap, &["other"]).reasons, vec![Reason::MasterOdown]);
    }

    #[test]
    fn sdown_degrades() {
        let mut snap = fixture("info-sentinel-7.0.txt");
        if let Some(sentinel) = &mut snap.sentinel {
            sentinel.masters[0].status = Some(MasterStatus::Sdown);
        }
        assert_eq!(judge(&snap, &[]).reasons, vec![Reason::MasterSdown]);
    }

    #[test]
    fn no_quorum_is_critical() {
        let snap = fixture("info-sentinel-7.0.txt").with_quorum(&[("other".into(), false)]);
        assert_eq!(judge(&snap, &[]).reasons, vec![Reason::SentinelNoQuorum]);
        assert_eq!(judge(&snap, &["mymaster"]).status(), Status::Ok);
    }

    #[test]
    fn a_named_master_not_monitored_is_critical() {
        let result = judge(&fixture("info-sentinel-7.0.txt"), &["mymaster", "nosuch"]);
        assert_eq!(result.reasons, vec![Reason::SentinelUnknownMaster]);
        assert!(result.observed["masters"].get("nosuch").is_none());
        assert_eq!(
            result.observed["unknown_masters"],
            serde_json::json!(["nosuch"])
        );
        let known = judge(&fixture("info-sentinel-7.0.txt"), &["mymaster"]);
        assert!(!known.observed.contains_key("unknown_masters"));
    }
}
