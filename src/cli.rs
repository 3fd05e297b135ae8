//! The command line, in the library so the man page
//! (deploy/debian/redis-health.1) is rendered from this one definition.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::routes::Route;

/// HTTP health probes for a Redis node.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML config file (wins over $REDIS_HEALTH_CONFIG; default: none, only
    /// the defaults and REDIS_HEALTH_* variables).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the health routes (the default).
    Serve,
    /// Check once, print the route's JSON body, exit 0 where the route would
    /// answer 200 and 1 where it would answer 503 (for Docker HEALTHCHECK,
    /// exec probes and scripts). One check keeps no history, so the checks
    /// judged over a window (hit_rate, evictions, connections, slowlog) are
    /// left out: only a served sidecar reports their reasons.
    Check {
        #[arg(value_enum, default_value_t = Route::Redis)]
        route: Route,
    },
    /// Print the effective configuration (all layers merged) as TOML, with
    /// secrets redacted, after a comment naming the file and the variables
    /// merged.
    Config,
}
