//! `hookcatch records list|get`: the records events produced, from this machine's store or a
//! deployed stack.

use anyhow::Context;
use clap::Subcommand;
use hookcatch::ports::EventStore;

use super::args::{Home, OutputArgs, StoreArgs, index_error, listing_window};
use crate::term::json_text;
use crate::views::{record_json, records_table};

#[derive(Subcommand)]
pub enum RecordsCommand {
    List {
        #[arg(long)]
        route: Option<String>,
        #[arg(long = "type")]
        record_type: Option<String>,
        /// Only records last written since this RFC 3339 time or duration back (15m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only records last written before this RFC 3339 time or duration back.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// With --aws --route: the next (older) page, from the cursor the previous page printed.
        #[arg(long, requires_all = ["aws", "route"])]
        after: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    Get {
        #[arg(long)]
        route: String,
        #[arg(long = "type")]
        record_type: String,
        #[arg(long)]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: RecordsCommand) -> anyhow::Result<()> {
    match command {
        RecordsCommand::List {
            route,
            record_type,
            since,
            until,
            limit,
            after,
            output,
            store,
        } => {
            let (since_ms, until_ms) = listing_window(
                "records",
                after.as_deref(),
                since.as_deref(),
                until.as_deref(),
            )?;
            let records = match Home::open(&store).await? {
                Home::Local(local) => {
                    local
                        .list_records(route, record_type, since_ms, until_ms, limit)
                        .await?
                }
                // The records a route's events last wrote, from the event index.
                Home::Aws(table) => match &route {
                    Some(route) => {
                        let page = table
                            .query_records(
                                route,
                                record_type.as_deref(),
                                since_ms,
                                until_ms,
                                limit,
                                after.as_deref(),
                            )
                            .await
                            .map_err(|e| index_error(&e))?;
                        if let Some(next) = &page.next {
                            eprintln!("older records: add --after {next}");
                        }
                        page.records.into_iter().map(|(record, _)| record).collect()
                    }
                    None => {
                        eprintln!(
                            "scanning the whole table (slow, and billed per item read): \
                             --route R queries the event index instead"
                        );
                        let mut records = table.scan_records(None, record_type.as_deref()).await?;
                        records.retain(|r| {
                            since_ms.is_none_or(|s| r.updated_at_ms >= s)
                                && until_ms.is_none_or(|u| r.updated_at_ms < u)
                        });
                        records.truncate(limit);
                        records
                    }
                },
            };
            if output.json {
                for record in &records {
                    println!("{}", json_text(&record_json(record), false));
                }
            } else {
                println!("{}", records_table(&records));
            }
            Ok(())
        }
        RecordsCommand::Get {
            route,
            record_type,
            id,
            store,
        } => {
            let record = match Home::open(&store).await? {
                Home::Local(local) => local.get_record(&route, &record_type, &id).await,
                Home::Aws(table) => table.get_record(&route, &record_type, &id).await,
            }?
            .with_context(|| format!("no {record_type} record {id} on route {route}"))?;
            println!("{}", json_text(&record_json(&record), true));
            Ok(())
        }
    }
}
