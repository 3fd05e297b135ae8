//! The health routes: their paths, which checks each runs, and when each
//! fails, by its `routes.<route>` settings.

use crate::checks::Group;
use crate::config::{FailAt, RouteSettings, WarnCode};
use crate::report::Report;
use crate::verdict::{Reason, Status};

/// The health routes; each runs `ping` plus its own groups of checks.
/// The CLI's `check <route>` takes the same names as `routes.<route>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Route {
    // The order of EVERY below: a route's discriminant is its index there.
    Redis,
    Replica,
    Primary,
    All,
    /// Liveness of the Redis process: `ping` only, failed only when Redis
    /// does not answer at all.
    Alive,
    /// A Sentinel process: `ping` and `sentinel`.
    Sentinel,
    /// Readiness of a Sentinel process itself: it answers and monitors
    /// every name in `sentinel.masters`. The masters' own states (sdown,
    /// odown, no quorum) are what a failover goes through, and a Sentinel
    /// that reports them is doing its job: restarting or unlisting it then
    /// would only take a voter away.
    SentinelReady,
    /// The job queues of `[[queues]]`: `ping` and `queues`.
    Queues,
}

impl Route {
    pub const EVERY: [Route; 8] = [
        Route::Redis,
        Route::Replica,
        Route::Primary,
        Route::All,
        Route::Alive,
        Route::Sentinel,
        Route::SentinelReady,
        Route::Queues,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::Redis => "/health/redis",
            Route::Replica => "/health/replica",
            Route::Primary => "/health/primary",
            Route::All => "/health",
            Route::Alive => "/health/alive",
            Route::Sentinel => "/health/sentinel",
            Route::SentinelReady => "/health/sentinel/ready",
            Route::Queues => "/health/queues",
        }
    }

    /// `routes.<route>`. `/health/alive` and `/health/sentinel/ready` have no
    /// such settings: their rules are fixed (see [`Route::fails`]) and they
    /// answer 200 whenever they pass.
    fn settings(self, routes: &RouteSettings) -> Option<(FailAt, WarnCode)> {
        let both = |fail_at, warn_code| Some((fail_at, warn_code));
        match self {
            Route::Redis => both(routes.redis.fail_at, routes.redis.warn_code),
            Route::Replica => both(routes.replica.fail_at, routes.replica.warn_code),
            Route::Primary => both(routes.primary.fail_at, routes.primary.warn_code),
            Route::All => both(routes.all.fail_at, routes.all.warn_code),
            Route::Sentinel => both(routes.sentinel.fail_at, routes.sentinel.warn_code),
            Route::Queues => both(routes.queues.fail_at, routes.queues.warn_code),
            Route::Alive | Route::SentinelReady => None,
        }
    }

    /// `routes.<route>.fail_at`, or `None` for the routes whose rule is
    /// fixed (`/health/alive`, `/health/sentinel/ready`).
    pub fn configured_fail_at(self, routes: &RouteSettings) -> Option<FailAt> {
        self.settings(routes).map(|r| r.0)
    }

    /// `routes.<route>.fail_at`.
    pub fn fail_at(self, routes: &RouteSettings) -> FailAt {
        self.configured_fail_at(routes).unwrap_or_default()
    }

    /// `routes.<route>.warn_code`.
    pub fn warn_code(self, routes: &RouteSettings) -> WarnCode {
        self.settings(routes)
            .map_or_else(WarnCode::default, |r| r.1)
    }

    /// Whether `report` answers 503. For `/health/alive`, a process that
    /// answered PING with anything (LOADING, MASTERDOWN, BUSY, an auth
    /// error) is alive: restarting it would only start its load over.
    pub fn fails(self, report: &Report, fail_at: FailAt) -> bool {
        match self {
            Route::Alive => matches!(report.reason, Some(Reason::Unreachable | Reason::Timeout)),
            // Only what [`Route::judges`] keeps is left, none of it a warning.
            Route::SentinelReady => report.status != Status::Ok,
            _ => report.status >= fail_at.get(),
        }
    }

    pub fn runs(self, group: Group) -> bool {
        matches!(
            (self, group),
            (Route::Redis | Route::All, Group::Node)
                | (Route::Replica | Route::All, Group::Replication)
                | (Route::Primary, Group::Role)
                | (Route::Queues | Route::All, Group::Queues)
                | (Route::Primary | Route::Redis | Route::All, Group::Writes)
                | (
                    Route::Redis | Route::All | Route::Sentinel | Route::SentinelReady,
                    Group::Sentinel
                )
        )
    }

    /// Whether a reason a check raised counts on this route; one that does
    /// not is left out of its verdict (the values judged stay in the body).
    pub fn judges(self, reason: Reason) -> bool {
        match self {
            Route::All => true,
            // The Sentinel itself: it answers and knows every named master.
            Route::SentinelReady => {
                reason.status() == Status::Down
                    || matches!(reason, Reason::SentinelUnknownMaster | Reason::NotSentinel)
            }
            // A primary short of replicas, or with one behind, still serves
            // reads and writes: a durability alert for /health, not a reason
            // to drain it from a read pool.
            _ => !matches!(reason, Reason::TooFewReplicas | Reason::ReplicaLagging),
        }
    }

    /// What a route for one kind of process answers on the other kind; the
    /// general routes (/health/redis, /health) have no such reason: they
    /// run the checks of whichever kind the process is.
    pub fn wrong_kind(self, sentinel: bool) -> Option<Reason> {
        match (self, sentinel) {
            // Queues live in a data node; a Sentinel holds none.
            (Route::Replica | Route::Primary | Route::Queues, true) => Some(Reason::NotDataNode),
            (Route::Sentinel | Route::SentinelReady, false) => Some(Reason::NotSentinel),
            _ => None,
        }
    }
}
