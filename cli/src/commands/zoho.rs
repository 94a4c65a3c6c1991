//! `hookcatch zoho renew`: enable or renew a zoho-crm route's notification channels.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::ConfigArg;

use crate::project::config::ConfigFile;

#[derive(Subcommand)]
pub enum ZohoCommand {
    /// Enable or renew (the same Zoho call) every channel of the route, for `--days`.
    #[command(alias = "subscribe")]
    Renew(RenewArgs),
}

#[derive(Args)]
pub struct RenewArgs {
    /// The zoho-crm route; default: the only one.
    #[arg(long)]
    route: Option<String>,
    /// Where Zoho sends notifications: the route's Function URL (stack output ZohoCrmUrl) or
    /// your public address of `serve`'s /hooks/{route}.
    #[arg(long)]
    notify_url: String,
    /// Channel life asked for: at most 7 on Zoho API v4 and later, 1 on v2–v3.
    #[arg(long, default_value_t = 7)]
    days: i64,
    #[command(flatten)]
    project: ConfigArg,
    /// Directory of the local store (where the access token is cached).
    #[arg(long, default_value = ".hookcatch")]
    data: PathBuf,
}

pub async fn run(command: ZohoCommand) -> anyhow::Result<()> {
    let ZohoCommand::Renew(args) = command;
    let file = ConfigFile::load(&args.project.config)?;
    let route = args.route.as_deref();
    let renewed = crate::zoho::renew(&file, route, &args.notify_url, args.days, &args.data).await?;
    for channel in renewed {
        println!(
            "channel {} renewed until {}",
            channel.channel_id, channel.expires
        );
    }
    Ok(())
}
