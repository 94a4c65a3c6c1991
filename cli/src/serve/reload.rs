//! What tells `serve` to reload its routes: a change to `hookcatch.toml` or the secrets file beside
//! it (the directory is watched, since editors save by writing a new file and renaming it over the
//! old), and SIGHUP.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use arc_swap::ArcSwap;
use hookcatch::Consumer;
use hookcatch::clock::Clock;
use tokio::sync::Notify;

use super::App;
use super::wiring::Built;
use crate::project::config::{ConfigFile, ServeConfig};
use crate::project::secrets_file;
use crate::store::LocalStore;

/// Editors write a file in several steps (truncate, write, rename): wait this long after the first
/// change, then read once.
const SETTLE: Duration = Duration::from_millis(100);

/// Reload requests: one per burst of changes to the watched files, and one per SIGHUP.
pub struct Triggers {
    changes: mpsc::UnboundedReceiver<()>,
    // Dropping the watcher stops it.
    _watcher: notify::RecommendedWatcher,
    hangup: Hangup,
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

/// Why the configuration will not be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes: {source}")]
pub struct WatchError {
    dir: String,
    source: notify::Error,
}

impl Triggers {
    /// Watches the directory of `config` for changes to it or to its secrets file.
    pub fn watch(config: &Path) -> Result<Triggers, WatchError> {
        let dir = config
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let names: Vec<OsString> = [
            config.file_name().map(OsString::from),
            Some(OsString::from(secrets_file::FILE_NAME)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let (sender, changes) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let ours = event.paths.iter().any(|path: &PathBuf| {
                    path.file_name()
                        .is_some_and(|name| names.iter().any(|n| n == name))
                });
                if ours {
                    let _ = sender.send(());
                }
            })
            .map_err(|source| WatchError {
                dir: dir.display().to_string(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError {
                dir: dir.display().to_string(),
                source,
            })?;
        Ok(Triggers {
            changes,
            _watcher: watcher,
            #[cfg(unix)]
            hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
            #[cfg(not(unix))]
            hangup: (),
        })
    }

    /// Resolves at the next reload request (after its burst of changes settled), or returns false
    /// once `stop` is set.
    pub async fn next(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            changed = self.changes.recv() => {
                if changed.is_none() {
                    return false;
                }
            }
            () = hangup(&mut self.hangup) => {
                tracing::info!("SIGHUP: reloading the configuration");
            }
            _ = stop.changed() => return false,
        }
        tokio::time::sleep(SETTLE).await;
        while self.changes.try_recv().is_ok() {}
        true
    }
}

#[cfg(unix)]
async fn hangup(signal: &mut Hangup) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn hangup(_: &mut Hangup) {
    std::future::pending().await
}

/// What a reload replaces, and what it builds the replacement with.
pub(super) struct Live {
    pub(super) app: Arc<App>,
    pub(super) consumer: Arc<ArcSwap<Consumer>>,
    pub(super) renew_now: Arc<Notify>,
    pub(super) store: LocalStore,
    pub(super) clock: Arc<dyn Clock>,
    /// The running settings (the file's, with the command line's overrides).
    pub(super) serve: ServeConfig,
    /// `[serve]` as the file said at start: a change to it needs a restart.
    pub(super) file_serve: ServeConfig,
}

/// Reloads the routes whenever `hookcatch.toml` or its secrets file changes, or on SIGHUP. An
/// invalid file keeps the running routes. Requests in flight finish on the routes they started
/// with; a removed route's queued events are still processed, since their rules travel with them.
pub(super) async fn reload_on_change(
    path: std::path::PathBuf,
    mut triggers: Triggers,
    live: Live,
    mut stop: watch::Receiver<bool>,
) {
    while triggers.next(&mut stop).await {
        let loaded = ConfigFile::load(&path).map_err(|e| e.to_string());
        let built = match &loaded {
            Ok(file) => Built::from(file, &live.serve, &live.store, &live.clock).await,
            Err(error) => Err(error.clone()),
        };
        match built {
            Ok(built) => {
                let names: Vec<&String> = built.routes.keys().collect();
                tracing::info!(routes = ?names, "configuration reloaded");
                if loaded.is_ok_and(|file| file.serve != live.file_serve) {
                    tracing::warn!("[serve] changed: its settings apply when serve restarts");
                }
                live.app.limits.store(Arc::new(built.limits));
                live.app.routes.store(Arc::new(built.routes));
                live.consumer.store(built.consumer);
                live.renew_now.notify_one();
            }
            Err(error) => {
                tracing::error!(%error, "configuration NOT reloaded; the running routes stay");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rename_over_the_file_and_a_secrets_change_trigger_and_others_do_not() {
        let dir = std::env::temp_dir().join(format!("hookcatch-watch-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("hookcatch.toml");
        std::fs::write(&config, "a").unwrap();
        let mut triggers = Triggers::watch(&config).unwrap();
        let (_stop, mut stopped) = watch::channel(false);

        // An editor's save: a new file renamed over the old one.
        std::fs::write(dir.join(".hookcatch.toml.swp"), "b").unwrap();
        std::fs::rename(dir.join(".hookcatch.toml.swp"), &config).unwrap();
        let five_seconds = Duration::from_secs(5);
        let next = tokio::time::timeout(five_seconds, triggers.next(&mut stopped)).await;
        assert_eq!(next, Ok(true));
        std::fs::write(dir.join(secrets_file::FILE_NAME), "c").unwrap();
        let next = tokio::time::timeout(five_seconds, triggers.next(&mut stopped)).await;
        assert_eq!(next, Ok(true));
        std::fs::write(dir.join("unrelated.txt"), "d").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(500), triggers.next(&mut stopped))
                .await
                .is_err(),
            "an unrelated file triggered a reload"
        );
    }
}
