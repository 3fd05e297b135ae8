//! The probe cache: however many probes arrive, Redis sees one check per
//! `checks.max_age` at most, plus one per `checks.sample_interval` from the
//! background sampler so the windows fill even with no probes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex;

use crate::checks::Status;
use crate::config::{FailAt, Settings};
use crate::history::History;
use crate::info::{ClusterInfo, Snapshot};
use crate::redis::Redis;
use crate::report::{Observation, Report, Route};

/// The verdicts of one completed check, for every route.
#[derive(Debug)]
pub struct Round {
    pub at: Instant,
    /// Indexed by `Route as usize`.
    reports: [Report; Route::EVERY.len()],
}

impl Round {
    fn answer(&self, route: Route, fail_at: FailAt) -> Answer {
        let report = &self.reports[route as usize];
        Answer {
            healthy: !route.fails(report, fail_at),
            body: report.body(self.at.elapsed()),
        }
    }
}

/// What the HTTP layer sends for one probe.
pub struct Answer {
    pub healthy: bool,
    pub body: Vec<u8>,
}

/// State only the check in flight touches.
struct Refresh {
    history: History,
    last_status: Vec<(Route, Status)>,
}

pub struct Prober {
    settings: Arc<Settings>,
    redis: Redis,
    /// Read by every probe without a lock, so probes never queue behind each other.
    latest: ArcSwapOption<Round>,
    /// Held while a check runs, so concurrent probes share the one in flight.
    refresh: Mutex<Refresh>,
}

impl Prober {
    pub fn new(settings: Arc<Settings>) -> Self {
        let redis = Redis::new(
            settings.redis.clone(),
            settings.checks.slowlog.active(),
            settings.checks.cluster.enabled,
        );
        let history = History::new(settings.checks.hit_rate.window);
        Self {
            settings,
            redis,
            latest: ArcSwapOption::empty(),
            refresh: Mutex::new(Refresh {
                history,
                last_status: Vec::new(),
            }),
        }
    }

    /// A probe's answer for `route`, from a check younger than
    /// `checks.max_age`, failing at `fail_at` (the caller's) or else at the
    /// route's configured level. The usual case takes no lock, no Redis I/O
    /// and no serialisation: it copies the body rendered when the check ran.
    pub async fn answer(&self, route: Route, fail_at: Option<FailAt>) -> Answer {
        let fail_at = fail_at.unwrap_or_else(|| route.fail_at(&self.settings.routes));
        let max_age = self.settings.checks.max_age;
        if let Some(round) = &*self.latest.load()
            && round.at.elapsed() < max_age
        {
            return round.answer(route, fail_at);
        }
        self.fresher_than(max_age).await.answer(route, fail_at)
    }

    /// Runs the sampler until the process ends.
    pub async fn sample_forever(self: Arc<Self>) {
        let interval = self.settings.checks.sample_interval;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.fresher_than(interval).await;
        }
    }

    fn cached(&self, max_age: Duration) -> Option<Arc<Round>> {
        self.latest
            .load_full()
            .filter(|round| round.at.elapsed() < max_age)
    }

    async fn fresher_than(&self, max_age: Duration) -> Arc<Round> {
        if let Some(round) = self.cached(max_age) {
            return round;
        }
        let mut refresh = self.refresh.lock().await;
        // Another probe may have finished a check while this one waited.
        if let Some(round) = self.cached(max_age) {
            return round;
        }
        let round = Arc::new(self.check(&mut refresh).await);
        self.latest.store(Some(round.clone()));
        round
    }

    async fn check(&self, refresh: &mut Refresh) -> Round {
        let outcome = self.redis.check().await.map(|reply| Observation {
            latency: reply.latency,
            snapshot: Snapshot {
                slowlog_last_id: reply.slowlog_last_id,
                cluster: reply.cluster_info.as_deref().map(ClusterInfo::parse),
                ..Snapshot::parse(&reply.info)
            },
        });
        let at = Instant::now();
        let window = match &outcome {
            Ok(observation) => refresh.history.record(at, &observation.snapshot),
            Err(_) => Default::default(),
        };
        let checked_at = SystemTime::now();
        let reports = Route::EVERY.map(|route| {
            Report::build(route, &outcome, &window, &self.settings.checks, checked_at)
        });
        log_changes(&mut refresh.last_status, &reports, &self.settings);
        Round { at, reports }
    }
}

/// One log line when a route's status changes, never one per probe.
fn log_changes(last: &mut Vec<(Route, Status)>, reports: &[Report], settings: &Settings) {
    let before = std::mem::take(last);
    for (route, report) in Route::EVERY.into_iter().zip(reports) {
        let previous = before.iter().find(|(r, _)| *r == route).map(|(_, s)| *s);
        if previous != Some(report.status) {
            let path = route.path();
            let from = previous.map_or("none", Status::as_str);
            let to = report.status.as_str();
            let reason = report.reason.map(|r| r.as_str()).unwrap_or_default();
            if !route.fails(report, route.fail_at(&settings.routes)) {
                tracing::info!(route = path, from, to, reason, "health status changed");
            } else {
                tracing::warn!(route = path, from, to, reason, "health status changed");
            }
        }
        last.push((route, report.status));
    }
}
