//! The INFO parser: turns the text of one plain `INFO` reply into a typed
//! [`Snapshot`], and that of a `CLUSTER INFO` reply into a [`ClusterInfo`].
//! Pure and total: any input gives a value, with the fields it could not read
//! left as `None`.

use std::collections::HashMap;

/// The node's replication role, from `role:master` / `role:slave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Replica,
}

/// One replica as a primary reports it
/// (`slaveN:ip=...,port=...,state=online,offset=N,lag=0`).
/// Its address is deliberately not kept: bodies never expose it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaInfo {
    pub online: bool,
    /// `state=`: online, wait_bgsave, send_bulk, ...
    pub state: Option<String>,
    /// `offset=`: the replication offset the replica last acknowledged.
    pub offset: Option<u64>,
    /// `lag=`: seconds since the replica's last REPLCONF ACK, not how far
    /// behind its data is (that is `offset` against `master_repl_offset`).
    pub lag_s: Option<u64>,
}

/// The values the checks judge, read from one INFO reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub run_id: Option<String>,
    /// The server and its version as people name them ("Redis 7.0.15",
    /// "Valkey 9.1.2"), for the status page.
    pub server: Option<String>,
    /// Dates a restart: the window after one starts when the server did.
    pub uptime_s: Option<u64>,
    pub role: Option<Role>,
    pub used_memory: Option<u64>,
    /// Replication and AOF buffers, which Redis leaves out when it compares
    /// used memory with maxmemory (Redis 6+).
    pub mem_not_counted_for_evict: Option<u64>,
    pub maxmemory: Option<u64>,
    pub maxmemory_policy: Option<String>,
    pub mem_fragmentation_ratio: Option<f64>,
    pub connected_clients: Option<u64>,
    pub maxclients: Option<u64>,
    pub blocked_clients: Option<u64>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    pub evicted_keys: Option<u64>,
    pub rejected_connections: Option<u64>,
    /// Counters that CONFIG RESETSTAT zeroes with the judged ones; read only
    /// to notice a reset that the judged counters alone would hide.
    pub total_commands_processed: Option<u64>,
    pub total_connections_received: Option<u64>,
    pub total_net_input_bytes: Option<u64>,
    /// Shown in /metrics only: too noisy to judge health by.
    pub instantaneous_ops_per_sec: Option<u64>,
    pub rdb_last_bgsave_ok: Option<bool>,
    pub aof_last_bgrewrite_ok: Option<bool>,
    pub aof_last_write_ok: Option<bool>,
    /// Redis's own clock, so save ages are judged on the clock that stamped them.
    pub server_time_s: Option<u64>,
    pub rdb_last_save_time: Option<u64>,
    pub rdb_changes_since_last_save: Option<u64>,
    /// Memory the kernel counts against the process (and a container's limit).
    pub used_memory_rss: Option<u64>,
    /// The machine's RAM; inside a container still the host's.
    pub total_system_memory: Option<u64>,
    pub aof_enabled: Option<bool>,
    /// Keys with an expiry, summed over the Keyspace section's `dbN` lines:
    /// what a `volatile-*` policy may evict.
    pub keys_with_expiry: u64,
    /// Replicas within `min-replicas-max-lag`; INFO shows it only when
    /// `min-replicas-to-write` is set.
    pub min_slaves_good_slaves: Option<u64>,
    /// PING's MISCONF answer, when Redis refuses writes for a disk error
    /// (read in `redis.rs`, not in INFO).
    pub misconf: Option<String>,
    /// Not in INFO: the sampler's last write canary (`checks.writes.canary`).
    pub canary: Option<Canary>,
    /// Not in INFO: the sampler's last reading of the `[[queues]]`.
    pub queues: Option<std::sync::Arc<Vec<crate::queues::Reading>>>,
    /// Successful RDB saves since start (Redis 7.0+).
    pub rdb_saves: Option<u64>,
    /// How long the last background save took; -1 until one has completed.
    pub rdb_last_bgsave_time_s: Option<i64>,
    pub rdb_bgsave_in_progress: Option<bool>,
    pub aof_rewrite_in_progress: Option<bool>,
    /// Copy-on-write bytes of the last RDB save, AOF rewrite, and the fork
    /// running now (Redis 6.2+).
    pub rdb_last_cow_size: Option<u64>,
    pub aof_last_cow_size: Option<u64>,
    pub current_cow_size: Option<u64>,
    /// Id of the newest slow-log entry; not in INFO, read by SLOWLOG GET 1
    /// only when the slowlog check runs.
    pub slowlog_last_id: Option<u64>,
    /// Entries in the slow log (SLOWLOG LEN), read with the newest id.
    pub slowlog_len: Option<u64>,
    pub master_link_up: Option<bool>,
    pub master_sync_in_progress: Option<bool>,
    pub master_last_io_seconds_ago: Option<i64>,
    pub replicas: Vec<ReplicaInfo>,
    /// The primary's replication offset: bytes of its replication stream so far.
    pub master_repl_offset: Option<u64>,
    /// `cluster_enabled:1`: the node is part of a Redis Cluster.
    pub cluster_enabled: bool,
    /// Not in INFO: read by CLUSTER INFO, only on a cluster node.
    pub cluster: Option<ClusterInfo>,
    /// `redis_mode:sentinel`: the process is a Sentinel, not a data node.
    pub sentinel: Option<SentinelInfo>,
    /// Not in INFO: the certificates of the `rediss://` connection's
    /// handshake, only on such a connection.
    pub tls: Option<CertDates>,
    /// Not in INFO: what `routes.primary.sentinels` said of the master,
    /// only when they are set.
    pub sentinel_view: Option<crate::sentinels::SentinelView>,
}

/// What the write canary saw: Redis's refusal, if it refused, and the
/// round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub refused: Option<String>,
    pub rtt: std::time::Duration,
}

/// What a Sentinel says in INFO's Sentinel section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentinelInfo {
    /// `sentinel_tilt:1`: the Sentinel distrusts its timer and takes no action.
    pub tilt: Option<bool>,
    /// One per `masterN:` line, in N order.
    pub masters: Vec<MonitoredMaster>,
}

/// One `masterN:name=...,status=...,address=...,slaves=N,sentinels=N` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitoredMaster {
    pub name: String,
    pub status: Option<MasterStatus>,
    pub address: Option<String>,
    pub replicas: Option<u64>,
    pub sentinels: Option<u64>,
    /// Not in INFO: whether `SENTINEL CKQUORUM` answered OK; `None` when it
    /// was not asked (a master outside `sentinel.masters`).
    pub quorum_ok: Option<bool>,
}

/// A master's state as this Sentinel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MasterStatus {
    Ok,
    /// Subjectively down: this Sentinel cannot reach it.
    Sdown,
    /// Objectively down: a quorum of Sentinels agrees; failover follows.
    Odown,
}

impl SentinelInfo {
    /// The Sentinel section of an INFO reply; `None` unless `redis_mode:sentinel`.
    fn parse(fields: &HashMap<&str, &str>) -> Option<Self> {
        if fields.get("redis_mode") != Some(&"sentinel") {
            return None;
        }
        let mut masters: Vec<(u32, MonitoredMaster)> = fields
            .iter()
            .filter_map(|(key, value)| {
                let index = key.strip_prefix("master")?.parse::<u32>().ok()?;
                Some((index, parse_master(value)?))
            })
            .collect();
        masters.sort_by_key(|(index, _)| *index);
        Some(Self {
            tilt: fields.get("sentinel_tilt").map(|v| *v == "1"),
            masters: masters.into_iter().map(|(_, m)| m).collect(),
        })
    }
}

/// When the certificates of a TLS connection expire, in Unix seconds, and
/// when the check that saw them ran (so expiry is judged without a clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertDates {
    pub checked_at_s: i64,
    pub server_not_after: Option<i64>,
    /// Only when `redis.tls.cert_file` is set.
    pub client_not_after: Option<i64>,
}

/// What a cluster node says about the whole cluster (`CLUSTER INFO`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterInfo {
    /// `ok` or `fail`.
    pub state: Option<String>,
    pub slots_assigned: Option<u64>,
    pub slots_ok: Option<u64>,
    pub slots_pfail: Option<u64>,
    pub slots_fail: Option<u64>,
    pub known_nodes: Option<u64>,
}

impl ClusterInfo {
    pub fn parse(text: &str) -> Self {
        let fields = fields(text);
        let num = |key: &str| fields.get(key).and_then(|v| v.parse::<u64>().ok());
        Self {
            state: fields.get("cluster_state").map(|v| (*v).to_owned()),
            slots_assigned: num("cluster_slots_assigned"),
            slots_ok: num("cluster_slots_ok"),
            slots_pfail: num("cluster_slots_pfail"),
            slots_fail: num("cluster_slots_fail"),
            known_nodes: num("cluster_known_nodes"),
        }
    }
}

/// The `key:value` lines of an INFO-style reply.
fn fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .collect()
}

impl Snapshot {
    pub fn parse(text: &str) -> Self {
        let fields = fields(text);
        let num = |key: &str| fields.get(key).and_then(|v| v.parse::<u64>().ok());
        let status_ok = |key: &str| fields.get(key).map(|v| *v == "ok");
        let flag = |key: &str| match fields.get(key) {
            Some(&"1") => Some(true),
            Some(&"0") => Some(false),
            _ => None,
        };
        let mut replicas: Vec<(u32, ReplicaInfo)> = fields
            .iter()
            .filter_map(|(key, value)| {
                let index = key.strip_prefix("slave")?.parse::<u32>().ok()?;
                Some((index, parse_replica(value)))
            })
            .collect();
        replicas.sort_by_key(|(index, _)| *index);

        Self {
            run_id: fields.get("run_id").map(|v| (*v).to_owned()),
            // Valkey also reports the Redis version it is compatible with.
            server: match (fields.get("valkey_version"), fields.get("redis_version")) {
                (Some(v), _) => Some(format!("Valkey {v}")),
                (None, Some(v)) => Some(format!("Redis {v}")),
                (None, None) => None,
            },
            uptime_s: num("uptime_in_seconds"),
            role: fields.get("role").and_then(|v| match *v {
                "master" => Some(Role::Master),
                "slave" | "replica" => Some(Role::Replica),
                _ => None,
            }),
            used_memory: num("used_memory"),
            mem_not_counted_for_evict: num("mem_not_counted_for_evict"),
            maxmemory: num("maxmemory"),
            maxmemory_policy: fields.get("maxmemory_policy").map(|v| (*v).to_owned()),
            mem_fragmentation_ratio: fields
                .get("mem_fragmentation_ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite()),
            connected_clients: num("connected_clients"),
            maxclients: num("maxclients"),
            blocked_clients: num("blocked_clients"),
            keyspace_hits: num("keyspace_hits"),
            keyspace_misses: num("keyspace_misses"),
            evicted_keys: num("evicted_keys"),
            rejected_connections: num("rejected_connections"),
            total_commands_processed: num("total_commands_processed"),
            total_connections_received: num("total_connections_received"),
            total_net_input_bytes: num("total_net_input_bytes"),
            instantaneous_ops_per_sec: num("instantaneous_ops_per_sec"),
            rdb_last_bgsave_ok: status_ok("rdb_last_bgsave_status"),
            aof_last_bgrewrite_ok: status_ok("aof_last_bgrewrite_status"),
            aof_last_write_ok: status_ok("aof_last_write_status"),
            server_time_s: num("server_time_usec").map(|us| us / 1_000_000),
            rdb_last_save_time: num("rdb_last_save_time"),
            rdb_changes_since_last_save: num("rdb_changes_since_last_save"),
            used_memory_rss: num("used_memory_rss"),
            total_system_memory: num("total_system_memory"),
            aof_enabled: flag("aof_enabled"),
            keys_with_expiry: fields
                .iter()
                .filter(|(key, _)| {
                    key.strip_prefix("db")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .filter_map(|(_, value)| {
                    value
                        .split(',')
                        .find_map(|kv| kv.strip_prefix("expires="))
                        .and_then(|n| n.parse::<u64>().ok())
                })
                .sum(),
            min_slaves_good_slaves: num("min_slaves_good_slaves"),
            misconf: None,
            canary: None,
            queues: None,
            rdb_saves: num("rdb_saves"),
            rdb_last_bgsave_time_s: fields
                .get("rdb_last_bgsave_time_sec")
                .and_then(|v| v.parse::<i64>().ok()),
            rdb_bgsave_in_progress: flag("rdb_bgsave_in_progress"),
            aof_rewrite_in_progress: flag("aof_rewrite_in_progress"),
            rdb_last_cow_size: num("rdb_last_cow_size"),
            aof_last_cow_size: num("aof_last_cow_size"),
            current_cow_size: num("current_cow_size"),
            slowlog_last_id: None,
            slowlog_len: None,
            master_link_up: fields.get("master_link_status").map(|v| *v == "up"),
            master_sync_in_progress: fields.get("master_sync_in_progress").map(|v| *v == "1"),
            master_last_io_seconds_ago: fields
                .get("master_last_io_seconds_ago")
                .and_then(|v| v.parse::<i64>().ok()),
            replicas: replicas.into_iter().map(|(_, r)| r).collect(),
            master_repl_offset: num("master_repl_offset"),
            cluster_enabled: fields.get("cluster_enabled") == Some(&"1"),
            cluster: None,
            sentinel: SentinelInfo::parse(&fields),
            tls: None,
            sentinel_view: None,
        }
    }

    /// Memory as Redis counts it when it evicts or refuses writes: used
    /// memory less its replication and AOF buffers (Redis 6+; older
    /// servers do not say, and then used_memory is all there is).
    pub fn counted_memory(&self) -> Option<u64> {
        let used = self.used_memory?;
        Some(used.saturating_sub(self.mem_not_counted_for_evict.unwrap_or(0)))
    }

    /// How long ago the last successful RDB save was, by Redis's clock.
    pub fn rdb_last_save_age(&self) -> Option<std::time::Duration> {
        let age = self.server_time_s?.checked_sub(self.rdb_last_save_time?)?;
        Some(std::time::Duration::from_secs(age))
    }
}

fn parse_replica(value: &str) -> ReplicaInfo {
    let mut info = ReplicaInfo::default();
    for (key, val) in value.split(',').filter_map(|kv| kv.split_once('=')) {
        match key {
            "state" => {
                info.online = val == "online";
                info.state = Some(val.to_owned());
            }
            "offset" => info.offset = val.parse().ok(),
            "lag" => info.lag_s = val.parse().ok(),
            _ => {}
        }
    }
    info
}

fn parse_master(value: &str) -> Option<MonitoredMaster> {
    let mut master = MonitoredMaster::default();
    for (key, val) in value.split(',').filter_map(|kv| kv.split_once('=')) {
        match key {
            "name" => master.name = val.to_owned(),
            "status" => {
                master.status = match val {
                    "ok" => Some(MasterStatus::Ok),
                    "sdown" => Some(MasterStatus::Sdown),
                    "odown" => Some(MasterStatus::Odown),
                    _ => None,
                }
            }
            "address" => master.address = Some(val.to_owned()),
            "slaves" => master.replicas = val.parse().ok(),
            "sentinels" => master.sentinels = val.parse().ok(),
            _ => {}
        }
    }
    (!master.name.is_empty()).then_some(master)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Snapshot {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Snapshot::parse(&text)
    }

    fn assert_common_fields(snap: &Snapshot) {
        assert!(snap.run_id.as_deref().is_some_and(|id| id.len() == 40));
        assert!(snap.used_memory.is_some_and(|m| m > 0));
        assert_eq!(snap.maxmemory, Some(0));
        assert_eq!(snap.maxmemory_policy.as_deref(), Some("noeviction"));
        assert!(snap.mem_fragmentation_ratio.is_some());
        assert!(snap.connected_clients.is_some_and(|c| c >= 1));
        assert_eq!(snap.maxclients, Some(10000));
        assert_eq!(snap.blocked_clients, Some(0));
        assert_eq!(snap.evicted_keys, Some(0));
        assert_eq!(snap.rejected_connections, Some(0));
        assert_eq!(snap.mem_not_counted_for_evict, Some(0));
        assert!(snap.uptime_s.is_some());
        assert!(snap.total_commands_processed.is_some());
        assert!(snap.total_connections_received.is_some_and(|c| c >= 1));
        assert!(snap.total_net_input_bytes.is_some_and(|b| b > 0));
        assert_eq!(snap.rdb_last_bgsave_ok, Some(true));
        assert_eq!(snap.aof_last_bgrewrite_ok, Some(true));
        assert_eq!(snap.aof_last_write_ok, Some(true));
    }

    #[test]
    fn parses_redis_6_2_primary() {
        let snap = fixture("info-redis-6.2.txt");
        assert_common_fields(&snap);
        assert_eq!(snap.role, Some(Role::Master));
        assert_eq!(snap.keyspace_hits, Some(1));
        assert_eq!(snap.keyspace_misses, Some(1));
        assert!(snap.replicas.is_empty());
        assert_eq!(snap.master_link_up, None);
    }

    #[test]
    fn parses_redis_7_0_primary_with_a_replica_not_yet_online() {
        let snap = fixture("info-redis-7.0-primary.txt");
        assert_common_fields(&snap);
        assert_eq!(snap.role, Some(Role::Master));
        assert_eq!(
            snap.replicas,
            vec![ReplicaInfo {
                online: false,
                state: Some("wait_bgsave".into()),
                offset: Some(0),
                lag_s: Some(0)
            }]
        );
        assert_eq!(snap.master_repl_offset, Some(50));
    }

    #[test]
    fn parses_redis_7_0_replica_with_its_link_down() {
        let snap = fixture("info-redis-7.0-replica.txt");
        assert_common_fields(&snap);
        assert_eq!(snap.role, Some(Role::Replica));
        assert_eq!(snap.master_link_up, Some(false));
        assert_eq!(snap.master_sync_in_progress, Some(false));
        assert_eq!(snap.master_last_io_seconds_ago, Some(-1));
    }

    #[test]
    fn parses_memory_and_fork_fields() {
        let snap = fixture("info-redis-7.0-primary.txt");
        assert!(snap.used_memory_rss.is_some_and(|rss| rss > 0));
        assert!(snap.total_system_memory.is_some_and(|ram| ram > 0));
        assert_eq!(snap.aof_enabled, Some(false));
        assert_eq!(snap.rdb_saves, Some(0));
        assert_eq!(snap.rdb_last_bgsave_time_s, Some(-1));
        assert_eq!(snap.rdb_bgsave_in_progress, Some(false));
        assert_eq!(snap.aof_rewrite_in_progress, Some(false));
        assert_eq!(snap.rdb_last_cow_size, Some(0));
        assert_eq!(snap.aof_last_cow_size, Some(0));
        assert_eq!(snap.current_cow_size, Some(0));
        let old = fixture("info-redis-6.2.txt");
        assert_eq!(old.used_memory_rss, Some(4_710_400));
        assert_eq!(old.rdb_saves, None, "7.0+");
        assert_eq!(old.rdb_last_cow_size, Some(0));
    }

    #[test]
    fn parses_valkey_9_1() {
        let snap = fixture("info-valkey-9.1.txt");
        assert_common_fields(&snap);
        assert_eq!(snap.role, Some(Role::Master));
        assert_eq!(snap.keyspace_hits, Some(1));
    }

    /// Redis 8.2 adds the Threads and Keysizes sections, which no check
    /// reads; every field read is where 7.0 has it.
    #[test]
    fn parses_redis_8_2_with_its_new_sections() {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/info-redis-8.2.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        assert!(text.contains("# Threads\r\nio_thread_0:") && text.contains("# Keysizes\r\n"));
        let snap = fixture("info-redis-8.2.txt");
        assert_common_fields(&snap);
        assert_eq!(snap.role, Some(Role::Master));
        assert_eq!(snap.keyspace_hits, Some(1));
        assert_eq!(snap.keyspace_misses, Some(2));
        assert!(snap.replicas.is_empty());
        assert_eq!(snap.rdb_saves, Some(0));
        assert!(!snap.cluster_enabled);
        assert_eq!(snap.sentinel, None);
    }

    mod never_panics {
        //! Any text, however mangled, parses. `PROPTEST_CASES` (default 256)
        //! sets the cases per property; raise it for a long run by hand.
        use super::*;
        use proptest::prelude::*;

        /// Keys the parser reads, so generated lines reach every branch.
        const KEYS: &[&str] = &[
            "uptime_in_seconds",
            "mem_not_counted_for_evict",
            "total_commands_processed",
            "total_connections_received",
            "total_net_input_bytes",
            "role",
            "used_memory",
            "maxmemory",
            "maxmemory_policy",
            "mem_fragmentation_ratio",
            "connected_clients",
            "maxclients",
            "blocked_clients",
            "keyspace_hits",
            "keyspace_misses",
            "evicted_keys",
            "rejected_connections",
            "rdb_last_bgsave_status",
            "master_link_status",
            "master_sync_in_progress",
            "master_last_io_seconds_ago",
            "slave0",
            "slave1",
            "slave4294967296",
            "run_id",
            "used_memory_rss",
            "total_system_memory",
            "aof_enabled",
            "rdb_saves",
            "rdb_last_bgsave_time_sec",
            "rdb_bgsave_in_progress",
            "rdb_last_cow_size",
            "current_cow_size",
            "redis_mode",
            "sentinel_tilt",
            "master0",
            "master1",
        ];

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                any::<i128>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|n| n.to_string()),
                Just("NaN".to_owned()),
                Just("inf".to_owned()),
                "(ip|port|state|lag|offset)=[a-z0-9,=:.-]{0,12}(,[a-z]{0,6}=[a-z0-9-]{0,8}){0,4}",
                Just("sentinel".to_owned()),
                "(name|status|address|slaves|sentinels)=[a-z0-9,=:.-]{0,12}(,[a-z]{0,9}=[a-z0-9-]{0,8}){0,4}",
            ]
        }

        fn info_like() -> impl Strategy<Value = String> {
            let line = prop_oneof![
                (proptest::sample::select(KEYS), value()).prop_map(|(k, v)| format!("{k}:{v}")),
                any::<String>(),
                Just("# Replication".to_owned()),
            ];
            (
                proptest::collection::vec(line, 0..40),
                prop_oneof![Just("\r\n"), Just("\n")],
            )
                .prop_map(|(lines, end)| lines.join(end))
        }

        proptest! {
            #[test]
            fn on_arbitrary_text(text in any::<String>()) {
                Snapshot::parse(&text);
            }

            #[test]
            fn on_info_shaped_text(text in info_like()) {
                let snapshot = Snapshot::parse(&text);
                prop_assert!(snapshot.replicas.len() <= text.lines().count());
            }

            #[test]
            fn on_a_real_reply_cut_and_spliced(
                cut in any::<proptest::sample::Index>(),
                junk in any::<String>(),
            ) {
                let path = format!("{}/tests/fixtures/info-redis-7.0-primary.txt", env!("CARGO_MANIFEST_DIR"));
                let text = std::fs::read_to_string(&path).expect("fixture");
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                Snapshot::parse(&format!("{}{junk}{}", &text[..at], &text[at..]));
                Snapshot::parse(&text[..at]);
            }
        }
    }

    #[test]
    fn plain_nodes_are_not_cluster_nodes() {
        for name in [
            "info-redis-6.2.txt",
            "info-redis-7.0-primary.txt",
            "info-redis-8.2.txt",
            "info-valkey-9.1.txt",
        ] {
            assert!(!fixture(name).cluster_enabled, "{name}");
        }
        assert!(Snapshot::parse("# Cluster\r\ncluster_enabled:1\r\n").cluster_enabled);
        assert!(!Snapshot::parse("# Cluster\r\ncluster_enabled:0\r\n").cluster_enabled);
    }

    #[test]
    fn parses_cluster_info() {
        let text = "cluster_state:fail\r\ncluster_slots_assigned:16384\r\n\
                    cluster_slots_ok:5461\r\ncluster_slots_pfail:10923\r\n\
                    cluster_slots_fail:0\r\ncluster_known_nodes:3\r\ncluster_size:3\r\n";
        assert_eq!(
            ClusterInfo::parse(text),
            ClusterInfo {
                state: Some("fail".into()),
                slots_assigned: Some(16384),
                slots_ok: Some(5461),
                slots_pfail: Some(10923),
                slots_fail: Some(0),
                known_nodes: Some(3),
            }
        );
        assert_eq!(ClusterInfo::parse("garbage"), ClusterInfo::default());
    }

    #[test]
    fn parses_a_sentinel_with_two_masters() {
        let snap = fixture("info-sentinel-7.0.txt");
        let master = |name: &str, address: &str, replicas| MonitoredMaster {
            name: name.into(),
            status: Some(MasterStatus::Ok),
            address: Some(address.into()),
            replicas: Some(replicas),
            sentinels: Some(3),
            quorum_ok: None,
        };
        assert_eq!(
            snap.sentinel,
            Some(SentinelInfo {
                tilt: Some(false),
                masters: vec![
                    master("mymaster", "127.0.0.1:27101", 1),
                    master("other", "127.0.0.1:27102", 0),
                ],
            })
        );
        // A Sentinel has no data-node sections.
        assert_eq!(snap.role, None);
        assert_eq!(snap.used_memory, None);
        assert_eq!(snap.rdb_last_bgsave_ok, None);
    }

    #[test]
    fn parses_a_sentinel_in_tilt_with_a_master_odown() {
        let snap = fixture("info-sentinel-7.0-tilt.txt");
        let sentinel = snap.sentinel.unwrap_or_default();
        assert_eq!(sentinel.tilt, Some(true));
        let statuses: Vec<_> = sentinel.masters.iter().map(|m| m.status).collect();
        assert_eq!(
            statuses,
            vec![Some(MasterStatus::Ok), Some(MasterStatus::Odown)]
        );
    }

    #[test]
    fn data_nodes_are_not_sentinels() {
        for name in [
            "info-redis-6.2.txt",
            "info-redis-7.0-primary.txt",
            "info-redis-7.0-replica.txt",
            "info-redis-8.2.txt",
            "info-valkey-9.1.txt",
        ] {
            assert_eq!(fixture(name).sentinel, None, "{name}");
        }
        assert_eq!(Snapshot::parse("redis_mode:standalone\r\n").sentinel, None);
    }

    #[test]
    fn garbage_gives_an_empty_snapshot() {
        assert_eq!(
            Snapshot::parse("\u{0}:::\r\nrole\nused_memory:-5\n"),
            Snapshot::default()
        );
    }

    #[test]
    fn sums_expiring_keys_over_databases_and_reads_good_replicas() {
        let snap = Snapshot::parse(
            "# Keyspace\r\ndb0:keys=10,expires=3,avg_ttl=100\r\ndb5:keys=2,expires=4,avg_ttl=9\r\n\
             dbx:keys=1,expires=50\r\nmin_slaves_good_slaves:0\r\n",
        );
        assert_eq!(snap.keys_with_expiry, 7);
        assert_eq!(snap.min_slaves_good_slaves, Some(0));
        assert_eq!(
            Snapshot::parse("db0:keys=1,expires=0\r\n").keys_with_expiry,
            0
        );
        assert_eq!(Snapshot::parse("").min_slaves_good_slaves, None);
    }
}
