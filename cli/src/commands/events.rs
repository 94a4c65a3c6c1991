//! `hookcatch events list|show`: received events, from this machine's store or a deployed stack.

use anyhow::Context;
use clap::Subcommand;

use super::args::{Home, OutputArgs, StoreArgs, index_error, listing_window};
use crate::term::json_text;
use crate::views::{EventView, events_table};

#[derive(Subcommand)]
pub enum EventsCommand {
    List {
        #[arg(long)]
        route: Option<String>,
        /// Only events of this type (the route's `event_type`).
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only events received since this RFC 3339 time or duration back (15m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only events received before this RFC 3339 time or duration back.
        #[arg(long)]
        until: Option<String>,
        /// Only the events the provider delivered under this id (`X-GitHub-Delivery`, …).
        #[arg(long)]
        delivery: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// With --aws --route: the next (older) page, from the cursor the previous page printed.
        #[arg(long, requires_all = ["aws", "route"])]
        after: Option<String>,
        /// With --aws: list the dead-letter queue's messages too (stack output
        /// DeadLetterQueueUrl), leaving them where they are.
        #[arg(long, env = "HOOKCATCH_DLQ_URL")]
        dlq_url: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    Show {
        /// The event id (returned to the sender as `id`).
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            route,
            event_type,
            since,
            until,
            delivery,
            limit,
            after,
            dlq_url,
            output,
            store,
        } => {
            let (since_ms, until_ms) = listing_window(
                "events",
                after.as_deref(),
                since.as_deref(),
                until.as_deref(),
            )?;
            let mut views: Vec<EventView> = match Home::open(&store).await? {
                Home::Local(local) => {
                    let mut views: Vec<EventView> = local
                        .queue_entries()
                        .await?
                        .iter()
                        .filter_map(EventView::from_queue)
                        .collect();
                    let stored = match &delivery {
                        Some(delivery) => {
                            local
                                .find_events_by_delivery(route.clone(), delivery.clone())
                                .await
                        }
                        // The console's own read: the type is filtered before the limit.
                        None => local
                            .browse_events(
                                crate::store::EventFilter {
                                    route: route.clone(),
                                    event_type: event_type.clone(),
                                    since_ms,
                                    until_ms,
                                },
                                None,
                                limit,
                            )
                            .await
                            .map(|page| page.into_iter().map(|(event, _)| event).collect()),
                    }?;
                    views.extend(stored.into_iter().map(EventView::from_stored));
                    views
                }
                Home::Aws(table) => {
                    let mut views: Vec<EventView> = match (&route, &delivery) {
                        // A route's events from the event index, a page at a time.
                        (Some(route), None) => {
                            let page = table
                                .query_events(route, since_ms, until_ms, limit, after.as_deref())
                                .await
                                .map_err(|e| index_error(&e))?;
                            if let Some(next) = &page.next {
                                eprintln!("older events: add --after {next}");
                            }
                            page.events
                                .into_iter()
                                .map(|(event, _)| EventView::from_stored(event))
                                .collect()
                        }
                        _ => {
                            eprintln!(
                                "scanning the whole table (slow, and billed per item read): \
                             --route R without --delivery queries the event index instead"
                            );
                            table
                                .scan_events(route.as_deref(), None)
                                .await?
                                .into_iter()
                                .map(EventView::from_stored)
                                .collect()
                        }
                    };
                    // Dead letters join the first page, as locally; queued messages are not
                    // listed (SQS cannot show a message without receiving it).
                    if let (Some(dlq_url), None) = (&dlq_url, &after) {
                        let sdk = crate::stack::sdk().await?;
                        let letters =
                            crate::stack::sqs::peek_dead_letters(&sdk, dlq_url, limit).await?;
                        views.extend(letters.iter().filter_map(EventView::from_dead_letter));
                    }
                    views
                }
            };
            views.retain(|v| {
                route.as_ref().is_none_or(|r| &v.route == r)
                    && event_type
                        .as_ref()
                        .is_none_or(|t| v.event_type.as_ref() == Some(t))
                    && since_ms.is_none_or(|s| v.received_at_ms >= s)
                    && until_ms.is_none_or(|u| v.received_at_ms < u)
                    && delivery
                        .as_ref()
                        .is_none_or(|d| v.delivery_id.as_ref() == Some(d))
            });
            views.sort_by_key(|v| std::cmp::Reverse(v.received_at_ms));
            views.truncate(limit);
            if output.json {
                for view in &views {
                    println!("{}", json_text(&view.to_json(), false));
                }
            } else {
                println!("{}", events_table(&views));
            }
            Ok(())
        }
        EventsCommand::Show { id, store } => {
            let found = match Home::open(&store).await? {
                Home::Local(local) => match local.find_event_by_id(id.clone()).await? {
                    Some(event) => Some(EventView::from_stored(event)),
                    None => local
                        .queue_entries()
                        .await?
                        .iter()
                        .filter_map(EventView::from_queue)
                        .find(|v| v.id == id),
                },
                Home::Aws(table) => table
                    .scan_events(None, Some(&id))
                    .await?
                    .into_iter()
                    .next()
                    .map(EventView::from_stored),
            };
            let view = found.with_context(|| format!("no event with id {id}"))?;
            println!("{}", json_text(&view.to_json(), true));
            Ok(())
        }
    }
}
