//! Turns one check's observations into each route's verdict and body.
//!
//! Bodies are rendered once per check, not once per probe: a probe only
//! appends its `age_ms` (see [`Report::body`]).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use bytes::Bytes;

use crate::checks::{CheckResult, Measure, REGISTRY, Window, ping};
use crate::config::Settings;
use crate::info::Snapshot;
use crate::redis::{Observation, RedisError};
use crate::routes::Route;
use crate::verdict::{Reason, Status};

/// One completed check: what Redis said and every route's verdict. The
/// probe cache keeps the latest; /metrics reads it.
#[derive(Debug)]
pub struct Round {
    pub at: Instant,
    /// The same moment by the wall clock, as bodies show it.
    pub checked_at: SystemTime,
    /// What Redis answered, or why it could not be asked (for /metrics).
    pub outcome: Result<Observation, RedisError>,
    pub window: Window,
    /// Indexed by `Route as usize`.
    pub reports: [Report; Route::EVERY.len()],
    /// The settings this check was judged with: a probe answers by the
    /// same ones (fail_at, warn_code, max_age), so a reload applies to a
    /// whole check at once and a probe reads no shared config.
    pub settings: Arc<Settings>,
}

impl Round {
    pub fn report(&self, route: Route) -> &Report {
        &self.reports[route as usize]
    }

    /// Each check `route` ran, with all it found: judged again from what
    /// this round read (pure, no Redis), for the status page, which shows
    /// more than a probe's body does.
    pub fn results(&self, route: Route) -> Vec<(&'static str, CheckResult)> {
        evaluate(route, &self.outcome, Some(&self.window), &self.settings)
            .into_iter()
            .map(|e| (e.name, e.result))
            .collect()
    }
}

/// The body formats a health route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The compact JSON body (the default).
    Json,
    /// `application/health+json`, for callers that ask for it.
    HealthJson,
}

/// A route's verdict from one check.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    pub reason: Option<Reason>,
    /// Each check this route ran, with its status (for /metrics).
    pub checks: Vec<(&'static str, Status)>,
    /// The body up to, not including, `,"age_ms":N}`.
    head: String,
    /// The application/health+json body while the route passes, and, when
    /// its status is worse than ok, the one while it fails: the draft pairs
    /// the top-level status with the HTTP code (`pass`/`warn` with 2xx,
    /// `fail` with 5xx), which a caller's `?fail_at=` moves.
    health_json: Bytes,
    health_json_failing: Option<Bytes>,
}

/// One check's verdict, with what the health+json body shows of it.
struct Evaluated {
    name: &'static str,
    measures: &'static [Measure],
    result: CheckResult,
}

/// Every check this route runs that is enabled: only `ping`, with the down
/// reason, when Redis could not be asked. Without a window (no history
/// kept) the windowed checks are left out.
fn evaluate(
    route: Route,
    outcome: &Result<Observation, RedisError>,
    window: Option<&Window>,
    settings: &Settings,
) -> Vec<Evaluated> {
    let observation = match outcome {
        Ok(observation) => observation,
        Err(error) => {
            return vec![Evaluated {
                name: "ping",
                measures: ping::MEASURES,
                result: ping::failed(error),
            }];
        }
    };
    let mut ping = settings.checks.ping.evaluate(observation.latency);
    ping.reasons.retain(|r| route.judges(*r));
    let ping = Evaluated {
        name: "ping",
        measures: ping::MEASURES,
        result: ping,
    };
    let snapshot = &observation.snapshot;
    let sentinel = snapshot.sentinel.is_some();
    let others = REGISTRY
        .iter()
        .filter(|check| {
            route.runs(check.group)
                && (check.enabled)(settings)
                && (window.is_some() || !check.windowed)
        })
        .filter_map(|check| {
            let result = if !check.either_kind && check.group.for_sentinel() != sentinel {
                CheckResult::default().fail(route.wrong_kind(sentinel)?)
            } else if (check.applies)(snapshot) {
                (check.evaluate)(settings, snapshot, window.unwrap_or(&Window::default()))
            } else {
                return None;
            };
            let result = CheckResult {
                reasons: result
                    .reasons
                    .into_iter()
                    .filter(|r| route.judges(*r))
                    .collect(),
                ..result
            };
            // A check that judged nothing says nothing, never a bare ok.
            let judged = !result.reasons.is_empty() || !result.observed.is_empty();
            judged.then_some(Evaluated {
                name: check.name,
                measures: check.measures,
                result,
            })
        });
    std::iter::once(ping).chain(others).collect()
}

/// The IETF draft "Health Check Response Format for HTTP APIs": pass, warn
/// or fail, with one `redis:<check>` entry per check, each by its own status.
/// The top-level `top` is the route's answer, not its worst check: see
/// [`Report::health_json`].
fn health_json(
    top: &'static str,
    reasons: &[Reason],
    results: &[Evaluated],
    error: Option<&RedisError>,
    time: &str,
) -> Bytes {
    let checks: Map<String, Value> = results
        .iter()
        .map(|e| {
            let mut item = Map::new();
            item.insert("componentType".into(), json!("datastore"));
            let measured = e
                .measures
                .iter()
                .find_map(|(key, unit)| e.result.observed.get(*key).map(|value| (value, unit)));
            if let Some((value, unit)) = measured {
                item.insert("observedValue".into(), value.clone());
                item.insert("observedUnit".into(), json!(unit));
            }
            item.insert("status".into(), json!(draft_status(e.result.status())));
            item.insert("time".into(), json!(time));
            if !e.result.reasons.is_empty() {
                item.insert("output".into(), json!(joined(&e.result.reasons)));
            } else if let Some(why) = e.result.skipped_because() {
                item.insert("output".into(), json!(format!("skipped: {why}")));
            }
            (format!("redis:{}", e.name), json!([item]))
        })
        .collect();
    let mut body = Map::new();
    body.insert("status".into(), json!(top));
    body.insert("description".into(), json!("redis-health"));
    if let Some(error) = error {
        body.insert(
            "output".into(),
            json!(format!("{}: {error}", joined(reasons))),
        );
    } else if !reasons.is_empty() {
        body.insert("output".into(), json!(joined(reasons)));
    }
    body.insert("checks".into(), Value::Object(checks));
    Bytes::from(Value::Object(body).to_string())
}

fn draft_status(status: Status) -> &'static str {
    match status {
        Status::Ok => "pass",
        Status::Warn => "warn",
        Status::Degraded | Status::Critical | Status::Down => "fail",
    }
}

fn joined(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    pub fn build(
        route: Route,
        outcome: &Result<Observation, RedisError>,
        window: Option<&Window>,
        settings: &Settings,
        checked_at: SystemTime,
    ) -> Self {
        let results = evaluate(route, outcome, window, settings);
        // `/health/alive` says whether Redis answered at all: its top level
        // is ok for any answer (LOADING, BUSY, an auth error), so the body
        // agrees with its 200; `checks.ping` keeps what the answer was.
        let counts = |reason: &Reason| {
            route != Route::Alive || matches!(reason, Reason::Unreachable | Reason::Timeout)
        };
        let mut reasons: Vec<Reason> = results
            .iter()
            .flat_map(|e| e.result.reasons.iter().copied())
            .filter(counts)
            .collect();
        let status = if route == Route::Alive {
            reasons
                .iter()
                .map(|r| r.status())
                .max()
                .unwrap_or(Status::Ok)
        } else {
            results
                .iter()
                .map(|e| e.result.status())
                .max()
                .unwrap_or(Status::Ok)
        };
        reasons.sort_by_key(|reason| Reverse(reason.status()));
        let reason = reasons.first().copied();
        // A skipped check, or one that only says the process is of the other
        // kind, judged nothing: as a check status it would claim an ok, or
        // fire the replication alert on every Sentinel.
        let statuses = results
            .iter()
            .filter(|e| {
                e.result.skipped_because().is_none()
                    && !e
                        .result
                        .reasons
                        .iter()
                        .any(|r| matches!(r, Reason::NotDataNode | Reason::NotSentinel))
            })
            .map(|e| (e.name, e.result.status()))
            .collect();
        let time = humantime::format_rfc3339_millis(checked_at).to_string();
        let error = outcome.as_ref().err();
        let passing = if status == Status::Ok { "pass" } else { "warn" };
        let health_json_failing =
            (status != Status::Ok).then(|| health_json("fail", &reasons, &results, error, &time));
        let health_json = health_json(passing, &reasons, &results, error, &time);

        let mut body = Map::new();
        body.insert("status".into(), json!(status));
        if let Some(reason) = reason {
            body.insert("reason".into(), json!(reason));
        }
        body.insert("reasons".into(), json!(reasons));
        if let Ok(Observation {
            snapshot: Snapshot {
                role: Some(role), ..
            },
            ..
        }) = outcome
        {
            body.insert("role".into(), json!(role));
        }
        let checks: Map<String, Value> = results
            .into_iter()
            .map(|e| (e.name.to_owned(), check_body(e.result)))
            .collect();
        body.insert("checks".into(), Value::Object(checks));
        if let Some(error) = error {
            body.insert("error".into(), json!(error.to_string()));
        }
        body.insert("checked_at".into(), json!(time));
        let mut head = Value::Object(body).to_string();
        head.pop(); // the closing brace, put back after age_ms
        Self {
            status,
            reason,
            checks: statuses,
            head,
            health_json,
            health_json_failing,
        }
    }

    /// The `application/health+json` body for a probe that answers 2xx
    /// (`healthy`: `pass`, or `warn` when the status is worse than ok) or
    /// 503 (`fail`): fixed per check, so a probe shares the bytes.
    pub fn health_json(&self, healthy: bool) -> Bytes {
        match (&self.health_json_failing, healthy) {
            (Some(failing), false) => failing.clone(),
            _ => self.health_json.clone(),
        }
    }

    /// The complete body for a probe answered `age` after the check.
    ///
    /// This is the whole per-probe cost of a cached answer: one allocation
    /// and a copy, no serialisation.
    pub fn body(&self, age: Duration) -> Vec<u8> {
        const AGE_KEY: &[u8] = b",\"age_ms\":";
        let mut digits = itoa::Buffer::new();
        // u64 formats in a fraction of u128's time and lasts 584 million years.
        let age = digits.format(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        let mut body = Vec::with_capacity(self.head.len() + AGE_KEY.len() + age.len() + 1);
        body.extend_from_slice(self.head.as_bytes());
        body.extend_from_slice(AGE_KEY);
        body.extend_from_slice(age.as_bytes());
        body.push(b'}');
        body
    }
}

fn check_body(result: CheckResult) -> Value {
    let mut body = Map::new();
    body.insert("status".into(), json!(result.status()));
    if let Some(reason) = result.reasons.first() {
        body.insert("reason".into(), json!(reason));
    }
    body.extend(result.observed);
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FailAt;

    fn fixture_snapshot() -> Snapshot {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/info-redis-7.0-primary.txt"
        );
        Snapshot::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }

    fn parse(report: &Report) -> Value {
        serde_json::from_slice(&report.body(Duration::from_millis(12))).unwrap_or(Value::Null)
    }

    #[test]
    fn body_starts_with_status_and_ends_with_age() {
        let outcome = Ok(Observation {
            latency: Duration::from_micros(200),
            snapshot: Snapshot {
                maxmemory: Some(1000),
                used_memory: Some(100),
                ..fixture_snapshot()
            },
        });
        let report = Report::build(
            Route::Redis,
            &outcome,
            Some(&Window::default()),
            &Settings::default(),
            SystemTime::UNIX_EPOCH,
        );
        let body = String::from_utf8(report.body(Duration::from_millis(12))).unwrap_or_default();
        assert!(
            body.starts_with(r#"{"status":"ok","reasons":[],"role":"master","checks":{"ping":"#),
            "{body}"
        );
        assert!(
            body.ends_with(r#","checked_at":"1970-01-01T00:00:00.000Z","age_ms":12}"#),
            "{body}"
        );
        let json = parse(&report);
        assert_eq!(json["checks"]["memory"]["ratio"], 0.1);
        assert!(json["checks"].get("replication").is_none());
        assert!(json["checks"].get("role").is_none());
    }

    #[test]
    fn worst_check_decides_and_reasons_are_worst_first() {
        let outcome = Ok(Observation {
            latency: Duration::from_millis(150),
            snapshot: Snapshot {
                maxmemory: Some(1000),
                used_memory: Some(1010),
                mem_not_counted_for_evict: Some(0),
                ..fixture_snapshot()
            },
        });
        let report = Report::build(
            Route::All,
            &outcome,
            Some(&Window::default()),
            &Settings::default(),
            SystemTime::now(),
        );
        assert_eq!(report.status, Status::Critical);
        assert!(Route::All.fails(&report, FailAt::default()));
        let json = parse(&report);
        assert_eq!(json["reason"], "memory_pressure");
        assert_eq!(
            json["reasons"],
            json!(["memory_pressure", "memory_near_limit", "latency_high"])
        );
        assert_eq!(json["checks"]["writes"]["refused"], "oom");
        assert_eq!(json["checks"]["ping"]["reason"], "latency_high");
        assert!(json["checks"].get("replication").is_some());
    }

    #[test]
    fn an_error_gives_down_with_only_ping_and_the_cause() {
        let outcome = Err(RedisError::Unreachable(
            "Connection refused (os error 111)".into(),
        ));
        let report = Report::build(
            Route::Primary,
            &outcome,
            Some(&Window::default()),
            &Settings::default(),
            SystemTime::now(),
        );
        let json = parse(&report);
        assert_eq!(json["status"], "down");
        assert_eq!(json["reason"], "unreachable");
        assert_eq!(
            json["checks"],
            json!({"ping": {"status": "down", "reason": "unreachable"}})
        );
        assert_eq!(json["error"], "Connection refused (os error 111)");
        assert!(json.get("role").is_none());
    }

    #[test]
    fn primary_route_fails_on_a_replica() {
        let outcome = Ok(Observation {
            latency: Duration::from_micros(100),
            snapshot: Snapshot {
                role: Some(crate::info::Role::Replica),
                ..Snapshot::default()
            },
        });
        let report = Report::build(
            Route::Primary,
            &outcome,
            Some(&Window::default()),
            &Settings::default(),
            SystemTime::now(),
        );
        assert_eq!(report.reason, Some(Reason::NotPrimary));
        assert!(Route::Primary.fails(&report, FailAt::default()));
    }

    fn build_from(fixture: &str, route: Route) -> Value {
        parse(&report_from(fixture, route))
    }

    fn report_from(fixture: &str, route: Route) -> Report {
        let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let outcome = Ok(Observation {
            latency: Duration::from_micros(100),
            snapshot: Snapshot::parse(&std::fs::read_to_string(path).unwrap_or_default()),
        });
        Report::build(
            route,
            &outcome,
            Some(&Window::default()),
            &Settings::default(),
            SystemTime::now(),
        )
    }

    fn check_names(body: &Value) -> Vec<String> {
        body["checks"]
            .as_object()
            .map(|checks| checks.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_sentinel_is_judged_by_ping_and_sentinel_only() {
        for route in [Route::Redis, Route::All, Route::Sentinel] {
            let body = build_from("info-sentinel-7.0.txt", route);
            assert_eq!(check_names(&body), ["ping", "sentinel"], "{route:?}");
            assert_eq!(body["status"], "ok", "{route:?}");
        }
        let alive = build_from("info-sentinel-7.0.txt", Route::Alive);
        assert_eq!(check_names(&alive), ["ping"]);
    }

    /// One check of `snapshot` on each route, by the settings of `toml`.
    fn judged(snapshot: Snapshot, toml: &str, route: Route) -> Report {
        let outcome = Ok(Observation {
            latency: Duration::from_micros(100),
            snapshot,
        });
        let settings = Settings::from_toml(toml).unwrap_or_else(|e| panic!("{e}"));
        Report::build(
            route,
            &outcome,
            Some(&Window::default()),
            &settings,
            SystemTime::now(),
        )
    }

    #[test]
    fn a_primary_short_of_replicas_fails_health_only() {
        let toml = "[checks.replication]\nmin_replicas = 2\n";
        let all = judged(fixture_snapshot(), toml, Route::All);
        assert_eq!(all.reason, Some(Reason::TooFewReplicas));
        assert!(Route::All.fails(&all, FailAt::default()));
        for route in [Route::Replica, Route::Primary] {
            let report = judged(fixture_snapshot(), toml, route);
            assert_eq!(report.status, Status::Ok, "{route:?}: {:?}", report.reason);
        }
        let body = parse(&judged(fixture_snapshot(), toml, Route::Replica));
        assert_eq!(body["checks"]["replication"]["replicas_online"], 0);
    }

    #[test]
    fn a_replicas_own_link_still_fails_the_replica_route() {
        let snapshot = Snapshot {
            role: Some(crate::info::Role::Replica),
            master_link_up: Some(false),
            ..fixture_snapshot()
        };
        for route in [Route::Replica, Route::All] {
            let report = judged(snapshot.clone(), "", route);
            assert_eq!(
                report.reason,
                Some(Reason::ReplicaDisconnected),
                "{route:?}"
            );
        }
    }

    #[test]
    fn sentinel_readiness_ignores_the_masters_states_but_not_a_missing_one() {
        let mut snapshot = Snapshot::parse(
            &std::fs::read_to_string(format!(
                "{}/tests/fixtures/info-sentinel-7.0.txt",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap_or_default(),
        );
        if let Some(sentinel) = &mut snapshot.sentinel {
            sentinel.masters[0].status = Some(crate::info::MasterStatus::Odown);
            sentinel.masters[0].quorum_ok = Some(false);
            sentinel.tilt = Some(true);
        }
        let strict = judged(snapshot.clone(), "", Route::Sentinel);
        assert_eq!(strict.reason, Some(Reason::MasterOdown));
        let ready = judged(snapshot.clone(), "", Route::SentinelReady);
        assert_eq!(ready.status, Status::Ok);
        assert!(!Route::SentinelReady.fails(&ready, FailAt::default()));
        let missing = judged(
            snapshot,
            "[sentinel]\nmasters = \"mymaster,nosuch\"\n",
            Route::SentinelReady,
        );
        assert_eq!(missing.reason, Some(Reason::SentinelUnknownMaster));
        assert!(Route::SentinelReady.fails(&missing, FailAt::default()));
        let data_node = judged(fixture_snapshot(), "", Route::SentinelReady);
        assert_eq!(data_node.reason, Some(Reason::NotSentinel));
        assert!(Route::SentinelReady.fails(&data_node, FailAt::default()));
    }

    #[test]
    fn routes_for_the_other_kind_of_process_say_so() {
        for (route, checks) in [
            (Route::Replica, &["replication"][..]),
            (Route::Primary, &["writes", "role"][..]),
        ] {
            let body = build_from("info-sentinel-7.0.txt", route);
            assert_eq!(body["status"], "degraded", "{route:?}");
            assert_eq!(body["reason"], "not_data_node", "{route:?}");
            let expected: Vec<&str> = std::iter::once("ping")
                .chain(checks.iter().copied())
                .collect();
            assert_eq!(check_names(&body), expected, "{route:?}");
        }
        let body = build_from("info-redis-7.0-primary.txt", Route::Sentinel);
        assert_eq!(body["reason"], "not_sentinel");
        assert_eq!(
            report_from("info-redis-7.0-primary.txt", Route::Sentinel).checks,
            [("ping", Status::Ok)]
        );
        assert_eq!(
            report_from("info-sentinel-7.0.txt", Route::Replica).checks,
            [("ping", Status::Ok)]
        );
        assert_eq!(body["status"], "degraded");
        assert_eq!(check_names(&body), ["ping", "sentinel"]);
        let data_node = build_from("info-redis-7.0-primary.txt", Route::All);
        assert!(data_node["checks"].get("sentinel").is_none());
    }

    #[test]
    fn checks_without_their_info_fields_say_skipped_not_ok() {
        // The Server and Clients sections only, as a fork might answer.
        let body = build_from("info-redis-7.0-trimmed.txt", Route::All);
        assert_eq!(body["checks"]["clients"]["connected"], 1);
        assert_eq!(
            body["checks"]["memory"],
            json!({"status": "ok", "skipped": "INFO has no used_memory or maxmemory"})
        );
        for route in Route::EVERY {
            let body = build_from("info-redis-7.0-trimmed.txt", route);
            for (name, check) in body["checks"].as_object().into_iter().flatten() {
                let bare = check.as_object().is_some_and(|c| c.len() == 1);
                assert!(!bare, "{route:?}: {name} says only {check}");
            }
        }
        let skipped = ["memory", "hit_rate", "persistence", "fragmentation"];
        let skipped = skipped
            .iter()
            .chain(&["evictions", "connections", "replication"]);
        for name in skipped {
            let check = &body["checks"][name];
            assert!(check["skipped"].is_string(), "{name}: {check}");
        }
        // Nor a check status for /metrics to read as ok.
        let report = report_from("info-redis-7.0-trimmed.txt", Route::All);
        let statuses: Vec<_> = report.checks.iter().map(|(name, _)| *name).collect();
        assert_eq!(statuses, ["ping", "clients"]);
    }
}
