//! The console's reads: events by route, type, status and time with a cursor, the queue's pending
//! and dead entries, and a marker that changes whenever something arrives or moves.

use hookcatch::ports::{EventItem, StoreError};
use rusqlite::params;

use super::{LocalStore, QueueEntry, event_from_row};

/// Which stored events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub route: Option<String>,
    pub event_type: Option<String>,
    /// Received at or after (ms).
    pub since_ms: Option<i64>,
    /// Received before (ms).
    pub until_ms: Option<i64>,
}

/// Where a page of stored events ends: the next page starts strictly after it (older).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub received_at_ms: i64,
    /// The event's rowid, to order events received in the same millisecond.
    pub row: i64,
}

impl Cursor {
    pub fn to_text(self) -> String {
        format!("{}.{}", self.received_at_ms, self.row)
    }

    pub fn parse(text: &str) -> Option<Cursor> {
        let (at, row) = text.split_once('.')?;
        Some(Cursor {
            received_at_ms: at.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// What the queue holds for one state: `queued` (including retrying) or `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    Queued,
    Dead,
}

impl QueueState {
    fn as_str(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Dead => "dead",
        }
    }
}

pub(super) fn queue_entry(row: &rusqlite::Row<'_>) -> Result<QueueEntry, rusqlite::Error> {
    Ok(QueueEntry {
        seq: row.get(0)?,
        message: row.get(1)?,
        dead: row.get::<_, String>(2)? == "dead",
        attempts: row.get(3)?,
        last_error: row.get(4)?,
    })
}

impl LocalStore {
    /// Stored events, newest first, after `cursor` (older than it), with the cursor of the last.
    pub async fn browse_events(
        &self,
        filter: EventFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(EventItem, Cursor)>, StoreError> {
        self.read(move |conn| {
            // One shape per filter, so that SQLite picks the index that filter needs.
            let mut sql = String::from("SELECT rowid AS row_id, * FROM events WHERE 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(route) = filter.route {
                sql.push_str(" AND route = ?");
                values.push(route.into());
            }
            if let Some(event_type) = filter.event_type {
                sql.push_str(" AND event_type = ?");
                values.push(event_type.into());
            }
            if let Some(since) = filter.since_ms {
                sql.push_str(" AND received_at >= ?");
                values.push(since.into());
            }
            if let Some(until) = filter.until_ms {
                sql.push_str(" AND received_at < ?");
                values.push(until.into());
            }
            if let Some(cursor) = after {
                sql.push_str(" AND (received_at, rowid) < (?, ?)");
                values.push(cursor.received_at_ms.into());
                values.push(cursor.row.into());
            }
            sql.push_str(" ORDER BY received_at DESC, rowid DESC LIMIT ?");
            values.push((limit as i64).into());
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
                let cursor = Cursor {
                    received_at_ms: row.get("received_at")?,
                    row: row.get("row_id")?,
                };
                Ok((event_from_row(row)?, cursor))
            })?;
            rows.collect()
        })
        .await
    }

    /// Queue entries in `state`, newest first, older than `before_seq`.
    pub async fn browse_queue(
        &self,
        state: QueueState,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT seq, message, state, attempts, last_error FROM queue
                 WHERE state = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(
                params![state.as_str(), before_seq.unwrap_or(i64::MAX), limit as i64],
                queue_entry,
            )?;
            rows.collect()
        })
        .await
    }

    /// The queue entry of an event not stored yet (queued, retrying or dead), by event id.
    pub async fn queue_entry_of(&self, event_id: String) -> Result<Option<QueueEntry>, StoreError> {
        // Messages are JSON holding `"id":"<event id>"`; the id is checked again after parsing,
        // so a look-alike inside a body cannot stand in for it.
        let pattern = format!("%\"id\":\"{}\"%", event_id.replace(['%', '_', '\\'], ""));
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT seq, message, state, attempts, last_error FROM queue
                 WHERE message LIKE ?1 ESCAPE '\\' ORDER BY seq DESC LIMIT 50",
            )?;
            let rows = statement.query_map([pattern], queue_entry)?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await
        .map(|entries| {
            entries.into_iter().find(|entry| {
                hookcatch::Envelope::from_message(&entry.message).is_ok_and(|e| e.id == event_id)
            })
        })
    }

    /// Events stored per route since `since_ms` (the routes page's last hour).
    pub async fn stored_since_by_route(
        &self,
        since_ms: i64,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT route, COUNT(*) FROM events WHERE received_at >= ?1 GROUP BY route",
            )?;
            let rows = statement.query_map([since_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }

    /// Events stored per route and minute (`received_at / 60 000`) since `since_ms`.
    pub async fn stored_per_minute(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT route, received_at / 60000, COUNT(*) FROM events WHERE received_at >= ?1
                 GROUP BY route, received_at / 60000",
            )?;
            let rows = statement.query_map([since_ms], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
            rows.collect()
        })
        .await
    }

    /// Changes whenever an event is queued, stored, retried, dead-lettered or leaves the queue as a
    /// duplicate: what the console's live list polls (two indexed lookups and one pass over the
    /// queue, which is near empty when the worker keeps up).
    pub async fn change_marker(&self) -> Result<(i64, i64, i64), StoreError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT (SELECT IFNULL(MAX(rowid), 0) FROM events),
                        (SELECT IFNULL(MAX(seq), 0) FROM queue),
                        (SELECT COUNT(*) * 1000003 + IFNULL(SUM(state = 'dead'), 0) * 1009
                           + IFNULL(SUM(attempts), 0) FROM queue)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            received_at_ms: 1_795_374_237_000,
            row: 42,
        };
        assert_eq!(Cursor::parse(&cursor.to_text()), Some(cursor));
        for bad in ["", "1", "a.b", "1.", ".2", "1.2.3"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
