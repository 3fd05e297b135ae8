//! `persistence`: the last RDB save, AOF rewrite and AOF write. When one
//! failed Redis may refuse writes with MISCONF.

use super::{CheckResult, Reason, Window};
use crate::config::CheckSettings;
use crate::info::Snapshot;

pub fn evaluate(snap: &Snapshot, _window: &Window, _settings: &CheckSettings) -> CheckResult {
    let statuses = [
        ("rdb_last_bgsave_status", snap.rdb_last_bgsave_ok),
        ("aof_last_bgrewrite_status", snap.aof_last_bgrewrite_ok),
        ("aof_last_write_status", snap.aof_last_write_ok),
    ];
    let mut result = CheckResult::default();
    for (key, ok) in statuses {
        if let Some(ok) = ok {
            result = result.observe(key, if ok { "ok" } else { "err" });
        }
    }
    let failed = statuses.iter().any(|(_, ok)| *ok == Some(false));
    result.fail_if(failed, Reason::PersistenceFailed)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::evaluate as persistence;

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
    fn any_failure_is_critical() {
        for snap in [
            snap(false, true, true),
            snap(true, false, true),
            snap(true, true, false),
        ] {
            let result = evaluate(persistence, &snap);
            assert_eq!(result.reasons, vec![Reason::PersistenceFailed]);
            assert_eq!(result.status(), Status::Critical);
        }
        let result = evaluate(persistence, &snap(false, true, true));
        assert_eq!(result.observed["rdb_last_bgsave_status"], "err");
    }
}
