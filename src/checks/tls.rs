//! `tls`: certificate expiry on a `rediss://` connection. An expired
//! certificate is an outage known weeks ahead; the dates come from the
//! handshake of the connection the check used, re-read by a handshake of
//! their own every 10 minutes (every check while expiring) so they follow
//! a rotation. It runs on a Sentinel too, on the same routes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::config::{Within, YEAR};
use crate::info::Snapshot;
use crate::tls::date;
use crate::verdict::Reason;

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub enabled: bool,
    /// Warn (tls_cert_expiring) when the server's or the client's
    /// certificate expires within this.
    pub warn_before: Within<false, YEAR>,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            enabled: true,
            warn_before: Within::of(Duration::from_secs(14 * 24 * 3600)),
        }
    }
}

impl Check for Tls {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("expires_in_s", "s")];
    /// A Sentinel's certificate expires as a data node's does.
    const EITHER_KIND: bool = true;

    fn applies(snap: &Snapshot) -> bool {
        snap.tls.is_some()
    }

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        let Some(dates) = snap.tls else {
            return CheckResult::default();
        };
        let warn_before = i64::try_from(self.warn_before.get().as_secs()).unwrap_or(i64::MAX);
        let mut result = CheckResult::default();
        let mut expiring = false;
        for (prefix, not_after) in [
            ("", dates.server_not_after),
            ("client_", dates.client_not_after),
        ] {
            if let Some(not_after) = not_after {
                let expires_in = not_after.saturating_sub(dates.checked_at_s);
                expiring |= expires_in < warn_before;
                result = result
                    .observe(&format!("{prefix}not_after"), date(not_after))
                    .observe(&format!("{prefix}expires_in_s"), expires_in);
            }
        }
        result.fail_if(expiring, Reason::TlsCertExpiring)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn tls(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.tls.evaluate(snap, window)
    }
    use crate::info::CertDates;

    const DAY: i64 = 86_400;
    /// 2026-01-01T00:00:00Z
    const NOW: i64 = 1_767_225_600;

    fn judge(server_in: i64, client_in: Option<i64>) -> CheckResult {
        let snap = Snapshot {
            tls: Some(CertDates {
                checked_at_s: NOW,
                server_not_after: Some(NOW + server_in),
                client_not_after: client_in.map(|d| NOW + d),
            }),
            ..Snapshot::default()
        };
        tls(&snap, &Window::default(), &CheckSettings::default())
    }

    #[test]
    fn a_certificate_within_warn_before_warns() {
        let result = judge(30 * DAY, None);
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["expires_in_s"], 30 * DAY);
        assert_eq!(result.observed["not_after"], "2026-01-31T00:00:00Z");
        assert!(result.observed.get("client_not_after").is_none());
        let result = judge(13 * DAY, None);
        assert_eq!(result.reasons, vec![Reason::TlsCertExpiring]);
    }

    #[test]
    fn the_client_certificate_counts_too() {
        let result = judge(30 * DAY, Some(DAY));
        assert_eq!(result.reasons, vec![Reason::TlsCertExpiring]);
        assert_eq!(result.observed["client_expires_in_s"], DAY);
        assert_eq!(result.observed["client_not_after"], "2026-01-02T00:00:00Z");
    }
}
