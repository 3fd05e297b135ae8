//! `ping`: whether Redis answers at all, and how fast. Every route runs it;
//! when Redis cannot be asked it is the only check, with the down reason.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CheckResult, Measure, round3};
use crate::config::{MINUTE, Within};
use crate::redis::RedisError;
use crate::verdict::Reason;

/// `checks.ping`: the round trip's thresholds.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ping {
    /// PING and INFO's pipelined round trip above this warns (latency_high).
    pub warn_above: Within<true, MINUTE>,
}

impl Default for Ping {
    fn default() -> Self {
        Self {
            warn_above: Within::of(Duration::from_millis(100)),
        }
    }
}

/// What the health+json body shows of it.
pub const MEASURES: &[Measure] = &[("latency_ms", "ms")];

impl Ping {
    pub fn evaluate(&self, latency: Duration) -> CheckResult {
        CheckResult::default()
            .observe("latency_ms", round3(latency.as_secs_f64() * 1000.0))
            .fail_if(latency > self.warn_above.get(), Reason::LatencyHigh)
    }
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
        let settings = Ping::default();
        let fast = settings.evaluate(Duration::from_micros(200));
        assert_eq!(fast.status(), Status::Ok);
        assert_eq!(fast.observed["latency_ms"], 0.2);
        let slow = settings.evaluate(Duration::from_millis(101));
        assert_eq!(slow.reasons, vec![Reason::LatencyHigh]);
    }

    #[test]
    fn errors_map_to_their_down_reason() {
        let result = failed(&RedisError::MasterDown("MASTERDOWN link down".into()));
        assert_eq!(result.reasons, vec![Reason::MasterDown]);
        assert_eq!(result.status(), Status::Down);
    }
}
