//! `queues`: the job queues of `[[queues]]`, judged from what the sampler
//! last read of them (see [`crate::queues`]): a backlog over its lengths, a
//! stall where work waits and the consumers' end (a list's end item, a
//! stream group's read position) has not moved for `stall_after`, and a key
//! of the wrong type. Redis itself is healthy through all of these, so
//! only /health/queues and /health judge them.

use serde_json::{Map, Value, json};

use super::{Check, CheckResult, Group, Measure, Window};
use crate::info::Snapshot;
use crate::queues::{Backlog, QueueDef, Queues, ReadState, Reading};
use crate::verdict::{Reason, Status};

impl Check for Queues {
    const GROUP: Group = Group::Queues;
    const MEASURES: &'static [Measure] = &[("stalled", "queues")];

    /// Configured or not, the check is there: without `[[queues]]`
    /// /health/queues says so rather than a bare ok.
    fn enabled(&self) -> bool {
        true
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        if self.get().is_empty() {
            return CheckResult::skipped("no queues configured");
        }
        let Some(readings) = &snap.queues else {
            return CheckResult::skipped(
                "no recent sample: the queues are read once per checks.sample_interval \
                 (a reading older than two intervals and redis.timeout is not used)",
            );
        };
        let mut result = CheckResult::default();
        let mut bodies = Map::new();
        let mut stalled = 0;
        for def in self.get() {
            let reading = readings
                .iter()
                .find(|r| r.name == def.name && r.key == def.redis_key());
            let (body, reasons) = judge(def, reading);
            stalled += usize::from(reasons.contains(&Reason::QueueStalled));
            for reason in reasons {
                if !result.reasons.contains(&reason) {
                    result = result.fail(reason);
                }
            }
            bodies.insert(def.name.as_str().to_owned(), Value::Object(body));
        }
        result
            .observe("stalled", stalled)
            .observe("queues", Value::Object(bodies))
    }
}

/// One queue's body and the reasons it raises.
fn judge(def: &QueueDef, reading: Option<&Reading>) -> (Map<String, Value>, Vec<Reason>) {
    let mut body = Map::new();
    body.insert("kind".into(), json!(def.kind.as_str()));
    body.insert("key".into(), json!(def.redis_key()));
    let mut reasons = Vec::new();
    match reading.map(|r| &r.state) {
        None => {
            body.insert("skipped".into(), json!("not sampled yet"));
        }
        Some(ReadState::Skipped(why)) => {
            body.insert("skipped".into(), json!(why));
        }
        Some(ReadState::WrongType(found)) => {
            body.insert(
                "type".into(),
                json!(
                    found
                        .as_deref()
                        .unwrap_or("not named yet (read next sample)")
                ),
            );
            reasons.push(Reason::QueueWrongType);
        }
        Some(ReadState::Read(backlog)) => reasons = judge_backlog(def, backlog, &mut body),
    }
    let status = if body.contains_key("skipped") {
        "skipped"
    } else {
        reasons
            .iter()
            .map(|r| r.status())
            .max()
            .unwrap_or(Status::Ok)
            .as_str()
    };
    body.insert("status".into(), json!(status));
    (body, reasons)
}

fn judge_backlog(def: &QueueDef, backlog: &Backlog, body: &mut Map<String, Value>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let at_least = |limit: u64| limit > 0 && backlog.length >= limit;
    if at_least(def.fail_length) {
        reasons.push(Reason::QueueBacklogHigh);
    } else if at_least(def.warn_length) {
        reasons.push(Reason::QueueBacklog);
    }
    body.insert("length".into(), json!(backlog.length));
    if let Some(failed) = backlog.failed {
        body.insert("failed".into(), json!(failed));
    }
    let stall_after = def.stall_after.get();
    let stalls = |unmoved: Option<std::time::Duration>| {
        !stall_after.is_zero() && unmoved.is_some_and(|u| u >= stall_after)
    };
    let mut unmoved = backlog.unmoved_for;
    let mut stalled = stalls(backlog.unmoved_for);
    if !backlog.groups.is_empty() || def.kind == crate::queues::Kind::Stream {
        let mut groups = Map::new();
        let mut stalled_groups = Vec::new();
        for group in &backlog.groups {
            let mut item = Map::new();
            item.insert("lag".into(), json!(group.lag));
            item.insert("pending".into(), json!(group.pending));
            item.insert("consumers".into(), json!(group.consumers));
            item.insert("entries_read".into(), json!(group.entries_read));
            if let Some(for_) = group.unmoved_for {
                item.insert("stalled_s".into(), json!(for_.as_secs()));
            }
            if stalls(group.unmoved_for) {
                stalled_groups.push(group.name.clone());
            }
            unmoved = unmoved.max(group.unmoved_for);
            groups.insert(group.name.clone(), Value::Object(item));
        }
        body.insert("groups".into(), Value::Object(groups));
        if !stalled_groups.is_empty() {
            stalled = true;
            body.insert("stalled_groups".into(), json!(stalled_groups));
        }
    }
    if let Some(for_) = unmoved {
        body.insert("stalled_s".into(), json!(for_.as_secs()));
    }
    if stalled {
        reasons.push(Reason::QueueStalled);
    }
    reasons.sort_by_key(|r| std::cmp::Reverse(r.status()));
    reasons
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::Settings;
    use crate::queues::Tracker;
    use fred::prelude::Value as RedisValue;

    fn settings(toml: &str) -> Settings {
        Settings::from_toml(toml).expect("valid")
    }

    fn judged(settings: &Settings, readings: Vec<Reading>) -> CheckResult {
        let snap = Snapshot {
            queues: Some(Arc::new(readings)),
            ..Snapshot::default()
        };
        settings.queues.evaluate(&snap, &Window::default())
    }

    fn bulk(text: &str) -> crate::queues::Reply {
        Ok(RedisValue::String(text.into()))
    }

    fn int(n: i64) -> crate::queues::Reply {
        Ok(RedisValue::Integer(n))
    }

    #[test]
    fn without_queues_the_check_says_skipped() {
        let result = Settings::default()
            .queues
            .evaluate(&Snapshot::default(), &Window::default());
        assert_eq!(result.skipped_because(), Some("no queues configured"));
    }

    #[test]
    fn a_list_whose_end_moves_is_work_and_one_that_stands_is_a_stall() {
        let s = settings(
            "[[queues]]\nname = \"jobs\"\nkind = \"list\"\nkey = \"jobs\"\nstall_after = \"10s\"",
        );
        let mut tracker = Tracker::default();
        let start = Instant::now();
        let mut sample = |end: &str, at: Duration| {
            let plan = tracker.plan(s.queues.get());
            assert_eq!(plan[0].len(), 2, "LLEN and LINDEX only");
            tracker.record(s.queues.get(), vec![vec![int(3), bulk(end)]], start + at)
        };
        // Flat length, moving end: each sample a new item at the end.
        sample("a", Duration::ZERO);
        let moving = sample("b", Duration::from_secs(11));
        assert_eq!(judged(&s, moving).status(), Status::Ok);
        // The same end past stall_after.
        let standing = sample("b", Duration::from_secs(22));
        let result = judged(&s, standing);
        assert_eq!(result.reasons, vec![Reason::QueueStalled]);
        assert_eq!(result.observed["queues"]["jobs"]["stalled_s"], json!(11));
    }

    #[test]
    fn backlog_thresholds_and_wrong_types() {
        let s = settings(
            "[[queues]]\nname = \"q\"\nkind = \"zset\"\nkey = \"z\"\nwarn_length = 2\nfail_length = 4",
        );
        let mut tracker = Tracker::default();
        let mut at = |reply: crate::queues::Reply| {
            tracker.plan(s.queues.get());
            judged(
                &s,
                tracker.record(s.queues.get(), vec![vec![reply]], Instant::now()),
            )
        };
        assert_eq!(at(int(1)).status(), Status::Ok);
        assert_eq!(at(int(2)).reasons, vec![Reason::QueueBacklog]);
        assert_eq!(at(int(4)).reasons, vec![Reason::QueueBacklogHigh]);
        let wrong = at(Err("WRONGTYPE Operation against a key".into()));
        assert_eq!(wrong.reasons, vec![Reason::QueueWrongType]);
        // The next sample asks TYPE alone and names what it found.
        let named = at(bulk("hash"));
        assert_eq!(named.observed["queues"]["q"]["type"], json!("hash"));
    }

    #[test]
    fn a_stream_group_behind_that_does_not_read_is_stalled() {
        let s = settings(
            "[[queues]]\nname = \"s\"\nkind = \"stream\"\nkey = \"events\"\nstall_after = \"5s\"",
        );
        let group = |read: i64, lag: i64| {
            Ok(RedisValue::Array(vec![RedisValue::Array(vec![
                RedisValue::String("name".into()),
                RedisValue::String("workers".into()),
                RedisValue::String("consumers".into()),
                RedisValue::Integer(1),
                RedisValue::String("pending".into()),
                RedisValue::Integer(0),
                RedisValue::String("last-delivered-id".into()),
                RedisValue::String("1-0".into()),
                RedisValue::String("entries-read".into()),
                RedisValue::Integer(read),
                RedisValue::String("lag".into()),
                RedisValue::Integer(lag),
            ])]))
        };
        let mut tracker = Tracker::default();
        let start = Instant::now();
        let mut sample = |read, lag, at: u64| {
            tracker.plan(s.queues.get());
            let readings = tracker.record(
                s.queues.get(),
                vec![vec![int(10), group(read, lag)]],
                start + Duration::from_secs(at),
            );
            judged(&s, readings)
        };
        assert_eq!(sample(5, 5, 0).status(), Status::Ok);
        assert_eq!(sample(6, 4, 6).status(), Status::Ok);
        let stalled = sample(6, 4, 12);
        assert_eq!(stalled.reasons, vec![Reason::QueueStalled]);
        assert_eq!(
            stalled.observed["queues"]["s"]["stalled_groups"],
            json!(["workers"])
        );
        assert_eq!(sample(10, 0, 13).status(), Status::Ok);
    }

    #[test]
    fn bad_tables_name_the_key_and_quote_no_value() {
        let cases = [
            (
                "name = \"a\"\nkind = \"list\"\nkey = \"k\"\n[[queues]]\nname = \"a\"\nkind = \"list\"\nkey = \"j\"",
                "queues[1].name",
            ),
            (
                "name = \"a\"\nkind = \"stream\"\nkey = \"k\"\npop_from = \"left\"",
                "queues[0].pop_from",
            ),
            (
                "name = \"a\"\nkind = \"list\"\nkey = \"k\"\ngroup = \"g\"",
                "queues[0].group",
            ),
            (
                "name = \"a\"\nkind = \"rq\"\nkey = \"k\"\nprefix = \"p\"",
                "queues[0].prefix",
            ),
            ("name = \"a\"\nkind = \"list\"\nkey = \"\"", "queues[0].key"),
        ];
        for (table, key) in cases {
            let error = Settings::from_toml(&format!("[[queues]]\n{table}"))
                .map(|_| ())
                .expect_err(table);
            assert_eq!(error.key, key, "{table}");
        }
        let many: String = (0..65)
            .map(|i| format!("[[queues]]\nname = \"q{i}\"\nkind = \"list\"\nkey = \"k{i}\"\n"))
            .collect();
        assert_eq!(
            Settings::from_toml(&many).map(|_| ()).map_err(|e| e.key),
            Err("queues".into())
        );
    }
}
