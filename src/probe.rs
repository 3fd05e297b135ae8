//! The probe cache: however many probes arrive, Redis sees one check per
//! `checks.max_age` at most, plus one per `checks.sample_interval` from the
//! background sampler so the windows fill even with no probes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::checks::Window;
use crate::config::{FailAt, Settings};
use crate::history::History;
use crate::info::{ClusterInfo, Snapshot};
use crate::metrics::Metrics;
use crate::redis::{Redis, RedisError};
use crate::report::{Format, Observation, Report, Round, Route};
use crate::verdict::Status;

/// A probe's answer for `route` from `round`, failing at `fail_at`.
fn answer_from(round: &Round, route: Route, fail_at: FailAt, format: Format) -> Answer {
    let report = round.report(route);
    let body = match format {
        Format::Json => Bytes::from(report.body(round.at.elapsed())),
        Format::HealthJson => report.health_json(),
    };
    Answer {
        healthy: !route.fails(report, fail_at),
        body,
    }
}

/// What the HTTP layer sends for one probe.
pub struct Answer {
    pub healthy: bool,
    pub body: Bytes,
}

/// State only the check in flight touches.
struct Refresh {
    /// `None` for a one-shot check: no window, so no windowed checks.
    history: Option<History>,
    last_status: Vec<(Route, Status)>,
}

/// Answers probes from the latest check and decides when a new one runs.
pub struct Prober {
    settings: Arc<Settings>,
    redis: Redis,
    /// Read by every probe without a lock, so probes never queue behind
    /// each other; shared with /metrics, which reads it the same way.
    latest: Arc<ArcSwapOption<Round>>,
    metrics: Metrics,
    /// Held while a check runs, so concurrent probes share the one in flight.
    refresh: Mutex<Refresh>,
}

impl Prober {
    /// A prober with no check yet: the first probe or sampler tick runs one.
    pub fn new(settings: Arc<Settings>) -> Self {
        let redis = Redis::new(
            settings.redis.clone(),
            settings.checks.slowlog.active(),
            settings.checks.cluster.enabled,
            settings.checks.sentinel.masters.clone(),
        );
        let history = History::new(settings.checks.hit_rate.window);
        let latest = Arc::new(ArcSwapOption::empty());
        let metrics = Metrics::new(latest.clone(), settings.checks.headroom.limit_bytes);
        Self {
            settings,
            redis,
            metrics,
            latest,
            refresh: Mutex::new(Refresh {
                history: Some(history),
                last_status: Vec::new(),
            }),
        }
    }

    /// A prober for one check (`redis-health check`): it keeps no history,
    /// so it leaves out the checks that judge growth over a window, and
    /// sends no SLOWLOG, which only they need.
    pub fn one_shot(settings: Arc<Settings>) -> Self {
        let mut prober = Self::new(settings);
        prober.refresh.get_mut().history = None;
        prober.redis = Redis::new(
            prober.settings.redis.clone(),
            false,
            prober.settings.checks.cluster.enabled,
            prober.settings.checks.sentinel.masters.clone(),
        );
        prober
    }

    /// A probe's answer for `route`, from a check younger than
    /// `checks.max_age`, failing at `fail_at` (the caller's) or else at the
    /// route's configured level. The usual case takes no lock, no Redis I/O
    /// and no serialisation: it copies the body rendered when the check ran.
    pub async fn answer(
        self: &Arc<Self>,
        route: Route,
        fail_at: Option<FailAt>,
        format: Format,
    ) -> Answer {
        let fail_at = fail_at.unwrap_or_else(|| route.fail_at(&self.settings.routes));
        let max_age = self.settings.checks.max_age;
        if let Some(round) = &*self.latest.load()
            && round.at.elapsed() < max_age
        {
            return answer_from(round, route, fail_at, format);
        }
        answer_from(&*self.refreshed(max_age).await, route, fail_at, format)
    }

    /// Metrics kept as probes and checks happen.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs the sampler until the process ends: a check whenever the latest
    /// one turns `checks.sample_interval` old, so windows fill and /metrics
    /// stays fresh with no probes at all.
    pub async fn sample_forever(self: Arc<Self>) {
        let interval = self.settings.checks.sample_interval;
        loop {
            let round = self.fresher_than(interval, Instant::now()).await;
            // Subtracting saturates where adding to an Instant could panic.
            tokio::time::sleep(interval.saturating_sub(round.at.elapsed())).await;
        }
    }

    /// [`Self::fresher_than`] in a task of its own: a probe whose client
    /// gives up mid-check does not cancel the check, so the probes behind it
    /// still get its result instead of starting another.
    async fn refreshed(self: &Arc<Self>, max_age: Duration) -> Arc<Round> {
        let asked = Instant::now();
        let prober = Arc::clone(self);
        match tokio::spawn(async move { prober.fresher_than(max_age, asked).await }).await {
            Ok(round) => round,
            // Only a panic in the check ends the task early: check here
            // instead. Boxed, so the probe's own future stays small: every
            // probe in flight holds one.
            Err(_) => Box::pin(self.fresher_than(max_age, asked)).await,
        }
    }

    /// A check younger than `max_age`, or one that completed after `asked`:
    /// probes that queued behind a check in flight share its result rather
    /// than each running one of their own, however small `max_age` is.
    async fn fresher_than(&self, max_age: Duration, asked: Instant) -> Arc<Round> {
        let usable = |round: &Arc<Round>| round.at.elapsed() < max_age || round.at >= asked;
        if let Some(round) = self.latest.load_full().filter(usable) {
            return round;
        }
        let mut refresh = self.refresh.lock().await;
        if let Some(round) = self.latest.load_full().filter(usable) {
            return round;
        }
        let round = Arc::new(self.check(&mut refresh).await);
        self.latest.store(Some(round.clone()));
        round
    }

    async fn check(&self, refresh: &mut Refresh) -> Round {
        let started = Instant::now();
        let outcome = self.redis.check().await.map(|reply| Observation {
            latency: reply.latency,
            snapshot: Snapshot {
                slowlog_last_id: reply.slowlog_last_id,
                slowlog_len: reply.slowlog_len,
                cluster: reply.cluster_info.as_deref().map(ClusterInfo::parse),
                tls: reply.certificates,
                ..Snapshot::parse(&reply.info)
            }
            .with_quorum(&reply.quorum),
        });
        let at = Instant::now();
        self.metrics.check_took(at - started);
        let window = match (&outcome, &mut refresh.history) {
            (Ok(observation), Some(history)) => Some(history.record(at, &observation.snapshot)),
            (Err(_), Some(_)) => Some(Window::default()),
            (_, None) => None,
        };
        let checked_at = SystemTime::now();
        let reports = Route::EVERY.map(|route| {
            Report::build(
                route,
                &outcome,
                window.as_ref(),
                &self.settings.checks,
                checked_at,
            )
        });
        let error = outcome.as_ref().err();
        log_changes(&mut refresh.last_status, &reports, error, &self.settings);
        Round {
            at,
            outcome,
            window: window.unwrap_or_default(),
            reports,
        }
    }
}

/// One log line when a route's status changes, never one per probe, with
/// the error in words when Redis could not be asked.
fn log_changes(
    last: &mut Vec<(Route, Status)>,
    reports: &[Report],
    error: Option<&RedisError>,
    settings: &Settings,
) {
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
                match error {
                    Some(error) => tracing::warn!(
                        route = path,
                        from,
                        to,
                        reason,
                        error = %error,
                        "health status changed"
                    ),
                    None => tracing::warn!(route = path, from, to, reason, "health status changed"),
                }
            }
        }
        last.push((route, report.status));
    }
}
