//! The consume core: envelope → (hydrate if id-only) → records → event item.
//!
//! Idempotent by construction: records are written newer-wins (a redelivery rewrites the same
//! version, harmlessly), and the event item, written last with a conditional put, is what marks an
//! event as done. A failure anywhere leaves the message to be redelivered. `records.rs` is how a
//! record rule makes a record of an event.

mod records;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

pub use records::MAX_RECORD_DATA_BYTES;
use records::record_from_rule;

use crate::clock::Clock;
use crate::model::document::Document;
use crate::model::envelope::body_key;
use crate::model::envelope::{BodyLocation, Envelope, EnvelopeError};
use crate::model::value::Source;
use crate::ports::{
    BlobError, BlobStore, EventItem, EventStore, EventWrites, HydrateError, HydrationItem,
    Hydrator, PutOutcome, RecordItem, Redelivery, StoreError, StoredBody, UpsertOutcome,
    WritesOutcome,
};

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Hydrate(#[from] HydrateError),
    #[error("body of {0} bytes is too large for the store and no object storage is configured")]
    NoObjectStorage(u64),
}

impl ConsumeError {
    /// Whether trying again later can succeed (otherwise the message is headed for the DLQ).
    pub fn is_retryable(&self) -> bool {
        match self {
            ConsumeError::Envelope(EnvelopeError::UnsupportedVersion(_)) => true,
            ConsumeError::Envelope(EnvelopeError::Malformed(_)) => false,
            ConsumeError::Store(StoreError::Corrupt(_) | StoreError::Refused(_)) => false,
            ConsumeError::Blob(BlobError::Missing(_)) => false,
            ConsumeError::Store(_) | ConsumeError::Blob(_) => true,
            ConsumeError::Hydrate(HydrateError::Failed(_)) => false,
            ConsumeError::Hydrate(_) => true,
            ConsumeError::NoObjectStorage(_) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Stored,
    Duplicate,
    /// A replay of a stored event, written over it with its records applied again.
    Replayed,
}

impl Processed {
    /// The outcome as the `event` metric names it.
    fn label(self) -> &'static str {
        match self {
            Processed::Stored => "stored",
            Processed::Duplicate => "duplicate",
            Processed::Replayed => "replayed",
        }
    }
}

/// A message that failed, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: String,
    pub error: String,
    pub retryable: bool,
}

/// A decoded message with its body loaded.
struct Prepared {
    envelope: Envelope,
    body: Bytes,
}

/// One message handed to [`Consumer::process_batch`].
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// The queue's handle for postponing this delivery (SQS receipt handle), if it has one.
    pub receipt: Option<String>,
    /// Deliveries so far, this one included (SQS `ApproximateReceiveCount`).
    pub receive_count: u32,
}

/// How long a retryable failure waits before its next delivery: 30 s, doubling with each delivery,
/// at most 15 minutes. (SQS allows 12 hours; the DLQ takes over after `MaxReceiveCount`.)
pub fn retry_delay(receive_count: u32) -> std::time::Duration {
    let doublings = receive_count.saturating_sub(1).min(10);
    std::time::Duration::from_secs((30u64 << doublings).min(15 * 60))
}

pub struct Consumer {
    store: Arc<dyn EventStore>,
    blobs: Option<Arc<dyn BlobStore>>,
    hydrators: Vec<(String, Arc<dyn Hydrator>)>,
    redelivery: Option<Arc<dyn Redelivery>>,
    clock: Arc<dyn Clock>,
    event_retention_days: u32,
    concurrency: usize,
}

impl Consumer {
    pub fn new(
        store: Arc<dyn EventStore>,
        blobs: Option<Arc<dyn BlobStore>>,
        clock: Arc<dyn Clock>,
        event_retention_days: u32,
        concurrency: usize,
    ) -> Self {
        Consumer {
            store,
            blobs,
            hydrators: Vec::new(),
            redelivery: None,
            clock,
            event_retention_days,
            concurrency: concurrency.max(1),
        }
    }

    /// Postpones retryable failures with a growing delay ([`retry_delay`]) through `redelivery`.
    pub fn with_redelivery(mut self, redelivery: Arc<dyn Redelivery>) -> Self {
        self.redelivery = Some(redelivery);
        self
    }

    /// Hydrates the id-only events of `route` with `hydrator`.
    pub fn with_hydrator(mut self, route: &str, hydrator: Arc<dyn Hydrator>) -> Self {
        self.hydrators.push((route.to_owned(), hydrator));
        self
    }

    /// Renews every hydrator's expiring subscriptions (the consumer Lambda's schedule). Returns what
    /// was renewed, or every failure.
    pub async fn renew_subscriptions(&self) -> Result<Vec<String>, Vec<String>> {
        let mut renewed = Vec::new();
        let mut failed = Vec::new();
        for (route, hydrator) in &self.hydrators {
            for outcome in hydrator.renew_subscriptions().await {
                match outcome {
                    Ok(done) => renewed.push(format!("{route}: {done}")),
                    Err(error) => failed.push(format!("{route}: {error}")),
                }
            }
        }
        if failed.is_empty() {
            Ok(renewed)
        } else {
            Err(failed)
        }
    }

    /// Processes a batch concurrently; returns the ids of the messages that failed (to be retried).
    pub async fn process_batch(&self, messages: Vec<Message>) -> Vec<String> {
        self.process_batch_detailed(messages)
            .await
            .into_iter()
            .map(|failure| failure.id)
            .collect()
    }

    /// Like [`Consumer::process_batch`], with each failure's reason and whether a retry can help.
    ///
    /// Three steps: every message is decoded (and its body loaded) concurrently; the id-only ones
    /// are handed to their route's hydrator together, so it can coalesce its API calls; then each
    /// message is stored concurrently.
    pub async fn process_batch_detailed(&self, messages: Vec<Message>) -> Vec<Failure> {
        let receipts: Vec<(String, Option<String>, u32)> = messages
            .iter()
            .map(|m| (m.id.clone(), m.receipt.clone(), m.receive_count))
            .collect();
        let failures = self.process_messages(messages).await;
        if let Some(redelivery) = &self.redelivery {
            for failure in failures.iter().filter(|f| f.retryable) {
                let Some((_, Some(receipt), count)) =
                    receipts.iter().find(|(id, _, _)| *id == failure.id)
                else {
                    continue;
                };
                let delay = retry_delay(*count);
                // Best effort: without it the message still comes back after the queue's timeout.
                match redelivery.postpone(receipt, delay).await {
                    Ok(()) => {
                        tracing::info!(message_id = %failure.id, delay_secs = delay.as_secs(), "retry postponed")
                    }
                    Err(error) => {
                        tracing::warn!(message_id = %failure.id, %error, "could not postpone the retry")
                    }
                }
            }
        }
        failures
    }

    async fn process_messages(&self, messages: Vec<Message>) -> Vec<Failure> {
        let prepared: Vec<(String, Result<Prepared, ConsumeError>)> =
            futures::stream::iter(messages)
                .map(|message| async move {
                    let result = self.prepare(&message.body).await;
                    (message.id, result)
                })
                .buffered(self.concurrency)
                .collect()
                .await;
        let mut hydrated = self
            .hydrate(prepared.iter().map(|(_, p)| p.as_ref().ok()))
            .await;
        let planned: Vec<Planned> =
            futures::stream::iter(prepared.into_iter().zip(hydrated.drain(..)))
                .map(|((id, prepared), records)| async move {
                    let route = prepared.as_ref().ok().map(|p| p.envelope.route.clone());
                    let result = match (prepared, records) {
                        (Ok(prepared), Ok(records)) => self.plan(prepared, records).await,
                        (Err(error), _) => Err(error),
                        (_, Err(error)) => Err(ConsumeError::Hydrate(error)),
                    };
                    (id, route, result)
                })
                .buffered(self.concurrency)
                .collect()
                .await;
        let results = self.store_planned(planned).await;
        results
            .into_iter()
            .filter_map(|(id, route, result)| {
                let route = route.as_deref().unwrap_or("unknown");
                let outcome = match &result {
                    Ok(processed) => processed.label(),
                    Err(error) if error.is_retryable() => "failed_retryable",
                    Err(_) => "failed",
                };
                crate::metrics::event(route, outcome);
                result.err().map(|error| (id, error))
            })
            .map(|(id, error)| {
                let retryable = error.is_retryable();
                tracing::error!(message_id = %id, %error, retryable, "message failed");
                Failure {
                    id,
                    error: error.to_string(),
                    retryable,
                }
            })
            .collect()
    }

    /// Stores every planned message's writes as one batch (one transaction where the store can),
    /// and reports each message's outcome, in order.
    async fn store_planned(
        &self,
        planned: Vec<Planned>,
    ) -> Vec<(String, Option<String>, Result<Processed, ConsumeError>)> {
        let mut batch = Vec::new();
        let mut failed = Vec::with_capacity(planned.len());
        for (id, route, plan) in planned {
            match plan {
                Ok(writes) => {
                    batch.push(writes);
                    failed.push((id, route, None));
                }
                Err(error) => failed.push((id, route, Some(error))),
            }
        }
        let outcomes = self.store.store_batch(&batch, self.concurrency).await;
        let mut stored = batch.iter().zip(outcomes);
        failed
            .into_iter()
            .map(|(id, route, error)| {
                let result = match error {
                    Some(error) => Err(error),
                    None => {
                        let (writes, outcome) =
                            stored.next().expect("one outcome per stored message");
                        outcome
                            .map(|outcome| log_stored(&id, writes, &outcome))
                            .map_err(ConsumeError::from)
                    }
                };
                (id, route, result)
            })
            .collect()
    }

    /// A message's writes planned now, for a store that can commit them with the message's
    /// acknowledgement instead of queueing it (local mode): only when nothing outside the message
    /// is needed (no hydration, its body inline). None otherwise, and when planning fails: the
    /// queue's consumer then meets the same failure, with its retries and dead letters.
    pub async fn plan_at_once(&self, message: &str) -> Option<EventWrites> {
        let envelope = Envelope::from_message(message).ok()?;
        let hydrated = self
            .hydrators
            .iter()
            .any(|(route, hydrator)| hydrates(route, hydrator.as_ref(), &envelope));
        if hydrated || !matches!(envelope.body, BodyLocation::Inline(_)) {
            return None;
        }
        let body = self.load_body(&envelope).await.ok()?;
        let prepared = Prepared { envelope, body };
        // No hydrator wants it: this only says so when the provider marked it id-only.
        let records = self
            .hydrate(std::iter::once(Some(&prepared)))
            .await
            .pop()?
            .ok()?;
        self.plan(prepared, records).await.ok()
    }

    /// Reports writes a store committed with their acknowledgement ([`Consumer::plan_at_once`])
    /// as a batch reports the ones it stores: the log line and the `event` metric.
    pub fn report_stored(&self, writes: &EventWrites, outcome: &WritesOutcome) {
        let processed = log_stored(&writes.event.event_id, writes, outcome);
        crate::metrics::event(&writes.event.route, processed.label());
    }

    /// Processes one queue message (the unit tests' entry; batches go through `process_batch`).
    #[cfg(test)]
    pub async fn process(&self, message: &str) -> Result<Processed, ConsumeError> {
        let prepared = self.prepare(message).await?;
        let records = self
            .hydrate(std::iter::once(Some(&prepared)))
            .await
            .pop()
            .expect("one result per message")?;
        let planned = vec![(
            String::from("one"),
            None,
            self.plan(prepared, records).await,
        )];
        let (_, _, result) = self.store_planned(planned).await.pop().expect("one result");
        result
    }

    async fn prepare(&self, message: &str) -> Result<Prepared, ConsumeError> {
        let envelope = Envelope::from_message(message)?;
        let body = self.load_body(&envelope).await?;
        Ok(Prepared { envelope, body })
    }

    /// Records hydrated for each message (empty where nothing is to be hydrated), in order.
    async fn hydrate<'a>(
        &self,
        messages: impl Iterator<Item = Option<&'a Prepared>>,
    ) -> Vec<Result<Vec<RecordItem>, HydrateError>> {
        let messages: Vec<Option<&Prepared>> = messages.collect();
        let mut results: Vec<Result<Vec<RecordItem>, HydrateError>> =
            messages.iter().map(|_| Ok(Vec::new())).collect();
        for (route, hydrator) in &self.hydrators {
            let (positions, items): (Vec<usize>, Vec<HydrationItem<'_>>) = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let m = (*m)?;
                    hydrates(route, hydrator.as_ref(), &m.envelope).then_some((
                        i,
                        HydrationItem {
                            envelope: &m.envelope,
                            body: &m.body,
                        },
                    ))
                })
                .unzip();
            if items.is_empty() {
                continue;
            }
            let started = std::time::Instant::now();
            let hydrated = hydrator.hydrate_batch(&items).await;
            let failed = hydrated.iter().filter(|r| r.is_err()).count();
            crate::metrics::hydration(route, started.elapsed(), failed);
            for (position, result) in positions.into_iter().zip(hydrated) {
                results[position] = result;
            }
        }
        for message in messages.iter().flatten() {
            let envelope = &message.envelope;
            if envelope.hydrate.is_some()
                && !envelope.test_ping
                && !self.hydrators.iter().any(|(r, _)| *r == envelope.route)
            {
                // The event itself is kept (ids and all); a hydrator configured later can replay it.
                tracing::warn!(route = %envelope.route, event_id = %envelope.id, "id-only event stored without hydration: no hydrator is configured for its route");
            }
        }
        results
    }

    /// One message's writes: its records (hydrated ones first, then its route's rule's) and its
    /// event, its body put in object storage when it is too large for the event.
    async fn plan(
        &self,
        prepared: Prepared,
        mut records: Vec<RecordItem>,
    ) -> Result<EventWrites, ConsumeError> {
        let Prepared { envelope, body } = prepared;
        // Ingest leaves the hash to the consumer (v2 envelopes on); hashed once, for the event and
        // for a `sha256:body` dedup key alike.
        let body_sha256 = if envelope.body_sha256.is_empty() {
            crate::model::request::sha256_hex(&body)
        } else {
            envelope.body_sha256.clone()
        };
        // Read by pointer, never built whole: a hostile body costs its bytes, not 20 times them.
        let json = Document::of(envelope.content_type(), &body);
        let source = Source {
            headers: &envelope.headers,
            raw_query: &envelope.query,
            body: &body,
            body_sha256: Some(&body_sha256),
            json,
        };
        let current_key = || {
            envelope
                .rules
                .dedup
                .as_ref()
                .and_then(|d| d.lookup_text(&source))
                .or_else(|| envelope.delivery_id.clone())
                .unwrap_or_else(|| envelope.id.clone())
        };
        // A replay rewrites the stored event under the key it was stored with: under the current
        // rules' key it could replace a newer event that has that key and leave itself twice.
        let dedup_key = match (&envelope.replaces, envelope.replay) {
            (Some(stored), true) => {
                let now = current_key();
                if &now != stored {
                    tracing::info!(
                        route = %envelope.route,
                        event_id = %envelope.id,
                        "replayed under its stored dedup key; the route's rules now give another"
                    );
                }
                stored.clone()
            }
            _ => current_key(),
        };
        let event_type = envelope
            .rules
            .event_type
            .as_ref()
            .and_then(|t| t.lookup_text(&source));

        // A settings page's Test is stored as the event it is, and produces no record.
        if envelope.test_ping {
            records.clear();
        }
        let rule = envelope
            .rules
            .records
            .iter()
            .filter(|_| !envelope.test_ping)
            .find(|rule| rule.applies(event_type.as_deref(), json));
        if let Some(rule) = rule {
            match record_from_rule(rule, &envelope, &source) {
                Ok(record) => records.push(record),
                Err(reason) => {
                    tracing::warn!(route = %envelope.route, event_id = %envelope.id, reason, "event kept without a record")
                }
            }
        }
        let record_keys = records
            .iter()
            .map(|record| format!("{}/{}", record.record_type, record.record_id))
            .collect();

        let parts = match crate::model::multipart::summarize(envelope.content_type(), &body).await {
            None => None,
            Some(Ok(parts)) => Some(parts),
            Some(Err(reason)) => Some(serde_json::json!({ "error": reason })),
        };
        let parts_len = parts.as_ref().map_or(0, |p| p.to_string().len());
        let stored_body = self.stored_body(&envelope, body, parts_len).await?;
        let event = EventItem {
            route: envelope.route.clone(),
            dedup_key,
            delivery_id: envelope.delivery_id.clone(),
            event_id: envelope.id.clone(),
            provider: envelope.provider.clone(),
            event_type,
            received_at_ms: envelope.received_at_ms,
            test_ping: envelope.test_ping,
            method: envelope.method,
            path: envelope.path,
            query: envelope.query,
            headers: envelope.headers,
            source_ip: envelope.source_ip,
            body_len: envelope.body_len,
            body_sha256,
            body: stored_body,
            parts,
            records: record_keys,
            expires_at: (self.event_retention_days > 0).then(|| {
                self.clock.now_ms() / 1000 + i64::from(self.event_retention_days) * 86_400
            }),
        };
        Ok(EventWrites {
            replay: envelope.replay,
            records,
            event,
        })
    }

    async fn load_body(&self, envelope: &Envelope) -> Result<Bytes, ConsumeError> {
        match &envelope.body {
            BodyLocation::Inline(bytes) => Ok(bytes.clone()),
            BodyLocation::External { bucket, key } => {
                let blobs = self
                    .blobs
                    .as_ref()
                    .ok_or(ConsumeError::NoObjectStorage(envelope.body_len))?;
                Ok(blobs.get(bucket, key).await?)
            }
        }
    }

    /// Keeps the body in the event item when it fits beside the headers and the parts summary, else
    /// a claim check (reusing the ingest's).
    async fn stored_body(
        &self,
        envelope: &Envelope,
        body: Bytes,
        parts_len: usize,
    ) -> Result<StoredBody, ConsumeError> {
        if let BodyLocation::External { bucket, key } = &envelope.body {
            return Ok(StoredBody::External {
                bucket: bucket.clone(),
                key: key.clone(),
            });
        }
        let headers_len: usize = envelope
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 8)
            .sum();
        if body.len() + headers_len + parts_len <= self.store.max_inline_body() {
            return Ok(StoredBody::Inline(body));
        }
        let blobs = self
            .blobs
            .as_ref()
            .ok_or(ConsumeError::NoObjectStorage(envelope.body_len))?;
        let key = body_key(&envelope.route, &envelope.id);
        blobs.put(&key, body).await?;
        Ok(StoredBody::External {
            bucket: blobs.location().to_owned(),
            key,
        })
    }
}

/// Whether `hydrator`, configured for `route`, fetches what `envelope` names. A Test names
/// nothing to fetch (Zoho's has no ids).
fn hydrates(route: &str, hydrator: &dyn Hydrator, envelope: &Envelope) -> bool {
    envelope.route == route && !envelope.test_ping && hydrator.wants(envelope)
}

/// A message's id, its route (once decoded), and its writes or why there are none.
type Planned = (String, Option<String>, Result<EventWrites, ConsumeError>);

/// Logs what storing one message did, and returns its outcome as the consumer reports it.
fn log_stored(message_id: &str, writes: &EventWrites, outcome: &WritesOutcome) -> Processed {
    for (record, upsert) in writes.records.iter().zip(&outcome.records) {
        if *upsert == UpsertOutcome::KindChanged {
            tracing::warn!(route = %record.route, record_type = %record.record_type, record_id = %record.record_id, "record version changed kind (number vs text); the later-received state was kept");
        }
        tracing::debug!(route = %record.route, record_type = %record.record_type, outcome = ?upsert, "record upsert");
    }
    let processed = match outcome.event {
        PutOutcome::Inserted => Processed::Stored,
        PutOutcome::Duplicate => Processed::Duplicate,
        PutOutcome::Replaced => Processed::Replayed,
    };
    let event = &writes.event;
    tracing::info!(%message_id, route = %event.route, event_id = %event.event_id, outcome = ?processed, "event processed");
    processed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RecordRule;
    use crate::config::Rules;
    use crate::model::envelope::SCHEMA_VERSION;
    use crate::model::envelope::tests::sample;
    use crate::model::value::RecordVersion;
    use crate::model::value::ValueSource;
    use crate::testing::fakes::{FixedClock, MemoryBlobs, MemoryStore};
    use serde_json::json;

    fn consumer(store: Arc<MemoryStore>, blobs: Option<Arc<MemoryBlobs>>) -> Consumer {
        Consumer::new(
            store,
            blobs.map(|b| b as Arc<dyn BlobStore>),
            Arc::new(FixedClock::new(1_700_000_000_000)),
            30,
            4,
        )
    }

    fn order_envelope(id: &str, body: &str) -> Envelope {
        let mut envelope = sample();
        envelope.id = id.into();
        envelope.headers = vec![
            ("content-type".into(), "application/json".into()),
            ("x-delivery".into(), format!("d-{id}")),
        ];
        envelope.body_len = body.len() as u64;
        envelope.body = BodyLocation::Inline(Bytes::from(body.to_owned()));
        envelope.rules = Rules {
            dedup: Some(ValueSource::parse("header:x-delivery")),
            event_type: Some(ValueSource::parse("/event")),
            records: vec![RecordRule {
                when: Vec::new(),
                record_type: ValueSource::parse("order"),
                id: ValueSource::parse("/order/id"),
                version: Some(ValueSource::parse("/order/updated_at")),
                data: Some("/order".into()),
                deleted: false,
            }],
        }
        .into();
        envelope
    }

    #[tokio::test]
    async fn stores_event_and_record_and_dedups() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let message = order_envelope(
            "e1",
            r#"{"event":"order.updated","order":{"id":7,"updated_at":5,"total":10}}"#,
        )
        .to_message();
        assert_eq!(consumer.process(&message).await.unwrap(), Processed::Stored);
        assert_eq!(
            consumer.process(&message).await.unwrap(),
            Processed::Duplicate
        );
        let events = store.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].dedup_key, "d-e1");
        assert_eq!(events[0].event_type.as_deref(), Some("order.updated"));
        assert_eq!(events[0].records, ["order/7"]);
        assert_eq!(events[0].expires_at, Some(1_700_000_000 + 30 * 86_400));
        let record = store
            .get_record("raw", "order", "7")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.data["total"], 10);
    }

    /// A replay replaces the stored event and applies the route's current rules to it again; a
    /// plain redelivery of the same event stays a duplicate, its stored event untouched.
    #[tokio::test]
    async fn a_replay_rewrites_the_stored_event_and_its_record_with_the_current_rules() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let body = r#"{"event":"order.updated","order":{"id":7,"updated_at":5,"total":10}}"#;
        let mut first = order_envelope("e1", body);
        let mut rules = Rules::clone(&first.rules);
        rules.event_type = None;
        rules.records[0].data = Some("/order/total".into());
        first.rules = rules.into();
        consumer.process(&first.to_message()).await.unwrap();
        let record = |store: &MemoryStore| store.records()[0].data.clone();
        let event_type = |store: &MemoryStore| store.events()[0].event_type.clone();
        assert_eq!(
            record(&store),
            json!(10),
            "the first rule kept the total only"
        );
        assert_eq!(event_type(&store), None);
        // The rules changed: a redelivery is still a duplicate of the stored event.
        let mut replay = order_envelope("e1", body);
        assert_eq!(
            consumer.process(&replay.to_message()).await.unwrap(),
            Processed::Duplicate
        );
        assert_eq!(event_type(&store), None, "a duplicate rewrites no event");
        replay.replay = true;
        assert_eq!(
            consumer.process(&replay.to_message()).await.unwrap(),
            Processed::Replayed
        );
        assert_eq!(event_type(&store).as_deref(), Some("order.updated"));
        assert_eq!(record(&store)["total"], 10, "the whole order now");
        let events = store.events();
        assert_eq!(
            events.len(),
            1,
            "the stored event was replaced, not duplicated"
        );
        assert_eq!(events[0].event_id, "e1");
        assert_eq!(events[0].records, ["order/7"]);
    }

    /// A message of a newer schema (a rolling deploy's newer route function) fails retryably: it
    /// waits for a consumer that reads it, never read as an older one.
    #[tokio::test]
    async fn a_message_of_a_newer_schema_is_retried() {
        let consumer = consumer(Arc::new(MemoryStore::default()), None);
        let message = order_envelope("e1", "{}").to_message().replacen(
            &format!("\"v\":{SCHEMA_VERSION}"),
            &format!("\"v\":{}", SCHEMA_VERSION + 1),
            1,
        );
        let error = consumer.process(&message).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
    }

    #[tokio::test]
    async fn older_version_never_overwrites_newer() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let newer = order_envelope("e2", r#"{"order":{"id":7,"updated_at":9,"total":99}}"#);
        let older = order_envelope("e1", r#"{"order":{"id":7,"updated_at":5,"total":1}}"#);
        consumer.process(&newer.to_message()).await.unwrap();
        consumer.process(&older.to_message()).await.unwrap();
        let record = store
            .get_record("raw", "order", "7")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.data["total"], 99);
        assert_eq!(store.events().len(), 2, "both events are kept in the log");
    }

    #[tokio::test]
    async fn a_missing_version_never_freezes_the_record() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let bodies = [
            r#"{"order":{"id":7,"updated_at":5,"total":5}}"#,
            r#"{"order":{"id":7,"total":"partial, no version"}}"#,
            r#"{"order":{"id":7,"updated_at":6,"total":6}}"#,
        ];
        for (i, body) in bodies.iter().enumerate() {
            let message = order_envelope(&format!("e{i}"), body).to_message();
            assert_eq!(consumer.process(&message).await.unwrap(), Processed::Stored);
        }
        let record = store.record("raw", "order", "7").unwrap();
        assert_eq!(record.data["total"], 6);
        assert_eq!(record.version, RecordVersion::Number("6".into()));
        assert_eq!(store.events().len(), 3, "the unversioned event is kept");
    }

    #[tokio::test]
    async fn a_version_that_changes_kind_lets_the_later_received_state_win() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let at = |id: &str, received_at_ms: i64, body: &str| {
            let mut envelope = order_envelope(id, body);
            envelope.received_at_ms = received_at_ms;
            envelope.to_message()
        };
        // Text first (not RFC 3339), then the sender switches to RFC 3339 (a number).
        let text = r#"{"order":{"id":7,"updated_at":"2024-06-11 10:00:00","total":1}}"#;
        let number = r#"{"order":{"id":7,"updated_at":"2024-06-11T10:00:01Z","total":2}}"#;
        consumer.process(&at("e1", 1_000, text)).await.unwrap();
        consumer.process(&at("e2", 2_000, number)).await.unwrap();
        assert_eq!(store.record("raw", "order", "7").unwrap().data["total"], 2);
        // A redelivery of the older text version, received before the stored state, stays out.
        consumer.process(&at("e3", 1_500, text)).await.unwrap();
        assert_eq!(store.record("raw", "order", "7").unwrap().data["total"], 2);
    }

    #[tokio::test]
    async fn failed_record_write_leaves_no_event_so_redelivery_completes() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let message = order_envelope("e1", r#"{"order":{"id":7,"updated_at":1}}"#).to_message();
        store.fail_record_writes(true);
        assert!(consumer.process(&message).await.is_err());
        assert!(
            store.events().is_empty(),
            "an event is marked done only after its records"
        );
        store.fail_record_writes(false);
        assert_eq!(consumer.process(&message).await.unwrap(), Processed::Stored);
        assert_eq!(store.records().len(), 1);
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let secs: Vec<u64> = (1..=7).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(retry_delay(0).as_secs(), 30);
        assert_eq!(retry_delay(u32::MAX).as_secs(), 900);
    }

    #[tokio::test]
    async fn batch_reports_only_failed_messages() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let good = Message {
            id: "m1".into(),
            body: sample().to_message(),
            ..Message::default()
        };
        let garbage = Message {
            id: "m2".into(),
            body: "{not json".into(),
            ..Message::default()
        };
        let failed = consumer.process_batch(vec![good, garbage]).await;
        assert_eq!(failed, ["m2"]);
        assert_eq!(store.events().len(), 1);
    }

    #[tokio::test]
    async fn bodies_too_large_for_an_item_go_to_object_storage() {
        let store = Arc::new(MemoryStore::new(64));
        let blobs = Arc::new(MemoryBlobs::new("b"));
        let mut envelope = sample();
        let body = Bytes::from(vec![7u8; 1000]);
        envelope.body_len = 1000;
        envelope.body = BodyLocation::Inline(body.clone());
        consumer(store.clone(), Some(blobs.clone()))
            .process(&envelope.to_message())
            .await
            .unwrap();
        let event = &store.events()[0];
        let StoredBody::External { bucket, key } = &event.body else {
            panic!("expected a claim check");
        };
        assert_eq!(blobs.get(bucket, key).await.unwrap(), body);
        // Without object storage this cannot be stored whole: the message fails rather than truncating.
        let no_blobs = consumer(Arc::new(MemoryStore::new(64)), None);
        let error = no_blobs.process(&envelope.to_message()).await.unwrap_err();
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn a_body_gone_from_object_storage_fails_for_good_and_a_refused_item_too() {
        let store = Arc::new(MemoryStore::default());
        let blobs = Arc::new(MemoryBlobs::new("b"));
        let mut envelope = sample();
        envelope.body = BodyLocation::External {
            bucket: "b".into(),
            key: "bodies/raw/expired".into(),
        };
        let error = consumer(store.clone(), Some(blobs))
            .process(&envelope.to_message())
            .await
            .unwrap_err();
        assert!(!error.is_retryable(), "{error}");
        assert!(error.to_string().contains("expired or deleted"), "{error}");
        let refused = ConsumeError::Store(StoreError::Refused("item size has exceeded".into()));
        assert!(!refused.is_retryable());
    }

    #[tokio::test]
    async fn id_only_event_without_a_hydrator_is_kept_without_records() {
        let store = Arc::new(MemoryStore::default());
        let mut envelope = sample();
        envelope.hydrate = Some("zoho-crm".into());
        let processed = consumer(store.clone(), None)
            .process(&envelope.to_message())
            .await
            .unwrap();
        assert_eq!(processed, Processed::Stored);
        assert_eq!(store.events().len(), 1);
        assert!(store.events()[0].records.is_empty());
    }

    fn slack_envelope(id: &str, body: &str) -> Envelope {
        let mut envelope = sample();
        envelope.id = id.into();
        envelope.provider = "slack".into();
        envelope.headers = vec![("content-type".into(), "application/json".into())];
        envelope.body_len = body.len() as u64;
        envelope.body = BodyLocation::Inline(Bytes::from(body.to_owned()));
        envelope.rules = crate::providers::default_rules(crate::config::ProviderKind::Slack).into();
        envelope
    }

    #[tokio::test]
    async fn slack_entities_become_records_edits_win_and_deletes_leave_tombstones() {
        let store = Arc::new(MemoryStore::default());
        let consumer = consumer(store.clone(), None);
        let events = [
            r#"{"type":"event_callback","event_id":"Ev1","event_time":1700000001,"event":{"type":"team_join","user":{"id":"U1","name":"ada","updated":1700000001}}}"#,
            r#"{"type":"event_callback","event_id":"Ev2","event_time":1700000002,"event":{"type":"user_change","user":{"id":"U1","name":"ada l","updated":1700000002}}}"#,
            r#"{"type":"event_callback","event_id":"Ev3","event_time":1700000003,"event":{"type":"channel_created","channel":{"id":"C1","name":"general"}}}"#,
            r#"{"type":"event_callback","event_id":"Ev4","event_time":1700000004,"event":{"type":"message","channel":"C1","user":"U1","text":"hi","ts":"1700000004.000100"}}"#,
            r#"{"type":"event_callback","event_id":"Ev5","event_time":1700000005,"event":{"type":"message","subtype":"message_changed","channel":"C1","ts":"1700000005.000200","message":{"type":"message","user":"U1","text":"hi!","ts":"1700000004.000100"}}}"#,
            r#"{"type":"event_callback","event_id":"Ev6","event_time":1700000006,"event":{"type":"message","channel":"C1","user":"U1","text":"second","ts":"1700000006.000300"}}"#,
            r#"{"type":"event_callback","event_id":"Ev7","event_time":1700000007,"event":{"type":"message","subtype":"message_deleted","channel":"C1","ts":"1700000007.000400","deleted_ts":"1700000006.000300"}}"#,
            r#"{"type":"event_callback","event_id":"Ev8","event_time":1700000008,"event":{"type":"reaction_added","user":"U1","reaction":"tada"}}"#,
        ];
        for (i, body) in events.iter().enumerate() {
            consumer
                .process(&slack_envelope(&format!("e{i}"), body).to_message())
                .await
                .unwrap();
        }
        // A retry of Ev2 (same event_id) is one event.
        let retry = consumer
            .process(&slack_envelope("e-retry", events[1]).to_message())
            .await
            .unwrap();
        assert_eq!(retry, Processed::Duplicate);
        assert_eq!(store.events().len(), events.len());

        let user = store.record("raw", "user", "U1").unwrap();
        assert_eq!(user.data["name"], "ada l");
        let channel = store.record("raw", "channel", "C1").unwrap();
        assert_eq!(channel.data["name"], "general");
        let edited = store
            .record("raw", "message", "C1:1700000004.000100")
            .unwrap();
        assert_eq!(edited.data["text"], "hi!");
        let deleted = store
            .record("raw", "message", "C1:1700000006.000300")
            .unwrap();
        assert!(deleted.deleted);
        assert!(deleted.data.is_null());
        // A late redelivery of the original message does not undo the edit.
        consumer
            .process(&slack_envelope("e-late", &events[3].replace("Ev4", "Ev4b")).to_message())
            .await
            .unwrap();
        let still = store
            .record("raw", "message", "C1:1700000004.000100")
            .unwrap();
        assert_eq!(still.data["text"], "hi!");
        let reaction = store
            .events()
            .into_iter()
            .find(|e| e.dedup_key == "Ev8")
            .unwrap();
        assert!(
            reaction.records.is_empty(),
            "events without an entity keep no record"
        );
        assert_eq!(reaction.event_type.as_deref(), Some("reaction_added"));
    }
}
