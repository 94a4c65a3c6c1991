//! Floor 4: where the console reads and acts, over either home: this machine's store with `serve`
//! (`local.rs`) or a deployed stack (`stack.rs`). A read or action on "a deployment" is written
//! once per home here, and each console page is one handler over [`Source`].
//!
//! A source returns views (`EventView`, `RecordItem`, `DeadView`, `RefusalView`), never pages:
//! only `console/` builds pages. What only one home can do is said by the source (`live`, the
//! replay progress), and the pages say it to the user.

pub mod local;
pub mod stack;

use async_trait::async_trait;
use hookcatch::ports::{EventStore, RecordItem};

pub use crate::store::EventFilter;
use crate::views::{EventView, LoggedRefusal};

/// The list's status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    All,
    Stored,
    /// Queued or retrying.
    Queued,
    Dead,
}

/// What the events list asks for: its filters and, after the first page, where the last one ended.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub filter: EventFilter,
    pub status: Status,
    /// A stored event's cursor, or a queue sequence number; `None` on the first page.
    pub after: Option<String>,
}

/// Where a stack's event sits in the event index: what its detail link carries, so that the
/// detail is one Query and one read instead of a Scan. A local source has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub route: String,
    pub stored_ms: i64,
}

impl IndexEntry {
    /// What a detail link adds after `/events/{id}`.
    pub fn link_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::for_suffix(String::from("?"), 1);
        query.append_pair("route", &self.route);
        query.append_pair("stored", &self.stored_ms.to_string());
        query.finish()
    }
}

/// One event of a list, and where a stack's index holds it.
pub struct Listed {
    pub view: EventView,
    pub at: Option<IndexEntry>,
}

/// One page of the events list and where the next one starts.
pub struct EventsPage {
    pub events: Vec<Listed>,
    pub next: Option<String>,
}

/// A dead letter as the dead page lists it.
pub struct DeadView {
    /// The local queue's sequence number (a stack's DLQ has none: 0).
    pub seq: i64,
    pub view: EventView,
    pub attempts: String,
    pub last_error: String,
}

/// A refused request, from `serve`'s memory or a route function's log.
pub enum RefusalView {
    Served(crate::refusals::Refusal),
    Logged(LoggedRefusal),
}

/// Why a read failed: a refusal to say as it is (a bad filter, a list a home cannot show), or a
/// failed read of the home, which the page prefixes with what was being read.
#[derive(Debug)]
pub enum SourceError {
    Said(String),
    Failed(String),
}

/// What an action did: whether it worked, and what to tell the user.
pub type Outcome = (bool, String);

/// Where the console reads and acts.
#[async_trait]
pub trait Source: Send + Sync {
    /// What the console's header names: "serve · .hookcatch", "stack X · table Y".
    fn label(&self) -> &str;
    /// What a failed read names: "store" or "stack".
    fn reads(&self) -> &'static str;
    /// The routes the list offers (and, on a stack, reads when none is chosen).
    fn routes(&self) -> Vec<String>;
    /// Whether the list follows new events by itself (locally) or is read on each load.
    fn live(&self) -> bool;
    /// One page of the events list.
    async fn events(&self, query: &EventQuery) -> Result<EventsPage, SourceError>;
    /// An event by id (`at`: where a detail link says it is); `Ok(None)` when there is none.
    async fn event(&self, id: &str, at: Option<&IndexEntry>) -> Result<Option<EventView>, String>;
    /// Where an event is looked for, as the detail page says it was not found there.
    fn looked_in(&self) -> &'static str;
    /// Where the home's events and records are stored.
    fn store(&self) -> &dyn EventStore;
    /// A record as stored now.
    async fn record(&self, route: &str, record_type: &str, id: &str) -> Option<RecordItem> {
        self.store()
            .get_record(route, record_type, id)
            .await
            .ok()
            .flatten()
    }
    /// The records the route's (or every route's) events last wrote, the `limit` most recent.
    async fn records(
        &self,
        route: Option<String>,
        record_type: Option<String>,
        limit: usize,
    ) -> Result<Vec<(RecordItem, Option<IndexEntry>)>, String>;
    /// Where Resend posts for `route`, when it is known.
    fn route_url(&self, route: &str) -> Option<String>;
    /// Replay: the consumer again, with the route's current rules (`Err`: why it did not run).
    async fn replay(&self, id: &str, at: Option<&IndexEntry>) -> Result<Outcome, String>;
    /// Resend: the request to the route again, re-signed, through verification.
    async fn resend(&self, id: &str, at: Option<&IndexEntry>) -> Result<Outcome, String>;
    /// The dead letters, and what the dead page says of them.
    async fn dead_letters(&self) -> Result<Vec<DeadView>, String>;
    fn dead_intro(&self) -> &'static str;
    /// Whether one dead letter can be replayed alone (a local queue entry), or only all at once.
    fn replays_one_dead_letter(&self) -> bool;
    /// Dead letters back in the queue (`seq`: one of them): what to say on the dead page, or a
    /// failure that ends in an error page.
    async fn requeue_dead(&self, seq: Option<i64>) -> Result<String, RequeueFailed>;
    /// Where the last requeue stands, when a home can tell.
    async fn replay_progress(&self) -> Result<Option<String>, String>;
    /// The refusals and what the page says of where they come from.
    async fn refusals(&self) -> Result<(String, Vec<RefusalView>), String>;
}

/// What a detail page says when the event `id` is not in `source`.
pub fn no_event(source: &dyn Source, id: &str) -> String {
    format!(
        "No event `{id}` {} (it may have expired).",
        source.looked_in()
    )
}

/// A requeue that could not run at all (a 500 page), as opposed to one that said why it moved
/// nothing (on the dead page).
#[derive(Debug)]
pub struct RequeueFailed(pub String);
