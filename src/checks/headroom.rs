//! `headroom`: used_memory_rss against the memory limit the kernel enforces.
//!
//! In a container the OOM killer, not `maxmemory`, is what takes Redis down:
//! RSS (fragmentation, client and replication buffers included) grows past
//! the limit, or a fork's copy-on-write pages push it over. Redis does not
//! know a container's limit, so it comes from `checks.headroom.limit_bytes`,
//! else from INFO `total_system_memory` (right on a VM).

use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, Group, Measure, Window, round3};
use crate::config::{MemoryLimit, Ratio};
use crate::info::Snapshot;
use crate::verdict::Reason;

/// Where the limit came from, as the body shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    Config,
    System,
}

impl LimitSource {
    fn as_str(self) -> &'static str {
        match self {
            LimitSource::Config => "config",
            LimitSource::System => "system",
        }
    }
}

/// The limit in bytes: the configured one, else the machine's RAM.
pub fn limit(configured: Option<MemoryLimit>, snap: &Snapshot) -> Option<(u64, LimitSource)> {
    match configured {
        Some(limit) => Some((limit.bytes(), LimitSource::Config)),
        None => snap
            .total_system_memory
            .filter(|bytes| *bytes > 0)
            .map(|bytes| (bytes, LimitSource::System)),
    }
}

/// `checks.headroom`: RSS against the memory limit the kernel enforces.
#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Headroom {
    pub enabled: bool,
    /// The container's memory limit; unset, INFO `total_system_memory`.
    pub limit_bytes: Option<MemoryLimit>,
    /// RSS at this fraction of the limit warns (`rss_high`), and so does a
    /// maxmemory above it (`maxmemory_above_limit`).
    ///
    /// The two agree by design: a full cache's RSS is its maxmemory times
    /// the fragmentation ratio plus buffers, a few percent above maxmemory
    /// at a ratio near 1. A maxmemory that passes (at most 0.80 of the
    /// limit) leaves such a cache at about 0.85, far below `fail_ratio`;
    /// only fragmentation above about 1.18, or buffers and a fork's
    /// copy-on-write on top, reach `oom_risk`, and those are real risks.
    pub warn_ratio: Ratio,
    /// RSS at this fraction is `oom_risk` (critical): the last few percent
    /// before the kernel kills Redis, kept clear of what a full cache with
    /// a passing maxmemory reads (see `warn_ratio`).
    pub fail_ratio: Ratio,
}

impl Default for Headroom {
    fn default() -> Self {
        Self {
            enabled: true,
            limit_bytes: None,
            warn_ratio: Ratio::of(0.80),
            fail_ratio: Ratio::of(0.95),
        }
    }
}

impl Check for Headroom {
    const GROUP: Group = Group::Node;
    const MEASURES: &'static [Measure] = &[("ratio", "ratio"), ("rss_bytes", "bytes")];

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn evaluate(&self, snap: &Snapshot, _window: &Window) -> CheckResult {
        // A Sentinel reports no memory at all: nothing to judge, and saying ok
        // would claim a judgement that was never made.
        let Some(rss) = snap.used_memory_rss else {
            return CheckResult::default().observe("skipped", "INFO has no used_memory_rss");
        };
        let result = CheckResult::default().observe("rss_bytes", rss);
        let Some((limit, source)) = limit(self.limit_bytes, snap) else {
            return result.observe(
                "skipped",
                "no memory limit: checks.headroom.limit_bytes unset and INFO has no total_system_memory",
            );
        };
        let limit_f = limit as f64;
        let ratio = rss as f64 / limit_f;
        let maxmemory_at_most = self.warn_ratio.get() * limit_f;
        let cow = last_cow(snap);
        let result = result
            .observe("limit_bytes", limit)
            .observe("limit_source", source.as_str())
            .observe("ratio", round3(ratio));
        let result = match cow {
            Some(cow) => result.observe("last_cow_bytes", cow),
            None => result,
        };
        let result = if ratio >= self.fail_ratio.get() {
            result.fail(Reason::OomRisk)
        } else {
            result.fail_if(ratio >= self.warn_ratio.get(), Reason::RssHigh)
        };
        let maxmemory_too_high = snap
            .maxmemory
            .is_some_and(|max| max > 0 && max as f64 > maxmemory_at_most);
        let fork_too_big = forks(snap) && cow.is_some_and(|cow| rss.saturating_add(cow) >= limit);
        result
            .fail_if(maxmemory_too_high, Reason::MaxmemoryAboveLimit)
            .fail_if(fork_too_big, Reason::ForkHeadroom)
    }

    fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.warn_ratio > self.fail_ratio {
            return Err(("warn_ratio", "must not be above checks.headroom.fail_ratio"));
        }
        Ok(())
    }
}

fn fork_in_progress(snap: &Snapshot) -> bool {
    snap.rdb_bgsave_in_progress == Some(true) || snap.aof_rewrite_in_progress == Some(true)
}

/// Whether this node forks: it appends (AOF rewrites), has completed a
/// background save since start, feeds replicas (full syncs), or is forked now.
fn forks(snap: &Snapshot) -> bool {
    snap.aof_enabled == Some(true)
        || snap.rdb_saves.is_some_and(|saves| saves > 0)
        || snap.rdb_last_bgsave_time_s.is_some_and(|took| took >= 0)
        || !snap.replicas.is_empty()
        || fork_in_progress(snap)
}

/// Copy-on-write bytes of the fork running now, else the largest of the
/// last RDB save and AOF rewrite. `None` on servers before 6.2.
fn last_cow(snap: &Snapshot) -> Option<u64> {
    if fork_in_progress(snap) {
        snap.current_cow_size
    } else {
        snap.rdb_last_cow_size.max(snap.aof_last_cow_size)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::checks::Check;

    fn headroom(snap: &Snapshot, window: &Window, settings: &CheckSettings) -> CheckResult {
        settings.headroom.evaluate(snap, window)
    }
    use crate::info::ReplicaInfo;

    const MIB: u64 = 1 << 20;

    fn judge(snap: &Snapshot, limit: Option<&str>) -> CheckResult {
        let mut settings = CheckSettings::default();
        settings.headroom.limit_bytes = limit.and_then(|l| l.parse().ok());
        headroom(snap, &Window::default(), &settings)
    }

    fn node(rss_mib: u64) -> Snapshot {
        Snapshot {
            used_memory_rss: Some(rss_mib * MIB),
            total_system_memory: Some(64 * 1024 * MIB),
            maxmemory: Some(0),
            ..Snapshot::default()
        }
    }

    /// A node that has completed a BGSAVE, with its INFO persistence COW
    /// fields as Redis 7.0 writes them.
    fn saved(rss_mib: u64, info: &str) -> Snapshot {
        let parsed = Snapshot::parse(info);
        Snapshot {
            used_memory_rss: Some(rss_mib * MIB),
            ..parsed
        }
    }

    #[test]
    fn below_warn_ratio_is_ok_with_values_shown() {
        let result = judge(&node(400), Some("512Mi"));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["rss_bytes"], 400 * MIB);
        assert_eq!(result.observed["limit_bytes"], 512 * MIB);
        assert_eq!(result.observed["limit_source"], "config");
        assert_eq!(result.observed["ratio"], 0.781);
        assert!(!result.observed.contains_key("skipped"));
    }

    #[test]
    fn rss_at_warn_ratio_warns_and_at_fail_ratio_is_oom_risk() {
        assert_eq!(
            judge(&node(80), Some("100Mi")).reasons,
            vec![Reason::RssHigh]
        );
        assert_eq!(
            judge(&node(94), Some("100Mi")).reasons,
            vec![Reason::RssHigh]
        );
        let result = judge(&node(95), Some("100Mi"));
        assert_eq!(result.reasons, vec![Reason::OomRisk]);
        assert_eq!(result.status(), Status::Critical);
        assert_eq!(result.observed["ratio"], 0.95);
        assert_eq!(
            judge(&node(130), Some("100Mi")).reasons,
            vec![Reason::OomRisk]
        );
    }

    #[test]
    fn maxmemory_above_warn_ratio_of_the_limit_warns() {
        let at = |max_mib: u64| Snapshot {
            maxmemory: Some(max_mib * MIB),
            ..node(10)
        };
        assert_eq!(
            judge(&at(100), Some("64Mi")).reasons,
            vec![Reason::MaxmemoryAboveLimit]
        );
        // 0.8 x 100 MiB = 80 MiB: at it is fine, above it is not.
        assert_eq!(judge(&at(80), Some("100Mi")).status(), Status::Ok);
        assert_eq!(
            judge(&at(81), Some("100Mi")).reasons,
            vec![Reason::MaxmemoryAboveLimit]
        );
        assert_eq!(
            judge(&node(10), Some("64Mi")).status(),
            Status::Ok,
            "0: no maxmemory"
        );
    }

    /// A full `allkeys-lru` cache at fragmentation 1.03: RSS is 1.03 x its
    /// maxmemory. Whatever maxmemory passes must not read oom_risk full.
    #[test]
    fn a_full_cache_whose_maxmemory_passes_never_reads_oom_risk() {
        let full = |max_mib: u64| Snapshot {
            used_memory_rss: Some(max_mib * MIB * 103 / 100),
            maxmemory: Some(max_mib * MIB),
            ..node(0)
        };
        for max_mib in 1..=200 {
            let result = judge(&full(max_mib), Some("200Mi"));
            if !result.reasons.contains(&Reason::MaxmemoryAboveLimit) {
                assert!(
                    !result.reasons.contains(&Reason::OomRisk),
                    "{max_mib} MiB: {result:?}"
                );
            }
        }
        // The case of issue 23: maxmemory 180mb under a 200Mi limit, RSS
        // 0.927 of it, is told its maxmemory is too high, not that it is dying.
        let result = judge(&full(180), Some("200Mi"));
        assert_eq!(result.observed["ratio"], 0.927);
        assert_eq!(
            result.reasons,
            vec![Reason::RssHigh, Reason::MaxmemoryAboveLimit]
        );
    }

    #[test]
    fn without_a_configured_limit_the_machines_ram_is_the_limit() {
        let result = judge(&node(400), None);
        assert_eq!(result.observed["limit_source"], "system");
        assert_eq!(result.observed["limit_bytes"], 64 * 1024 * MIB);
        assert_eq!(result.status(), Status::Ok);
    }

    #[test]
    fn with_no_limit_at_all_it_says_it_has_nothing_to_judge() {
        let snap = Snapshot {
            total_system_memory: None,
            ..node(400)
        };
        let result = judge(&snap, None);
        assert_eq!(result.status(), Status::Ok);
        assert!(result.observed["skipped"].is_string());
        assert!(!result.observed.contains_key("limit_bytes"));
        let zero = Snapshot {
            total_system_memory: Some(0),
            ..node(400)
        };
        assert!(judge(&zero, None).observed["skipped"].is_string());
    }

    #[test]
    fn a_node_without_rss_is_not_judged() {
        let sentinel = Snapshot::parse("# Server\r\nredis_mode:sentinel\r\n");
        let result = judge(&sentinel, Some("1Gi"));
        assert_eq!(result.status(), Status::Ok);
        assert_eq!(result.observed["skipped"], "INFO has no used_memory_rss");
        assert!(!result.observed.contains_key("ratio"));
    }

    #[test]
    fn fork_whose_last_cow_reaches_the_limit_warns() {
        // 60 MiB RSS + 45 MiB of COW from the last BGSAVE > 100 MiB.
        let info = "rdb_bgsave_in_progress:0\r\nrdb_saves:1\r\nrdb_last_bgsave_time_sec:2\r\n\
                    rdb_last_cow_size:47185920\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n\
                    aof_last_cow_size:0\r\ncurrent_cow_size:0\r\n";
        let result = judge(&saved(60, info), Some("100Mi"));
        assert_eq!(result.reasons, vec![Reason::ForkHeadroom]);
        assert_eq!(result.observed["last_cow_bytes"], 45 * MIB);
        assert_eq!(judge(&saved(54, info), Some("100Mi")).status(), Status::Ok);
    }

    #[test]
    fn an_aof_rewrite_cow_counts_as_much_as_an_rdb_one() {
        let info = "aof_enabled:1\r\nrdb_last_cow_size:1048576\r\naof_last_cow_size:31457280\r\n";
        let result = judge(&saved(70, info), Some("100Mi"));
        assert_eq!(result.reasons, vec![Reason::ForkHeadroom]);
        assert_eq!(result.observed["last_cow_bytes"], 30 * MIB);
    }

    #[test]
    fn a_running_fork_is_judged_by_its_current_cow() {
        let info = "rdb_bgsave_in_progress:1\r\nrdb_last_bgsave_time_sec:-1\r\n\
                    rdb_last_cow_size:0\r\naof_last_cow_size:0\r\ncurrent_cow_size:20971520\r\n";
        let result = judge(&saved(85, info), Some("100Mi"));
        assert_eq!(result.reasons, vec![Reason::RssHigh, Reason::ForkHeadroom]);
        assert_eq!(result.observed["last_cow_bytes"], 20 * MIB);
    }

    #[test]
    fn a_node_that_never_forks_is_not_judged_on_cow() {
        // No AOF, no save since start (6.2: no rdb_saves, bgsave time -1), no replicas.
        let info = "aof_enabled:0\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_bgsave_in_progress:0\r\n\
                    rdb_last_cow_size:83886080\r\naof_last_cow_size:0\r\n";
        assert_eq!(judge(&saved(60, info), Some("100Mi")).status(), Status::Ok);
        // The same node feeding a replica forks for its full syncs.
        let feeding = Snapshot {
            replicas: vec![ReplicaInfo {
                online: true,
                ..ReplicaInfo::default()
            }],
            ..saved(60, info)
        };
        assert_eq!(
            judge(&feeding, Some("100Mi")).reasons,
            vec![Reason::ForkHeadroom]
        );
    }

    #[test]
    fn servers_before_6_2_have_no_cow_fields_and_are_not_judged_on_them() {
        let info = "aof_enabled:1\r\nrdb_bgsave_in_progress:0\r\n";
        let result = judge(&saved(85, info), Some("100Mi"));
        assert_eq!(result.reasons, vec![Reason::RssHigh]);
        assert!(!result.observed.contains_key("last_cow_bytes"));
    }

    #[test]
    fn the_fixtures_of_idle_servers_are_ok() {
        for name in [
            "info-redis-6.2.txt",
            "info-redis-7.0-primary.txt",
            "info-valkey-9.1.txt",
        ] {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let result = judge(&Snapshot::parse(&text), None);
            assert_eq!(result.status(), Status::Ok, "{name}");
            assert_eq!(result.observed["limit_source"], "system", "{name}");
            assert_eq!(result.observed["last_cow_bytes"], 0, "{name}");
        }
    }
}
