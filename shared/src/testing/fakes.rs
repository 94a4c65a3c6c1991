//! In-memory fakes of the ports, for unit tests and the integration tests' pure parts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::clock::Clock;
use crate::ports::{
    BlobError, BlobStore, CachedToken, EventItem, EventStore, Lease, PutOutcome, Queue, QueueError,
    RecordItem, StoreError, TokenCache, UpsertOutcome,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(now_ms: i64) -> Self {
        FixedClock(AtomicI64::new(now_ms))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    messages: Mutex<Vec<String>>,
    fail: AtomicBool,
    stall: AtomicBool,
}

impl MemoryQueue {
    pub fn messages(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }

    pub fn fail_sends(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    /// Sends never complete, as with a queue that accepted the connection and went silent.
    pub fn stall_sends(&self, stall: bool) {
        self.stall.store(stall, Ordering::SeqCst);
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    fn max_message_bytes(&self) -> usize {
        crate::model::envelope::SQS_MAX_MESSAGE_BYTES
    }

    async fn send(&self, message: String) -> Result<(), QueueError> {
        if self.stall.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("injected failure".into()));
        }
        lock(&self.messages).push(message);
        Ok(())
    }
}

pub struct MemoryBlobs {
    bucket: String,
    objects: Mutex<HashMap<(String, String), Bytes>>,
}

impl MemoryBlobs {
    pub fn new(bucket: &str) -> Self {
        MemoryBlobs {
            bucket: bucket.to_owned(),
            objects: Mutex::default(),
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.objects).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    fn location(&self) -> &str {
        &self.bucket
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        lock(&self.objects).insert((self.bucket.clone(), key.to_owned()), body);
        Ok(())
    }

    async fn get(&self, location: &str, key: &str) -> Result<Bytes, BlobError> {
        lock(&self.objects)
            .get(&(location.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| BlobError::Missing(format!("no object {location}/{key}")))
    }
}

/// Same semantics as the DynamoDB adapter: conditional event insert, newer-wins records.
pub struct MemoryStore {
    max_inline_body: usize,
    events: Mutex<HashMap<(String, String), EventItem>>,
    records: Mutex<HashMap<(String, String, String), RecordItem>>,
    fail_records: AtomicBool,
}

impl MemoryStore {
    pub fn new(max_inline_body: usize) -> Self {
        MemoryStore {
            max_inline_body,
            events: Mutex::default(),
            records: Mutex::default(),
            fail_records: AtomicBool::new(false),
        }
    }

    pub fn events(&self) -> Vec<EventItem> {
        lock(&self.events).values().cloned().collect()
    }

    pub fn records(&self) -> Vec<RecordItem> {
        lock(&self.records).values().cloned().collect()
    }

    pub fn record(&self, route: &str, record_type: &str, id: &str) -> Option<RecordItem> {
        lock(&self.records)
            .values()
            .find(|r| r.route == route && r.record_type == record_type && r.record_id == id)
            .cloned()
    }

    pub fn fail_record_writes(&self, fail: bool) {
        self.fail_records.store(fail, Ordering::SeqCst);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(usize::MAX)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    fn max_inline_body(&self) -> usize {
        self.max_inline_body
    }

    async fn put_event(&self, event: &EventItem) -> Result<PutOutcome, StoreError> {
        let mut events = lock(&self.events);
        let key = (event.route.clone(), event.dedup_key.clone());
        if events.contains_key(&key) {
            return Ok(PutOutcome::Duplicate);
        }
        events.insert(key, event.clone());
        Ok(PutOutcome::Inserted)
    }

    async fn replace_event(&self, event: &EventItem) -> Result<(), StoreError> {
        let key = (event.route.clone(), event.dedup_key.clone());
        lock(&self.events).insert(key, event.clone());
        Ok(())
    }

    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
        if self.fail_records.load(Ordering::SeqCst) {
            return Err(StoreError::Throttled("injected".into()));
        }
        let mut records = lock(&self.records);
        let key = (
            record.route.clone(),
            record.record_type.clone(),
            record.record_id.clone(),
        );
        let outcome = records.get(&key).map_or(UpsertOutcome::Written, |stored| {
            record.upsert_over(&stored.version, stored.updated_at_ms)
        });
        if outcome != UpsertOutcome::Stale {
            records.insert(key, record.clone());
        }
        Ok(outcome)
    }

    async fn get_event(
        &self,
        route: &str,
        dedup_key: &str,
    ) -> Result<Option<EventItem>, StoreError> {
        Ok(lock(&self.events)
            .get(&(route.to_owned(), dedup_key.to_owned()))
            .cloned())
    }

    async fn get_record(
        &self,
        route: &str,
        record_type: &str,
        record_id: &str,
    ) -> Result<Option<RecordItem>, StoreError> {
        Ok(lock(&self.records)
            .get(&(
                route.to_owned(),
                record_type.to_owned(),
                record_id.to_owned(),
            ))
            .cloned())
    }
}

/// Shared token cache in memory (one per test "fleet" of consumers).
#[derive(Default)]
pub struct MemoryTokens {
    entries: Mutex<HashMap<String, TokenEntry>>,
}

#[derive(Default, Clone)]
struct TokenEntry {
    token: Option<CachedToken>,
    lease: Option<(String, i64)>,
}

#[async_trait]
impl TokenCache for MemoryTokens {
    async fn load_token(&self, key: &str) -> Result<Option<CachedToken>, StoreError> {
        Ok(lock(&self.entries).get(key).and_then(|e| e.token.clone()))
    }

    async fn store_token(&self, key: &str, token: &CachedToken) -> Result<(), StoreError> {
        let mut entries = lock(&self.entries);
        let entry = entries.entry(key.to_owned()).or_default();
        entry.token = Some(token.clone());
        entry.lease = None;
        Ok(())
    }

    async fn try_lease(&self, lease: Lease<'_>) -> Result<bool, StoreError> {
        let mut entries = lock(&self.entries);
        let entry = entries.entry(lease.key.to_owned()).or_default();
        match &entry.lease {
            Some((other, until)) if other != lease.holder && *until > lease.now_ms => Ok(false),
            _ => {
                entry.lease = Some((lease.holder.to_owned(), lease.until_ms));
                Ok(true)
            }
        }
    }
}
