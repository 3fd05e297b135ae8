//! `/metrics` in the Prometheus text format.
//!
//! Gauges are read at scrape time from the latest completed check, so a
//! scrape never sends Redis a command. Probe counters and the check-duration
//! histogram are kept as probes and checks happen.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::http::StatusCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::checks::headroom;
use crate::http::PROBE_CODES;
use crate::info::{CertDates, MasterStatus, Role, SentinelInfo};
use crate::queues::{ReadState, Reading};
use crate::report::Round;
use crate::routes::Route;

/// Route and code; the code is owned only for a 2xx `warn_code` other than
/// 200, counted on a slower path.
type ProbeLabels = [(&'static str, Cow<'static, str>); 2];

pub struct Metrics {
    registry: Registry,
    /// One handle per route and code, made once, so counting a probe is one
    /// atomic add on the hot path. Indexed by `Route as usize`.
    probes: [[Counter; PROBE_CODES.len()]; Route::EVERY.len()],
    /// The same counters, for codes outside [`PROBE_CODES`].
    family: Family<ProbeLabels, Counter>,
    probe_latency: Arc<ProbeLatency>,
    check_duration: Histogram,
    reload_ok: Gauge,
    reload_at: Gauge,
    watching: Gauge,
}

impl Metrics {
    pub fn new(latest: Arc<ArcSwapOption<Round>>) -> Self {
        let mut registry = Registry::default();
        let family = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "redis_health_probe_requests",
            "Health probes answered, by route and HTTP code",
            family.clone(),
        );
        let probes = Route::EVERY.map(|route| {
            PROBE_CODES.map(|code| {
                family.get_or_create_owned(&[
                    ("route", Cow::Borrowed(route.path())),
                    ("code", Cow::Owned(code.as_str().to_owned())),
                ])
            })
        });
        // 0.25 ms to about 2 s: a healthy loopback check to a hung one.
        let check_duration = Histogram::new(exponential_buckets(0.00025, 2.0, 14));
        registry.register(
            "redis_health_check_duration_seconds",
            "Time one check (connect if needed, PING, INFO) took",
            check_duration.clone(),
        );
        registry.register_collector(Box::new(LatestCheck {
            latest,
            last_expiry: Mutex::default(),
        }));
        let reload_ok = Gauge::default();
        reload_ok.set(1);
        registry.register(
            "redis_health_config_last_reload_successful",
            "1 when the latest config reload (or the start) succeeded, 0 when it failed",
            reload_ok.clone(),
        );
        let reload_at = Gauge::default();
        reload_at.set(unix_now());
        registry.register(
            "redis_health_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully (start or reload), Unix time",
            reload_at.clone(),
        );
        let watching = Gauge::default();
        registry.register(
            "redis_health_config_watching",
            "1 while the config file's directory is watched for changes, 0 when only SIGHUP reloads",
            watching.clone(),
        );
        let probe_latency = Arc::new(ProbeLatency::default());
        registry.register_collector(Box::new(probe_latency.clone()));
        Self {
            registry,
            probes,
            family,
            probe_latency,
            check_duration,
            reload_ok,
            reload_at,
            watching,
        }
    }

    pub fn probe_answered(&self, route: Route, code: StatusCode, took: Duration) {
        if let Some(index) = PROBE_CODES.iter().position(|c| *c == code) {
            self.probes[route as usize][index].inc();
        } else {
            self.family
                .get_or_create(&[
                    ("route", Cow::Borrowed(route.path())),
                    ("code", Cow::Owned(code.as_str().to_owned())),
                ])
                .inc();
        }
        self.probe_latency.observe(route, took);
    }

    /// Records a config reload's outcome, as Prometheus does its own.
    pub fn reloaded(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
        if ok {
            self.reload_at.set(unix_now());
        }
    }

    /// Whether file changes reload, so an operator can alert on a watch
    /// lost to a moved or deleted directory.
    pub fn watching(&self, on: bool) {
        self.watching.set(i64::from(on));
    }

    pub fn check_took(&self, took: Duration) {
        self.check_duration.observe(took.as_secs_f64());
    }

    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Seconds since the Unix epoch, 0 on a clock set before it.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Upper bounds of the probe-latency buckets: 50 µs (a cached answer) to
/// about 1.6 s (a probe that waited on a check against a hung Redis).
const PROBE_BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512,
    0.1024, 0.2048, 0.4096, 0.8192, 1.6384,
];

/// Probe latency by route, in atomics: prometheus-client's `Histogram`
/// takes a lock per observation, which would make probes queue on each other.
#[derive(Debug, Default)]
struct ProbeLatency {
    routes: [RouteLatency; Route::EVERY.len()],
}

#[derive(Debug, Default)]
struct RouteLatency {
    /// Not cumulative: each probe counts in its own bucket only (the last
    /// one is +Inf). The text encoder sums them up itself.
    buckets: [AtomicU64; PROBE_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl ProbeLatency {
    fn observe(&self, route: Route, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = PROBE_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(PROBE_BUCKETS.len());
        let latency = &self.routes[route as usize];
        latency.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        latency.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Collector for ProbeLatency {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(
            "redis_health_probe_duration_seconds",
            "Time the sidecar took to answer a health probe, by route",
            None,
            MetricType::Histogram,
        )?;
        for (route, latency) in Route::EVERY.iter().zip(&self.routes) {
            // Per bucket, as prometheus-client's `encode_histogram` wants:
            // it writes the running total itself.
            let buckets: Vec<(f64, u64)> = PROBE_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(&latency.buckets)
                .map(|(bound, bucket)| (bound, bucket.load(Ordering::Relaxed)))
                .collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = latency.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let labels = [("route", route.path())];
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

/// Gauges from the latest completed check, computed per scrape.
#[derive(Debug)]
struct LatestCheck {
    latest: Arc<ArcSwapOption<Round>>,
    /// The certificate dates last read, exported while Redis cannot be
    /// asked: an expired certificate fails the very handshake that reads
    /// them, and the expiry must not vanish just when it matters.
    last_expiry: Mutex<Option<CertDates>>,
}

impl LatestCheck {
    /// The dates this round read, else the last known while the check
    /// fails on a `rediss://` URL; none once a check succeeds without TLS.
    fn expiry(&self, round: &Round) -> Option<CertDates> {
        let mut last = self.last_expiry.lock().ok()?;
        match &round.outcome {
            Ok(observation) => *last = observation.snapshot.tls,
            Err(_) if !round.settings.redis.url.tls => *last = None,
            Err(_) => {}
        }
        *last
    }
}

impl Collector for LatestCheck {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut encoder,
            "redis_health_build_info",
            "The sidecar's version, as a label",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        )?;
        // Before the first check nothing is known; absent beats a made-up 0.
        let Some(round) = self.latest.load_full() else {
            return Ok(());
        };
        gauge(
            &mut encoder,
            "redis_health_redis_up",
            "1 when Redis answered the latest check, 0 when it could not be asked",
            &[],
            f64::from(u8::from(round.outcome.is_ok())),
        )?;
        gauge(
            &mut encoder,
            "redis_health_last_check_age_seconds",
            "How old the latest check is",
            &[],
            round.at.elapsed().as_secs_f64(),
        )?;
        labelled(
            &mut encoder,
            "redis_health_route_status",
            "Each route's status: 0 ok, 1 warn, 2 degraded, 3 critical, 4 down",
            Route::EVERY
                .iter()
                .map(|route| ("route", route.path(), round.report(*route).status as u8)),
        )?;
        let mut checks: Vec<(&'static str, u8)> = Vec::new();
        for report in Route::EVERY.map(|route| round.report(route)) {
            for (name, status) in &report.checks {
                if !checks.iter().any(|(seen, _)| seen == name) {
                    checks.push((name, *status as u8));
                }
            }
        }
        labelled(
            &mut encoder,
            "redis_health_check_status",
            "Each check's status: 0 ok, 1 warn, 2 degraded, 3 critical, 4 down",
            checks
                .into_iter()
                .map(|(name, level)| ("check", name, level)),
        )?;
        for (name, help, value) in observed(&round) {
            if let Some(value) = value {
                gauge(&mut encoder, name, help, &[], value)?;
            }
        }
        if let Ok(observation) = &round.outcome
            && let Some(sentinel) = &observation.snapshot.sentinel
        {
            sentinel_gauges(&mut encoder, sentinel)?;
        }
        if let Ok(observation) = &round.outcome
            && let Some(readings) = &observation.snapshot.queues
        {
            queue_gauges(&mut encoder, readings)?;
        }
        certificate_expiry(&mut encoder, self.expiry(&round))
    }
}

/// On a Sentinel: TILT, and each monitored master's status and quorum.
fn sentinel_gauges(encoder: &mut DescriptorEncoder, sentinel: &SentinelInfo) -> fmt::Result {
    if let Some(tilt) = sentinel.tilt {
        gauge(
            encoder,
            "redis_health_sentinel_tilt",
            "1 while the Sentinel is in TILT mode (it takes no action)",
            &[],
            f64::from(u8::from(tilt)),
        )?;
    }
    labelled(
        encoder,
        "redis_health_sentinel_master_status",
        "Each monitored master as this Sentinel sees it: 0 ok, 1 sdown, 2 odown",
        sentinel.masters.iter().filter_map(|m| {
            let level = match m.status? {
                MasterStatus::Ok => 0,
                MasterStatus::Sdown => 1,
                MasterStatus::Odown => 2,
            };
            Some(("master", m.name.as_str(), level))
        }),
    )?;
    labelled(
        encoder,
        "redis_health_sentinel_quorum_ok",
        "1 when SENTINEL CKQUORUM answered OK for the master (judged masters only)",
        sentinel.masters.iter().filter_map(|m| {
            let ok = m.quorum_ok?;
            Some(("master", m.name.as_str(), u8::from(ok)))
        }),
    )
}

/// Each `[[queues]]` queue the sampler read: its length, how long its
/// consumers' end has not moved while work waits, and each stream group's lag.
fn queue_gauges(encoder: &mut DescriptorEncoder, readings: &[Reading]) -> fmt::Result {
    let read = || {
        readings.iter().filter_map(|r| match &r.state {
            ReadState::Read(backlog) => Some((r.name.as_str(), backlog)),
            _ => None,
        })
    };
    let mut length = encoder.encode_descriptor(
        "redis_health_queue_length",
        "Each queue's length (LLEN, XLEN or ZCARD; for a preset its waiting list)",
        None,
        MetricType::Gauge,
    )?;
    for (queue, backlog) in read() {
        ConstGauge::new(backlog.length as f64)
            .encode(length.encode_family(&[("queue", queue)])?)?;
    }
    let mut stalled = encoder.encode_descriptor(
        "redis_health_queue_stalled_seconds",
        "How long each queue's consumers' end (a list's end item, a stream group's read position) has not moved while work waits; 0 when it moves or nothing waits",
        None,
        MetricType::Gauge,
    )?;
    for (queue, backlog) in read() {
        let unmoved = backlog
            .groups
            .iter()
            .filter_map(|g| g.unmoved_for)
            .chain(backlog.unmoved_for)
            .max()
            .unwrap_or_default();
        ConstGauge::new(unmoved.as_secs_f64())
            .encode(stalled.encode_family(&[("queue", queue)])?)?;
    }
    let mut lag = encoder.encode_descriptor(
        "redis_health_queue_group_lag",
        "Entries of each stream queue not yet delivered to each group (XINFO GROUPS lag, Redis 7)",
        None,
        MetricType::Gauge,
    )?;
    for (queue, backlog) in read() {
        for group in &backlog.groups {
            if let Some(value) = group.lag {
                let labels = [("queue", queue), ("group", group.name.as_str())];
                ConstGauge::new(value as f64).encode(lag.encode_family(&labels)?)?;
            }
        }
    }
    Ok(())
}

/// When the TLS connection's certificates expire, as Unix timestamps; absent
/// on plain connections.
fn certificate_expiry(encoder: &mut DescriptorEncoder, dates: Option<CertDates>) -> fmt::Result {
    let Some(dates) = dates else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(
        "redis_health_tls_cert_expiry_timestamp_seconds",
        "notAfter of the TLS connection's certificates, by cert (server, client)",
        None,
        MetricType::Gauge,
    )?;
    for (cert, not_after) in [
        ("server", dates.server_not_after),
        ("client", dates.client_not_after),
    ] {
        if let Some(not_after) = not_after {
            let labels = [("cert", cert)];
            ConstGauge::new(not_after as f64).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// The values the latest check read, by metric name; `None` where Redis did
/// not report it (or could not be asked).
fn observed(round: &Round) -> Vec<(&'static str, &'static str, Option<f64>)> {
    let Ok(observation) = &round.outcome else {
        return Vec::new();
    };
    let snap = &observation.snapshot;
    let window = &round.window;
    let float = |v: Option<u64>| v.map(|v| v as f64);
    let flag = |v: Option<bool>| v.map(|v| f64::from(u8::from(v)));
    let lookups = window.hits + window.misses;
    let online = snap.replicas.iter().filter(|r| r.online);
    let primary = snap.role == Some(Role::Master);
    vec![
        (
            "redis_health_ping_latency_seconds",
            "PING round trip of the latest check (PING and INFO share it, pipelined)",
            Some(observation.latency.as_secs_f64()),
        ),
        (
            "redis_health_memory_used_bytes",
            "used_memory",
            float(snap.used_memory),
        ),
        (
            "redis_health_memory_max_bytes",
            "maxmemory (0: no limit)",
            float(snap.maxmemory),
        ),
        (
            "redis_health_memory_ratio",
            "used_memory / maxmemory, buffers included; the memory check judges used_memory less mem_not_counted_for_evict (its counted_bytes)",
            snap.used_memory
                .zip(snap.maxmemory.filter(|max| *max > 0))
                .map(|(used, max)| used as f64 / max as f64),
        ),
        (
            "redis_health_memory_rss_bytes",
            "used_memory_rss",
            float(snap.used_memory_rss),
        ),
        (
            "redis_health_memory_limit_bytes",
            "The memory limit RSS is judged against: checks.headroom.limit_bytes, else total_system_memory",
            float(
                headroom::limit(round.settings.checks.headroom.limit_bytes, snap)
                    .map(|(bytes, _)| bytes),
            ),
        ),
        (
            "redis_health_fragmentation_ratio",
            "mem_fragmentation_ratio",
            snap.mem_fragmentation_ratio,
        ),
        (
            "redis_health_hit_ratio",
            "Keyspace hits / lookups within checks.hit_rate.window",
            (lookups > 0).then(|| window.hits as f64 / lookups as f64),
        ),
        (
            "redis_health_hit_rate_lookups",
            "Keyspace lookups within checks.hit_rate.window",
            Some(lookups as f64),
        ),
        (
            "redis_health_window_evicted_keys",
            "Keys evicted within checks.hit_rate.window",
            Some(window.evicted as f64),
        ),
        (
            "redis_health_window_rejected_connections",
            "Connections rejected within checks.hit_rate.window",
            Some(window.rejected as f64),
        ),
        (
            "redis_health_window_slow_commands",
            "Slow-log entries added within checks.hit_rate.window (0 unless the slowlog check runs)",
            Some(window.slow as f64),
        ),
        (
            "redis_health_connected_clients",
            "connected_clients",
            float(snap.connected_clients),
        ),
        (
            "redis_health_blocked_clients",
            "blocked_clients",
            float(snap.blocked_clients),
        ),
        (
            "redis_health_ops_per_second",
            "instantaneous_ops_per_sec (shown, never judged)",
            float(snap.instantaneous_ops_per_sec),
        ),
        (
            "redis_health_is_primary",
            "1 on a primary (role:master), 0 on a replica",
            snap.role
                .map(|role| f64::from(u8::from(role == Role::Master))),
        ),
        (
            "redis_health_replication_link_up",
            "A replica's master_link_status: 1 up, 0 down",
            flag(snap.master_link_up),
        ),
        (
            "redis_health_replication_last_io_seconds",
            "A replica's master_last_io_seconds_ago",
            snap.master_last_io_seconds_ago
                .filter(|s| *s >= 0)
                .map(|s| s as f64),
        ),
        (
            "redis_health_replicas_online",
            "A primary's replicas in state online",
            primary.then(|| online.clone().count() as f64),
        ),
        (
            "redis_health_replica_max_lag_seconds",
            "A primary's largest lag among its online replicas",
            online.filter_map(|r| r.lag_s).max().map(|lag| lag as f64),
        ),
        (
            "redis_health_rdb_last_save_age_seconds",
            "Seconds since the last successful RDB save, by Redis's clock",
            snap.rdb_last_save_age().map(|age| age.as_secs_f64()),
        ),
        (
            "redis_health_rdb_changes_since_last_save",
            "rdb_changes_since_last_save",
            float(snap.rdb_changes_since_last_save),
        ),
    ]
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    value: f64,
) -> fmt::Result {
    let gauge = ConstGauge::new(value);
    let mut metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    if labels.is_empty() {
        gauge.encode(metric)
    } else {
        gauge.encode(metric.encode_family(&labels)?)
    }
}

/// One gauge family with a single label, one series per item.
fn labelled<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (&'a str, &'a str, u8)>,
) -> fmt::Result {
    let mut metric =
        encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0).metric_type())?;
    for (key, value, level) in series {
        let labels = [(key, value)];
        ConstGauge::new(f64::from(level)).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}
