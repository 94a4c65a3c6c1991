//! Local retention: events leave the store once `event_retention_days` have passed, as the
//! DynamoDB table's TTL does on AWS. The sweep deletes in small batches through the writer, each
//! one a command of its own, so acknowledgements keep committing between them.

use std::time::Duration;

use hookcatch::clock::{Clock, SystemClock};
use tokio::sync::watch;

use crate::store::LocalStore;

/// Events deleted per writer command: a few milliseconds of the writer's time.
pub(super) const BATCH: usize = 256;
/// How often the sweep runs (and once at start).
const EVERY: Duration = Duration::from_secs(600);
/// The pause between two batches, for the writer's other work.
const BETWEEN: Duration = Duration::from_millis(20);

/// Sweeps until `stopped`; `retention_days` 0 keeps events forever.
pub(super) async fn sweep_expired(
    store: LocalStore,
    retention_days: u32,
    mut stopped: watch::Receiver<bool>,
) {
    if retention_days == 0 {
        return;
    }
    loop {
        let deleted = sweep_once(&store, retention_days, &mut stopped).await;
        if deleted > 0 {
            tracing::info!(deleted, retention_days, "expired events deleted");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

/// One sweep: batches until none is left (or `stopped`); how many events it deleted.
async fn sweep_once(
    store: &LocalStore,
    retention_days: u32,
    stopped: &mut watch::Receiver<bool>,
) -> usize {
    let mut deleted = 0;
    loop {
        match store
            .sweep_expired(SystemClock.now_ms(), retention_days, BATCH)
            .await
        {
            Ok(count) => {
                deleted += count;
                if count < BATCH {
                    return deleted;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "deleting expired events failed; the next sweep tries again");
                return deleted;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(BETWEEN) => {}
            _ = stopped.wait_for(|s| *s) => return deleted,
        }
    }
}
