//! `ping`: whether Redis answers at all, and how fast. Every route runs it;
//! when Redis cannot be asked it is the only check, with the down reason.

use std::time::Duration;

use super::{CheckResult, round3};
use crate::config::CheckSettings;
use crate::redis::RedisError;
use crate::verdict::Reason;

pub fn evaluate(latency: Duration, settings: &CheckSettings) -> CheckResult {
    CheckResult::default()
        .observe("latency_ms", round3(latency.as_secs_f64() * 1000.0))
        .fail_if(latency > settings.latency.warn_above, Reason::LatencyHigh)
}

pub fn failed(error: &RedisError) -> CheckResult {
    CheckResult::default().fail(error.reason())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Status;

    #[test]
    fn slow_round_trip_warns() {
        let settings = CheckSettings::default();
        let fast = evaluate(Duration::from_micros(200), &settings);
        assert_eq!(fast.status(), Status::Ok);
        assert_eq!(fast.observed["latency_ms"], 0.2);
        let slow = evaluate(Duration::from_millis(101), &settings);
        assert_eq!(slow.reasons, vec![Reason::LatencyHigh]);
    }

    #[test]
    fn errors_map_to_their_down_reason() {
        let result = failed(&RedisError::MasterDown("MASTERDOWN link down".into()));
        assert_eq!(result.reasons, vec![Reason::MasterDown]);
        assert_eq!(result.status(), Status::Down);
    }
}
