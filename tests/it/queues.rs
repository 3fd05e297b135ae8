//! `[[queues]]` against real redis-server processes: lists, streams and
//! sorted sets driven by redis commands here, and the RQ, Celery and BullMQ
//! layouts driven by the real libraries (installed by
//! `.ci/install-test-tools` into target/test-queues).
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::metrics::{scrape, value};
use crate::support::*;

/// Bounds every wait: `stall_after` (2 s) plus a few samples, with room.
const LIMIT: Duration = Duration::from_secs(15);

/// A sidecar sampling every 200 ms, with `queues` (TOML `[[queues]]`
/// Consumer `c1` of group `workers` reads (and so takes) all of `events`.
const READ_ALL: [&str; 9] = [
    "XREADGROUP",
    "GROUP",
    "workers",
    "c1",
    "COUNT",
    "10",
    "STREAMS",
    "events",
    ">",
];

/// tables) each stalling after 2 s.
async fn app_with(redis: &TestRedis, queues: &str) -> TestApp {
    spawn_app(settings_with(
        &redis.url(),
        &format!("checks.max_age = \"50ms\"\nchecks.sample_interval = \"200ms\"\n{queues}"),
    ))
    .await
}

fn queue(name: &str, kind: &str, key: &str, extra: &str) -> String {
    format!(
        "[[queues]]\nname = \"{name}\"\nkind = \"{kind}\"\nkey = \"{key}\"\nstall_after = \"2s\"\n{extra}\n"
    )
}

/// Waits for queue `events` to stall, naming its group `workers`.
async fn stream_stalled_by_workers(app: &TestApp) -> Answer {
    let stalled = wait_reason(app, "queue_stalled").await;
    let body = &stalled.json["checks"]["queues"]["queues"]["events"];
    assert_eq!(
        body["stalled_groups"],
        serde_json::json!(["workers"]),
        "{}",
        stalled.text
    );
    stalled
}

async fn wait_reason(app: &TestApp, reason: &str) -> Answer {
    app.wait_for("/health/queues", LIMIT, |a| {
        a.json["checks"]["queues"]["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == reason))
            || a.json["reason"] == reason
    })
    .await
}

/// Waits for ok from a sample that read the queues (not a skipped check).
async fn wait_ok(app: &TestApp) -> Answer {
    app.wait_for("/health/queues", LIMIT, |a| {
        a.status == 200
            && a.json["status"] == "ok"
            && a.json["checks"]["queues"]["skipped"].is_null()
    })
    .await
}

/// A Sentinel holds no queues: pointed at one, a queue monitor is told so,
/// as /health/replica and /health/primary are.
#[tokio::test]
async fn on_a_sentinel_the_queues_route_says_not_data_node() {
    let primary = TestRedis::start();
    let sentinel = crate::support::sentinel::SentinelNode::start(primary.addr().port(), 1);
    let queues = queue("jobs", "list", "jobs", "");
    let app = spawn_app(settings_with(&sentinel.url(), &queues)).await;
    let answer = app.get("/health/queues").await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "not_data_node", "{}", answer.text);
    assert!(
        answer.json["checks"].get("queues").is_some(),
        "{}",
        answer.text
    );
    // Its own routes do not judge queues at all.
    let all = app.get("/health").await;
    assert!(all.json["checks"].get("queues").is_none(), "{}", all.text);
}

#[tokio::test]
async fn without_queues_the_route_says_skipped_and_the_node_routes_never_judge_queues() {
    let redis = TestRedis::start();
    let app = app_with(&redis, "").await;
    let answer = app.get("/health/queues").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json["checks"]["queues"]["skipped"], "no queues configured",
        "{}",
        answer.text
    );
    // A stalled queue on the same node: /health fails, the node routes do not.
    let redis = TestRedis::start();
    redis.cmd(&["RPUSH", "jobs", "a", "b"]);
    let app = app_with(&redis, &queue("jobs", "list", "jobs", "")).await;
    let stalled = wait_reason(&app, "queue_stalled").await;
    assert_eq!(stalled.status, 503, "{}", stalled.text);
    let all = app.get("/health").await;
    assert_eq!(all.status, 503, "{}", all.text);
    assert_eq!(all.json["reason"], "queue_stalled", "{}", all.text);
    for route in ["/health/redis", "/health/primary", "/health/alive"] {
        let answer = app.get(route).await;
        assert_eq!(answer.status, 200, "{route}: {}", answer.text);
        assert!(
            answer.json["checks"]["queues"].is_null(),
            "{route}: {}",
            answer.text
        );
    }
    let replica = app.get("/health/replica").await;
    assert!(
        replica.json["checks"]["queues"].is_null(),
        "{}",
        replica.text
    );
}

#[tokio::test]
async fn a_list_with_work_and_no_consumer_stalls_and_draining_it_clears_the_reason() {
    let redis = TestRedis::start();
    redis.cmd(&["LPUSH", "jobs", "1", "2", "3"]);
    let app = app_with(&redis, &queue("jobs", "list", "jobs", "")).await;
    let started = Instant::now();
    let stalled = wait_reason(&app, "queue_stalled").await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "before stall_after"
    );
    let body = &stalled.json["checks"]["queues"]["queues"]["jobs"];
    assert_eq!(body["status"], "degraded", "{}", stalled.text);
    assert_eq!(body["kind"], "list");
    assert_eq!(body["key"], "jobs");
    assert_eq!(body["length"], 3);
    assert!(body["stalled_s"].as_u64() >= Some(2), "{}", stalled.text);
    // The item itself is never shown.
    assert!(!stalled.text.contains("\"1\""), "{}", stalled.text);
    let metrics = scrape(&app).await;
    assert_eq!(
        value(&metrics, "redis_health_queue_length", r#"queue="jobs""#),
        Some(3.0)
    );
    assert!(
        value(
            &metrics,
            "redis_health_queue_stalled_seconds",
            r#"queue="jobs""#
        ) >= Some(2.0),
        "{metrics}"
    );
    // A consumer takes the work (the right end, as BRPOP does).
    redis.cmd(&["DEL", "jobs"]);
    let ok = wait_ok(&app).await;
    assert_eq!(ok.json["checks"]["queues"]["queues"]["jobs"]["length"], 0);
}

#[tokio::test]
async fn a_list_kept_flat_by_a_consumer_taking_one_as_a_producer_adds_one_stays_ok() {
    let redis = TestRedis::start();
    redis.cmd(&["LPUSH", "jobs", "j1", "j2", "j3"]);
    let app = app_with(
        &redis,
        &queue("jobs", "list", "jobs", "pop_from = \"right\""),
    )
    .await;
    let addr = redis.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 4;
            while !stop.load(Ordering::Relaxed) {
                // One taken from the consumers' end, one added at the other,
                // at once: every sample sees the same length.
                let swap =
                    "redis.call('RPOP', KEYS[1]) return redis.call('LPUSH', KEYS[1], ARGV[1])";
                resp_pipeline(addr, &["EVAL", swap, "1", "jobs", &format!("j{n}")], 1);
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let answer = app.get("/health/queues").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_ne!(answer.json["status"], "degraded", "{}", answer.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = wait_ok(&app).await;
    assert_eq!(
        answer.json["checks"]["queues"]["queues"]["jobs"]["length"], 3,
        "{}",
        answer.text
    );
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker thread");
    // Once the consumer stops, the same flat list is a stall.
    wait_reason(&app, "queue_stalled").await;
}

#[tokio::test]
async fn a_stream_group_that_stops_reading_stalls_names_the_group_and_recovers() {
    let redis = TestRedis::start();
    assert_eq!(
        redis.cmd(&["XGROUP", "CREATE", "events", "workers", "$", "MKSTREAM"]),
        "OK"
    );
    for _ in 0..5 {
        redis.cmd(&["XADD", "events", "*", "f", "v"]);
    }
    let queues = queue("events", "stream", "events", "") + &queue("gone", "stream", "nostream", "");
    let app = app_with(&redis, &queues).await;
    let stalled = stream_stalled_by_workers(&app).await;
    let body = &stalled.json["checks"]["queues"]["queues"]["events"];
    let group = &body["groups"]["workers"];
    assert_eq!(group["lag"], 5, "{}", stalled.text);
    assert_eq!(group["consumers"], 0);
    assert_eq!(group["pending"], 0);
    assert_eq!(body["length"], 5);
    let missing = &stalled.json["checks"]["queues"]["queues"]["gone"];
    assert_eq!(missing["status"], "skipped", "{}", stalled.text);
    assert!(
        missing["skipped"]
            .as_str()
            .is_some_and(|w| w.contains("does not exist"))
    );
    let metrics = scrape(&app).await;
    assert_eq!(
        value(
            &metrics,
            "redis_health_queue_group_lag",
            r#"queue="events",group="workers""#
        ),
        Some(5.0),
        "{metrics}"
    );
    // The group reads (and acknowledges) everything.
    redis.cmd(&READ_ALL);
    let ok = wait_ok(&app).await;
    let group = &ok.json["checks"]["queues"]["queues"]["events"]["groups"]["workers"];
    assert_eq!(group["lag"], 0, "{}", ok.text);
    assert_eq!(group["entries_read"], 5);
    assert_eq!(group["consumers"], 1);
}

#[tokio::test]
async fn backlog_thresholds_and_wrong_types_answer_as_documented() {
    let redis = TestRedis::start();
    let queues = queue(
        "delayed",
        "zset",
        "delayed",
        "warn_length = 2\nfail_length = 4",
    ) + &queue("jobs", "list", "jobs", "");
    let app = app_with(&redis, &queues).await;
    wait_ok(&app).await;
    redis.cmd(&["ZADD", "delayed", "1", "a", "2", "b"]);
    let warn = wait_reason(&app, "queue_backlog").await;
    assert_eq!(warn.status, 200, "{}", warn.text);
    assert_eq!(warn.json["status"], "warn");
    redis.cmd(&["ZADD", "delayed", "3", "c", "4", "d"]);
    let high = wait_reason(&app, "queue_backlog_high").await;
    assert_eq!(high.status, 503, "{}", high.text);
    redis.cmd(&["DEL", "delayed"]);
    redis.cmd(&["SET", "jobs", "not a list"]);
    let wrong = app
        .wait_for("/health/queues", LIMIT, |a| {
            a.json["checks"]["queues"]["queues"]["jobs"]["type"] == "string"
        })
        .await;
    assert_eq!(wrong.status, 503, "{}", wrong.text);
    assert_eq!(wrong.json["reason"], "queue_wrong_type", "{}", wrong.text);
    assert!(!wrong.text.contains("not a list"), "{}", wrong.text);
    redis.cmd(&["DEL", "jobs"]);
    wait_ok(&app).await;
}

#[tokio::test]
async fn sixty_four_queues_cost_two_commands_each_per_sample_and_none_per_probe() {
    let redis = TestRedis::start();
    let queues: String = (0..64)
        .map(|i| queue(&format!("q{i}"), "list", &format!("list{i}"), ""))
        .collect();
    let app = spawn_app(settings_with(
        &redis.url(),
        &format!("checks.max_age = \"1ms\"\nchecks.sample_interval = \"500ms\"\n{queues}"),
    ))
    .await;
    app.wait_for("/health/queues", LIMIT, |a| {
        a.json["checks"]["queues"]["queues"]["q63"]["length"] == 0
    })
    .await;
    let before = redis.calls(&["llen", "lindex", "info", "type"]);
    let started = Instant::now();
    let mut probes = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        assert_eq!(app.get("/health/queues").await.status, 200);
        probes += 1;
    }
    let elapsed = started.elapsed();
    let after = redis.calls(&["llen", "lindex", "info", "type"]);
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let samples_at_most = (elapsed.as_millis() / 500) as u64 + 2;
    assert_eq!(
        delta[0], delta[1],
        "one LLEN and one LINDEX per queue: {delta:?}"
    );
    assert_eq!(delta[0] % 64, 0, "every queue once per sample: {delta:?}");
    assert!(
        delta[0] / 64 <= samples_at_most,
        "{delta:?} over {elapsed:?}"
    );
    assert_eq!(delta[3], 0, "no TYPE while every key is a list");
    // The probes did run checks (INFO), many more than the samples.
    assert!(delta[2] > 4 * samples_at_most, "{probes} probes, {delta:?}");
}

#[tokio::test]
async fn a_key_scoped_read_only_acl_user_reads_the_queues_with_acl_log_empty() {
    let redis = TestRedis::start();
    let rules = [
        "+llen",
        "+lindex",
        "+zcard",
        "+xlen",
        "+xinfo|groups",
        "+xinfo|stream",
        "+type",
        "%R~rq:queue:*",
        "%R~events",
        "%R~bull:*",
    ];
    add_health_user(&redis, "queue-pw", &rules);
    redis.cmd(&["RPUSH", "rq:queue:default", "job1"]);
    redis.cmd(&["XADD", "events", "*", "f", "v"]);
    redis.cmd(&["XGROUP", "CREATE", "events", "g", "0"]);
    let queues = queue("rq", "rq", "default", "")
        + &queue("events", "stream", "events", "")
        + &queue("bull", "bullmq", "mail", "");
    let app = spawn_app(settings_with(
        &format!("redis://health:queue-pw@127.0.0.1:{}", redis.port),
        &format!("checks.max_age = \"50ms\"\nchecks.sample_interval = \"200ms\"\n{queues}"),
    ))
    .await;
    let answer = wait_reason(&app, "queue_stalled").await;
    let body = &answer.json["checks"]["queues"]["queues"];
    assert_eq!(body["rq"]["length"], 1, "{}", answer.text);
    assert_eq!(body["events"]["groups"]["g"]["lag"], 1, "{}", answer.text);
    assert_eq!(body["bull"]["length"], 0, "{}", answer.text);
    assert_eq!(redis.acl_refused(), Vec::<String>::new());
    // The rules are read-only: that user may not take or add a job.
    for write in [["RPOP", "rq:queue:default"], ["LPUSH", "rq:queue:default"]] {
        let mut args = vec!["ACL", "DRYRUN", "health"];
        args.extend_from_slice(&write);
        args.push("x");
        let answer = redis.cmd(&args);
        assert!(answer.contains("no permissions"), "{write:?}: {answer}");
    }
}

// ---- the real libraries ----

/// target/test-queues, where `.ci/install-test-tools` puts the libraries.
fn libraries() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-queues");
    for needed in [
        "bin/rq",
        "bin/celery",
        "node/node_modules/bullmq/package.json",
    ] {
        assert!(
            dir.join(needed).exists(),
            "{} missing: run .ci/install-test-tools to install RQ, Celery and BullMQ",
            dir.join(needed).display()
        );
    }
    dir
}

/// Runs `program` with `args` to completion, asserting it succeeded.
fn run(program: &std::path::Path, args: &[&str], dir: &std::path::Path) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn rq_jobs_without_a_worker_stall_and_a_real_worker_drains_them() {
    let libs = libraries();
    let redis = TestRedis::start();
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        work.path().join("tasks.py"),
        "def add(a, b):\n    return a + b\n",
    )
    .expect("write tasks.py");
    let python = libs.join("bin/python");
    let enqueue = format!(
        "import redis, rq\nq = rq.Queue('default', connection=redis.Redis.from_url('{}'))\n\
         for i in range(3): q.enqueue('tasks.add', i, 1)\n",
        redis.url()
    );
    run(&python, &["-c", &enqueue], work.path());
    let app = app_with(&redis, &queue("rq-default", "rq", "default", "")).await;
    let stalled = wait_reason(&app, "queue_stalled").await;
    let body = &stalled.json["checks"]["queues"]["queues"]["rq-default"];
    assert_eq!(body["key"], "rq:queue:default", "{}", stalled.text);
    assert_eq!(body["length"], 3, "{}", stalled.text);
    run(
        &libs.join("bin/rq"),
        &["worker", "--burst", "--url", &redis.url(), "default"],
        work.path(),
    );
    let ok = wait_ok(&app).await;
    assert_eq!(
        ok.json["checks"]["queues"]["queues"]["rq-default"]["length"],
        0
    );
}

#[tokio::test]
async fn celery_tasks_without_a_worker_stall_and_a_real_worker_drains_them() {
    let libs = libraries();
    let redis = TestRedis::start();
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        work.path().join("tasks.py"),
        format!(
            "from celery import Celery\napp = Celery('tasks', broker='{}')\n\
             @app.task\ndef add(a, b):\n    return a + b\n",
            redis.url()
        ),
    )
    .expect("write tasks.py");
    run(
        &libs.join("bin/python"),
        &[
            "-c",
            "import tasks\nfor i in range(3): tasks.add.delay(i, 1)\n",
        ],
        work.path(),
    );
    let app = app_with(&redis, &queue("celery", "celery", "celery", "")).await;
    let stalled = wait_reason(&app, "queue_stalled").await;
    assert_eq!(
        stalled.json["checks"]["queues"]["queues"]["celery"]["length"], 3,
        "{}",
        stalled.text
    );
    let worker = TestProcess::start(
        &libs.join("bin/celery"),
        &[
            "--workdir",
            &work.path().to_string_lossy(),
            "-A",
            "tasks",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        &[],
    );
    // The worker runs beside the test: the queue is ok as soon as it takes
    // the first task (the end moves), and drained once it took them all.
    let ok = wait_ok(&app).await;
    assert_eq!(
        ok.json["checks"]["queues"]["reasons"],
        serde_json::Value::Null
    );
    let ok = app
        .wait_for("/health/queues", LIMIT, |a| {
            a.status == 200 && a.json["checks"]["queues"]["queues"]["celery"]["length"] == 0
        })
        .await;
    assert_eq!(
        ok.json["checks"]["queues"]["queues"]["celery"]["status"],
        "ok",
        "{}\n{}",
        ok.text,
        worker.output()
    );
}

#[tokio::test]
async fn bullmq_jobs_without_a_worker_stall_and_a_real_worker_drains_them() {
    let libs = libraries();
    let node = tool("node", "apt-get install nodejs");
    let redis = TestRedis::start();
    let connection = format!("{{ host: '127.0.0.1', port: {} }}", redis.port);
    let add = format!(
        "const {{ Queue }} = require('bullmq');\n\
         (async () => {{ const q = new Queue('mail', {{ connection: {connection} }});\n\
         for (let i = 0; i < 3; i++) await q.add('send', {{ i }});\n\
         const f = new Queue('mail', {{ connection: {connection} }}); await f.close(); await q.close(); }})();"
    );
    let modules = libs.join("node");
    run(&node, &["-e", &add], &modules);
    let app = app_with(&redis, &queue("mail", "bullmq", "mail", "")).await;
    let stalled = wait_reason(&app, "queue_stalled").await;
    let body = &stalled.json["checks"]["queues"]["queues"]["mail"];
    assert_eq!(body["key"], "bull:mail:wait", "{}", stalled.text);
    assert_eq!(body["length"], 3, "{}", stalled.text);
    assert_eq!(body["failed"], 0, "{}", stalled.text);
    // A real Worker: it fails job 1 (counted as failed) and completes the rest.
    let work = format!(
        "const {{ Worker }} = require('bullmq');\n\
         let done = 0;\n\
         const w = new Worker('mail', async job => {{ if (job.data.i === 1) throw new Error('no'); }}, {{ connection: {connection} }});\n\
         const end = () => {{ if (++done === 3) w.close().then(() => process.exit(0)); }};\n\
         w.on('completed', end); w.on('failed', end);\n\
         setTimeout(() => process.exit(3), 10000);"
    );
    run(&node, &["-e", &work], &modules);
    let ok = wait_ok(&app).await;
    let body = &ok.json["checks"]["queues"]["queues"]["mail"];
    assert_eq!(body["length"], 0, "{}", ok.text);
    assert_eq!(body["failed"], 1, "{}", ok.text);
}

#[tokio::test]
async fn on_redis_6_2_a_stream_group_behind_its_last_entry_stalls_and_recovers() {
    let redis = TestRedis::start_with(Server::Redis62, &[]);
    assert_eq!(
        redis.cmd(&["XGROUP", "CREATE", "events", "workers", "$", "MKSTREAM"]),
        "OK"
    );
    for _ in 0..3 {
        redis.cmd(&["XADD", "events", "*", "f", "v"]);
    }
    let app = app_with(&redis, &queue("events", "stream", "events", "")).await;
    let stalled = stream_stalled_by_workers(&app).await;
    let body = &stalled.json["checks"]["queues"]["queues"]["events"];
    // 6.2 reports no lag and no entries-read.
    assert!(
        body["groups"]["workers"]["lag"].is_null(),
        "{}",
        stalled.text
    );
    assert_eq!(body["length"], 3, "{}", stalled.text);
    redis.cmd(&READ_ALL);
    // Delivered but not acknowledged: pending entries still wait.
    let pending = app
        .wait_for("/health/queues", LIMIT, |a| {
            a.json["checks"]["queues"]["queues"]["events"]["groups"]["workers"]["consumers"] == 1
        })
        .await;
    let group = &pending.json["checks"]["queues"]["queues"]["events"]["groups"]["workers"];
    assert_eq!(group["pending"], 3, "{}", pending.text);
    let ack = "local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 100) \
               for _, e in ipairs(p) do redis.call('XACK', KEYS[1], ARGV[1], e[1]) end return #p";
    assert_eq!(redis.cmd(&["EVAL", ack, "1", "events", "workers"]), "3");
    let ok = app
        .wait_for("/health/queues", LIMIT, |a| {
            a.json["checks"]["queues"]["queues"]["events"]["groups"]["workers"]["pending"] == 0
        })
        .await;
    let body = &ok.json["checks"]["queues"]["queues"]["events"];
    assert_eq!(ok.json["status"], "ok", "{}", ok.text);
    // Nothing waits: no stall clock runs.
    assert!(
        body["groups"]["workers"]["stalled_s"].is_null(),
        "{}",
        ok.text
    );
}

#[tokio::test]
async fn on_a_cluster_node_a_key_another_node_serves_is_skipped_and_its_own_is_judged() {
    let nodes = start_cluster(3);
    let node = &nodes[0];
    let local_and_remote = |moved: bool| {
        (0..100)
            .map(|i| format!("jobs{i}"))
            .find(|key| node.cmd(&["LLEN", key]).contains("MOVED") == moved)
            .expect("a key")
    };
    let (mine, theirs) = (local_and_remote(false), local_and_remote(true));
    node.cmd(&["RPUSH", &mine, "a"]);
    let queues = queue("mine", "list", &mine, "") + &queue("theirs", "list", &theirs, "");
    let app = app_with(node, &queues).await;
    let answer = app
        .wait_for("/health/queues", LIMIT, |a| {
            a.json["checks"]["queues"]["queues"]["mine"]["length"] == 1
        })
        .await;
    let theirs = &answer.json["checks"]["queues"]["queues"]["theirs"];
    assert_eq!(theirs["status"], "skipped", "{}", answer.text);
    assert!(
        theirs["skipped"]
            .as_str()
            .is_some_and(|w| w.contains("another cluster node")),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn a_reload_applies_new_queues_and_keeps_the_stall_clock_of_unchanged_ones() {
    let redis = TestRedis::start();
    redis.cmd(&["RPUSH", "jobs", "a"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("redis-health.toml");
    let base = format!(
        "[redis]\nurl = \"{}\"\n[checks]\nsample_interval = \"200ms\"\nmax_age = \"50ms\"\n",
        redis.url()
    );
    let jobs =
        "[[queues]]\nname = \"jobs\"\nkind = \"list\"\nkey = \"jobs\"\nstall_after = \"30s\"\n";
    std::fs::write(&path, format!("{base}{jobs}")).expect("write config");
    let app = TestBinary::start(&[("REDIS_HEALTH_CONFIG", path.to_str().expect("utf-8"))]).await;
    let stalled_s = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body).ok()?["checks"]["queues"]["queues"]["jobs"]
            ["stalled_s"]
            .as_u64()
    };
    let deadline = Instant::now() + LIMIT;
    while stalled_s(&app.get("/health/queues").await.1) < Some(2) {
        assert!(
            Instant::now() < deadline,
            "{}",
            app.get("/health/queues").await.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let more = "[[queues]]\nname = \"more\"\nkind = \"zset\"\nkey = \"z\"\nwarn_length = 1\n";
    redis.cmd(&["ZADD", "z", "1", "a"]);
    std::fs::write(&path, format!("{base}{jobs}{more}")).expect("write config");
    app.signal("HUP");
    let deadline = Instant::now() + LIMIT;
    loop {
        let (_, body) = app.get("/health/queues").await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if json["checks"]["queues"]["queues"]["more"]["length"] == 1 {
            assert_eq!(json["reason"], "queue_backlog", "{body}");
            assert!(
                stalled_s(&body) >= Some(2),
                "the stall clock started over: {body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{body}\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_bad_queue_table_exits_2_naming_the_key_and_quoting_no_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "name = \"a\"\nkind = \"secret-kind\"\nkey = \"k\"",
            "queues[0].kind",
        ),
        (
            "name = \"a\"\nkind = \"stream\"\nkey = \"k\"\npop_from = \"left\"",
            "queues[0].pop_from",
        ),
        ("name = \"a\"\nkind = \"list\"", "queues[0].key"),
        (
            "name = \"Secret Name\"\nkind = \"list\"\nkey = \"k\"",
            "queues[0].name",
        ),
    ];
    for (table, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            format!("[[queues]]\nname = \"ok\"\nkind = \"list\"\nkey = \"x\"\n[[queues]]\n{table}"),
        )
        .expect("write");
        let output = run_binary(
            &["config"],
            &[("REDIS_HEALTH_CONFIG", path.to_str().expect("utf-8"))],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let key = key.replace("[0]", "[1]");
        assert_eq!(output.status.code(), Some(2), "{table}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("invalid config: {key}:")),
            "{key}: {stderr}"
        );
        for value in ["secret-kind", "Secret Name"] {
            assert!(!stderr.contains(value), "{stderr}");
        }
    }
}

#[test]
fn check_queues_reads_each_queue_once_and_exits_by_the_verdict() {
    let redis = TestRedis::start();
    redis.cmd(&["RPUSH", "rq:queue:default", "j1", "j2"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("c.toml");
    let write = |extra: &str| {
        let text = format!(
            "[redis]\nurl = \"{}\"\n{}{extra}",
            redis.url(),
            queue("rq", "rq", "default", "warn_length = 2")
        );
        std::fs::write(&path, text).expect("write config");
    };
    let envs = [("REDIS_HEALTH_CONFIG", path.to_str().expect("utf-8"))];
    write("");
    let warn = run_binary(&["check", "queues"], &envs);
    let body: serde_json::Value = serde_json::from_slice(&warn.stdout).unwrap_or_default();
    assert_eq!(warn.status.code(), Some(0), "{body}");
    assert_eq!(body["reason"], "queue_backlog", "{body}");
    assert_eq!(
        body["checks"]["queues"]["queues"]["rq"]["length"], 2,
        "{body}"
    );
    redis.cmd(&["HSET", "h", "f", "v"]);
    write(&queue("wrong", "list", "h", ""));
    let wrong = run_binary(&["check", "queues"], &envs);
    let body: serde_json::Value = serde_json::from_slice(&wrong.stdout).unwrap_or_default();
    assert_eq!(wrong.status.code(), Some(1), "{body}");
    assert_eq!(body["reason"], "queue_wrong_type", "{body}");
}
