//! The health routes: their paths, which checks each runs, and when each
//! fails, by its `routes.<route>` settings.

use crate::checks::Group;
use crate::config::{FailAt, RouteFailure, RouteSettings, WarnCode};
use crate::report::Report;
use crate::verdict::Reason;

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
}

impl Route {
    pub const EVERY: [Route; 6] = [
        Route::Redis,
        Route::Replica,
        Route::Primary,
        Route::All,
        Route::Alive,
        Route::Sentinel,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::Redis => "/health/redis",
            Route::Replica => "/health/replica",
            Route::Primary => "/health/primary",
            Route::All => "/health",
            Route::Alive => "/health/alive",
            Route::Sentinel => "/health/sentinel",
        }
    }

    /// `routes.<route>`. `/health/alive` has no such settings: its rule is
    /// fixed (see [`Route::fails`]) and it answers 200 whenever it passes.
    fn settings(self, routes: &RouteSettings) -> Option<&RouteFailure> {
        match self {
            Route::Redis => Some(&routes.redis),
            Route::Replica => Some(&routes.replica),
            Route::Primary => Some(&routes.primary),
            Route::All => Some(&routes.all),
            Route::Sentinel => Some(&routes.sentinel),
            Route::Alive => None,
        }
    }

    /// `routes.<route>.fail_at`.
    pub fn fail_at(self, routes: &RouteSettings) -> FailAt {
        self.settings(routes)
            .map_or_else(FailAt::default, |r| r.fail_at)
    }

    /// `routes.<route>.warn_code`.
    pub fn warn_code(self, routes: &RouteSettings) -> WarnCode {
        self.settings(routes)
            .map_or_else(WarnCode::default, |r| r.warn_code)
    }

    /// Whether `report` answers 503. For `/health/alive`, a process that
    /// answered PING with anything (LOADING, MASTERDOWN, BUSY, an auth
    /// error) is alive: restarting it would only start its load over.
    pub fn fails(self, report: &Report, fail_at: FailAt) -> bool {
        match self {
            Route::Alive => matches!(report.reason, Some(Reason::Unreachable | Reason::Timeout)),
            _ => report.status >= fail_at.get(),
        }
    }

    pub fn runs(self, group: Group) -> bool {
        matches!(
            (self, group),
            (Route::Redis | Route::All, Group::Node)
                | (Route::Replica | Route::All, Group::Replication)
                | (Route::Primary, Group::Role)
                | (Route::Primary | Route::Redis | Route::All, Group::Writes)
                | (Route::Redis | Route::All | Route::Sentinel, Group::Sentinel)
        )
    }

    /// What a route for one kind of process answers on the other kind; the
    /// general routes (/health/redis, /health) have no such reason: they
    /// run the checks of whichever kind the process is.
    pub fn wrong_kind(self, sentinel: bool) -> Option<Reason> {
        match (self, sentinel) {
            (Route::Replica | Route::Primary, true) => Some(Reason::NotDataNode),
            (Route::Sentinel, false) => Some(Reason::NotSentinel),
            _ => None,
        }
    }
}
