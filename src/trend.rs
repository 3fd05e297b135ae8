//! The recent past, for the status page: a bounded ring of the figures the
//! sampler's checks read, and when each route's status changed.
//!
//! Only the sampler writes it (once per `checks.sample_interval`), so probes
//! never touch it and its size is fixed: [`SAMPLES`] points and [`CHANGES`]
//! changes, whatever the uptime.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::checks::headroom;
use crate::queues::ReadState;
use crate::report::Round;
use crate::routes::Route;
use crate::verdict::Status;

/// Points kept: half an hour at the default 5 s sample interval.
pub const SAMPLES: usize = 360;
/// Status changes kept, newest last.
pub const CHANGES: usize = 32;

/// The figures of one sample; `None` where Redis did not say (down, or a
/// field its version lacks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: SystemTime,
    /// Hits over lookups across `checks.window`, as `hit_rate` judges it.
    pub hit_ratio: Option<f64>,
    /// Memory as eviction counts it, over maxmemory, as `memory` judges it.
    pub memory_ratio: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// The memory limit `headroom` judges RSS against.
    pub limit_bytes: Option<u64>,
    pub latency: Option<Duration>,
    pub clients: Option<u64>,
}

/// A route whose status differed from the sample before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub at: SystemTime,
    pub route: Route,
    pub from: Status,
    pub to: Status,
}

#[derive(Debug, Default)]
pub struct Trend {
    points: VecDeque<Point>,
    /// Each queue's length at each point, aligned with `points` (`None`
    /// where it was not read), for the queues of `[[queues]]`.
    queues: Vec<(String, VecDeque<Option<u64>>)>,
    changes: VecDeque<Change>,
    /// Each route's status at the last sample, by `Route as usize`.
    last: Option<[Status; Route::EVERY.len()]>,
}

impl Trend {
    /// Adds one sampled round.
    pub fn record(&mut self, round: &Round, at: SystemTime) {
        if self.points.len() == SAMPLES {
            self.points.pop_front();
        }
        self.points.push_back(Point::of(round, at));
        self.record_queues(round);
        let now = Route::EVERY.map(|route| round.report(route).status);
        if let Some(last) = self.last {
            for route in Route::EVERY {
                let (from, to) = (last[route as usize], now[route as usize]);
                if from != to {
                    if self.changes.len() == CHANGES {
                        self.changes.pop_front();
                    }
                    self.changes.push_back(Change {
                        at,
                        route,
                        from,
                        to,
                    });
                }
            }
        }
        self.last = Some(now);
    }

    fn record_queues(&mut self, round: &Round) {
        let readings = round
            .outcome
            .as_ref()
            .ok()
            .and_then(|o| o.snapshot.queues.clone())
            .unwrap_or_default();
        let length = |name: &str| {
            readings
                .iter()
                .find(|r| r.name.as_str() == name)
                .and_then(|r| match &r.state {
                    ReadState::Read(backlog) => Some(backlog.length),
                    _ => None,
                })
        };
        for reading in readings.iter() {
            if !self
                .queues
                .iter()
                .any(|(name, _)| name == reading.name.as_str())
            {
                // New: no length before now.
                let before = self.points.len() - 1;
                self.queues.push((
                    reading.name.as_str().to_owned(),
                    VecDeque::from(vec![None; before]),
                ));
            }
        }
        let kept = self.points.len();
        for (name, lengths) in &mut self.queues {
            lengths.push_back(length(name));
            while lengths.len() > kept {
                lengths.pop_front();
            }
        }
        // A queue no longer configured leaves once its last length has aged out.
        self.queues
            .retain(|(_, lengths)| lengths.iter().any(Option::is_some));
    }

    /// Each queue's lengths, aligned with [`Self::points`].
    pub fn queues(&self) -> &[(String, VecDeque<Option<u64>>)] {
        &self.queues
    }

    /// Oldest first.
    pub fn points(&self) -> &VecDeque<Point> {
        &self.points
    }

    /// Oldest first.
    pub fn changes(&self) -> &VecDeque<Change> {
        &self.changes
    }
}

impl Point {
    fn of(round: &Round, at: SystemTime) -> Self {
        let lookups = round.window.hits + round.window.misses;
        let hit_ratio = (lookups > 0).then(|| round.window.hits as f64 / lookups as f64);
        let Ok(observation) = &round.outcome else {
            return Self {
                at,
                hit_ratio: None,
                memory_ratio: None,
                rss_bytes: None,
                limit_bytes: None,
                latency: None,
                clients: None,
            };
        };
        let snap = &observation.snapshot;
        let memory_ratio = match (snap.counted_memory(), snap.maxmemory) {
            (Some(counted), Some(max)) if max > 0 => Some(counted as f64 / max as f64),
            _ => None,
        };
        let limit = headroom::limit(round.settings.checks.headroom.limit_bytes, snap);
        Self {
            at,
            hit_ratio,
            memory_ratio,
            rss_bytes: snap.used_memory_rss,
            limit_bytes: limit.map(|(bytes, _)| bytes),
            latency: Some(observation.latency),
            clients: snap.connected_clients,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::checks::Window;
    use crate::config::Settings;
    use crate::info::Snapshot;
    use crate::redis::{Observation, RedisError};
    use crate::report::Report;

    /// A round as the sampler gets it: Redis answered with `info`, or not.
    pub(crate) fn round(info: Option<&str>) -> Round {
        let settings = Arc::new(Settings::default());
        let outcome = match info {
            Some(text) => Ok(Observation {
                latency: Duration::from_millis(2),
                snapshot: Snapshot::parse(text),
            }),
            None => Err(RedisError::Unreachable("Connection refused".into())),
        };
        let window = Window {
            hits: 3,
            misses: 1,
            ..Window::default()
        };
        let at = SystemTime::now();
        Round {
            at: Instant::now(),
            checked_at: at,
            reports: Route::EVERY
                .map(|route| Report::build(route, &outcome, Some(&window), &settings, at)),
            outcome,
            window,
            settings,
        }
    }

    const HEALTHY: &str = "role:master\r\nused_memory:500\r\nmaxmemory:1000\r\n\
        used_memory_rss:2000\r\ntotal_system_memory:8000\r\nconnected_clients:7\r\n";

    #[test]
    fn a_point_holds_what_the_checks_judge() {
        let mut trend = Trend::default();
        trend.record(&round(Some(HEALTHY)), SystemTime::now());
        let point = trend.points()[0];
        assert_eq!(point.hit_ratio, Some(0.75));
        assert_eq!(point.memory_ratio, Some(0.5));
        assert_eq!(point.rss_bytes, Some(2000));
        assert_eq!(point.limit_bytes, Some(8000));
        assert_eq!(point.latency, Some(Duration::from_millis(2)));
        assert_eq!(point.clients, Some(7));
    }

    #[test]
    fn the_ring_keeps_the_newest_samples_only() {
        let mut trend = Trend::default();
        let start = SystemTime::UNIX_EPOCH;
        let healthy = round(Some(HEALTHY));
        for second in 0..(SAMPLES as u64 + 10) {
            trend.record(&healthy, start + Duration::from_secs(second));
        }
        assert_eq!(trend.points().len(), SAMPLES);
        assert_eq!(trend.points()[0].at, start + Duration::from_secs(10));
        assert!(trend.changes().is_empty());
    }

    #[test]
    fn status_changes_are_kept_with_their_time_and_bounded() {
        let mut trend = Trend::default();
        let (up, down) = (round(Some(HEALTHY)), round(None));
        let start = SystemTime::UNIX_EPOCH;
        trend.record(&up, start);
        trend.record(&down, start + Duration::from_secs(5));
        let first = trend.changes()[0];
        assert_eq!(first.at, start + Duration::from_secs(5));
        assert_eq!(first.route, Route::Redis);
        assert_eq!((first.from, first.to), (Status::Ok, Status::Down));
        assert_eq!(trend.points()[1].rss_bytes, None);
        for second in 2..100 {
            let round = if second % 2 == 0 { &up } else { &down };
            trend.record(round, start + Duration::from_secs(5 * second));
        }
        assert_eq!(trend.changes().len(), CHANGES);
    }
}
