//! `hookcatch env-json`: the `sam local invoke --env-vars` file of one function.

use clap::Args;

use super::args::ConfigArg;

use crate::project::config::ConfigFile;
use crate::stack::env_json::{StackResources, env_json};
use crate::stack::plan::Plan;

#[derive(Args)]
pub struct EnvJsonArgs {
    /// A route name, or `consumer`.
    function: String,
    #[arg(long, default_value = "hookcatch")]
    stack: String,
    /// The events queue (stack output EventsQueueUrl).
    #[arg(long, env = "HOOKCATCH_QUEUE_URL")]
    queue_url: String,
    /// The bodies bucket (stack output BodiesBucketName).
    #[arg(long, env = "HOOKCATCH_BUCKET")]
    bucket: Option<String>,
    /// The events table (stack output EventsTableName); the consumer needs it.
    #[arg(long, env = "HOOKCATCH_TABLE")]
    table: Option<String>,
    #[command(flatten)]
    project: ConfigArg,
}

pub fn run(args: EnvJsonArgs) -> anyhow::Result<()> {
    let file = ConfigFile::load(&args.project.config)?;
    let plan = Plan::new(&file, &args.stack)?;
    let resources = StackResources {
        queue_url: args.queue_url,
        bucket: args.bucket,
        table: args.table,
    };
    let json = env_json(&plan, &args.function, &resources)?;
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
