//! `hookcatch console --aws`: the console over a deployed stack, on this machine with the
//! operator's AWS credentials.

use std::net::SocketAddr;

use clap::Args;

use super::args::{ConfigArg, route_url_arg, wait_for_signal};
use crate::project::config::ConfigFile;

#[derive(Args)]
pub struct ConsoleArgs {
    /// Read the deployed stack (required: locally, `serve` runs the console).
    #[arg(long, required = true)]
    aws: bool,
    /// The stack (its routes' configuration in SSM, its Outputs through `sam` for log groups
    /// and Function URLs).
    #[arg(long, default_value = "hookcatch")]
    stack: String,
    /// The events table (stack output EventsTableName).
    #[arg(long, env = "HOOKCATCH_TABLE")]
    table: String,
    /// The events queue (stack output EventsQueueUrl), where Replay sends.
    #[arg(long, env = "HOOKCATCH_QUEUE_URL")]
    queue_url: String,
    /// The dead-letter queue (stack output DeadLetterQueueUrl).
    #[arg(long, env = "HOOKCATCH_DLQ_URL")]
    dlq_url: String,
    /// A route function's log group for the refusals page (repeatable); default: each route
    /// function of the stack, from its Outputs.
    #[arg(long = "log-group")]
    log_groups: Vec<String>,
    /// A route's Function URL, where Resend posts, as NAME=URL (repeatable); default: the
    /// stack's Outputs.
    #[arg(long = "route-url", value_parser = route_url_arg)]
    route_urls: Vec<(String, String)>,
    /// Allow a `--route-url` with plain http on another machine (Resend's credentials in clear).
    #[arg(long)]
    insecure_http: bool,
    /// Where the console listens. It asks every browser for its token: HOOKCATCH_CONSOLE_TOKEN
    /// (32 characters or more), or one made and printed at start.
    #[arg(long, default_value = "127.0.0.1:3001")]
    console_addr: SocketAddr,
    /// The routes the list reads (the deployed ones).
    #[command(flatten)]
    project: ConfigArg,
}

pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let file = ConfigFile::load(&args.project.config)?;
    let stack = &args.stack;
    let log_groups = args.log_groups;
    let layout = hookcatch::config::SsmLayout::new(stack).map_err(anyhow::Error::msg)?;
    let routes: Vec<String> = file.routes.iter().map(|r| r.name.clone()).collect();
    for (_, url) in &args.route_urls {
        crate::send::credentials_may_go_to(url, args.insecure_http)?;
    }
    let given_urls: std::collections::BTreeMap<String, String> =
        args.route_urls.into_iter().collect();
    // The stack's Outputs, when flags leave something to find there.
    let outputs = if log_groups.is_empty() || routes.iter().any(|r| !given_urls.contains_key(r)) {
        crate::stack::sam::Sam::beside(&args.project.config)
            .stack_outputs(stack)
            .map_err(|error| {
                let needs = if log_groups.is_empty() {
                    "the refusals page needs --log-group, and Resend --route-url NAME=URL"
                } else {
                    "Resend needs --route-url NAME=URL"
                };
                eprintln!("the stack's Outputs cannot be read ({error}): {needs}")
            })
            .ok()
    } else {
        None
    };
    let log_groups = match (&outputs, log_groups.is_empty()) {
        (Some(outputs), true) => crate::stack::logs::route_log_groups(outputs)?,
        _ => log_groups,
    };
    let mut route_urls = match &outputs {
        Some(outputs) => {
            crate::stack::sam::urls_of_routes(routes.iter().map(String::as_str), outputs)?
        }
        None => Default::default(),
    };
    route_urls.extend(given_urls);
    let settings =
        crate::console::ConsoleSettings::new(args.console_addr, crate::console::token_from_env())
            .map_err(anyhow::Error::msg)?;
    let context = crate::console::aws::StackContext {
        sdk: crate::stack::sdk().await?,
        table: args.table,
        queue_url: args.queue_url,
        dlq_url: args.dlq_url,
        layout,
        log_groups,
        routes,
        route_urls,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = crate::console::aws::start(settings, context, stopped)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("console of stack {stack}: {}", started.url);
    wait_for_signal().await;
    let _ = stop.send(true);
    let _ = started.server.await;
    Ok(())
}
