//! Issue 23's write pool: /health/primary answers 200 only where Redis
//! accepts a write now, judged against real redis-server processes and
//! what each then did with a SET.
//!
//! Self-contained: tests/common still sets `Settings` fields by hand, which
//! no longer compiles on this branch; these helpers are its minimum.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_health::Application;
use redis_health::config::Settings;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(10);

/// A redis-server on a free port with its own directory, killed on drop.
struct TestRedis {
    port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl TestRedis {
    fn with_args(args: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir = tempfile::tempdir().expect("temp dir");
        let binary =
            std::env::var("REDIS_HEALTH_TEST_REDIS").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &dir.path().to_string_lossy()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let redis = Self {
            port,
            _dir: dir,
            child,
        };
        let deadline = Instant::now() + LIMIT;
        while redis.try_cmd(&["PING"]).is_none() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn try_cmd(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        Some(read_reply(&mut BufReader::new(stream)))
    }

    fn cmd(&self, args: &[&str]) -> String {
        self.try_cmd(args).expect("redis command")
    }

    fn info_field(&self, field: &str) -> Option<String> {
        self.cmd(&["INFO"])
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_owned())
    }

    /// Fills with keys, then sets maxmemory so used_memory / maxmemory is about `ratio`.
    fn fill_to_ratio(&self, ratio: f64) {
        assert_eq!(
            self.cmd(&["DEBUG", "POPULATE", "20000", "key", "100"]),
            "OK"
        );
        let used: u64 = self
            .info_field("used_memory")
            .and_then(|v| v.parse().ok())
            .expect("used_memory");
        let max = ((used as f64) / ratio) as u64;
        assert_eq!(
            self.cmd(&["CONFIG", "SET", "maxmemory", &max.to_string()]),
            "OK"
        );
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read reply");
    let line = line.trim_end().to_owned();
    match line.chars().next() {
        Some('$') => {
            let len: i64 = line[1..].parse().expect("bulk length");
            if len < 0 {
                return String::new();
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf).expect("bulk body");
            buf.truncate(len as usize);
            String::from_utf8_lossy(&buf).into_owned()
        }
        Some('*') => {
            let n: i64 = line[1..].parse().expect("array length");
            (0..n.max(0))
                .map(|_| read_reply(reader))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Some('+' | ':' | '-') => line[1..].to_owned(),
        _ => line,
    }
}

struct TestApp {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    text: String,
    json: Value,
}

impl TestApp {
    async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }
}

async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings).await.expect("bind sidecar");
    let addr = app.local_addr().expect("local addr");
    tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        http: reqwest::Client::builder()
            .timeout(LIMIT)
            .build()
            .expect("http client"),
    }
}

/// The sidecar for `redis`, from the defaults plus TOML, validated as a file is.
async fn app_for(redis: &TestRedis) -> TestApp {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[redis]\nurl = \"{}\"\ntimeout = \"500ms\"\n\
         [checks]\nmax_age = \"1ms\"\n[checks.memory]\nwarn_no_maxmemory = false\n",
        redis.url()
    );
    let settings = match Settings::from_toml(&text) {
        Ok(settings) => settings,
        Err(error) => panic!("test settings: {error}"),
    };
    spawn_app(settings).await
}

/// Polls Redis until `field` in INFO reads `value`.
fn wait_for_info(redis: &TestRedis, field: &str, value: &str) {
    let deadline = Instant::now() + LIMIT;
    while redis.info_field(field).as_deref() != Some(value) {
        assert!(Instant::now() < deadline, "INFO {field} never read {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn debug_redis(args: &[&str]) -> TestRedis {
    let mut all = vec!["--enable-debug-command", "yes"];
    all.extend_from_slice(args);
    TestRedis::with_args(&all)
}

#[tokio::test]
async fn a_full_noeviction_primary_refuses_set_and_primary_answers_503_memory_pressure() {
    let redis = debug_redis(&["--maxmemory-policy", "noeviction"]);
    assert_eq!(
        redis.cmd(&["DEBUG", "POPULATE", "100000", "key", "100"]),
        "OK"
    );
    assert_eq!(redis.cmd(&["CONFIG", "SET", "maxmemory", "8mb"]), "OK");
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("OOM"), "Redis answered {set}");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "memory_pressure",
        "{}",
        primary.text
    );
    assert_eq!(
        primary.json["checks"]["writes"]["refused"], "oom",
        "{}",
        primary.text
    );
    assert_eq!(app.get("/health/alive").await.status, 200);
}

#[tokio::test]
async fn a_volatile_lru_primary_at_maxmemory_with_expiring_keys_accepts_set() {
    let redis = debug_redis(&["--maxmemory-policy", "volatile-lru"]);
    let fill =
        "for i=1,50000 do redis.call('SET','e'..i,string.rep('x',100),'EX',3600) end return 1";
    assert_eq!(redis.cmd(&["EVAL", fill, "0"]), "1");
    let used: u64 = redis
        .info_field("used_memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let max = (used * 99 / 100).to_string();
    assert_eq!(redis.cmd(&["CONFIG", "SET", "maxmemory", &max]), "OK");
    assert_eq!(redis.cmd(&["SET", "probe", "1", "EX", "3600"]), "OK");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
    let all = app.get("/health").await;
    assert_ne!(all.json["status"], "critical", "{}", all.text);
    assert_ne!(all.json["reason"], "memory_pressure", "{}", all.text);
}

#[tokio::test]
async fn a_noeviction_primary_near_maxmemory_accepts_set_and_reads_memory_near_limit() {
    let redis = debug_redis(&["--maxmemory-policy", "noeviction"]);
    redis.fill_to_ratio(0.97);
    assert_eq!(redis.cmd(&["SET", "probe", "1"]), "OK");
    let app = app_for(&redis).await;
    let node = app.get("/health/redis").await;
    assert_eq!(node.json["reason"], "memory_near_limit", "{}", node.text);
    assert_eq!(node.json["status"], "degraded", "{}", node.text);
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
}

#[tokio::test]
async fn min_replicas_to_write_without_a_replica_refuses_set_and_three_routes_say_writes_refused() {
    let redis = TestRedis::with_args(&[
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "10",
    ]);
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("NOREPLICAS"), "Redis answered {set}");
    let app = app_for(&redis).await;
    for route in ["/health/primary", "/health/redis", "/health"] {
        let answer = app.get(route).await;
        assert_eq!(answer.status, 503, "{route}: {}", answer.text);
        assert_eq!(
            answer.json["reason"], "writes_refused",
            "{route}: {}",
            answer.text
        );
        assert_eq!(
            answer.json["checks"]["writes"]["refused"], "noreplicas",
            "{route}: {}",
            answer.text
        );
    }
}

#[tokio::test]
async fn a_cache_whose_bgsave_failed_accepts_set_and_only_warns_save_failed() {
    let gone = tempfile::tempdir().expect("temp dir");
    let dir = gone.path().to_string_lossy().into_owned();
    let redis = TestRedis::with_args(&["--dir", &dir]);
    assert_eq!(redis.cmd(&["CONFIG", "GET", "save"]), "save\n");
    drop(gone);
    assert!(redis.cmd(&["BGSAVE"]).contains("Background saving started"));
    wait_for_info(&redis, "rdb_last_bgsave_status", "err");
    assert_eq!(redis.cmd(&["SET", "probe", "1"]), "OK");
    let app = app_for(&redis).await;
    let node = app.get("/health/redis").await;
    assert_eq!(node.json["reason"], "save_failed", "{}", node.text);
    assert_eq!(node.json["status"], "warn", "{}", node.text);
    assert_eq!(
        node.json["checks"]["persistence"]["rdb_last_bgsave_status"], "err",
        "{}",
        node.text
    );
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 200, "{}", primary.text);
}

#[tokio::test]
async fn a_failed_bgsave_with_save_points_refuses_set_misconf_and_primary_answers_503() {
    let gone = tempfile::tempdir().expect("temp dir");
    let dir = gone.path().to_string_lossy().into_owned();
    let redis = TestRedis::with_args(&["--dir", &dir, "--stop-writes-on-bgsave-error", "yes"]);
    drop(gone);
    assert!(redis.cmd(&["BGSAVE"]).contains("Background saving started"));
    wait_for_info(&redis, "rdb_last_bgsave_status", "err");
    assert_eq!(redis.cmd(&["CONFIG", "SET", "save", "3600 1"]), "OK");
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("MISCONF"), "Redis answered {set}");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "persistence_failed",
        "{}",
        primary.text
    );
    let writes = &primary.json["checks"]["writes"];
    assert_eq!(writes["refused"], "misconf", "{}", primary.text);
    assert!(
        writes["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("MISCONF")),
        "{}",
        primary.text
    );
    let all = app.get("/health").await;
    assert_eq!(all.status, 503, "{}", all.text);
    assert_eq!(
        all.json["checks"]["persistence"]["rdb_last_bgsave_status"], "err",
        "{}",
        all.text
    );
    let alive = app.get("/health/alive").await;
    assert_eq!(alive.status, 200, "{}", alive.text);
}

#[tokio::test]
async fn a_full_volatile_lru_primary_with_no_expiring_key_refuses_set_and_reads_memory_pressure() {
    let redis = debug_redis(&["--maxmemory-policy", "volatile-lru"]);
    assert_eq!(
        redis.cmd(&["DEBUG", "POPULATE", "100000", "key", "100"]),
        "OK"
    );
    assert_eq!(redis.cmd(&["CONFIG", "SET", "maxmemory", "8mb"]), "OK");
    let set = redis.cmd(&["SET", "probe", "1"]);
    assert!(set.starts_with("OOM"), "Redis answered {set}");
    let app = app_for(&redis).await;
    let primary = app.get("/health/primary").await;
    assert_eq!(primary.status, 503, "{}", primary.text);
    assert_eq!(
        primary.json["reason"], "memory_pressure",
        "{}",
        primary.text
    );
}
