//! The embedded durable store of local mode: one SQLite database in WAL mode holding the queue, the
//! event log and the records, with the same semantics as SQS + DynamoDB (conditional event insert,
//! newer-wins records, leases, retries and a dead-letter state).
//!
//! All writes go through one writer thread that takes whatever commands are waiting and commits
//! them in one transaction: concurrent acknowledgements share one fsync instead of paying one each.

mod browse;
mod files;
mod schema;
mod writer;

pub use browse::{Cursor, EventFilter, QueueState};
pub use files::{DataDirLock, RunningServe, create_private_dir, kept_token};
pub use schema::{OpenError, StoreOpenFailure};

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use bytes::Bytes;
use hookcatch::model::value::RecordVersion;
use hookcatch::ports::{
    CachedToken, EventItem, EventStore, EventWrites, Lease, PutOutcome, Queue, QueueError,
    RecordItem, StoreError, StoredBody, TokenCache, UpsertOutcome, WritesOutcome,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use writer::{Command, Reply, failed, run_writer};

/// A queue entry handed to the worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub message: String,
    pub attempts: u32,
}

impl Claimed {
    /// The entry as the consume core takes it.
    pub fn to_message(&self) -> hookcatch::consume::Message {
        hookcatch::consume::Message {
            id: self.seq.to_string(),
            body: self.message.clone(),
            // The local queue backs off by itself (the worker's `retry`): no receipt to postpone.
            receipt: None,
            receive_count: self.attempts + 1,
        }
    }
}

/// What became of one claimed entry, settled with the rest of its batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// Processed: it leaves the queue.
    Done { seq: i64 },
    /// Failed: due again at `available_at`, or dead.
    Retry {
        seq: i64,
        error: String,
        available_at: i64,
        dead: bool,
    },
}

/// What became of an event's writes committed with its acknowledgement
/// ([`LocalStore::store_or_enqueue`]).
#[derive(Debug)]
pub enum AtOnce {
    /// Stored; the writes come back with what storing did.
    Stored(Box<EventWrites>, WritesOutcome),
    /// They failed (the error): the message is queued for the worker instead.
    Queued(Box<EventWrites>, String),
}

/// A queue entry as listed by `events list` and `replay`.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub seq: i64,
    pub message: String,
    pub dead: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub struct LocalStore {
    writer: mpsc::Sender<Command>,
    reader: Arc<Mutex<Connection>>,
    wake: Arc<tokio::sync::Notify>,
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: an acknowledged event survives power loss, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl LocalStore {
    /// Opens (or creates) `dir/hookcatch.db`, readable by its owner only.
    pub fn open(dir: &Path) -> Result<LocalStore, OpenError> {
        let path = dir.join("hookcatch.db");
        let error = |source: rusqlite::Error| OpenError {
            path: path.display().to_string(),
            source: source.into(),
        };
        let io_error = |source: std::io::Error| OpenError {
            path: path.display().to_string(),
            source: source.into(),
        };
        files::create_private_dir(dir).map_err(io_error)?;
        files::make_private(&path).map_err(io_error)?;
        let mut writer_conn = open_connection(&path).map_err(error)?;
        schema::migrate(&mut writer_conn).map_err(|e| OpenError {
            path: path.display().to_string(),
            source: StoreOpenFailure::Schema(e),
        })?;
        // Each event's savepoint journals the pages it touches; on disk that journal was a temp
        // file taking a third of the writer's pwrite calls (BENCHMARKS.md §4, `0bff37b`).
        writer_conn
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(error)?;
        let reader = open_connection(&path).map_err(error)?;
        let (writer, commands) = mpsc::channel();
        std::thread::Builder::new()
            .name("hookcatch-store-writer".into())
            .spawn(move || run_writer(writer_conn, commands))
            .map_err(|e| error(rusqlite::Error::InvalidPath(format!("{e}").into())))?;
        Ok(LocalStore {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, result) = oneshot::channel();
        self.writer
            .send(make(reply))
            .map_err(|_| StoreError::Failed("store writer stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Failed("store writer stopped".into()))?
    }

    /// Called by `serve` at start, as the one process that owns the data directory: whatever a
    /// previous process had claimed when it died is due again now (at-least-once), rather than when
    /// its lease would have run out.
    pub async fn recover_leases(&self) -> Result<usize, StoreError> {
        self.call(Command::RecoverLeases).await
    }

    /// Deletes at most `limit` events that have expired by `now_ms` under a retention of
    /// `retention_days`, oldest first; returns how many (fewer than `limit`: none are left).
    pub async fn sweep_expired(
        &self,
        now_ms: i64,
        retention_days: u32,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.call(|reply| Command::SweepExpired {
            received_before_ms: now_ms - i64::from(retention_days) * 86_400_000,
            now_s: now_ms / 1000,
            limit,
            reply,
        })
        .await
    }

    /// Resolves when something was enqueued (or after the caller's own timeout).
    pub async fn enqueued(&self) {
        self.wake.notified().await;
    }

    pub async fn claim(
        &self,
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.call(|reply| Command::Claim {
            limit,
            now_ms,
            lease_ms,
            reply,
        })
        .await
    }

    /// Commits `writes` (one event's, planned when it arrived) in the transaction that acknowledges
    /// it, so it is stored without a round trip through the queue; when they fail, `message` is
    /// queued instead (with the error) for the worker's retries and dead letters.
    pub async fn store_or_enqueue(
        &self,
        message: String,
        writes: EventWrites,
    ) -> Result<AtOnce, StoreError> {
        let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
        let writes = Box::new(writes);
        let done = self
            .call(|reply| Command::StoreOrEnqueue {
                message,
                writes,
                now_ms,
                reply,
            })
            .await?;
        if matches!(done, AtOnce::Queued(..)) {
            self.wake.notify_one();
        }
        Ok(done)
    }

    /// Settles a worker's batch in one transaction.
    pub async fn settle(&self, settled: Vec<Settlement>) -> Result<(), StoreError> {
        if settled.is_empty() {
            return Ok(());
        }
        self.call(|reply| Command::Settle(settled, reply)).await
    }

    /// Makes dead (and failing) entries due now, attempts reset; `None` requeues every dead entry.
    /// Returns the sequence numbers requeued.
    pub async fn requeue(
        &self,
        seqs: Option<Vec<i64>>,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let requeued = self
            .call(|reply| Command::Requeue {
                seqs,
                now_ms,
                reply,
            })
            .await?;
        self.wake.notify_one();
        Ok(requeued)
    }

    /// Of the entries `seqs`, how many are still queued (or retrying) and how many are dead; the
    /// rest have left the queue, stored.
    pub async fn queue_progress(&self, seqs: Vec<i64>) -> Result<(usize, usize), StoreError> {
        let chosen = serde_json::to_string(&seqs).unwrap_or_default();
        self.read(move |conn| {
            conn.query_row(
                "SELECT IFNULL(SUM(state = 'queued'), 0), IFNULL(SUM(state = 'dead'), 0) FROM queue
                 WHERE seq IN (SELECT value FROM json_each(?1))",
                [chosen],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)? as usize,
                        row.get::<_, i64>(1)? as usize,
                    ))
                },
            )
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            query(&conn).map_err(failed)
        })
        .await
        .map_err(|e| StoreError::Failed(e.to_string()))?
    }

    pub async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT seq, message, state, attempts, last_error FROM queue ORDER BY seq",
            )?;
            let rows = statement.query_map([], browse::queue_entry)?;
            rows.collect()
        })
        .await
    }

    /// When each route last received an event that was stored (ms).
    pub async fn last_received_by_route(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT route, MAX(received_at) FROM events GROUP BY route")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    /// Events, newest first, filtered by route and received time (ms, inclusive).
    pub async fn list_events(
        &self,
        route: Option<String>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EventItem>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT * FROM events WHERE (?1 IS NULL OR route = ?1) AND received_at >= ?2
                 AND received_at < ?3 ORDER BY received_at DESC LIMIT ?4",
            )?;
            let rows = statement.query_map(
                params![
                    route,
                    since_ms.unwrap_or(i64::MIN),
                    until_ms.unwrap_or(i64::MAX),
                    limit as i64
                ],
                event_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    /// The events of `route` that the provider delivered under `delivery_id` (its own id: one, or
    /// more when a provider reused it).
    pub async fn find_events_by_delivery(
        &self,
        route: Option<String>,
        delivery_id: String,
    ) -> Result<Vec<EventItem>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT * FROM events WHERE (?1 IS NULL OR route = ?1) AND delivery_id = ?2
                 ORDER BY received_at DESC",
            )?;
            let rows = statement.query_map(params![route, delivery_id], event_from_row)?;
            rows.collect()
        })
        .await
    }

    pub async fn find_event_by_id(
        &self,
        event_id: String,
    ) -> Result<Option<EventItem>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT * FROM events WHERE event_id = ?1",
                [event_id],
                event_from_row,
            )
            .optional()
        })
        .await
    }

    pub async fn list_records(
        &self,
        route: Option<String>,
        record_type: Option<String>,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecordItem>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT * FROM records WHERE (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR record_type = ?2)
                 AND updated_at >= ?3 AND updated_at < ?4 ORDER BY updated_at DESC LIMIT ?5",
            )?;
            let rows = statement.query_map(
                params![
                    route,
                    record_type,
                    since_ms.unwrap_or(i64::MIN),
                    until_ms.unwrap_or(i64::MAX),
                    limit as i64
                ],
                record_from_row,
            )?;
            rows.collect()
        })
        .await
    }
}

fn event_from_row(row: &rusqlite::Row<'_>) -> Result<EventItem, rusqlite::Error> {
    let json_error = |index: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    };
    let headers: String = row.get("headers")?;
    let records: String = row.get("records")?;
    let parts: Option<String> = row.get("parts")?;
    let bucket: Option<String> = row.get("body_bucket")?;
    let key: Option<String> = row.get("body_key")?;
    let body = match (bucket, key) {
        (Some(bucket), Some(key)) => StoredBody::External { bucket, key },
        _ => StoredBody::Inline(Bytes::from(
            row.get::<_, Option<Vec<u8>>>("body")?.unwrap_or_default(),
        )),
    };
    Ok(EventItem {
        route: row.get("route")?,
        dedup_key: row.get("dedup_key")?,
        delivery_id: row.get("delivery_id")?,
        event_id: row.get("event_id")?,
        provider: row.get("provider")?,
        event_type: row.get("event_type")?,
        received_at_ms: row.get("received_at")?,
        test_ping: row.get("test_ping")?,
        method: row.get("method")?,
        path: row.get("path")?,
        query: row.get("query")?,
        headers: serde_json::from_str(&headers).map_err(|e| json_error(10, e))?,
        source_ip: row.get("source_ip")?,
        body_len: row.get::<_, i64>("body_len")? as u64,
        body_sha256: row.get("body_sha256")?,
        body,
        parts: parts
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| json_error(17, e))?,
        records: serde_json::from_str(&records).map_err(|e| json_error(18, e))?,
        expires_at: row.get("expires_at")?,
    })
}

fn record_from_row(row: &rusqlite::Row<'_>) -> Result<RecordItem, rusqlite::Error> {
    let kind: String = row.get("version_kind")?;
    let text: String = row.get("version_text")?;
    let data: String = row.get("data")?;
    Ok(RecordItem {
        route: row.get("route")?,
        record_type: row.get("record_type")?,
        record_id: row.get("record_id")?,
        version: if kind == "n" {
            RecordVersion::Number(text)
        } else {
            RecordVersion::Text(text)
        },
        data: serde_json::from_str(&data).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
        deleted: row.get("deleted")?,
        event_id: row.get("event_id")?,
        updated_at_ms: row.get("updated_at")?,
    })
}

#[async_trait]
impl Queue for LocalStore {
    fn max_message_bytes(&self) -> usize {
        // SQLite keeps large bodies inline; no claim check needed locally.
        usize::MAX
    }

    async fn send(&self, message: String) -> Result<(), QueueError> {
        let now_ms = hookcatch::clock::Clock::now_ms(&hookcatch::clock::SystemClock);
        self.call(|reply| Command::Enqueue(message, now_ms, reply))
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl EventStore for LocalStore {
    fn max_inline_body(&self) -> usize {
        usize::MAX
    }

    async fn put_event(&self, event: &EventItem) -> Result<PutOutcome, StoreError> {
        let event = Box::new(event.clone());
        self.call(|reply| Command::PutEvent(event, reply)).await
    }

    async fn replace_event(&self, event: &EventItem) -> Result<(), StoreError> {
        let event = Box::new(event.clone());
        self.call(|reply| Command::ReplaceEvent(event, reply)).await
    }

    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
        let record = Box::new(record.clone());
        self.call(|reply| Command::UpsertRecord(record, reply))
            .await
    }

    /// The whole batch in one transaction of the writer (one commit, one fsync), each message in a
    /// savepoint of its own.
    async fn store_batch(
        &self,
        batch: &[EventWrites],
        _concurrency: usize,
    ) -> Vec<Result<WritesOutcome, StoreError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        let count = batch.len();
        match self
            .call(|reply| Command::StoreBatch(batch.to_vec(), reply))
            .await
        {
            Ok(results) => results,
            Err(error) => (0..count)
                .map(|_| Err(StoreError::Failed(error.to_string())))
                .collect(),
        }
    }

    async fn get_event(
        &self,
        route: &str,
        dedup_key: &str,
    ) -> Result<Option<EventItem>, StoreError> {
        let (route, dedup_key) = (route.to_owned(), dedup_key.to_owned());
        self.read(move |conn| {
            conn.query_row(
                "SELECT * FROM events WHERE route = ?1 AND dedup_key = ?2",
                [route, dedup_key],
                event_from_row,
            )
            .optional()
        })
        .await
    }

    async fn get_record(
        &self,
        route: &str,
        record_type: &str,
        record_id: &str,
    ) -> Result<Option<RecordItem>, StoreError> {
        let key = (
            route.to_owned(),
            record_type.to_owned(),
            record_id.to_owned(),
        );
        self.read(move |conn| {
            conn.query_row(
                "SELECT * FROM records WHERE route = ?1 AND record_type = ?2 AND record_id = ?3",
                [key.0, key.1, key.2],
                record_from_row,
            )
            .optional()
        })
        .await
    }
}

#[async_trait]
impl TokenCache for LocalStore {
    async fn load_token(&self, key: &str) -> Result<Option<CachedToken>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT access_token, api_domain, expires_at FROM tokens
                 WHERE key = ?1 AND access_token IS NOT NULL",
                params![key],
                |row| {
                    Ok(CachedToken {
                        access_token: row.get(0)?,
                        api_domain: row.get(1)?,
                        expires_at_ms: row.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    async fn store_token(&self, key: &str, token: &CachedToken) -> Result<(), StoreError> {
        let (key, token) = (key.to_owned(), token.clone());
        self.call(|reply| Command::StoreToken(key, token, reply))
            .await
    }

    async fn try_lease(&self, lease: Lease<'_>) -> Result<bool, StoreError> {
        let (key, holder) = (lease.key.to_owned(), lease.holder.to_owned());
        let changed = self
            .call(|reply| Command::LeaseToken {
                key,
                holder,
                now_ms: lease.now_ms,
                until_ms: lease.until_ms,
                reply,
            })
            .await?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(dedup: &str) -> EventItem {
        EventItem {
            route: "raw".into(),
            dedup_key: dedup.into(),
            delivery_id: None,
            event_id: format!("id-{dedup}"),
            provider: "catch-raw".into(),
            event_type: None,
            received_at_ms: 1,
            test_ping: false,
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            source_ip: None,
            body_len: 2,
            body_sha256: "x".into(),
            body: StoredBody::Inline(Bytes::from_static(b"\x00\xff")),
            parts: Some(json!([])),
            records: vec!["order/1".into()],
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn events_insert_once_and_round_trip() {
        let dir = tempdir();
        let store = LocalStore::open(&dir).unwrap();
        assert_eq!(
            store.put_event(&event("d1")).await.unwrap(),
            PutOutcome::Inserted
        );
        assert_eq!(
            store.put_event(&event("d1")).await.unwrap(),
            PutOutcome::Duplicate
        );
        assert_eq!(
            store.get_event("raw", "d1").await.unwrap().unwrap(),
            event("d1")
        );
        assert_eq!(
            store
                .list_events(Some("raw".into()), None, None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn queue_leases_retries_and_dead_letters() {
        let store = LocalStore::open(&tempdir()).unwrap();
        store.send("m1".into()).await.unwrap();
        let claimed = store.claim(10, i64::MAX / 2, 1000).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, 1);
        // Leased: not claimable again until the lease ends.
        assert!(
            store
                .claim(10, i64::MAX / 2, 1000)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .claim(10, i64::MAX / 2 + 1000, 1000)
                .await
                .unwrap()
                .len(),
            1
        );
        store
            .settle(vec![Settlement::Retry {
                seq: claimed[0].seq,
                error: "boom".into(),
                available_at: 0,
                dead: true,
            }])
            .await
            .unwrap();
        assert!(
            store
                .claim(10, i64::MAX / 2 + 5000, 1000)
                .await
                .unwrap()
                .is_empty(),
            "dead entries stay put"
        );
        let entries = store.queue_entries().await.unwrap();
        assert!(entries[0].dead);
        assert_eq!(entries[0].last_error.as_deref(), Some("boom"));
        assert_eq!(store.requeue(None, 0).await.unwrap(), [claimed[0].seq]);
        assert_eq!(
            store.queue_progress(vec![claimed[0].seq]).await.unwrap(),
            (1, 0)
        );
        let again = store.claim(10, 1, 1000).await.unwrap();
        assert_eq!(again.len(), 1);
        store
            .settle(vec![Settlement::Done { seq: again[0].seq }])
            .await
            .unwrap();
        assert!(store.queue_entries().await.unwrap().is_empty());
        assert_eq!(
            store.queue_progress(vec![claimed[0].seq]).await.unwrap(),
            (0, 0),
            "gone from the queue: stored"
        );
    }

    #[tokio::test]
    async fn concurrent_enqueues_all_commit() {
        let store = LocalStore::open(&tempdir()).unwrap();
        let sends = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.send(format!("m{i}")).await })
        });
        for send in futures::future::join_all(sends).await {
            send.unwrap().unwrap();
        }
        assert_eq!(store.queue_entries().await.unwrap().len(), 200);
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hookcatch-store-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Stores written before versioning (user_version 0), at version 1 and at version 2 open with
    /// their queue intact, take new events with their delivery ids (V2) and answer the console's
    /// filters (V3); a store from a newer hookcatch is refused by name.
    #[tokio::test]
    async fn older_stores_open_and_newer_ones_are_refused() {
        for version in [0, 1, 2] {
            let dir = tempdir();
            let conn = Connection::open(dir.join("hookcatch.db")).unwrap();
            conn.execute_batch(schema::V1).unwrap();
            if version == 2 {
                conn.execute_batch(schema::V2).unwrap();
            }
            conn.pragma_update(None, "user_version", version).unwrap();
            conn.execute(
                "INSERT INTO queue (message, available_at, enqueued_at) VALUES ('m', 1, 1)",
                [],
            )
            .unwrap();
            drop(conn);
            let store = LocalStore::open(&dir).unwrap();
            let delivered = EventItem {
                delivery_id: Some("provider-1".into()),
                ..event("d1")
            };
            store
                .put_event(&delivered)
                .await
                .expect("the old store takes new events");
            assert_eq!(
                store.list_events(None, None, None, 10).await.unwrap().len(),
                1
            );
            let found = store
                .find_events_by_delivery(Some("raw".into()), "provider-1".into())
                .await
                .unwrap();
            assert_eq!(
                found,
                std::slice::from_ref(&delivered),
                "version {version}: found by delivery id"
            );
            let by_route = EventFilter {
                route: Some("raw".into()),
                ..EventFilter::default()
            };
            let page = store.browse_events(by_route, None, 10).await.unwrap();
            assert_eq!(page.len(), 1, "version {version}: the console lists it");
            let by_id = store
                .find_event_by_id(delivered.event_id.clone())
                .await
                .unwrap();
            assert_eq!(by_id.as_ref(), Some(&delivered));
            let queued = store.queue_entries().await.unwrap();
            assert_eq!(queued.len(), 1, "version {version}");
            assert_eq!(queued[0].message, "m");
            drop(store);
            let conn = Connection::open(dir.join("hookcatch.db")).unwrap();
            let now: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap();
            assert_eq!(now, schema::LATEST as i64);
        }
        let dir = tempdir();
        let conn = Connection::open(dir.join("hookcatch.db")).unwrap();
        conn.pragma_update(None, "user_version", schema::LATEST as i64 + 1)
            .unwrap();
        drop(conn);
        let Err(error) = LocalStore::open(&dir) else {
            panic!("a store from a newer hookcatch opened")
        };
        assert!(error.to_string().contains("schema"), "{error}");
    }
}
