//! The store's schema, versioned with `PRAGMA user_version`: each migration runs once, in order,
//! when a store is opened; a store written by a newer hookcatch is refused, never guessed at.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Version 1: the schema of every store created before versioning (its tables were created "if
/// not exists", so an unversioned store takes this migration as a no-op and is then version 1).
pub(super) const V1: &str = "
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

/// Every migration, oldest first. Add one at the end for a schema change, never edit one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3)])
}

/// Version 2: the provider's delivery id beside the dedup key (which became a digest for providers
/// that sign no id), found by route.
pub(super) const V2: &str = "
ALTER TABLE events ADD COLUMN delivery_id TEXT;
CREATE INDEX events_by_delivery ON events (route, delivery_id) WHERE delivery_id IS NOT NULL;
";

/// Version 3: what the console filters by, newest first: a route, an event type, an event id.
pub(super) const V3: &str = "
CREATE INDEX events_by_route ON events (route, received_at);
CREATE INDEX events_by_type ON events (event_type, received_at);
CREATE INDEX events_by_id ON events (event_id);
";

/// Brings the store at `conn` to the newest schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(conn)
}

/// The schema version this build writes.
pub const LATEST: usize = 3;

/// Why the store in a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the local store at {path}: {source}")]
pub struct OpenError {
    pub(super) path: String,
    pub(super) source: StoreOpenFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreOpenFailure {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Files(#[from] std::io::Error),
    /// Includes a store written by a newer hookcatch (its schema version is ahead of this build's).
    #[error("its schema cannot be brought to version {latest}: {0}", latest = LATEST)]
    Schema(rusqlite_migration::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_valid_and_end_at_the_latest_version() {
        migrations().validate().unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, LATEST as i64);
    }
}
