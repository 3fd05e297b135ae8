//! Logging setup: `RUST_LOG` wins over `log.level`; text or JSON lines,
//! coloured only on a terminal. The level can change while running (a
//! config reload); the format cannot.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogFormat, LogSettings};

/// Changes the log level of the running process.
pub struct LevelHandle {
    /// `None` when another subscriber was already installed (tests start
    /// many apps in one process) or when `RUST_LOG` decides the level.
    handle: Option<reload::Handle<EnvFilter, Registry>>,
}

impl LevelHandle {
    /// Applies `log.level` from a reloaded config.
    pub fn set(&self, level: &str) {
        if let Some(handle) = &self.handle
            && let Err(error) = handle.reload(filter(level))
        {
            tracing::warn!(%error, "cannot change the log level");
        }
    }
}

/// The sidecar logs each status change itself; the Redis client's own
/// warnings on every dropped connection would repeat it. RUST_LOG can still
/// ask for them.
fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(format!("{level},fred=error")).unwrap_or_else(|_| EnvFilter::new("info"))
}

pub fn init(settings: &LogSettings) -> LevelHandle {
    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let (filter, handle) =
        reload::Layer::new(from_env.unwrap_or_else(|| filter(settings.level.as_str())));
    let lines = fmt::layer()
        .with_writer(std::io::stderr)
        // Container runtimes write logs to files and pipes, where colour
        // codes show up as `^[[2m` noise.
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests start many apps in one process) keeps the first.
    let installed = match settings.format {
        LogFormat::Text => registry.with(lines).try_init(),
        LogFormat::Json => registry.with(lines.json()).try_init(),
    };
    LevelHandle {
        handle: (installed.is_ok() && !pinned).then_some(handle),
    }
}
