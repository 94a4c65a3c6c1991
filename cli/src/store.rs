//! The embedded durable store of local mode: one SQLite database in WAL mode holding the queue, the
//! event log and the records, with the same semantics as SQS + DynamoDB (conditional event insert,
//! newer-wins records, leases, retries and a dead-letter state).
//!
//! All writes go through one writer thread that takes whatever commands are waiting and commits
//! them in one transaction: concurrent acknowledgements share one fsync instead of paying one each.

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use bytes::Bytes;
use hookcatch::extract::RecordVersion;
use hookcatch::ports::{
    CachedToken, EventItem, EventStore, PutOutcome, Queue, QueueError, RecordItem, StoreError,
    StoredBody, TokenCache, UpsertOutcome,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',      -- queued | dead
    leased INTEGER NOT NULL DEFAULT 0,         -- claimed by a worker that may have died
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,             -- ms; a claim pushes it out by the lease
    enqueued_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (state, available_at);
CREATE TABLE IF NOT EXISTS events (
    route TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    event_type TEXT,
    received_at INTEGER NOT NULL,
    test_ping INTEGER NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    headers TEXT NOT NULL,
    source_ip TEXT,
    body_len INTEGER NOT NULL,
    body_sha256 TEXT NOT NULL,
    body BLOB,
    body_bucket TEXT,
    body_key TEXT,
    parts TEXT,
    records TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (route, dedup_key)
);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
CREATE TABLE IF NOT EXISTS records (
    route TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version_kind TEXT NOT NULL,                -- n (numeric) | t (text)
    version_num REAL,
    version_text TEXT NOT NULL,
    data TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (route, record_type, record_id)
);
CREATE TABLE IF NOT EXISTS tokens (
    key TEXT PRIMARY KEY,
    access_token TEXT,
    api_domain TEXT,
    expires_at INTEGER,
    lease_holder TEXT,
    lease_until INTEGER
);
";

/// Commands in one group commit are at most this many.
const MAX_GROUP: usize = 512;

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

/// A queue entry as listed by `events list` and `replay`.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub seq: i64,
    pub message: String,
    pub dead: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Enqueue(String, i64, Reply<()>),
    PutEvent(Box<EventItem>, Reply<PutOutcome>),
    UpsertRecord(Box<RecordItem>, Reply<UpsertOutcome>),
    Claim {
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
        reply: Reply<Vec<Claimed>>,
    },
    Ack(i64, Reply<()>),
    Retry {
        seq: i64,
        error: String,
        available_at: i64,
        dead: bool,
        reply: Reply<()>,
    },
    Requeue {
        seqs: Option<Vec<i64>>,
        now_ms: i64,
        reply: Reply<usize>,
    },
    RecoverLeases(Reply<usize>),
    StoreToken(String, CachedToken, Reply<()>),
    LeaseToken {
        key: String,
        holder: String,
        now_ms: i64,
        until_ms: i64,
        reply: Reply<usize>,
    },
}

/// A result computed inside the transaction, delivered only once the commit succeeded.
enum Done {
    Unit(Reply<()>, Result<(), StoreError>),
    Put(Reply<PutOutcome>, Result<PutOutcome, StoreError>),
    Upsert(Reply<UpsertOutcome>, Result<UpsertOutcome, StoreError>),
    Claimed(Reply<Vec<Claimed>>, Result<Vec<Claimed>, StoreError>),
    Count(Reply<usize>, Result<usize, StoreError>),
}

impl Done {
    fn deliver(self, commit: &Result<(), String>) {
        fn pass<T>(
            reply: oneshot::Sender<Result<T, StoreError>>,
            result: Result<T, StoreError>,
            commit: &Result<(), String>,
        ) {
            let _ = reply.send(match commit {
                Ok(()) => result,
                Err(e) => Err(StoreError::Failed(format!("commit failed: {e}"))),
            });
        }
        match self {
            Done::Unit(r, v) => pass(r, v, commit),
            Done::Put(r, v) => pass(r, v, commit),
            Done::Upsert(r, v) => pass(r, v, commit),
            Done::Claimed(r, v) => pass(r, v, commit),
            Done::Count(r, v) => pass(r, v, commit),
        }
    }
}

fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Failed(e.to_string())
}

#[derive(Clone)]
pub struct LocalStore {
    writer: mpsc::Sender<Command>,
    reader: Arc<Mutex<Connection>>,
    wake: Arc<tokio::sync::Notify>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open the local store at {path}: {source}")]
pub struct OpenError {
    path: String,
    source: rusqlite::Error,
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
    /// Opens (or creates) `dir/hookcatch.db`.
    pub fn open(dir: &Path) -> Result<LocalStore, OpenError> {
        let path = dir.join("hookcatch.db");
        let error = |source| OpenError {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| error(rusqlite::Error::InvalidPath(format!("{e}").into())))?;
        let writer_conn = open_connection(&path).map_err(error)?;
        writer_conn.execute_batch(SCHEMA).map_err(error)?;
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

    pub async fn ack(&self, seq: i64) -> Result<(), StoreError> {
        self.call(|reply| Command::Ack(seq, reply)).await
    }

    pub async fn retry(
        &self,
        seq: i64,
        error: String,
        available_at: i64,
        dead: bool,
    ) -> Result<(), StoreError> {
        self.call(|reply| Command::Retry {
            seq,
            error,
            available_at,
            dead,
            reply,
        })
        .await
    }

    /// Makes dead (and failing) entries due now; `None` requeues every dead entry.
    pub async fn requeue(&self, seqs: Option<Vec<i64>>, now_ms: i64) -> Result<usize, StoreError> {
        let count = self
            .call(|reply| Command::Requeue {
                seqs,
                now_ms,
                reply,
            })
            .await?;
        self.wake.notify_one();
        Ok(count)
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
            let rows = statement.query_map([], |row| {
                Ok(QueueEntry {
                    seq: row.get(0)?,
                    message: row.get(1)?,
                    dead: row.get::<_, String>(2)? == "dead",
                    attempts: row.get(3)?,
                    last_error: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Events, newest first, filtered by route and received time (ms, inclusive).
    pub async fn list_events(
        &self,
        route: Option<String>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<EventItem>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT * FROM events WHERE (?1 IS NULL OR route = ?1) AND received_at >= ?2
                 ORDER BY received_at DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(
                params![route, since_ms.unwrap_or(i64::MIN), limit as i64],
                event_from_row,
            )?;
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
        limit: usize,
    ) -> Result<Vec<RecordItem>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT * FROM records WHERE (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR record_type = ?2)
                 ORDER BY updated_at DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![route, record_type, limit as i64], record_from_row)?;
            rows.collect()
        })
        .await
    }
}

fn run_writer(mut conn: Connection, commands: mpsc::Receiver<Command>) {
    while let Ok(first) = commands.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let commit = Err(e.to_string());
                group
                    .into_iter()
                    .map(execute_nothing)
                    .for_each(|d| d.deliver(&commit));
                continue;
            }
        };
        let done: Vec<Done> = group.into_iter().map(|c| execute(&tx, c)).collect();
        let commit = tx.commit().map_err(|e| e.to_string());
        done.into_iter().for_each(|d| d.deliver(&commit));
    }
}

/// For a group whose transaction could not even start: every command fails.
fn execute_nothing(command: Command) -> Done {
    fn error<T>() -> Result<T, StoreError> {
        Err(StoreError::Failed("transaction did not start".into()))
    }
    match command {
        Command::Enqueue(_, _, r)
        | Command::Ack(_, r)
        | Command::Retry { reply: r, .. }
        | Command::StoreToken(_, _, r) => Done::Unit(r, error()),
        Command::PutEvent(_, r) => Done::Put(r, error()),
        Command::UpsertRecord(_, r) => Done::Upsert(r, error()),
        Command::Claim { reply, .. } => Done::Claimed(reply, error()),
        Command::Requeue { reply, .. }
        | Command::RecoverLeases(reply)
        | Command::LeaseToken { reply, .. } => Done::Count(reply, error()),
    }
}

fn execute(tx: &Transaction<'_>, command: Command) -> Done {
    match command {
        Command::Enqueue(message, now_ms, reply) => {
            let result = tx
                .execute(
                    "INSERT INTO queue (message, available_at, enqueued_at) VALUES (?1, ?2, ?2)",
                    params![message, now_ms],
                )
                .map(|_| ())
                .map_err(failed);
            Done::Unit(reply, result)
        }
        Command::PutEvent(event, reply) => Done::Put(reply, insert_event(tx, &event)),
        Command::StoreToken(key, token, reply) => {
            let result = tx
                .execute(
                    "INSERT INTO tokens (key, access_token, api_domain, expires_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET access_token = ?2, api_domain = ?3,
                         expires_at = ?4, lease_holder = NULL, lease_until = NULL",
                    params![key, token.access_token, token.api_domain, token.expires_at_ms],
                )
                .map(|_| ())
                .map_err(failed);
            Done::Unit(reply, result)
        }
        Command::LeaseToken {
            key,
            holder,
            now_ms,
            until_ms,
            reply,
        } => {
            // Taken when free, expired, or already ours: one row changed means the lease is ours.
            let result = tx
                .execute(
                    "INSERT INTO tokens (key, lease_holder, lease_until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET lease_holder = ?2, lease_until = ?3
                     WHERE lease_until IS NULL OR lease_until < ?4 OR lease_holder = ?2",
                    params![key, holder, until_ms, now_ms],
                )
                .map_err(failed);
            Done::Count(reply, result)
        }
        Command::UpsertRecord(record, reply) => Done::Upsert(reply, upsert_record(tx, &record)),
        Command::Claim {
            limit,
            now_ms,
            lease_ms,
            reply,
        } => {
            let result = (|| {
                let mut statement = tx.prepare(
                    "UPDATE queue SET available_at = ?1, attempts = attempts + 1, leased = 1
                     WHERE seq IN (SELECT seq FROM queue WHERE state = 'queued' AND available_at <= ?2
                                   ORDER BY seq LIMIT ?3)
                     RETURNING seq, message, attempts",
                )?;
                let rows = statement.query_map(params![now_ms + lease_ms, now_ms, limit as i64], |row| {
                    Ok(Claimed { seq: row.get(0)?, message: row.get(1)?, attempts: row.get(2)? })
                })?;
                rows.collect::<Result<Vec<_>, _>>()
            })()
            .map_err(failed);
            Done::Claimed(reply, result)
        }
        Command::Ack(seq, reply) => {
            let result = tx
                .execute("DELETE FROM queue WHERE seq = ?1", [seq])
                .map(|_| ())
                .map_err(failed);
            Done::Unit(reply, result)
        }
        Command::Retry {
            seq,
            error,
            available_at,
            dead,
            reply,
        } => {
            let result = tx
                .execute(
                    "UPDATE queue SET available_at = ?2, last_error = ?3, state = ?4, leased = 0 WHERE seq = ?1",
                    params![seq, available_at, error, if dead { "dead" } else { "queued" }],
                )
                .map(|_| ())
                .map_err(failed);
            Done::Unit(reply, result)
        }
        Command::RecoverLeases(reply) => {
            let result = tx
                .execute(
                    "UPDATE queue SET leased = 0, available_at = 0 WHERE leased = 1",
                    [],
                )
                .map_err(failed);
            Done::Count(reply, result)
        }
        Command::Requeue {
            seqs,
            now_ms,
            reply,
        } => {
            let result = match seqs {
                None => tx.execute(
                    "UPDATE queue SET state = 'queued', attempts = 0, available_at = ?1 WHERE state = 'dead'",
                    [now_ms],
                ),
                Some(seqs) => seqs.iter().try_fold(0, |count, seq| {
                    tx.execute(
                        "UPDATE queue SET state = 'queued', attempts = 0, available_at = ?2 WHERE seq = ?1",
                        params![seq, now_ms],
                    )
                    .map(|n| count + n)
                }),
            }
            .map_err(failed);
            Done::Count(reply, result)
        }
    }
}

fn insert_event(tx: &Transaction<'_>, event: &EventItem) -> Result<PutOutcome, StoreError> {
    let (body, bucket, key) = match &event.body {
        StoredBody::Inline(bytes) => (Some(bytes.to_vec()), None, None),
        StoredBody::External { bucket, key } => (None, Some(bucket.clone()), Some(key.clone())),
    };
    let inserted = tx
        .execute(
            "INSERT INTO events (route, dedup_key, event_id, provider, event_type, received_at, test_ping,
                method, path, query, headers, source_ip, body_len, body_sha256, body, body_bucket, body_key,
                parts, records, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
             ON CONFLICT (route, dedup_key) DO NOTHING",
            params![
                event.route,
                event.dedup_key,
                event.event_id,
                event.provider,
                event.event_type,
                event.received_at_ms,
                event.test_ping,
                event.method,
                event.path,
                event.query,
                serde_json::to_string(&event.headers).unwrap_or_default(),
                event.source_ip,
                event.body_len as i64,
                event.body_sha256,
                body,
                bucket,
                key,
                event.parts.as_ref().map(|p| p.to_string()),
                serde_json::to_string(&event.records).unwrap_or_default(),
                event.expires_at,
            ],
        )
        .map_err(failed)?;
    Ok(if inserted == 1 {
        PutOutcome::Inserted
    } else {
        PutOutcome::Duplicate
    })
}

fn upsert_record(tx: &Transaction<'_>, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
    let (kind, number, text) = match &record.version {
        RecordVersion::Number(text) => ("n", text.parse::<f64>().ok(), text.clone()),
        RecordVersion::Text(text) => ("t", None, text.clone()),
    };
    // Same rule as the DynamoDB condition: write unless the stored version is newer, or of the other kind.
    let written = tx
        .execute(
            "INSERT INTO records (route, record_type, record_id, version_kind, version_num, version_text,
                data, deleted, event_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (route, record_type, record_id) DO UPDATE SET
                version_kind = excluded.version_kind, version_num = excluded.version_num,
                version_text = excluded.version_text, data = excluded.data, deleted = excluded.deleted,
                event_id = excluded.event_id, updated_at = excluded.updated_at
             WHERE records.version_kind = excluded.version_kind
               AND ((excluded.version_kind = 'n' AND excluded.version_num >= records.version_num)
                 OR (excluded.version_kind = 't' AND excluded.version_text >= records.version_text))",
            params![
                record.route,
                record.record_type,
                record.record_id,
                kind,
                number,
                text,
                record.data.to_string(),
                record.deleted,
                record.event_id,
                record.updated_at_ms,
            ],
        )
        .map_err(failed)?;
    Ok(if written == 1 {
        UpsertOutcome::Written
    } else {
        UpsertOutcome::Stale
    })
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

    async fn upsert_record(&self, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
        let record = Box::new(record.clone());
        self.call(|reply| Command::UpsertRecord(record, reply))
            .await
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

    async fn try_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        let changed = self
            .call(|reply| Command::LeaseToken {
                key,
                holder,
                now_ms,
                until_ms,
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

    fn record(version: RecordVersion, state: &str) -> RecordItem {
        RecordItem {
            route: "raw".into(),
            record_type: "order".into(),
            record_id: "1".into(),
            version,
            data: json!({ "state": state }),
            deleted: false,
            event_id: "e".into(),
            updated_at_ms: 1,
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
                .list_events(Some("raw".into()), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn records_are_newer_wins() {
        let store = LocalStore::open(&tempdir()).unwrap();
        let n = |v: &str| RecordVersion::Number(v.into());
        assert_eq!(
            store.upsert_record(&record(n("10"), "b")).await.unwrap(),
            UpsertOutcome::Written
        );
        assert_eq!(
            store.upsert_record(&record(n("9"), "a")).await.unwrap(),
            UpsertOutcome::Stale
        );
        assert_eq!(
            store.upsert_record(&record(n("10"), "b2")).await.unwrap(),
            UpsertOutcome::Written
        );
        assert_eq!(
            store
                .upsert_record(&record(RecordVersion::Text("z".into()), "t"))
                .await
                .unwrap(),
            UpsertOutcome::Stale,
            "a text version never replaces a numeric one"
        );
        let stored = store
            .get_record("raw", "order", "1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.data["state"], "b2");
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
            .retry(claimed[0].seq, "boom".into(), 0, true)
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
        assert_eq!(store.requeue(None, 0).await.unwrap(), 1);
        let again = store.claim(10, 1, 1000).await.unwrap();
        assert_eq!(again.len(), 1);
        store.ack(again[0].seq).await.unwrap();
        assert!(store.queue_entries().await.unwrap().is_empty());
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
}
