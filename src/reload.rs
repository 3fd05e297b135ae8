//! Live config reload, as Prometheus and HAProxy do it: on SIGHUP, and when
//! the config file's directory changes, the file and environment layers are
//! loaded and validated again.
//!
//! The directory is watched, not the file: the kubelet updates a ConfigMap
//! volume by renaming a `..data` symlink, so the file's own path never sees
//! a write. A valid config is put in force whole (see [`Prober::apply`]);
//! an invalid one is logged with the message startup would print, and the
//! running config stays. Keys read once at start ([`needs_restart`]) keep
//! their running values, with a warning naming each.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::signal::unix::{Signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::{Settings, config_file, needs_restart};
use crate::probe::Prober;
use crate::telemetry::LevelHandle;

/// How long a burst of file events (an editor's save, the kubelet's swap)
/// may last before the config is read.
const SETTLE: Duration = Duration::from_millis(100);

/// Where a reload reads its config, and what it updates.
pub struct Reloader {
    /// As given to [`Settings::load`] at start (`--config`).
    path: Option<PathBuf>,
    prober: Arc<Prober>,
    log: LevelHandle,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, prober: Arc<Prober>, log: LevelHandle) -> Self {
        Self { path, prober, log }
    }

    /// Reloads on SIGHUP (taken over by [`hangup`] at start) and on changes
    /// in the config file's directory, until the process ends.
    pub async fn run(self, mut hangup: Option<Signal>) {
        let (changed, mut changes) = mpsc::channel(1);
        // Dropping the watcher stops it: keep it for as long as this runs.
        let _watcher = watch(&config_file(self.path.as_deref()).path, changed);
        loop {
            let hung_up = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(()) = hung_up => self.reload(Cause::Signal).await,
                Some(()) = changes.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while changes.try_recv().is_ok() {}
                    self.reload(Cause::File).await;
                }
                else => return,
            }
        }
    }

    async fn reload(&self, cause: Cause) {
        let path = self.path.clone();
        // A hung mount costs this task, never a runtime worker.
        let loaded = tokio::task::spawn_blocking(move || Settings::load(path.as_deref())).await;
        let mut settings = match loaded {
            Ok(Ok(settings)) => settings,
            Ok(Err(error)) => {
                self.prober.metrics().reloaded(false);
                tracing::error!(
                    cause = cause.as_str(),
                    "{error}; keeping the running config"
                );
                return;
            }
            Err(error) => {
                self.prober.metrics().reloaded(false);
                tracing::error!(%error, "config reload failed; keeping the running config");
                return;
            }
        };
        let running = self.prober.settings();
        let (restart, live): (Vec<String>, Vec<String>) = running
            .changed_keys(&settings)
            .into_iter()
            .partition(|key| needs_restart(key));
        if cause == Cause::File && restart.is_empty() && live.is_empty() {
            tracing::debug!("config directory changed; the config did not");
            return;
        }
        for key in &restart {
            tracing::warn!(key = %key, "config key changed, but takes effect only at a restart; keeping the running value");
        }
        settings.keep_restart_only(&running);
        settings.log_deprecated();
        self.log.set(settings.log.level.as_str());
        self.prober.apply(settings).await;
        self.prober.metrics().reloaded(true);
        let changed = if live.is_empty() {
            "none".to_owned()
        } else {
            live.join(", ")
        };
        tracing::info!(cause = cause.as_str(), changed = %changed, "config reloaded");
    }
}

/// Takes SIGHUP over from its default action (ending the process), first
/// thing at start: a `systemctl reload` right after start must not kill it.
/// `None`, logged, if it cannot be taken: reloads then follow the file only.
pub fn hangup() -> Option<Signal> {
    match tokio::signal::unix::signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Signal,
    File,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Signal => "SIGHUP",
            Cause::File => "file changed",
        }
    }
}

/// Watches the directory holding `file`; each event nudges `changed`
/// (coalesced: one pending nudge is enough). `None`, logged, when the
/// directory cannot be watched: SIGHUP still works.
fn watch(file: &Path, changed: mpsc::Sender<()>) -> Option<RecommendedWatcher> {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return None;
    }
    // Reading a file in the directory (each reload reads the config) is an
    // access event: only a change may nudge, or reloads would feed themselves.
    let nudge = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !matches!(event.kind, notify::EventKind::Access(_))) {
            let _ = changed.try_send(());
        }
    };
    let watching = notify::recommended_watcher(nudge).and_then(|mut watcher| {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    match watching {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(%error, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP");
            None
        }
    }
}
