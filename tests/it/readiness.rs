//! Readiness: each route judges what its caller acts on. A primary's replicas
//! are a durability alert for /health, failing peer slots do not drain a
//! cluster node that still serves its own, a Sentinel stays ready through a
//! failover, and a node switched in behind the same address starts a fresh
//! window. Real redis-server, Sentinel and cluster processes throughout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::sentinel::{SentinelNode, watched_pair};
use crate::support::{TestRedis, eventually, settings_with, spawn_app, start_cluster};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

fn reasons(body: &Value) -> Vec<String> {
    body["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A TCP forwarder on a free port: each connection to it is joined to
/// `target`, the bytes from the target paced at `rate` bytes/s when given.
/// [`Forwarder::switch`] points it elsewhere and cuts the open connections.
struct Forwarder {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Forwarder {
    async fn start(target: SocketAddr, rate: Option<u64>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind forwarder");
        let addr = listener.local_addr().expect("forwarder address");
        let target = Arc::new(Mutex::new(target));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (to, conns) = (target.clone(), open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = *to.lock().expect("target");
                let task = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = tokio::io::copy(&mut client_read, &mut server_write);
                    let down = async {
                        let mut buf = vec![0u8; 8192];
                        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            if let Some(rate) = rate {
                                let pause = n as f64 / rate as f64;
                                tokio::time::sleep(Duration::from_secs_f64(pause)).await;
                            }
                        }
                    };
                    tokio::select! { _ = up => {}, () = down => {} }
                });
                conns.lock().expect("connections").push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            target,
            open,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// New connections go to `target`; the open ones are cut.
    fn switch(&self, target: SocketAddr) {
        *self.target.lock().expect("target") = target;
        self.cut();
    }

    fn cut(&self) {
        for task in self.open.lock().expect("connections").drain(..) {
            task.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

fn info_number(redis: &TestRedis, field: &str) -> u64 {
    redis
        .info_field(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Item 6: a replica behind a 200 KB/s link with 6 MB to catch up acked a
/// second ago (INFO `lag=` 0-1), yet is megabytes behind: /health on the
/// primary says replica_lagging by bytes; /health/replica and
/// /health/primary on that primary, which still serves, answer 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_behind_a_slow_link_lags_in_bytes_on_health_only() {
    let primary = TestRedis::with_args(&["--repl-diskless-sync-delay", "0"]);
    let link = Forwarder::start(primary.addr(), Some(200_000)).await;
    let port = link.addr.port().to_string();
    let _replica = TestRedis::with_args(&["--replicaof", "127.0.0.1", &port]);
    eventually("the replica online", Duration::from_secs(15), || {
        primary
            .info_field("slave0")
            .is_some_and(|s| s.contains("state=online"))
    })
    .await;
    let app = spawn_app(settings_with(
        &primary.url(),
        "[checks.replication]\nmax_lag_bytes = \"1Mi\"\n",
    ))
    .await;
    app.wait_for("/health", Duration::from_secs(5), |a| a.status == 200)
        .await;

    let value = "x".repeat(100_000);
    let replies = primary.pipeline(&["SET", "big", &value], 60);
    assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
    let all = app
        .wait_for("/health", Duration::from_secs(10), |a| {
            reasons(&a.json).contains(&"replica_lagging".to_owned())
        })
        .await;
    assert_eq!(all.status, 503, "{}", all.text);
    let replication = &all.json["checks"]["replication"];
    assert_eq!(replication["max_lag_bytes"], 1 << 20, "{}", all.text);
    let replica = &replication["replicas"][0];
    assert_eq!(replica["state"], "online", "{}", all.text);
    assert!(
        replica["lag_bytes"].as_u64().is_some_and(|b| b > 1 << 20),
        "{}",
        all.text
    );
    assert!(
        replica["lag_s"].as_u64().is_some_and(|s| s < 10),
        "INFO lag= is time since the last ACK, under max_replica_lag: {}",
        all.text
    );
    assert!(replica.get("ip").is_none() && !all.text.contains(&port));
    for route in ["/health/replica", "/health/primary"] {
        let answer = app.get(route).await;
        assert_eq!(answer.status, 200, "{route}: {}", answer.text);
        assert!(
            !reasons(&answer.json).contains(&"replica_lagging".to_owned()),
            "{route}: {}",
            answer.text
        );
    }
}

/// Item 8: with `cluster-require-full-coverage no`, Redis keeps
/// `cluster_state:ok` on the masters that still reach a majority while a
/// frozen peer's slots are `fail` (cluster.c `clusterUpdateState`). They
/// answer /health/redis 200 with cluster_slots_failing as a warning, and
/// still take writes to their own slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_frozen_master_does_not_drain_the_other_two() {
    let nodes = start_cluster(3);
    for node in &nodes {
        assert_eq!(
            node.cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]),
            "OK"
        );
    }
    let apps = [
        spawn_app(settings_with(&nodes[1].url(), "")).await,
        spawn_app(settings_with(&nodes[2].url(), "")).await,
    ];
    for app in &apps {
        app.wait_for("/health/redis", Duration::from_secs(5), |a| a.status == 200)
            .await;
    }
    nodes[0].signal("STOP");
    for (node, app) in nodes[1..].iter().zip(&apps) {
        let answer = app
            .wait_for("/health/redis", Duration::from_secs(20), |a| {
                a.json["checks"]["cluster"]["slots_fail"]
                    .as_u64()
                    .is_some_and(|n| n > 0)
            })
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json["checks"]["cluster"]["cluster_state"], "ok");
        assert_eq!(answer.json["checks"]["cluster"]["status"], "warn");
        assert!(reasons(&answer.json).contains(&"cluster_slots_failing".to_owned()));
        // Some key of the first 100 hashes to this node's slots: it is served.
        let served = (0..100).any(|i| node.cmd(&["SET", &format!("key{i}"), "v"]) == "OK");
        assert!(served, "no write succeeded on {}", node.addr());
    }
}

/// Item 10: three Sentinels fail `mymaster` over after its primary dies.
/// /health/sentinel reports the master's sdown and odown as before, but
/// every sidecar's /health/sentinel/ready answers 200 throughout, probed
/// every 100 ms until 3 s after the promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_stay_ready_through_a_failover() {
    let (mut primary, replica, sentinels) = watched_pair().await;
    let mut apps = Vec::new();
    for sentinel in &sentinels {
        let toml = "[sentinel]\nmasters = \"mymaster\"\n";
        apps.push(spawn_app(settings_with(&sentinel.url(), toml)).await);
    }
    for app in &apps {
        app.wait_for("/health/sentinel/ready", Duration::from_secs(5), |a| {
            a.status == 200
        })
        .await;
    }

    primary.kill();
    let mut refused = Vec::new();
    let mut master_states = Vec::new();
    let mut promoted: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while promoted.is_none_or(|at| at.elapsed() < Duration::from_secs(3)) {
        assert!(
            Instant::now() < deadline,
            "no promotion: {}",
            sentinels[0].log()
        );
        for (i, app) in apps.iter().enumerate() {
            let answer = app.get("/health/sentinel/ready").await;
            if answer.status != 200 {
                refused.push(format!("sidecar {i}: {} {}", answer.status, answer.text));
            }
        }
        let strict = apps[0].get("/health/sentinel").await;
        master_states.extend(reasons(&strict.json));
        if promoted.is_none()
            && sentinels
                .iter()
                .all(|s| s.primary_port() == Some(replica.port))
        {
            promoted = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused.is_empty(), "{refused:#?}");
    assert!(
        master_states
            .iter()
            .any(|r| r == "master_sdown" || r == "master_odown"),
        "/health/sentinel still reports the master's states: {master_states:?}"
    );
}

/// Item 10: a Sentinel that does not monitor a name in `sentinel.masters`
/// is not ready: it would answer clients nothing for that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_missing_a_configured_master_is_not_ready() {
    let primary = TestRedis::start();
    let sentinel = SentinelNode::start(primary.port, 1);
    let app = spawn_app(settings_with(
        &sentinel.url(),
        "[sentinel]\nmasters = \"mymaster,orders\"\n",
    ))
    .await;
    let answer = app
        .wait_for("/health/sentinel/ready", Duration::from_secs(5), |a| {
            a.json["status"] != Value::Null
        })
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.json["reason"], "sentinel_unknown_master");
}

/// Item 11: a sidecar whose address is switched to another Redis that has
/// run longer than the window, with a lifetime of misses and evictions,
/// judges none of that as the last window's: no low_hit_rate, no evicting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_node_starts_a_fresh_window() {
    let first = TestRedis::start();
    let second = TestRedis::with_args(&[
        "--enable-debug-command",
        "yes",
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    assert_eq!(
        second.cmd(&["DEBUG", "POPULATE", "30000", "k", "200"]),
        "OK"
    );
    assert_eq!(second.cmd(&["SET", "one", "more"]), "OK");
    let misses = second.pipeline(&["GET", "nosuch"], 5000);
    assert_eq!(misses.len(), 5000);
    eventually(
        "evictions and misses on the second node",
        Duration::from_secs(10),
        || {
            info_number(&second, "evicted_keys") > 0
                && info_number(&second, "keyspace_misses") >= 5000
        },
    )
    .await;

    let link = Forwarder::start(first.addr(), None).await;
    let app = spawn_app(settings_with(
        &link.url(),
        "[checks]\nwindow = \"2s\"\nsample_interval = \"200ms\"\nmax_age = \"100ms\"\n",
    ))
    .await;
    app.wait_for("/health/redis", Duration::from_secs(5), |a| a.status == 200)
        .await;
    eventually(
        "the second node up longer than the window",
        Duration::from_secs(10),
        || info_number(&second, "uptime_in_seconds") >= 3,
    )
    .await;

    link.switch(second.addr());
    let answer = app
        .wait_for("/health/redis", Duration::from_secs(5), |a| {
            a.json["checks"]["memory"]["max_bytes"] == 2 << 20
        })
        .await;
    let judged = reasons(&answer.json);
    assert!(
        !judged
            .iter()
            .any(|r| r == "low_hit_rate" || r == "evicting"),
        "{}",
        answer.text
    );
    assert_eq!(
        answer.json["checks"]["hit_rate"]["lookups"], 0,
        "{}",
        answer.text
    );
}
