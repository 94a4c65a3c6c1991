//! The store's one writer thread: it takes whatever commands are waiting and commits them in one
//! transaction, delivering each result only after the commit.

use std::sync::mpsc;

use hookcatch::model::value::RecordVersion;
use hookcatch::ports::{
    CachedToken, EventItem, EventWrites, PutOutcome, RecordItem, StoreError, StoredBody,
    UpsertOutcome, WritesOutcome,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use super::{AtOnce, Claimed, Settlement};

/// Commands in one group commit are at most this many.
const MAX_GROUP: usize = 512;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Command {
    Enqueue(String, i64, Reply<()>),
    PutEvent(Box<EventItem>, Reply<PutOutcome>),
    ReplaceEvent(Box<EventItem>, Reply<()>),
    UpsertRecord(Box<RecordItem>, Reply<UpsertOutcome>),
    /// Each message's records and event (written over the stored one for a replay), every message
    /// in a savepoint of its own.
    StoreBatch(
        Vec<EventWrites>,
        Reply<Vec<Result<WritesOutcome, StoreError>>>,
    ),
    /// One event's writes planned at its acknowledgement, committed with it; when they fail, its
    /// message is queued instead with the error, for the worker to retry.
    StoreOrEnqueue {
        message: String,
        writes: Box<EventWrites>,
        now_ms: i64,
        reply: Reply<AtOnce>,
    },
    /// A worker's batch settled at once: acknowledged entries leave, failed ones wait or die.
    Settle(Vec<Settlement>, Reply<()>),
    Claim {
        limit: usize,
        now_ms: i64,
        lease_ms: i64,
        reply: Reply<Vec<Claimed>>,
    },
    /// Dead (or chosen) entries due again, attempts reset; replies with their sequence numbers.
    Requeue {
        seqs: Option<Vec<i64>>,
        now_ms: i64,
        reply: Reply<Vec<i64>>,
    },
    RecoverLeases(Reply<usize>),
    /// At most `limit` events past their expiry (received before `received_before_ms`, and
    /// `expires_at` before `now_s`) deleted; replies with how many.
    SweepExpired {
        received_before_ms: i64,
        now_s: i64,
        limit: usize,
        reply: Reply<usize>,
    },
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
    AtOnce(Reply<AtOnce>, Result<AtOnce, StoreError>),
    Count(Reply<usize>, Result<usize, StoreError>),
    Seqs(Reply<Vec<i64>>, Result<Vec<i64>, StoreError>),
    Batch(
        Reply<Vec<Result<WritesOutcome, StoreError>>>,
        Result<Vec<Result<WritesOutcome, StoreError>>, StoreError>,
    ),
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
            Done::AtOnce(r, v) => pass(r, v, commit),
            Done::Count(r, v) => pass(r, v, commit),
            Done::Seqs(r, v) => pass(r, v, commit),
            Done::Batch(r, v) => pass(r, v, commit),
        }
    }
}

pub(super) fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Failed(e.to_string())
}

pub(super) fn run_writer(mut conn: Connection, commands: mpsc::Receiver<Command>) {
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
        | Command::StoreToken(_, _, r)
        | Command::Settle(_, r)
        | Command::ReplaceEvent(_, r) => Done::Unit(r, error()),
        Command::StoreBatch(_, r) => Done::Batch(r, error()),
        Command::StoreOrEnqueue { reply, .. } => Done::AtOnce(reply, error()),
        Command::PutEvent(_, r) => Done::Put(r, error()),
        Command::UpsertRecord(_, r) => Done::Upsert(r, error()),
        Command::Claim { reply, .. } => Done::Claimed(reply, error()),
        Command::Requeue { reply, .. } => Done::Seqs(reply, error()),
        Command::RecoverLeases(reply)
        | Command::LeaseToken { reply, .. }
        | Command::SweepExpired { reply, .. } => Done::Count(reply, error()),
    }
}

fn execute(tx: &Transaction<'_>, command: Command) -> Done {
    match command {
        Command::Enqueue(message, now_ms, reply) => {
            Done::Unit(reply, enqueue(tx, &message, now_ms, None))
        }
        Command::StoreOrEnqueue {
            message,
            writes,
            now_ms,
            reply,
        } => {
            let result = match store_writes(tx, &writes) {
                Ok(outcome) => Ok(AtOnce::Stored(writes, outcome)),
                Err(error) => {
                    let error = error.to_string();
                    enqueue(tx, &message, now_ms, Some(&error))
                        .map(|()| AtOnce::Queued(writes, error))
                }
            };
            Done::AtOnce(reply, result)
        }
        Command::PutEvent(event, reply) => {
            Done::Put(reply, insert_event(tx, &event, Write::Insert))
        }
        Command::ReplaceEvent(event, reply) => {
            Done::Unit(reply, insert_event(tx, &event, Write::Replace).map(|_| ()))
        }
        Command::StoreBatch(batch, reply) => {
            let results = batch
                .iter()
                .map(|writes| store_writes(tx, writes))
                .collect();
            Done::Batch(reply, Ok(results))
        }
        Command::Settle(settled, reply) => Done::Unit(reply, settle(tx, &settled)),
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
                // In the index's order (due time, then arrival): ordering by seq alone sorted every
                // due entry of the backlog for each claim.
                let mut statement = tx.prepare_cached(
                    "UPDATE queue SET available_at = ?1, attempts = attempts + 1, leased = 1
                     WHERE seq IN (SELECT seq FROM queue WHERE state = 'queued' AND available_at <= ?2
                                   ORDER BY available_at, seq LIMIT ?3)
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
        Command::SweepExpired {
            received_before_ms,
            now_s,
            limit,
            reply,
        } => Done::Count(
            reply,
            sweep_expired(tx, received_before_ms, now_s, limit).map_err(failed),
        ),
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
            let result = (|| {
                let mut requeued = Vec::new();
                let (sql, chosen) = match &seqs {
                    None => (
                        "UPDATE queue SET state = 'queued', attempts = 0, available_at = ?1
                         WHERE state = 'dead' RETURNING seq",
                        None,
                    ),
                    Some(seqs) => (
                        "UPDATE queue SET state = 'queued', attempts = 0, available_at = ?1
                         WHERE seq IN (SELECT value FROM json_each(?2)) RETURNING seq",
                        Some(serde_json::to_string(seqs).unwrap_or_default()),
                    ),
                };
                let mut statement = tx.prepare(sql)?;
                let mut rows = match &chosen {
                    None => statement.query(params![now_ms])?,
                    Some(json) => statement.query(params![now_ms, json])?,
                };
                while let Some(row) = rows.next()? {
                    requeued.push(row.get(0)?);
                }
                Ok(requeued)
            })()
            .map_err(failed);
            Done::Seqs(reply, result)
        }
    }
}

fn enqueue(
    tx: &Transaction<'_>,
    message: &str,
    now_ms: i64,
    last_error: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO queue (message, available_at, enqueued_at, last_error) VALUES (?1, ?2, ?2, ?3)",
    )
    .and_then(|mut statement| statement.execute(params![message, now_ms, last_error]))
    .map(|_| ())
    .map_err(failed)
}

/// How an event meets a stored one with its route and dedup key.
#[derive(Clone, Copy, PartialEq)]
enum Write {
    /// Kept: the new one is a duplicate.
    Insert,
    /// Written over it: a replay.
    Replace,
}

fn insert_event(
    tx: &Transaction<'_>,
    event: &EventItem,
    write: Write,
) -> Result<PutOutcome, StoreError> {
    let (body, bucket, key) = match &event.body {
        StoredBody::Inline(bytes) => (Some(bytes.to_vec()), None, None),
        StoredBody::External { bucket, key } => (None, Some(bucket.clone()), Some(key.clone())),
    };
    let verb = match write {
        Write::Insert => "INSERT",
        // REPLACE deletes the old row and inserts: a new rowid, so the console lists the replay
        // by its received time as before.
        Write::Replace => "INSERT OR REPLACE",
    };
    let conflict = match write {
        Write::Insert => "ON CONFLICT (route, dedup_key) DO NOTHING",
        Write::Replace => "",
    };
    let inserted = tx
        .prepare_cached(&format!(
            "{verb} INTO events (route, dedup_key, event_id, provider, event_type, received_at, test_ping,
                method, path, query, headers, source_ip, body_len, body_sha256, body, body_bucket, body_key,
                parts, records, expires_at, delivery_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
             {conflict}"
        ))
        .and_then(|mut statement| statement.execute(params![
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
                event.delivery_id,
            ]))
        .map_err(failed)?;
    Ok(match (write, inserted) {
        (Write::Replace, _) => PutOutcome::Replaced,
        (Write::Insert, 1) => PutOutcome::Inserted,
        (Write::Insert, _) => PutOutcome::Duplicate,
    })
}

fn upsert_record(tx: &Transaction<'_>, record: &RecordItem) -> Result<UpsertOutcome, StoreError> {
    // The rule is decided in Rust ([`RecordItem::upsert_over`], exact decimals), inside the writer's
    // transaction: SQLite would compare numbers as REAL, and 2^53 + 1 would equal 2^53.
    let stored: Option<(String, String, i64)> = tx
        .prepare_cached(
            "SELECT version_kind, version_text, updated_at FROM records
             WHERE route = ?1 AND record_type = ?2 AND record_id = ?3",
        )
        .and_then(|mut statement| {
            statement
                .query_row(
                    params![record.route, record.record_type, record.record_id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
        })
        .map_err(failed)?;
    let outcome = match stored {
        None => UpsertOutcome::Written,
        Some((kind, text, updated_at_ms)) => {
            let version = if kind == "n" {
                RecordVersion::Number(text)
            } else {
                RecordVersion::Text(text)
            };
            record.upsert_over(&version, updated_at_ms)
        }
    };
    if outcome == UpsertOutcome::Stale {
        return Ok(outcome);
    }
    let (kind, number, text) = match &record.version {
        RecordVersion::Number(text) => ("n", text.parse::<f64>().ok(), text.clone()),
        RecordVersion::Text(text) => ("t", None, text.clone()),
    };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO records (route, record_type, record_id, version_kind, version_num,
            version_text, data, deleted, event_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
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
        ])
    })
    .map_err(failed)?;
    Ok(outcome)
}

/// One message's event and records inside a savepoint, so they commit together or not at all (a
/// message whose writes fail leaves nothing behind; the rest of the batch is kept). The event goes
/// first: a duplicate's records were written with the event it duplicates, and are not rewritten
/// (a record names the stored event that last wrote it).
fn store_writes(tx: &Transaction<'_>, writes: &EventWrites) -> Result<WritesOutcome, StoreError> {
    tx.execute_batch("SAVEPOINT message").map_err(failed)?;
    let result = (|| {
        let write = if writes.replay {
            Write::Replace
        } else {
            Write::Insert
        };
        let event = insert_event(tx, &writes.event, write)?;
        let records = match event {
            PutOutcome::Duplicate => Vec::new(),
            PutOutcome::Inserted | PutOutcome::Replaced => writes
                .records
                .iter()
                .map(|record| upsert_record(tx, record))
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(WritesOutcome { records, event })
    })();
    let end = if result.is_ok() {
        "RELEASE message"
    } else {
        "ROLLBACK TO message; RELEASE message"
    };
    tx.execute_batch(end).map_err(failed)?;
    result
}

fn settle(tx: &Transaction<'_>, settled: &[Settlement]) -> Result<(), StoreError> {
    let mut ack = tx
        .prepare_cached("DELETE FROM queue WHERE seq = ?1")
        .map_err(failed)?;
    let mut retry = tx
        .prepare_cached(
            "UPDATE queue SET available_at = ?2, last_error = ?3, state = ?4, leased = 0 WHERE seq = ?1",
        )
        .map_err(failed)?;
    for settlement in settled {
        match settlement {
            Settlement::Done { seq } => ack.execute([seq]),
            Settlement::Retry {
                seq,
                error,
                available_at,
                dead,
            } => retry.execute(params![
                seq,
                available_at,
                error,
                if *dead { "dead" } else { "queued" }
            ]),
        }
        .map_err(failed)?;
    }
    Ok(())
}

/// Deletes up to `limit` expired events, oldest first, found through the `received_at` index so
/// that one call costs its batch and not a scan of the table.
fn sweep_expired(
    tx: &Transaction<'_>,
    received_before_ms: i64,
    now_s: i64,
    limit: usize,
) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE received_at < ?1 \
         AND expires_at IS NOT NULL AND expires_at <= ?2 ORDER BY received_at LIMIT ?3)",
        params![
            received_before_ms,
            now_s,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
    )
}
