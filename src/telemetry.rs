//! Logging setup: `RUST_LOG` wins over `log.level`; text or JSON lines,
//! coloured only on a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    // The sidecar logs each status change itself; the Redis client's own
    // warnings on every dropped connection would repeat it. RUST_LOG can
    // still ask for them.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{},fred=error", settings.level.as_str())))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Container runtimes write logs to files and pipes, where colour
        // codes show up as `^[[2m` noise.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests start many apps in one process) keeps the first.
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
