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
            slow: snap.slowlog_last_id.map(|id| id + 1),
        })
    }

    fn any_below(&self, earlier: &Self) -> bool {
        self.hits < earlier.hits
            || self.misses < earlier.misses
            || self.evicted < earlier.evicted
            || self.rejected < earlier.rejected
            || self
                .slow
                .zip(earlier.slow)
                .is_some_and(|(now, then)| now < then)
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
    /// A restart (new run_id) or a counter that went down (CONFIG RESETSTAT)
    /// starts the window afresh rather than giving a negative or bogus ratio.
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
            if !same_run || counters.any_below(&last.counters) {
                self.samples.clear();
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
                    .map_or(0, |(now, then)| now - then),
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
    fn a_counter_reset_starts_afresh() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 5000, 100));
        let window = history.record(start + Duration::from_secs(1), &snap("a", 10, 2));
        assert_eq!(window, Window::default());
        let window = history.record(start + Duration::from_secs(2), &snap("a", 20, 3));
        assert_eq!((window.hits, window.misses), (10, 1));
    }

    #[test]
    fn a_restart_starts_afresh_even_when_counters_grew_past_old_values() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        history.record(start, &snap("a", 10, 10));
        let window = history.record(start + Duration::from_secs(1), &snap("b", 50, 50));
        assert_eq!(window, Window::default());
    }

    #[test]
    fn slow_log_growth_is_counted_by_entry_id_across_a_reset() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        let with_slow = |id: Option<u64>| Snapshot {
            slowlog_last_id: id,
            ..snap("a", 0, 0)
        };
        history.record(start, &with_slow(Some(9)));
        // SLOWLOG RESET empties the log, but ids go on from 10.
        let window = history.record(start + Duration::from_secs(1), &with_slow(None));
        assert_eq!(window.slow, 0);
        let window = history.record(start + Duration::from_secs(2), &with_slow(Some(12)));
        assert_eq!(window.slow, 3);
    }

    #[test]
    fn a_slow_log_first_seen_empty_counts_from_its_first_entry() {
        let start = Instant::now();
        let mut history = History::new(Duration::from_secs(300));
        let with_slow = |id: Option<u64>| Snapshot {
            slowlog_last_id: id,
            ..snap("a", 0, 0)
        };
        // Emptied by SLOWLOG RESET before the sidecar started: ids go on at 500.
        history.record(start, &with_slow(None));
        let window = history.record(start + Duration::from_secs(1), &with_slow(Some(500)));
        assert_eq!(window.slow, 0, "not 501 entries at once");
        let window = history.record(start + Duration::from_secs(2), &with_slow(Some(502)));
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
