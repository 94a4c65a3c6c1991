//! A deployed stack's home, read on the user's machine with their own AWS credentials (nothing of
//! it is deployed or public).
//!
//! Where each read goes: stored events to the event index (a Query per route and shard, never a
//! Scan for a list), records through the same index (those its events last wrote), an event's
//! detail to its index entry, dead letters to the DLQ (received with a zero visibility timeout, so
//! listing moves nothing), refusals to the route functions' logs. Queued events are not listed:
//! SQS cannot show a message without taking it from the consumer. Replay sends to the events
//! queue; Resend posts to the route's Function URL, signed with its deployed secrets from SSM.

use async_trait::async_trait;
use hookcatch::aws::DynamoStore;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::config::SsmLayout;
use hookcatch::ports::{EventItem, EventStore, RecordItem, StoreError};

use super::local::PAGE;
use super::{
    DeadView, EventQuery, EventsPage, IndexEntry, Listed, Outcome, RefusalView, RequeueFailed,
    Source, SourceError, Status,
};
use crate::views::EventView;

/// The stack the console reads, as flags or environment variables name it.
pub struct StackContext {
    pub sdk: aws_config::SdkConfig,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub layout: SsmLayout,
    /// The route functions' log groups, for the refusals.
    pub log_groups: Vec<String>,
    /// The routes the list reads when none is chosen (the deployed ones, from hookcatch.toml).
    pub routes: Vec<String>,
    /// Each route's Function URL (stack Outputs, or `--route-url`), where Resend posts.
    pub route_urls: std::collections::BTreeMap<String, String>,
}

pub struct StackSource {
    context: StackContext,
    store: DynamoStore,
    label: String,
}

/// An event by id: stored (by its index entry when the link names it, else by Scan), or dead.
enum Found {
    Stored(Box<EventItem>),
    Dead(Box<EventView>),
}

fn failed(error: impl std::fmt::Display) -> String {
    format!("Reading the stack failed: {error}")
}

/// A failed read of the event index, with the one cause a deployer can fix.
fn no_index(error: StoreError) -> String {
    format!("{error} (a stack deployed with EventIndex=off has no event index)")
}

impl StackSource {
    pub fn new(context: StackContext) -> StackSource {
        StackSource {
            store: crate::stack::store(&context.sdk, &context.table),
            label: format!("stack {} · table {}", context.layout.stack(), context.table),
            context,
        }
    }

    /// The DLQ's messages as events, left in place.
    async fn dead_views(&self) -> Result<Vec<EventView>, String> {
        let letters =
            crate::stack::sqs::peek_dead_letters(&self.context.sdk, &self.context.dlq_url, 1000)
                .await
                .map_err(|e| e.to_string())?;
        Ok(letters
            .iter()
            .filter_map(EventView::from_dead_letter)
            .collect())
    }

    async fn find(&self, id: &str, at: Option<&IndexEntry>) -> Result<Option<Found>, String> {
        let stored = match at {
            Some(at) => self
                .store
                .event_by_index_entry(&at.route, at.stored_ms, id)
                .await
                .map_err(|e| failed(e.to_string()))?,
            // A link without its index entry (pasted, or from a dead letter) is looked up among
            // the dead letters only: a Scan costs the whole table, and a page of another site
            // must never be able to start one (`events show ID --aws` scans, on purpose).
            None => None,
        };
        if let Some(event) = stored {
            return Ok(Some(Found::Stored(Box::new(event))));
        }
        Ok(self
            .dead_views()
            .await
            .map_err(failed)?
            .into_iter()
            .find(|view| view.id == id)
            .map(|view| Found::Dead(Box::new(view))))
    }

    /// The stored event an action takes, or what to say instead.
    async fn stored(&self, id: &str, at: Option<&IndexEntry>) -> Result<EventItem, String> {
        match self.find(id, at).await? {
            Some(Found::Stored(event)) => Ok(*event),
            Some(Found::Dead(_)) => Err(
                "A dead letter is replayed from the dead letters page (the DLQ's redrive).".into(),
            ),
            None => Err(super::no_event(self, id)),
        }
    }
}

#[async_trait]
impl Source for StackSource {
    fn label(&self) -> &str {
        &self.label
    }

    fn reads(&self) -> &'static str {
        "stack"
    }

    fn routes(&self) -> Vec<String> {
        self.context.routes.clone()
    }

    fn live(&self) -> bool {
        false
    }

    /// Dead letters lead the first page of "all" (as locally); stored events come from the index,
    /// every chosen route's newest first, merged by stored time. The cursor is the last entry's
    /// index sort key (`{stored ms}#{id}`), which orders the same across routes.
    async fn events(&self, query: &EventQuery) -> Result<EventsPage, SourceError> {
        let filter = &query.filter;
        let matches = |view: &EventView| {
            filter.route.as_ref().is_none_or(|r| &view.route == r)
                && filter
                    .event_type
                    .as_ref()
                    .is_none_or(|t| view.event_type.as_ref() == Some(t))
                && filter.since_ms.is_none_or(|s| view.received_at_ms >= s)
                && filter.until_ms.is_none_or(|u| view.received_at_ms < u)
        };
        let first_page = query.after.is_none();
        let mut events = Vec::new();
        match query.status {
            Status::Queued => {
                return Err(SourceError::Said(
                    "Queued events are not listed on AWS: SQS cannot show a message without \
                     taking it from the consumer for a while. Stored and dead ones are."
                        .into(),
                ));
            }
            Status::Dead | Status::All if first_page => {
                let mut dead = self.dead_views().await.map_err(SourceError::Said)?;
                dead.retain(|view| matches(view));
                dead.sort_by_key(|view| std::cmp::Reverse(view.received_at_ms));
                events.extend(dead.into_iter().map(|view| Listed { view, at: None }));
                if query.status == Status::Dead {
                    return Ok(EventsPage { events, next: None });
                }
            }
            Status::Dead => return Ok(EventsPage { events, next: None }),
            _ => {}
        }
        let after = query
            .after
            .as_deref()
            .filter(|after| hookcatch::aws::is_cursor(after));
        let routes = match &filter.route {
            Some(route) => vec![route.clone()],
            None => self.context.routes.clone(),
        };
        // Every route's page at once: the console waits for the slowest route, not for their sum.
        let pages = futures::future::try_join_all(routes.iter().map(|route| {
            self.store
                .query_events(route, filter.since_ms, filter.until_ms, PAGE, after)
        }))
        .await
        .map_err(|e| SourceError::Failed(no_index(e)))?;
        let mut stored: Vec<(i64, EventItem)> = Vec::new();
        let mut more = false;
        for page in pages {
            more |= page.next.is_some();
            stored.extend(page.events.into_iter().map(|(event, ms)| (ms, event)));
        }
        stored.sort_by(|a, b| (b.0, &b.1.event_id).cmp(&(a.0, &a.1.event_id)));
        more |= stored.len() > PAGE;
        stored.truncate(PAGE);
        let next = more
            .then(|| {
                stored
                    .last()
                    .map(|(ms, event)| hookcatch::aws::index_sort_key(*ms, &event.event_id))
            })
            .flatten();
        for (stored_ms, event) in stored {
            let view = EventView::from_stored(event);
            if matches(&view) {
                let at = IndexEntry {
                    route: view.route.clone(),
                    stored_ms,
                };
                events.push(Listed { view, at: Some(at) });
            }
        }
        Ok(EventsPage { events, next })
    }

    async fn event(&self, id: &str, at: Option<&IndexEntry>) -> Result<Option<EventView>, String> {
        Ok(self.find(id, at).await?.map(|found| match found {
            Found::Stored(event) => EventView::from_stored(*event),
            Found::Dead(view) => *view,
        }))
    }

    fn looked_in(&self) -> &'static str {
        "in the stack's table or its DLQ (a link without `?route=…&stored=…` is looked up in the \
         DLQ only, since the console never scans the table: `hookcatch events show ID --aws` does)"
    }

    fn store(&self) -> &dyn EventStore {
        &self.store
    }

    /// Through the event index: those the chosen route's (or every route's) events last wrote,
    /// merged by when they were written.
    async fn records(
        &self,
        route: Option<String>,
        record_type: Option<String>,
        limit: usize,
    ) -> Result<Vec<(RecordItem, Option<IndexEntry>)>, String> {
        let routes = match route {
            Some(route) => vec![route],
            None => self.context.routes.clone(),
        };
        let pages = futures::future::try_join_all(routes.iter().map(|route| {
            self.store
                .query_records(route, record_type.as_deref(), None, None, limit, None)
        }))
        .await
        .map_err(|error| failed(no_index(error)))?;
        let mut records: Vec<_> = pages.into_iter().flat_map(|page| page.records).collect();
        records.sort_by_key(|(record, _)| std::cmp::Reverse(record.updated_at_ms));
        records.truncate(limit);
        Ok(records
            .into_iter()
            .map(|(record, stored_ms)| {
                let at = IndexEntry {
                    route: record.route.clone(),
                    stored_ms,
                };
                (record, Some(at))
            })
            .collect())
    }

    fn route_url(&self, route: &str) -> Option<String> {
        self.context
            .route_urls
            .get(route)
            .map(|url| url.trim_end_matches('/').to_owned())
    }

    /// Its message rebuilt with the route's deployed configuration from SSM, sent to the events
    /// queue, where the consumer function replaces it and applies the rules.
    async fn replay(&self, id: &str, at: Option<&IndexEntry>) -> Result<Outcome, String> {
        let event = self.stored(id, at).await?;
        let context = &self.context;
        let summary = crate::stack::replay::replay_on_stack(
            &context.sdk,
            &context.queue_url,
            &context.layout,
            &event,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok((
            true,
            format!("{summary}: the consumer function stores it in a moment."),
        ))
    }

    /// Its request posted to the route's Function URL, signed with the route's deployed secrets,
    /// through verification like any delivery.
    async fn resend(&self, id: &str, at: Option<&IndexEntry>) -> Result<Outcome, String> {
        let event = self.stored(id, at).await?;
        let context = &self.context;
        let url = context
            .route_urls
            .get(&event.route)
            .ok_or_else(|| format!("route `{}` has no known Function URL", event.route))?;
        let resent =
            crate::stack::replay::resend_on_stack(&context.sdk, &context.layout, event, url)
                .await
                .map_err(|e| e.to_string())?;
        Ok(((200..300).contains(&resent.status), resent.summary(id)))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadView>, String> {
        let letters =
            crate::stack::sqs::peek_dead_letters(&self.context.sdk, &self.context.dlq_url, 1000)
                .await
                .map_err(failed)?;
        Ok(letters
            .iter()
            .filter_map(|letter| {
                Some(DeadView {
                    seq: 0,
                    view: EventView::from_dead_letter(letter)?,
                    attempts: letter.receives.map(|n| n.to_string()).unwrap_or_default(),
                    last_error: "in the consumer function's log".into(),
                })
            })
            .collect())
    }

    fn dead_intro(&self) -> &'static str {
        "Messages the consumer function failed `MaxReceiveCount` times, in the stack's \
         dead-letter queue. Listing them leaves them there (each is received with a zero \
         visibility timeout; the attempts column counts those receives too). Replay all \
         moves every message back to the events queue: receive, send, then delete, so an \
         interruption can only duplicate, which the consumer absorbs. Fix the cause first."
    }

    fn replays_one_dead_letter(&self) -> bool {
        false
    }

    /// The whole DLQ back to the events queue (SQS moves a queue, not one message).
    async fn requeue_dead(&self, _seq: Option<i64>) -> Result<String, RequeueFailed> {
        let context = &self.context;
        Ok(
            match crate::stack::sqs::redrive(
                &context.sdk,
                &context.dlq_url,
                &context.queue_url,
                &indicatif::ProgressBar::hidden(),
            )
            .await
            {
                Ok(moved) => format!(
                    "{moved} message(s) moved back to the events queue: the consumer function \
                     takes them now; watch them arrive on the events page."
                ),
                Err(error) => error.to_string(),
            },
        )
    }

    async fn replay_progress(&self) -> Result<Option<String>, String> {
        Ok(None)
    }

    async fn refusals(&self) -> Result<(String, Vec<RefusalView>), String> {
        let context = &self.context;
        let since = SystemClock.now_ms() - 24 * 3_600_000;
        let refusals =
            crate::stack::logs::refusals_from_logs(&context.sdk, &context.log_groups, since, 500)
                .await
                .map_err(failed)?;
        let groups = if context.log_groups.is_empty() {
            "no log group was found: start the console with --stack (through `sam`) or --log-group"
                .to_owned()
        } else {
            format!("{} log group(s)", context.log_groups.len())
        };
        let intro = format!(
            "The last day's requests the route functions refused (401, 403, 405, 413, 431, 429), \
             newest first, at most 500, from the WARN line each function logs per refusal \
             ({groups}). Nothing a stranger sends is stored in the table; headers and bodies are \
             not logged."
        );
        Ok((
            intro,
            refusals.into_iter().map(RefusalView::Logged).collect(),
        ))
    }
}
