//! Counter history for the windowed checks. keyspace_hits and friends are
//! lifetime counters; judging their growth over a window is what lets a
//! long-running node show today's drop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::checks::Window;
use crate::info::Snapshot;

/// Enough samples to resolve the window finely without growing with probe rate.
const MAX_SAMPLES: u32 = 300;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    hits: u64,
    misses: u64,
    evicted: u64,
    rejected: u64,
    /// Counters CONFIG RESETSTAT zeroes along with the judged ones, kept
    /// only to notice a reset; `None` where INFO lacks them.
    commands: Option<u64>,
    connections: Option<u64>,
    net_input: Option<u64>,
    /// Slow-log entries ever written: the newest entry's id + 1. `None`
    /// while unknown: an empty log (never written, or after SLOWLOG RESET,
    /// which keeps counting ids) says nothing about how many came before.
    slow: Option<u64>,
}

impl Counters {
    fn read(snap: &Snapshot) -> Option<Self> {
        Some(Self {
            hits: snap.keyspace_hits?,
            misses: snap.keyspace_misses?,
            evicted: snap.evicted_keys.unwrap_or(0),
            rejected: snap.rejected_connections.unwrap_or(0),
            commands: snap.total_commands_processed,
            connections: snap.total_connections_received,
            net_input: snap.total_net_input_bytes,
            slow: snap.slowlog_last_id.map(|id| id + 1),
        })
    }

    /// What Redis's counters were just after a reset or restart. Slow-log
    /// ids survive CONFIG RESETSTAT and start at 0 again on a restart.
    fn zeroed(slow: Option<u64>) -> Self {
        Self {
            hits: 0,
            misses: 0,
            evicted: 0,
            rejected: 0,
            commands: Some(0),
            connections: Some(0),
            net_input: Some(0),
            slow,
        }
    }

    /// Whether CONFIG RESETSTAT ran since `earlier`: any counter it zeroes
    /// went down. They only grow otherwise, so one fall is proof, and a
    /// fast counter that regrew past its old value cannot hide the reset a
    /// slower one (connections received) still shows.
    fn reset_since(&self, earlier: &Self) -> bool {
        let fell = |now: Option<u64>, then: Option<u64>| now.zip(then).is_some_and(|(n, t)| n < t);
        self.hits < earlier.hits
            || self.misses < earlier.misses
            || self.evicted < earlier.evicted
            || self.rejected < earlier.rejected
            || fell(self.commands, earlier.commands)
            || fell(self.connections, earlier.connections)
            || fell(self.net_input, earlier.net_input)
    }
}

#[derive(Debug)]
struct Sample {
    at: Instant,
    run_id: Option<String>,
    counters: Counters,
}

#[derive(Debug)]
pub struct History {
    window: Duration,
    spacing: Duration,
    samples: VecDeque<Sample>,
}

impl History {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            spacing: window / MAX_SAMPLES,
            samples: VecDeque::new(),
        }
    }

    /// Adds what one check read and returns the growth over the window.
    ///
    /// After a restart (new run_id) or a CONFIG RESETSTAT the window starts
    /// at that moment: the history is replaced by one all-zero sample, so the
    /// counters Redis now shows count in full as growth since then. A new
    /// run_id up longer than the window is another node, not a restart: its
    /// first sample is a fresh baseline, as at startup.
    pub fn record(&mut self, at: Instant, snap: &Snapshot) -> Window {
        let Some(mut counters) = Counters::read(snap) else {
            return Window::default();
        };
        if let Some(last) = self.samples.back() {
            let same_run = last.run_id == snap.run_id;
            // An empty slow log (SLOWLOG RESET) shows no id; entry ids keep
            // counting on, so the last known count still holds.
            if same_run && counters.slow.is_none() {
                counters.slow = last.counters.slow;
            }
            let began = if !same_run {
                // A node older than the window is another node switched in
                // (a new address, a failover behind a Service), not a
                // restart: its lifetime counters say nothing about the last
                // window, so it starts a baseline afresh, as at startup.
                if snap
                    .uptime_s
                    .is_some_and(|up| Duration::from_secs(up) > self.window)
                {
                    self.samples.clear();
                    None
                } else {
                    // Started `uptime` ago, but after the last sample of the old run.
                    let started = snap
                        .uptime_s
                        .and_then(|up| at.checked_sub(Duration::from_secs(up)))
                        .map_or(last.at, |started| started.max(last.at));
                    Some((started, Some(0)))
                }
            } else if counters.reset_since(&last.counters) {
                // Some time after the last sample; that is the earliest.
                Some((last.at, last.counters.slow))
            } else {
                None
            };
            if let Some((started, slow)) = began {
                self.samples.clear();
                self.samples.push_back(Sample {
                    at: started,
                    run_id: snap.run_id.clone(),
                    counters: Counters::zeroed(slow),
                });
            }
        }
        if let Some(now) = counters.slow {
            // Samples that saw the log empty: all it holds now was added
            // since, so the count then was the count now less its length (a
            // never-written log's first entries count in full).
            let then = now - snap.slowlog_len.unwrap_or(0).min(now);
            for sample in self
                .samples
                .iter_mut()
                .filter(|s| s.counters.slow.is_none())
            {
                sample.counters.slow = Some(then);
            }
        }
        while self
            .samples
            .front()
            .is_some_and(|s| at.saturating_duration_since(s.at) > self.window)
        {
            self.samples.pop_front();
        }
        let window = match self.samples.front() {
            Some(base) => Window {
                span: at.saturating_duration_since(base.at),
                hits: counters.hits - base.counters.hits,
                misses: counters.misses - base.counters.misses,
                evicted: counters.evicted - base.counters.evicted,
                rejected: counters.rejected - base.counters.rejected,
                // From the oldest sample that knew the count: growth from
                // an unknown start is not growth.
                slow: counters
                    .slow
                    .zip(self.samples.iter().find_map(|s| s.counters.slow))
                    .map_or(0, |(now, then)| now.saturating_sub(then)),
            },
            None => Window::default(),
        };
        let due = self
            .samples
            .back()
            .is_none_or(|last| at.saturating_duration_since(last.at) >= self.spacing);
        if due {
            self.samples.push_back(Sample {
                at,
                run_id: snap.run_id.clone(),
                counters,
            });
        }
        window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(run_id: &str, hits: u64, misses: u64) -> Snapshot {
        Snapshot {
            run_id: Some(run_id.into()),
            keyspace_hits: Some(hits),
            keyspace_misses: Some(misses),
            evicted_keys: Some(0),
            rejected_connections: Some(0),
            ..Snapshot::default()
        }
    }

    #[test]
    fn growth_is_measured_from_the_oldest_sample_in_the_window() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        assert_eq!(
            history.record(start, &snap("a", 1_000_000, 0)),
            Window::default()
        );
        // Weeks of hits, then a window of mostly misses: the drop shows.
        let later = start + Duration::from_secs(60);
        let window = history.record(later, &snap("a", 1_000_100, 900));
        assert_eq!((window.hits, window.misses), (100, 900));
        assert_eq!(window.span, Duration::from_secs(60));
    }

    #[test]
    fn samples_older_than_the_window_drop_out() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(10));
        history.record(start, &snap("a", 0, 0));
        history.record(start + Duration::from_secs(5), &snap("a", 0, 5000));
        let window = history.record(start + Duration::from_secs(12), &snap("a", 0, 5000));
        assert_eq!(
            window.misses, 0,
            "only the sample at 5s is inside the window"
        );
        assert_eq!(window.span, Duration::from_secs(7));
    }

    #[test]
    fn a_counter_reset_counts_what_redis_shows_as_growth_since_then() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 5000, 100));
        let window = history.record(start + Duration::from_secs(1), &snap("a", 10, 2));
        assert_eq!((window.hits, window.misses), (10, 2));
        assert_eq!(window.span, Duration::from_secs(1));
        let window = history.record(start + Duration::from_secs(2), &snap("a", 20, 3));
        assert_eq!((window.hits, window.misses), (20, 3));
    }

    #[test]
    fn a_reset_shows_in_a_slow_counter_when_the_judged_ones_regrew() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        let with_totals = |hits, misses, commands, connections, bytes| Snapshot {
            total_commands_processed: Some(commands),
            total_connections_received: Some(connections),
            total_net_input_bytes: Some(bytes),
            ..snap("a", hits, misses)
        };
        history.record(start, &with_totals(400, 600, 1100, 5, 40_000));
        // RESETSTAT, then 3000 hits and 1000 misses before the next sample:
        // every counter but connections received passed its old value.
        let window = history.record(
            start + Duration::from_secs(1),
            &with_totals(3000, 1000, 4001, 0, 120_000),
        );
        assert_eq!((window.hits, window.misses), (3000, 1000));
    }

    #[test]
    fn a_restart_counts_from_zero_since_the_server_started() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 10, 10));
        let restarted = Snapshot {
            uptime_s: Some(20),
            ..snap("b", 50, 50)
        };
        let window = history.record(start + Duration::from_secs(60), &restarted);
        assert_eq!((window.hits, window.misses), (50, 50));
        assert_eq!(window.span, Duration::from_secs(20));
        let window = history.record(start + Duration::from_secs(61), &snap("b", 60, 50));
        assert_eq!((window.hits, window.misses), (60, 50));
    }

    #[test]
    fn a_restart_starts_no_earlier_than_the_last_sample() {
        let start = Instant::now() + Duration::from_secs(3600);
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 10, 10));
        let restarted = Snapshot {
            uptime_s: Some(200),
            ..snap("b", 5, 5)
        };
        let window = history.record(start + Duration::from_secs(2), &restarted);
        assert_eq!(window.span, Duration::from_secs(2));
        assert_eq!((window.hits, window.misses), (5, 5));
    }

    #[test]
    fn a_switched_node_older_than_the_window_starts_a_fresh_baseline() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 1_000, 10));
        history.record(start + Duration::from_secs(5), &snap("a", 1_100, 10));
        // Another node, up for an hour, with a lifetime of misses and evictions.
        let switched = |hits, misses, evicted| Snapshot {
            uptime_s: Some(3600),
            evicted_keys: Some(evicted),
            ..snap("b", hits, misses)
        };
        let window = history.record(start + Duration::from_secs(7), &switched(50, 90_000, 7_000));
        assert_eq!(window, Window::default(), "nothing judged at the switch");
        let window = history.record(
            start + Duration::from_secs(9),
            &switched(150, 90_000, 7_000),
        );
        assert_eq!((window.hits, window.misses, window.evicted), (100, 0, 0));
        assert_eq!(window.span, Duration::from_secs(2));
    }

    fn with_slow(id: Option<u64>, len: u64) -> Snapshot {
        Snapshot {
            slowlog_last_id: id,
            slowlog_len: Some(len),
            ..snap("a", 0, 0)
        }
    }

    #[test]
    fn slow_log_growth_is_counted_by_entry_id_across_a_reset() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &with_slow(Some(9), 10));
        // SLOWLOG RESET empties the log, but ids go on from 10.
        let window = history.record(start + Duration::from_secs(1), &with_slow(None, 0));
        assert_eq!(window.slow, 0);
        let window = history.record(start + Duration::from_secs(2), &with_slow(Some(12), 3));
        assert_eq!(window.slow, 3);
    }

    #[test]
    fn a_slow_log_first_seen_empty_counts_from_its_first_entry() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        // Emptied by SLOWLOG RESET before the sidecar started: ids go on at 500.
        history.record(start, &with_slow(None, 0));
        let window = history.record(start + Duration::from_secs(1), &with_slow(Some(500), 1));
        assert_eq!(window.slow, 1, "not 501 entries at once");
        let window = history.record(start + Duration::from_secs(2), &with_slow(Some(502), 3));
        assert_eq!(window.slow, 3);
    }

    #[test]
    fn the_first_entry_of_a_never_written_slow_log_counts() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &with_slow(None, 0));
        let window = history.record(start + Duration::from_secs(1), &with_slow(Some(0), 1));
        assert_eq!(window.slow, 1);
        let window = history.record(start + Duration::from_secs(2), &with_slow(Some(1), 2));
        assert_eq!(window.slow, 2);
    }

    #[test]
    fn slow_log_ids_start_over_after_a_restart() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &with_slow(Some(40), 41));
        let restarted = Snapshot {
            run_id: Some("b".into()),
            ..with_slow(Some(1), 2)
        };
        let window = history.record(start + Duration::from_secs(1), &restarted);
        assert_eq!(window.slow, 2);
    }

    #[test]
    fn sample_count_stays_bounded_under_frequent_checks() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        for ms in 0..10_000u64 {
            history.record(start + Duration::from_millis(ms), &snap("a", ms, 0));
        }
        assert!(history.samples.len() <= 11, "{}", history.samples.len());
    }
}
