//! `hookcatch refusals --aws`: the requests the deployed route functions refused, from their logs.

use clap::Args;
use hookcatch::clock::{Clock, SystemClock};

use super::args::{ConfigArg, OutputArgs};
use crate::term::parse_time;
use crate::views::refusals_table;

#[derive(Args)]
pub struct RefusalsArgs {
    /// Read the stack's logs (required: `serve` keeps its refusals in memory only).
    #[arg(long, required = true)]
    aws: bool,
    /// The stack whose route functions' log groups are read (from its Outputs, through `sam`).
    #[arg(long, default_value = "hookcatch")]
    stack: String,
    /// A log group to read instead (repeatable): `/aws/lambda/FUNCTION`.
    #[arg(long = "log-group")]
    log_groups: Vec<String>,
    /// Only refusals since this RFC 3339 time or duration back (15m, 2h, 7d).
    #[arg(long, default_value = "1h")]
    since: String,
    #[arg(long)]
    route: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    project: ConfigArg,
}

pub async fn run(args: RefusalsArgs) -> anyhow::Result<()> {
    let since_ms =
        parse_time("--since", &args.since, SystemClock.now_ms()).map_err(anyhow::Error::msg)?;
    let log_groups = if args.log_groups.is_empty() {
        let outputs =
            crate::stack::sam::Sam::beside(&args.project.config).stack_outputs(&args.stack)?;
        crate::stack::logs::route_log_groups(&outputs)?
    } else {
        args.log_groups
    };
    let sdk = crate::stack::sdk().await?;
    // The route filter applies before the limit: read all, keep the route's.
    let mut refusals =
        crate::stack::logs::refusals_from_logs(&sdk, &log_groups, since_ms, usize::MAX).await?;
    refusals.retain(|r| args.route.as_ref().is_none_or(|name| &r.route == name));
    refusals.truncate(args.limit);
    if args.output.json {
        for refusal in &refusals {
            println!("{}", serde_json::to_string(refusal).unwrap_or_default());
        }
    } else {
        println!("{}", refusals_table(&refusals));
    }
    Ok(())
}
