//! The local event-source mapping: claims due events, runs them through the consume core, and
//! settles each batch (acknowledged, retried with growing delay, dead-lettered); and the
//! hydrators' subscription renewals.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hookcatch::Consumer;
use hookcatch::clock::{Clock, SystemClock};
use tokio::sync::{Notify, watch};

use crate::project::config::ServeConfig;
use crate::store::{Claimed, LocalStore, Settlement};

/// How long a claimed event may take before another delivery is attempted.
const LEASE_MS: i64 = 60_000;
/// Local retries wait 1 s, doubling to 5 min; the consumer Lambda's wait 30 s, doubling to 15 min
/// (`consume::retry_delay`): here a retry is a row update while the user watches, there a billed
/// invocation.
const MAX_BACKOFF_MS: i64 = 5 * 60_000;
/// Events claimed, processed and stored together: one transaction for their writes and one for
/// their acknowledgements, so the consumer keeps up with ingest's group commits.
const CLAIM_BATCH: usize = 256;

/// Renews the hydrators' expiring subscriptions (a `hydrate.renew`: Zoho channels, Graph
/// subscriptions) at start and then twice a day, as the consumer Lambda's schedule does; after a
/// failure, again in ten minutes.
pub(super) async fn renew_subscriptions(
    consumer: Arc<ArcSwap<Consumer>>,
    renew_now: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    const EVERY: Duration = Duration::from_secs(12 * 3600);
    const AFTER_FAILURE: Duration = Duration::from_secs(600);
    while !*stop.borrow() {
        let next = match consumer.load_full().renew_subscriptions().await {
            Ok(renewed) => {
                for done in renewed {
                    tracing::info!(subscription = %done, "subscription renewed");
                }
                EVERY
            }
            Err(failed) => {
                for failure in failed {
                    tracing::error!(%failure, "subscription renewal FAILED; retrying in 10 minutes");
                }
                AFTER_FAILURE
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            // A reload may have added a route whose subscriptions need renewing.
            _ = renew_now.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Claims due events, runs them through the consume core, and settles the batch: acknowledged,
/// retried with growing delay, or dead-lettered.
pub(super) async fn run_worker(
    store: LocalStore,
    consumer: Arc<ArcSwap<Consumer>>,
    serve: ServeConfig,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        // The consumer of the current configuration (its hydrators), for this batch.
        let current = consumer.load_full();
        match work_once(&store, &current, serve.max_attempts, &SystemClock).await {
            Ok(0) => {
                tokio::select! {
                    _ = store.enqueued() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "claiming or settling events failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One batch: up to [`CLAIM_BATCH`] due events claimed, processed (their writes in one transaction)
/// and settled in one more. Returns how many were claimed.
pub(super) async fn work_once(
    store: &LocalStore,
    consumer: &Consumer,
    max_attempts: u32,
    clock: &dyn Clock,
) -> Result<usize, hookcatch::ports::StoreError> {
    let claimed = store.claim(CLAIM_BATCH, clock.now_ms(), LEASE_MS).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let messages = claimed.iter().map(Claimed::to_message).collect();
    let failures = consumer.process_batch_detailed(messages).await;
    let settled = claimed
        .iter()
        .map(|entry| {
            let Some(failure) = failures.iter().find(|f| f.id == entry.seq.to_string()) else {
                return Settlement::Done { seq: entry.seq };
            };
            let dead = !failure.retryable || entry.attempts >= max_attempts;
            let backoff = (1000i64 << entry.attempts.min(20)).min(MAX_BACKOFF_MS);
            if dead {
                tracing::error!(
                    seq = entry.seq,
                    attempts = entry.attempts,
                    "event dead-lettered; `hookcatch replay` re-queues it"
                );
            }
            Settlement::Retry {
                seq: entry.seq,
                error: failure.error.clone(),
                available_at: clock.now_ms() + backoff,
                dead,
            }
        })
        .collect();
    if let Err(error) = store.settle(settled).await {
        tracing::error!(%error, "recording the batch's outcome failed; its events will be delivered again");
    }
    Ok(claimed.len())
}
