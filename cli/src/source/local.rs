//! This machine's home: `serve`'s store, its configuration and what it saw (refusals, handshakes).

use std::net::SocketAddr;

use async_trait::async_trait;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::ports::{EventStore, RecordItem};

use super::{
    DeadView, EventQuery, EventsPage, IndexEntry, Listed, Outcome, RefusalView, RequeueFailed,
    Source, SourceError, Status,
};
use crate::handshakes::Handshakes;
use crate::project::config::ConfigFile;
use crate::refusals::Refusals;
use crate::store::{Cursor, LocalStore, QueueState};
use crate::views::EventView;

/// Events on one page of the list.
pub const PAGE: usize = 50;

/// `serve`'s store, configuration and webhook address.
pub struct LocalSource {
    pub store: LocalStore,
    /// The requests `serve` refused lately.
    pub refusals: Refusals,
    /// The handshakes `serve` answered in the last hour.
    pub handshakes: Handshakes,
    /// The configuration `serve` started with; re-read from its file, when it has one (routes
    /// reload without a restart).
    config: ConfigFile,
    /// Where `serve` takes webhooks (Resend and a Test are sent there).
    hooks_addr: SocketAddr,
    label: String,
    routes: Vec<String>,
    /// The queue entries the last requeue put back, whose progress the dead page shows.
    last_replay: std::sync::Mutex<Vec<i64>>,
}

impl LocalSource {
    pub fn new(
        store: LocalStore,
        refusals: Refusals,
        handshakes: Handshakes,
        config: ConfigFile,
        hooks_addr: SocketAddr,
        data_dir: &str,
    ) -> LocalSource {
        LocalSource {
            routes: config.routes.iter().map(|r| r.name.clone()).collect(),
            store,
            refusals,
            handshakes,
            config,
            hooks_addr,
            label: format!("serve · {data_dir}"),
            last_replay: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The configuration as it is now (re-read from its file, which routes commands edit).
    pub fn config(&self) -> Result<ConfigFile, String> {
        match &self.config.source {
            Some(path) => ConfigFile::load(path).map_err(|e| e.to_string()),
            None => Ok(self.config.clone()),
        }
    }

    /// Where this `serve` takes `route`'s webhooks, which `[serve] addr` may not say (`--addr`,
    /// port 0).
    pub fn hook_url(&self, route: &str) -> String {
        format!("http://{}/hooks/{route}", self.hooks_addr)
    }
}

#[async_trait]
impl Source for LocalSource {
    fn label(&self) -> &str {
        &self.label
    }

    fn reads(&self) -> &'static str {
        "store"
    }

    fn routes(&self) -> Vec<String> {
        self.routes.clone()
    }

    fn live(&self) -> bool {
        true
    }

    async fn events(&self, query: &EventQuery) -> Result<EventsPage, SourceError> {
        let failed = |e: hookcatch::ports::StoreError| SourceError::Failed(e.to_string());
        let filter = &query.filter;
        let pending_matches = |view: &EventView| {
            filter.route.as_ref().is_none_or(|r| &view.route == r)
                && filter.event_type.is_none()
                && filter.since_ms.is_none_or(|s| view.received_at_ms >= s)
                && filter.until_ms.is_none_or(|u| view.received_at_ms < u)
        };
        let listed = |view: EventView| Listed { view, at: None };
        match query.status {
            Status::Queued | Status::Dead => {
                let state = if query.status == Status::Dead {
                    QueueState::Dead
                } else {
                    QueueState::Queued
                };
                let before = query.after.as_deref().and_then(|a| a.parse().ok());
                let entries = self
                    .store
                    .browse_queue(state, before, PAGE)
                    .await
                    .map_err(failed)?;
                let next = (entries.len() == PAGE)
                    .then(|| entries.last().map(|e| e.seq.to_string()))
                    .flatten();
                let events = entries
                    .iter()
                    .filter_map(EventView::from_queue)
                    .filter(|view| pending_matches(view))
                    .map(listed)
                    .collect();
                Ok(EventsPage { events, next })
            }
            Status::All | Status::Stored => {
                let mut pending = Vec::new();
                // Events not stored yet lead the first page of "all": normally a few, for a moment.
                if query.status == Status::All && query.after.is_none() {
                    for state in [QueueState::Dead, QueueState::Queued] {
                        let entries = self
                            .store
                            .browse_queue(state, None, PAGE)
                            .await
                            .map_err(failed)?;
                        pending.extend(
                            entries
                                .iter()
                                .filter_map(EventView::from_queue)
                                .filter(|view| pending_matches(view)),
                        );
                    }
                    pending.sort_by_key(|view| std::cmp::Reverse(view.received_at_ms));
                }
                let after = query.after.as_deref().and_then(Cursor::parse);
                let page = self
                    .store
                    .browse_events(filter.clone(), after, PAGE)
                    .await
                    .map_err(failed)?;
                let next = (page.len() == PAGE)
                    .then(|| page.last().map(|(_, cursor)| cursor.to_text()))
                    .flatten();
                let mut events: Vec<Listed> = pending.into_iter().map(listed).collect();
                events.extend(
                    page.into_iter()
                        .map(|(event, _)| listed(EventView::from_stored(event))),
                );
                Ok(EventsPage { events, next })
            }
        }
    }

    async fn event(&self, id: &str, _at: Option<&IndexEntry>) -> Result<Option<EventView>, String> {
        let failed = |error: hookcatch::ports::StoreError| error.to_string();
        Ok(
            match self
                .store
                .find_event_by_id(id.to_owned())
                .await
                .map_err(failed)?
            {
                Some(event) => Some(EventView::from_stored(event)),
                None => self
                    .store
                    .queue_entry_of(id.to_owned())
                    .await
                    .map_err(failed)?
                    .as_ref()
                    .and_then(EventView::from_queue),
            },
        )
    }

    fn looked_in(&self) -> &'static str {
        "in this store"
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    async fn records(
        &self,
        route: Option<String>,
        record_type: Option<String>,
        limit: usize,
    ) -> Result<Vec<(RecordItem, Option<IndexEntry>)>, String> {
        let records = self
            .store
            .list_records(route, record_type, None, None, limit)
            .await
            .map_err(|error| error.to_string())?;
        Ok(records.into_iter().map(|record| (record, None)).collect())
    }

    fn route_url(&self, route: &str) -> Option<String> {
        Some(self.hook_url(route))
    }

    async fn replay(&self, id: &str, _at: Option<&IndexEntry>) -> Result<Outcome, String> {
        let config = self.config()?;
        crate::replay::replay_event(&self.store, &config, id)
            .await
            .map(|summary| (true, format!("{summary}: reload in a moment to see it.")))
            .map_err(|e| e.to_string())
    }

    async fn resend(&self, id: &str, _at: Option<&IndexEntry>) -> Result<Outcome, String> {
        let config = self.config()?;
        let url = |route: &str| self.hook_url(route);
        let resent = crate::replay::resend_event(&self.store, &config, id, &url)
            .await
            .map_err(|e| e.to_string())?;
        Ok(((200..300).contains(&resent.status), resent.summary(id)))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadView>, String> {
        let entries = self
            .store
            .browse_queue(QueueState::Dead, None, 1000)
            .await
            .map_err(|error| error.to_string())?;
        Ok(entries
            .iter()
            .filter_map(|entry| {
                Some(DeadView {
                    seq: entry.seq,
                    view: EventView::from_queue(entry)?,
                    attempts: entry.attempts.to_string(),
                    last_error: entry.last_error.clone().unwrap_or_default(),
                })
            })
            .collect())
    }

    fn dead_intro(&self) -> &'static str {
        "Events the consumer gave up on after `max_attempts`. Replaying one puts it back \
         in the queue with its attempts reset: the worker tries it again at once (fix the \
         cause first, such as a hydrator's credentials). An event whose record was written \
         meanwhile is still stored once."
    }

    fn replays_one_dead_letter(&self) -> bool {
        true
    }

    async fn requeue_dead(&self, seq: Option<i64>) -> Result<String, RequeueFailed> {
        let seqs = seq.map(|seq| vec![seq]);
        let requeued = self
            .store
            .requeue(seqs, SystemClock.now_ms())
            .await
            .map_err(|error| RequeueFailed(error.to_string()))?;
        let said = format!(
            "{} event(s) back in the queue: watch them on the events page.",
            requeued.len()
        );
        *self.last_replay.lock().unwrap_or_else(|p| p.into_inner()) = requeued;
        Ok(said)
    }

    async fn replay_progress(&self) -> Result<Option<String>, String> {
        let replayed = self
            .last_replay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if replayed.is_empty() {
            return Ok(None);
        }
        let total = replayed.len();
        let (queued, dead) = self
            .store
            .queue_progress(replayed)
            .await
            .map_err(|e| e.to_string())?;
        let done = total - queued - dead;
        let state = if queued == 0 { "done" } else { "in progress" };
        Ok(Some(format!(
            "Last replay ({state}): {done} of {total} stored, {queued} still queued, {dead} dead again."
        )))
    }

    async fn refusals(&self) -> Result<(String, Vec<RefusalView>), String> {
        let intro = format!(
            "The last {} requests this serve refused (401, 403, 405, 413, 429), newest first, \
             kept in memory until it stops: why a sender's Test never arrived. Credential headers \
             and query keys are masked; bodies are not kept.",
            crate::refusals::KEPT
        );
        let rows = self
            .refusals
            .recent()
            .into_iter()
            .map(RefusalView::Served)
            .collect();
        Ok((intro, rows))
    }
}
