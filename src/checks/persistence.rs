//! `persistence`: the last RDB save, AOF rewrite and AOF write. A failure
//! Redis accepts writes through is `save_failed` (warn); the one INFO proves
//! refuses writes (an AOF write error with AOF on) is the `writes` check's
//! `persistence_failed`. Optionally, unsaved changes
//! older than `max_rdb_age` (rdb_stale): a restart now would lose them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::{MONTH, Within};
use crate::info::Snapshot;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Persistence {
    pub enabled: bool,
    /// Warn (rdb_stale) when the last successful save is older than this
    /// while there are unsaved changes; 0 turns it off, as pure caches never save.
    pub max_rdb_age: Within<true, MONTH>,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            enabled: true,
            max_rdb_age: Within::of(Duration::ZERO),
        }
    }
}

impl Check for Persistence {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("rdb_last_bgsave_status", "status")];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let statuses = [
            ("rdb_last_bgsave_status", snap.rdb_last_bgsave_ok),
            ("aof_last_bgrewrite_status", snap.aof_last_bgrewrite_ok),
            ("aof_last_write_status", snap.aof_last_write_ok),
        ];
        if statuses.iter().all(|(_, ok)| ok.is_none()) {
            return CheckResult::skipped("INFO has no RDB or AOF status");
        }
        let mut result = CheckResult::default();
        for (key, ok) in statuses {
            if let Some(ok) = ok {
                result = result.observe(key, if ok { "ok" } else { "err" });
            }
        }
        // A failure Redis refuses writes for (PING answered MISCONF, or an AOF
        // write error while AOF is on) is the `writes` check's to judge.
        let refusing = snap.misconf.is_some()
            || (snap.aof_enabled == Some(true) && snap.aof_last_write_ok == Some(false));
        let failed = statuses.iter().any(|(_, ok)| *ok == Some(false));
        let result = result.fail_if(failed && !refusing, Reason::SaveFailed);
        let max_age = self.max_rdb_age.get();
        match (snap.rdb_last_save_age(), snap.rdb_changes_since_last_save) {
            (Some(age), Some(changes)) if !max_age.is_zero() => result
                .observe("rdb_last_save_age_s", age.as_secs())
                .observe("rdb_changes_since_last_save", changes)
                .fail_if(changes > 0 && age > max_age, Reason::RdbStale),
            _ => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn persistence(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.persistence.evaluate(snap, window)
    }

    fn snap(rdb: bool, rewrite: bool, write: bool) -> Snapshot {
        Snapshot {
            rdb_last_bgsave_ok: Some(rdb),
            aof_last_bgrewrite_ok: Some(rewrite),
            aof_last_write_ok: Some(write),
            ..Snapshot::default()
        }
    }

    #[test]
    fn all_ok_is_ok() {
        let result = evaluate(persistence, &snap(true, true, true));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["rdb_last_bgsave_status"], "ok");
    }

    #[test]
    fn a_failure_redis_writes_through_warns() {
        for snap in [
            snap(false, true, true),
            snap(true, false, true),
            snap(true, true, false),
        ] {
            let result = evaluate(persistence, &snap);
            assert_eq!(result.reasons, vec![Reason::SaveFailed]);
            assert_eq!(result.status(), Status::Warn);
        }
        let result = evaluate(persistence, &snap(false, true, true));
        assert_eq!(result.observed["rdb_last_bgsave_status"], "err");
    }

    #[test]
    fn an_aof_write_error_with_aof_on_is_left_to_the_writes_check() {
        let on = Snapshot {
            aof_enabled: Some(true),
            ..snap(true, true, false)
        };
        let result = evaluate(persistence, &on);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["aof_last_write_status"], "err");
        let off = Snapshot {
            aof_enabled: Some(false),
            ..snap(true, true, false)
        };
        assert_eq!(
            evaluate(persistence, &off).reasons,
            vec![Reason::SaveFailed]
        );
    }

    fn saved(age_s: u64, changes: u64) -> Snapshot {
        Snapshot {
            server_time_s: Some(1_000_000),
            rdb_last_save_time: Some(1_000_000 - age_s),
            rdb_changes_since_last_save: Some(changes),
            ..snap(true, true, true)
        }
    }

    #[test]
    fn unsaved_changes_older_than_max_rdb_age_are_stale() {
        let mut settings = CheckSettings::default();
        settings.persistence.max_rdb_age =
            crate::config::Within::of(std::time::Duration::from_secs(60));
        let judge = |snap: &Snapshot| persistence(snap, &Window::default(), &settings);
        assert_eq!(judge(&saved(60, 5)).status(), Status::Ok);
        let stale = judge(&saved(61, 5));
        assert_eq!(stale.reasons, vec![Reason::RdbStale]);
        assert_eq!(stale.observed["rdb_last_save_age_s"], 61);
        assert_eq!(stale.observed["rdb_changes_since_last_save"], 5);
        assert_eq!(
            judge(&saved(3600, 0)).status(),
            Status::Ok,
            "nothing unsaved"
        );
    }

    #[test]
    fn rdb_age_is_not_judged_by_default() {
        let result = evaluate(persistence, &saved(86_400, 5));
        assert_eq!(result.status(), Status::Ok);
        assert!(!result.observed.contains_key("rdb_last_save_age_s"));
    }
}
