//! The probe cache: however many probes arrive, Redis sees one check per
//! `checks.max_age` at most, plus one per `checks.sample_interval` from the
//! background sampler so the windows fill even with no probes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::http::StatusCode;
use bytes::Bytes;
use tokio::sync::{Mutex, Notify};

use crate::checks::Window;
use crate::config::{FailAt, Settings, WarnCode};
use crate::history::History;
use crate::info::Canary;
use crate::metrics::Metrics;
use crate::queues::{Reading, Tracker};
use crate::redis::{Redis, RedisError};
use crate::report::{Format, Report, Round};
use crate::routes::Route;
use crate::trend::Trend;
use crate::verdict::Status;

/// What a probe's query asks of its answer, over the route's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    /// `?fail_at=`, over `routes.<route>.fail_at`.
    pub fail_at: Option<FailAt>,
    /// `?warn_code=`, over `routes.<route>.warn_code`: a 429 for Consul
    /// alone, where a route-wide one would reach every caller of the route.
    pub warn_code: Option<WarnCode>,
}

/// A probe's answer for `route` from `round`, by the settings that round
/// was judged with and what the caller `asked`.
pub fn answer_from(round: &Round, route: Route, asked: Asked, format: Format) -> Answer {
    let routes = &round.settings.routes;
    let report = round.report(route);
    let fail_at = asked.fail_at.unwrap_or_else(|| route.fail_at(routes));
    let healthy = !route.fails(report, fail_at);
    let body = match format {
        Format::Json => Bytes::from(report.body(round.at.elapsed())),
        Format::HealthJson => report.health_json(healthy),
    };
    let warned = healthy && report.status == Status::Warn;
    Answer {
        healthy,
        warn_code: warned.then(|| asked.warn_code.unwrap_or_else(|| route.warn_code(routes))),
        body,
    }
}

/// What the HTTP layer sends for one probe.
pub struct Answer {
    pub healthy: bool,
    /// `routes.<route>.warn_code`, when the route passes with a warning.
    pub warn_code: Option<WarnCode>,
    pub body: Bytes,
}

impl Answer {
    /// The HTTP status: 503 when the route fails, its warn code when it
    /// passes with a warning, else 200.
    pub fn code(&self) -> StatusCode {
        match (self.healthy, self.warn_code) {
            (false, _) => StatusCode::SERVICE_UNAVAILABLE,
            // Validated at load as a 2xx or 429, so always a status code.
            (true, Some(code)) => StatusCode::from_u16(code.get()).unwrap_or(StatusCode::OK),
            (true, None) => StatusCode::OK,
        }
    }
}

/// State only the check in flight touches.
struct Refresh {
    /// `None` for a one-shot check: no window, so no windowed checks.
    history: Option<History>,
    last_status: Vec<(Route, Status)>,
    /// Whether the node was a Sentinel at the last check that reached it:
    /// while Redis cannot be asked, the routes of the other kind stay quiet.
    sentinel: Option<bool>,
}

/// Answers probes from the latest check and decides when a new one runs.
pub struct Prober {
    /// The live settings, swapped whole by a reload. A check reads them
    /// once and keeps them in its [`Round`], which is what probes read.
    settings: ArcSwap<Settings>,
    /// Swapped whole by a reload, so the next check dials with the new
    /// `redis.*`; a check in flight finishes on the old connection.
    redis: ArcSwap<Redis>,
    /// Read by every probe without a lock, so probes never queue behind
    /// each other; shared with /metrics, which reads it the same way.
    latest: Arc<ArcSwapOption<Round>>,
    metrics: Metrics,
    /// Held while a check runs, so concurrent probes share the one in flight.
    refresh: Mutex<Refresh>,
    /// Wakes the sampler when a reload may have changed its interval.
    resample: Notify,
    /// The sampler's last write canary, and when it ran.
    canary: ArcSwapOption<(Instant, Canary)>,
    /// The sampler's last reading of the queues, and when it ran.
    queues: ArcSwapOption<(Instant, Arc<Vec<Reading>>)>,
    /// What the sampler keeps between queue samples; only it touches this.
    tracker: Mutex<Tracker>,
    /// The sampled past, for the status page; only the sampler writes it.
    trend: std::sync::Mutex<Trend>,
}

impl Prober {
    /// A prober with no check yet: the first probe or sampler tick runs one.
    pub fn new(settings: Arc<Settings>) -> Self {
        let redis = ArcSwap::from_pointee(Redis::new(settings.clone(), true));
        let history = History::new(settings.checks.window.get());
        let latest = Arc::new(ArcSwapOption::empty());
        Self {
            settings: ArcSwap::new(settings),
            redis,
            metrics: Metrics::new(latest.clone()),
            latest,
            refresh: Mutex::new(Refresh {
                history: Some(history),
                last_status: Vec::new(),
                sentinel: None,
            }),
            resample: Notify::new(),
            canary: ArcSwapOption::empty(),
            queues: ArcSwapOption::empty(),
            tracker: Mutex::new(Tracker::default()),
            trend: std::sync::Mutex::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Puts a changed config in force and runs a check by it at once, so
    /// probes answer by the new thresholds from then on. With `redial` (a
    /// key the connection was dialled for changed) the connection is dialled
    /// afresh, the password file read again; else it is kept, as Redis need
    /// not see a reload that is not about it. The windows start over only
    /// when `checks.window` changed.
    pub async fn apply(&self, settings: Settings, redial: bool) {
        {
            let mut refresh = self.refresh.lock().await;
            let window = settings.checks.window;
            if refresh.history.is_some() && window != self.settings.load().checks.window {
                refresh.history = Some(History::new(window.get()));
            }
            let settings = Arc::new(settings);
            if redial {
                self.redis.store(Arc::new(Redis::new(
                    settings.clone(),
                    refresh.history.is_some(),
                )));
            }
            self.settings.store(settings);
        }
        self.resample.notify_waiters();
        self.fresher_than(Duration::ZERO, Instant::now()).await;
    }

    /// A prober for one check (`redis-health check`): it keeps no history,
    /// so it leaves out the checks that judge growth over a window, and
    /// sends no SLOWLOG, which only they need.
    pub fn one_shot(settings: Arc<Settings>) -> Self {
        let mut prober = Self::new(settings.clone());
        prober.refresh.get_mut().history = None;
        prober.redis = ArcSwap::from_pointee(Redis::new(settings, false));
        prober
    }

    /// A probe's answer for `route`, from a check younger than
    /// `checks.max_age`, by what the caller `asked` or else the route's
    /// settings. The usual case takes no lock, no Redis I/O
    /// and no serialisation: it copies the body rendered when the check ran.
    pub async fn answer(self: &Arc<Self>, route: Route, asked: Asked, format: Format) -> Answer {
        if let Some(round) = &*self.latest.load()
            && round.at.elapsed() < round.settings.checks.max_age.get()
        {
            return answer_from(round, route, asked, format);
        }
        let max_age = self.settings.load().checks.max_age.get();
        answer_from(&*self.refreshed(max_age).await, route, asked, format)
    }

    /// The latest check, run afresh if it is older than `checks.max_age`,
    /// as a probe would get it.
    pub async fn round(self: &Arc<Self>) -> Arc<Round> {
        if let Some(round) = self.latest.load_full()
            && round.at.elapsed() < round.settings.checks.max_age.get()
        {
            return round;
        }
        let max_age = self.settings.load().checks.max_age.get();
        self.refreshed(max_age).await
    }

    /// Runs `f` on the sampled past. A panic while it was held leaves
    /// points that are still whole, so a poisoned lock is used as it is.
    pub fn with_trend<T>(&self, f: impl FnOnce(&mut Trend) -> T) -> T {
        let mut trend = self
            .trend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut trend)
    }

    /// Metrics kept as probes and checks happen.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs the sampler until the process ends: a check whenever the latest
    /// one turns `checks.sample_interval` old, so windows fill and /metrics
    /// stays fresh with no probes at all.
    pub async fn sample_forever(self: Arc<Self>) {
        loop {
            let interval = self.settings.load().checks.sample_interval.get();
            self.try_a_write().await;
            let round = self.fresher_than(interval, Instant::now()).await;
            // After the check, so the first sample finds its connection open
            // and probes have the queues from the start.
            let sentinel = round
                .outcome
                .as_ref()
                .is_ok_and(|o| o.snapshot.sentinel.is_some());
            self.sample_queues(sentinel).await;
            self.with_trend(|trend| trend.record(&round, SystemTime::now()));
            // Subtracting saturates where adding to an Instant could panic.
            let due = tokio::time::sleep(interval.saturating_sub(round.at.elapsed()));
            // A reload may shorten the interval: start over with it at once.
            tokio::select! {
                () = due => {}
                () = self.resample.notified() => {}
            }
        }
    }

    /// The write canary, once per sample, on a node the last check found to
    /// be a primary outside a cluster; its result joins the checks that
    /// follow while it is younger than two sample intervals.
    async fn try_a_write(&self) {
        let primary = self.latest.load().as_ref().is_some_and(|round| {
            round.outcome.as_ref().is_ok_and(|o| {
                o.snapshot.role == Some(crate::info::Role::Master) && !o.snapshot.cluster_enabled
            })
        });
        if primary && let Some(canary) = self.redis.load().canary().await {
            self.canary.store(Some(Arc::new((Instant::now(), canary))));
        }
    }

    /// The queues, once per sample, in one pipelined round trip on the open
    /// connection; their readings join the checks that follow while they
    /// are younger than two sample intervals plus `redis.timeout`. On a
    /// Sentinel there are none.
    async fn sample_queues(&self, sentinel: bool) {
        let settings = self.settings.load_full();
        let defs = settings.queues.get();
        if defs.is_empty() || sentinel {
            self.queues.store(None);
            return;
        }
        let mut tracker = self.tracker.lock().await;
        let plan = tracker.plan(defs);
        let commands: Vec<_> = plan.iter().flatten().cloned().collect();
        let Some(replies) = self.redis.load().sample_queues(&commands).await else {
            return;
        };
        let mut replies = replies.into_iter();
        let per_queue = plan
            .iter()
            .map(|sent| replies.by_ref().take(sent.len()).collect())
            .collect();
        let now = Instant::now();
        let readings = tracker.record(defs, per_queue, now);
        self.queues.store(Some(Arc::new((now, Arc::new(readings)))));
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
        // Boxed: the check's state (the Redis exchange, the reports) is
        // allocated only by the probe that runs it, so each probe waiting
        // on the lock above holds a small future, not a copy of that state.
        let round = Arc::new(Box::pin(self.check(&mut refresh)).await);
        self.latest.store(Some(round.clone()));
        round
    }

    async fn check(&self, refresh: &mut Refresh) -> Round {
        let settings = self.settings.load_full();
        let started = Instant::now();
        let mut outcome = self.redis.load().check().await;
        // One check (`redis-health check`) has no sampler: it reads the
        // queues once itself, on the connection just used. One reading
        // judges lengths and types; a stall needs a served sidecar.
        if refresh.history.is_none()
            && let Ok(observation) = &outcome
        {
            self.sample_queues(observation.snapshot.sentinel.is_some())
                .await;
        }
        if let Ok(observation) = &mut outcome {
            let young = 2 * settings.checks.sample_interval.get();
            observation.snapshot.canary = self
                .canary
                .load()
                .as_ref()
                .filter(|c| c.0.elapsed() < young)
                .map(|c| c.1.clone());
            // A sample the machine's load delayed is still evidence: allow
            // it the sample's own bound too.
            let young = young + settings.redis.timeout.get();
            observation.snapshot.queues = self
                .queues
                .load()
                .as_ref()
                .filter(|q| q.0.elapsed() < young)
                .map(|q| q.1.clone());
        }
        let at = Instant::now();
        self.metrics.check_took(at - started);
        let window = match (&outcome, &mut refresh.history) {
            (Ok(observation), Some(history)) => Some(history.record(at, &observation.snapshot)),
            (Err(_), Some(_)) => Some(Window::default()),
            (_, None) => None,
        };
        let checked_at = SystemTime::now();
        let reports = Route::EVERY
            .map(|route| Report::build(route, &outcome, window.as_ref(), &settings, checked_at));
        if let Ok(observation) = &outcome {
            refresh.sentinel = Some(observation.snapshot.sentinel.is_some());
        }
        let error = outcome.as_ref().err();
        let changes = Changes {
            sentinel: refresh.sentinel,
            error,
            settings: &settings,
        };
        changes.log(&mut refresh.last_status, &reports);
        Round {
            at,
            checked_at,
            outcome,
            window: window.unwrap_or_default(),
            reports,
            settings,
        }
    }
}

/// What a status-change line needs besides the reports.
struct Changes<'a> {
    /// The node's kind, when known: a route for the other kind never logs.
    sentinel: Option<bool>,
    /// Why Redis could not be asked, in words.
    error: Option<&'a RedisError>,
    settings: &'a Settings,
}

impl Changes<'_> {
    /// One log line when routes change status, never one per probe or per
    /// route: it lists the routes that changed, and is a warning when one
    /// of them now fails. A route that does not apply to the node
    /// (`/health/sentinel` on a data node, `/health/replica` on a Sentinel)
    /// says nothing.
    fn log(&self, last: &mut Vec<(Route, Status)>, reports: &[Report]) {
        let before = std::mem::take(last);
        let mut changed: Vec<(Route, &str, &Report)> = Vec::new();
        for (route, report) in Route::EVERY.into_iter().zip(reports) {
            last.push((route, report.status));
            if self
                .sentinel
                .is_some_and(|sentinel| route.wrong_kind(sentinel).is_some())
            {
                continue;
            }
            let previous = before.iter().find(|(r, _)| *r == route).map(|(_, s)| *s);
            if previous != Some(report.status) {
                changed.push((route, previous.map_or("none", Status::as_str), report));
            }
        }
        let Some(worst) = changed.iter().map(|c| c.2).max_by_key(|r| r.status) else {
            return;
        };
        let failing = changed
            .iter()
            .any(|(route, _, report)| route.fails(report, route.fail_at(&self.settings.routes)));
        let reason_of = |report: &Report| report.reason.map(|r| r.as_str()).unwrap_or_default();
        let routes = changed
            .iter()
            .map(|c| c.0.path())
            .collect::<Vec<_>>()
            .join(",");
        let from = changed[0].1;
        let to = worst.status.as_str();
        let reason = reason_of(worst);
        // Spelled out per route only when the routes changed differently.
        let alike = changed.iter().all(|(_, f, report)| {
            *f == from && report.status == worst.status && report.reason == worst.reason
        });
        let changes = (!alike).then(|| {
            changed
                .iter()
                .map(|(route, from, report)| {
                    let to = report.status.as_str();
                    match report.reason {
                        Some(reason) => {
                            format!("{} {from}->{to} {}", route.path(), reason.as_str())
                        }
                        None => format!("{} {from}->{to}", route.path()),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        // Unrecorded when empty: `from` when the routes came from different
        // statuses, `changes` when they all changed alike.
        let from = alike.then_some(from);
        let changes = changes.as_deref();
        let redis = &self.settings.redis.url.address;
        match (failing, self.error) {
            (false, _) => {
                tracing::info!(routes, from, to, reason, changes, "health status changed");
            }
            (true, Some(error)) => tracing::warn!(
                routes,
                from,
                to,
                reason,
                changes,
                %redis,
                error = %error,
                "health status changed"
            ),
            (true, None) => {
                tracing::warn!(routes, from, to, reason, changes, %redis, "health status changed");
            }
        }
    }
}
