//! Small capabilities the cores talk to. AWS adapters live in [`crate::aws`], in-memory fakes in
//! `fakes` (feature `fakes`), the local embedded store in the CLI.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use crate::model::envelope::Envelope;
use crate::model::value::RecordVersion;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue rejected the message: {0}")]
    Rejected(String),
    #[error("queue unreachable or failed: {0}")]
    Unavailable(String),
}

/// Durable queue of envelopes. `send` returns only once the message is durably accepted.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Largest message this queue takes; bigger envelopes send their body by claim check.
    fn max_message_bytes(&self) -> usize;
    async fn send(&self, message: String) -> Result<(), QueueError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object storage failed: {0}")]
    Failed(String),
    /// No retry can bring it back: the body expired (a replay older than its lifecycle) or was
    /// deleted.
    #[error("the body is gone from object storage (expired or deleted): {0}")]
    Missing(String),
}

/// Postpones the next delivery of a message that failed for a reason time can cure (a rate limit),
/// so retries spread out instead of coming back at a fixed interval.
#[async_trait]
pub trait Redelivery: Send + Sync {
    /// Makes the message (by its receipt) visible again only after `delay`.
    async fn postpone(&self, receipt: &str, delay: std::time::Duration) -> Result<(), QueueError>;
}

/// Object storage for bodies too large to travel in a message or to sit in a database item.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Where keys written here live (the bucket name), recorded in claim checks.
    fn location(&self) -> &str;
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;
    async fn get(&self, location: &str, key: &str) -> Result<Bytes, BlobError>;
}

/// How a stored event keeps its body.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredBody {
    Inline(Bytes),
    External { bucket: String, key: String },
}

/// One received event, as stored. Keyed by route + dedup key.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItem {
    pub route: String,
    pub dedup_key: String,
    /// The provider's own delivery id (`X-GitHub-Delivery`, `webhook-id`, …), kept to find a
    /// delivery by; where the provider does not sign it, it is not the dedup key.
    pub delivery_id: Option<String>,
    pub event_id: String,
    pub provider: String,
    pub event_type: Option<String>,
    pub received_at_ms: i64,
    pub test_ping: bool,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub source_ip: Option<String>,
    pub body_len: u64,
    pub body_sha256: String,
    pub body: StoredBody,
    /// For multipart bodies: the parts (fields and files, with sizes and hashes).
    pub parts: Option<Value>,
    /// Keys of the records this event wrote, as `type/id`.
    pub records: Vec<String>,
    /// Unix seconds after which the store may expire the item; `None` keeps it.
    pub expires_at: Option<i64>,
}

impl EventItem {
    pub fn content_type(&self) -> Option<&str> {
        crate::model::request::find_header(&self.headers, "content-type")
    }
}

/// The latest known state of one entity. Keyed by route + record type + record id.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordItem {
    pub route: String,
    pub record_type: String,
    pub record_id: String,
    pub version: RecordVersion,
    pub data: Value,
    pub deleted: bool,
    pub event_id: String,
    pub updated_at_ms: i64,
}

impl RecordItem {
    /// The newer-wins rule every store applies (DynamoDB as a condition expression): a version of
    /// the stored kind wins when it is at least as new (equal rewrites: a redelivery); across kinds
    /// (number vs text, a source that changed format) the later-received state wins.
    pub fn upsert_over(&self, stored_version: &RecordVersion, stored_at_ms: i64) -> UpsertOutcome {
        match self.version.not_older_than(stored_version) {
            Some(true) => UpsertOutcome::Written,
            Some(false) => UpsertOutcome::Stale,
            None if self.updated_at_ms >= stored_at_ms => UpsertOutcome::KindChanged,
            None => UpsertOutcome::Stale,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Inserted,
    /// An event with this route and dedup key exists already; nothing was written.
    Duplicate,
    /// A replay: written over the stored event with this route and dedup key.
    Replaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Written,
    /// Written over a version of the other kind (number vs text): the later-received won.
    KindChanged,
    /// The stored record is newer; it was kept.
    Stale,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store throttled the request: {0}")]
    Throttled(String),
    #[error("store failed: {0}")]
    Failed(String),
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
    /// The store refused the item itself (too large, malformed): no retry can succeed.
    #[error("store refused the item: {0}")]
    Refused(String),
}

/// One message's writes: its records (hydrated ones first, then its route's rule's), then its
/// event, which marks the message done.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrites {
    /// A replay of a stored event: the event replaces the stored one instead of being a duplicate
    /// of it, and its records are applied again (newer-wins keeps that safe).
    pub replay: bool,
    pub records: Vec<RecordItem>,
    pub event: EventItem,
}

/// What storing one message's [`EventWrites`] did, record by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritesOutcome {
    pub records: Vec<UpsertOutcome>,
    pub event: PutOutcome,
}

/// Stores one message's writes through [`EventStore::upsert_record`] and
/// [`EventStore::put_event`]: the records first, so a failure leaves no event and the redelivery
/// completes them.
pub async fn store_writes<S: EventStore + ?Sized>(
    store: &S,
    writes: &EventWrites,
) -> Result<WritesOutcome, StoreError> {
    let mut records = Vec::with_capacity(writes.records.len());
    for record in &writes.records {
        records.push(store.upsert_record(record).await?);
    }
    let event = if writes.replay {
        store.replace_event(&writes.event).await?;
        PutOutcome::Replaced
    } else {
        store.put_event(&writes.event).await?
    };
    Ok(WritesOutcome { records, event })
}

/// The event log and the record table.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Largest body kept inside an event item; larger ones go to a [`BlobStore`].
    fn max_inline_body(&self) -> usize;
    /// Writes the event unless one with the same route and dedup key exists (atomically).
    async fn put_event(&self, event: &EventItem) -> Result<PutOutcome, StoreError>;
    /// Writes the event over any stored one with the same route and dedup key (a replay).
    async fn replace_event(&self, event: &EventItem) -> Result<(), StoreError>;
    /// Writes the record unless the stored one is newer (atomically).
    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError>;
    /// Stores a batch of messages' writes, one result per message in order; each message's writes
    /// succeed or fail alone. By default `concurrency` messages at a time through
    /// [`store_writes`]; a store that commits many writes at once overrides it.
    async fn store_batch(
        &self,
        batch: &[EventWrites],
        concurrency: usize,
    ) -> Vec<Result<WritesOutcome, StoreError>> {
        // By index: a closure taking `&EventWrites` would not be general enough to be `Send`.
        futures::stream::iter(0..batch.len())
            .map(|i| store_writes(self, &batch[i]))
            .buffered(concurrency.max(1))
            .collect()
            .await
    }
    async fn get_event(
        &self,
        route: &str,
        dedup_key: &str,
    ) -> Result<Option<EventItem>, StoreError>;
    async fn get_record(
        &self,
        route: &str,
        record_type: &str,
        record_id: &str,
    ) -> Result<Option<RecordItem>, StoreError>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HydrateError {
    #[error("provider API rate-limited the fetch; retry later")]
    RateLimited,
    #[error("provider API failed transiently: {0}")]
    Transient(String),
    #[error("hydration failed: {0}")]
    Failed(String),
}

/// One id-only event handed to a hydrator, with its body.
pub struct HydrationItem<'a> {
    pub envelope: &'a Envelope,
    pub body: &'a Bytes,
}

/// Turns id-only notifications into full records by calling the provider's API.
#[async_trait]
pub trait Hydrator: Send + Sync {
    /// Whether this route's `envelope` is handed to the hydrator: by default the events a
    /// verifier marked id-only.
    fn wants(&self, envelope: &Envelope) -> bool {
        envelope.hydrate.is_some()
    }

    /// One result per item, in order. A hydrator sees a whole batch at once so it can fetch the
    /// ids of many notifications in few calls, and a record named twice only once.
    async fn hydrate_batch(
        &self,
        items: &[HydrationItem<'_>],
    ) -> Vec<Result<Vec<RecordItem>, HydrateError>>;

    /// Renews the provider's subscriptions that feed this route, where they expire (Zoho's
    /// channels). One result per subscription, naming it.
    async fn renew_subscriptions(&self) -> Vec<Result<String, HydrateError>> {
        Vec::new()
    }
}

/// An OAuth access token shared by every consumer of one hydrator.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub access_token: String,
    /// The API base URL the token was issued for (Zoho's `api_domain`).
    pub api_domain: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("api_domain", &self.api_domain)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Where access tokens are shared between processes (DynamoDB on AWS, the local store locally), with
/// a lease so that one process refreshes while the others wait for its result.
#[async_trait]
pub trait TokenCache: Send + Sync {
    async fn load_token(&self, key: &str) -> Result<Option<CachedToken>, StoreError>;
    async fn store_token(&self, key: &str, token: &CachedToken) -> Result<(), StoreError>;
    /// Takes `lease` unless another holder's lease of its key is still live at its `now_ms`.
    /// True when `lease.holder` has it.
    async fn try_lease(&self, lease: Lease<'_>) -> Result<bool, StoreError>;
}

/// A token's refresh lease: `holder` has `key` until `until_ms`, asked at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub key: &'a str,
    pub holder: &'a str,
    pub now_ms: i64,
    pub until_ms: i64,
}
