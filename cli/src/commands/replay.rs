//! `hookcatch replay`: dead letters re-queued (or the stack's DLQ redriven), or one stored event
//! run through the consumer again with its route's current rules.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hookcatch::clock::{Clock, SystemClock};

use super::args::{StoreArgs, open_local};
use crate::project::config::ConfigFile;

#[derive(Args)]
pub struct ReplayArgs {
    /// Queue sequence numbers to re-queue (see `events list --json`); default: every dead event.
    #[arg(conflicts_with = "event")]
    seqs: Vec<i64>,
    /// A stored event's id: replaced by itself, its records applied again (newer-wins). With
    /// --aws: the stack's event, with its route's deployed configuration.
    #[arg(long)]
    event: Option<String>,
    #[arg(long, default_value = "hookcatch.toml", requires = "event")]
    config: PathBuf,
    /// With --aws --event: the stack whose route configuration (SSM) the replay takes.
    #[arg(long, default_value = "hookcatch")]
    stack: String,
    /// With --aws: the dead-letter queue (stack output DeadLetterQueueUrl).
    #[arg(long, env = "HOOKCATCH_DLQ_URL")]
    dlq_url: Option<String>,
    /// With --aws: the events queue (stack output EventsQueueUrl).
    #[arg(long, env = "HOOKCATCH_QUEUE_URL")]
    queue_url: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

const NEEDS_QUEUE_URL: &str =
    "--aws needs --queue-url (stack output EventsQueueUrl) or HOOKCATCH_QUEUE_URL";

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let ReplayArgs {
        seqs,
        event,
        config,
        stack,
        dlq_url,
        queue_url,
        store,
    } = args;
    match (event, store.aws) {
        (Some(event_id), true) => {
            let table = store
                .table
                .context("--aws needs --table (stack output EventsTableName) or HOOKCATCH_TABLE")?;
            let queue_url = queue_url.context(NEEDS_QUEUE_URL)?;
            let layout = hookcatch::config::SsmLayout::new(&stack).map_err(anyhow::Error::msg)?;
            eprintln!("finding the event by scanning the table (billed per item read)");
            let sdk = crate::stack::sdk().await?;
            let summary = crate::stack::replay::replay_stored_event(
                &sdk, &table, &queue_url, &layout, &event_id,
            )
            .await?;
            println!("{summary}; the consumer function processes it from the queue");
        }
        (Some(event_id), false) => {
            let file = ConfigFile::load(&config)?;
            let summary =
                crate::replay::replay_event(&open_local(&store)?, &file, &event_id).await?;
            println!("{summary}; a running `hookcatch serve` processes it now");
        }
        (None, true) => {
            let dlq_url = dlq_url.context(
                "--aws needs --dlq-url (stack output DeadLetterQueueUrl) or HOOKCATCH_DLQ_URL",
            )?;
            let queue_url = queue_url.context(NEEDS_QUEUE_URL)?;
            let sdk = crate::stack::sdk().await?;
            let progress = match crate::stack::sqs::approximate_depth(&sdk, &dlq_url).await {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let moved = crate::stack::sqs::redrive(&sdk, &dlq_url, &queue_url, &progress).await;
            progress.finish_and_clear();
            println!(
                "moved {} message(s) from the DLQ back to the events queue",
                moved?
            );
        }
        (None, false) => {
            let store = open_local(&store)?;
            let chosen = (!seqs.is_empty()).then_some(seqs);
            let count = store.requeue(chosen, SystemClock.now_ms()).await?.len();
            println!("re-queued {count} event(s); a running `hookcatch serve` processes them now");
        }
    }
    Ok(())
}
