//! Live config reload, as Prometheus and HAProxy do it: on SIGHUP, and when
//! the config file's directory changes, the file and environment layers are
//! loaded and validated again.
//!
//! The directory is watched, not the file: the kubelet updates a ConfigMap
//! volume by renaming a `..data` symlink, so the file's own path never sees
//! a write. When the file is a symlink, its target's directory is watched
//! too. The directories are looked at again every [`RECHECK`], so one moved
//! away, deleted and recreated, or replaced is watched again (and the file
//! read) without a restart; `redis_health_config_watching` says whether the
//! watch holds.
//!
//! Only a complete, valid file is applied: a reload waits until the file
//! has been quiet for [`SETTLE`] since its last event, an empty file is
//! refused, and an invalid one is logged with the message startup would
//! print while the running config stays. A valid config is put in force
//! whole (see [`Prober::apply`]) only when it changed. Keys read once at
//! start ([`needs_restart`]) keep their running values, with a warning
//! naming each.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::signal::unix::{Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::config::{Settings, config_file, needs_redial, needs_restart};
use crate::metrics::Metrics;
use crate::probe::Prober;
use crate::telemetry::LevelHandle;

/// How long the config directory must stay quiet after its last event (an
/// editor's save, the kubelet's swap, a copy written in pieces) before the
/// file is read: counted from the last event, so a slow writer is waited
/// for rather than read half-way.
const SETTLE: Duration = Duration::from_millis(100);

/// How often the watched directories are looked at again: a directory
/// replaced or recreated is watched again within this.
const RECHECK: Duration = Duration::from_millis(250);

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
        // No file (defaults and environment only): nothing to watch, and a
        // SIGHUP still loads the same layers again.
        let mut watch = config_file(self.path.as_deref()).map(|file| Watch::new(file, changed));
        match watch.as_mut() {
            Some(watch) => {
                watch.keep(self.prober.metrics());
            }
            None => self.prober.metrics().watching(false),
        }
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let hung_up = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(()) = hung_up => {
                    // A SIGHUP sent while the file is being written waits
                    // for the writer too.
                    if changes.try_recv().is_ok() {
                        settle(&mut changes).await;
                    }
                    self.reload(Cause::Signal).await;
                }
                Some(()) = changes.recv() => {
                    settle(&mut changes).await;
                    self.reload(Cause::File).await;
                }
                _ = recheck.tick() => {
                    // Watched afresh: the file may have changed unseen.
                    if watch.as_mut().is_some_and(|w| w.keep(self.prober.metrics())) {
                        settle(&mut changes).await;
                        self.reload(Cause::File).await;
                    }
                }
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
        // The file loads as valid: that is a successful reload, whether or
        // not it changed anything.
        self.prober.metrics().reloaded(true);
        let running = self.prober.settings();
        let (restart, live): (Vec<String>, Vec<String>) = running
            .changed_keys(&settings)
            .into_iter()
            .partition(|key| needs_restart(key));
        for key in &restart {
            tracing::warn!(key = %key, "config key changed, but takes effect only at a restart; keeping the running value");
        }
        if live.is_empty() {
            // Nothing to put in force: no check, no redial.
            match cause {
                Cause::Signal => {
                    tracing::info!(cause = cause.as_str(), changed = "none", "config reloaded");
                }
                Cause::File => tracing::debug!("config directory changed; the config did not"),
            }
            return;
        }
        settings.keep_restart_only(&running);
        settings.log_deprecated();
        self.log.set(settings.log.level.as_str());
        let redial = live.iter().any(|key| needs_redial(key));
        self.prober.apply(settings, redial).await;
        tracing::info!(cause = cause.as_str(), changed = %live.join(", "), "config reloaded");
    }
}

/// Returns once no file event has arrived for [`SETTLE`]: the quiet period
/// starts over at each event, so it counts from the last one.
async fn settle(changes: &mut mpsc::Receiver<()>) {
    while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.recv()).await {}
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

/// A directory as found at one look: its path, and its device and inode,
/// which tell a directory replaced under the same name from the one watched.
type Found = (PathBuf, u64, u64);

/// The watch on the config file's directories, kept up as they change.
struct Watch {
    file: PathBuf,
    changed: mpsc::Sender<()>,
    /// The directories as last looked at, and whether all were there.
    found: Option<(Vec<Found>, bool)>,
    /// Dropping the watcher stops it: kept for as long as the watch holds.
    watcher: Option<RecommendedWatcher>,
    /// Set when a watched directory itself was removed or moved: its watch
    /// is dead even if a new directory got the same inode number.
    lost: Arc<AtomicBool>,
}

impl Watch {
    fn new(file: PathBuf, changed: mpsc::Sender<()>) -> Self {
        Self {
            file,
            changed,
            found: None,
            watcher: None,
            lost: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Watches the directories again if they changed since the last look;
    /// `true` when it did after the first look (a reload is then due).
    fn keep(&mut self, metrics: &Metrics) -> bool {
        let wanted = directories(&self.file);
        let found: Vec<Found> = wanted
            .iter()
            .filter_map(|dir| {
                let meta = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
                Some((dir.clone(), meta.dev(), meta.ino()))
            })
            .collect();
        let complete = found.len() == wanted.len();
        let looked = (found, complete);
        let lost = self.lost.swap(false, Ordering::Relaxed);
        if !lost && self.found.as_ref() == Some(&looked) {
            return false;
        }
        let first = self.found.is_none();
        let (found, complete) = &looked;
        self.watcher = None;
        let watching = if *complete {
            match watcher(found, self.changed.clone(), self.lost.clone()) {
                Ok(watcher) => {
                    self.watcher = Some(watcher);
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, file = %self.file.display(), "cannot watch the config directory; reload with SIGHUP");
                    false
                }
            }
        } else {
            let missing = wanted
                .iter()
                .filter(|dir| !found.iter().any(|(f, _, _)| f == *dir))
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            tracing::warn!(dir = %missing, "the config directory is gone; reload with SIGHUP until it is back");
            false
        };
        if watching && !first {
            tracing::info!(file = %self.file.display(), "watching the config directory again");
        }
        metrics.watching(watching);
        self.found = Some(looked);
        !first
    }
}

/// The directory holding `file` and, when `file` is a symlink, the one
/// holding its target: an edit to the target changes nothing beside the link.
fn directories(file: &Path) -> Vec<PathBuf> {
    let parent = |path: &Path| match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut dirs = vec![parent(file)];
    let linked = std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    if linked && let Ok(target) = std::fs::canonicalize(file) {
        let dir = parent(&target);
        if std::fs::canonicalize(&dirs[0]).ok().as_ref() != Some(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// A watcher on each of `dirs`; each event nudges `changed` (coalesced: one
/// pending nudge is enough), and one about a watched directory itself sets
/// `lost`.
fn watcher(
    dirs: &[Found],
    changed: mpsc::Sender<()>,
    lost: Arc<AtomicBool>,
) -> notify::Result<RecommendedWatcher> {
    let watched: Vec<PathBuf> = dirs.iter().map(|(dir, _, _)| dir.clone()).collect();
    // Reading a file in the directory (each reload reads the config) is an
    // access event: only a change may nudge, or reloads would feed themselves.
    let nudge = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if event.need_rescan() || event.paths.iter().any(|path| watched.contains(path)) {
            lost.store(true, Ordering::Relaxed);
        }
        let _ = changed.try_send(());
    };
    let mut watcher = notify::recommended_watcher(nudge)?;
    for (dir, _, _) in dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}
