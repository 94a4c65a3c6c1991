//! The ingestors' queue in `serve`.

use std::sync::Arc;

use hookcatch::Consumer;
use hookcatch::ports::{Queue, QueueError};

use crate::store::{AtOnce, LocalStore};

/// The ingestors' queue: an event that needs nothing from outside (no hydration) is stored in the
/// transaction that acknowledges it, planned by the consume core as the worker would plan it, so
/// its record is visible when the sender gets its 200; any other event, and one whose writes fail,
/// is queued for the worker (hydration, retries with backoff, dead letters).
pub(super) struct StoringQueue {
    pub(super) store: LocalStore,
    /// The consumer built with these routes (their hydrators).
    pub(super) consumer: Arc<Consumer>,
}

#[async_trait::async_trait]
impl Queue for StoringQueue {
    fn max_message_bytes(&self) -> usize {
        self.store.max_message_bytes()
    }

    async fn send(&self, message: String) -> Result<(), QueueError> {
        let Some(writes) = self.consumer.plan_at_once(&message).await else {
            return self.store.send(message).await;
        };
        match self.store.store_or_enqueue(message, writes).await {
            Ok(AtOnce::Stored(writes, outcome)) => {
                self.consumer.report_stored(&writes, &outcome);
                Ok(())
            }
            Ok(AtOnce::Queued(writes, error)) => {
                let event = &writes.event;
                tracing::warn!(route = %event.route, event_id = %event.event_id, %error, "storing the event failed; it is queued for the worker to retry");
                Ok(())
            }
            Err(error) => Err(QueueError::Unavailable(error.to_string())),
        }
    }
}
