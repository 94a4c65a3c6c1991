//! `hookcatch deploy`: the steps of a deploy, in order: check the configuration and the
//! reservations, push each route's configuration to SSM, `sam build` and `sam deploy`, print the
//! Function URLs, then set the route functions' reservations.

use anyhow::bail;
use clap::Args;

use super::args::ConfigArg;

use crate::project::config::ConfigFile;
use crate::stack::plan::{Plan, stack_wide_reservation};
use crate::stack::reservations::{Lambda, apply_reservations, check_reservations};
use crate::stack::sam::{Sam, route_functions, route_urls, sam_commands, stack_route_functions};
use crate::stack::urls::{DeployedUrls, urls_table};

#[derive(Args)]
pub struct DeployArgs {
    /// The CloudFormation stack (its routes live under /hookcatch/STACK/routes).
    #[arg(long, default_value = "hookcatch")]
    stack: String,
    /// Run `sam deploy --guided` (asks for every template parameter).
    #[arg(long)]
    guided: bool,
    /// Print what would be pushed and the `sam` commands; change nothing, run nothing.
    #[arg(long)]
    dry_run: bool,
    /// A template parameter for both `sam` commands, `KEY=VALUE` (repeatable):
    /// `--parameter Architecture=x86_64`.
    #[arg(long = "parameter", value_name = "KEY=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    project: ConfigArg,
}

pub async fn run(args: DeployArgs) -> anyhow::Result<()> {
    let (stack, parameters, dry_run) = (&args.stack, &args.parameters, args.dry_run);
    let file = ConfigFile::load(&args.project.config)?;
    if let Some(bad) = parameters.iter().find(|p| {
        let key = p.split('=').next().unwrap_or_default();
        !p.contains('=') || ["Routes", "RouteConfigDigest"].contains(&key)
    }) {
        bail!(
            "`--parameter {bad}`: give KEY=VALUE; Routes and RouteConfigDigest come from the configuration"
        );
    }
    let plan = Plan::new(&file, stack)?;
    let stack_wide = stack_wide_reservation(parameters).map_err(anyhow::Error::msg)?;
    let reservations = plan.reservations(stack_wide);
    let reserved_total: u32 = reservations.iter().filter_map(|(_, n)| *n).sum();
    let sdk = crate::stack::sdk().await?;
    let sam = Sam::beside(&args.project.config);
    let lambda = Lambda::new(&sdk)?;
    if reserved_total > 0 && !dry_run {
        // Before the first deploy there is no stack, and nothing of it is reserved.
        let current = sam
            .stack_outputs(stack)
            .ok()
            .map(|outputs| stack_route_functions(&outputs))
            .transpose()?
            .unwrap_or_default();
        check_reservations(&lambda, &current, reserved_total).await?;
    }
    let pushed = crate::stack::ssm::push(&sdk, &plan, dry_run).await?;
    let (build, deploy) = sam_commands(&plan, &pushed.digest, parameters, args.guided);
    if dry_run {
        for route in &plan.routes {
            println!(
                "would write {}: {}",
                plan.layout.config_name(&route.name),
                route.config_json
            );
        }
        for name in &pushed.removed {
            println!("would remove {name}");
        }
        println!("would run: sam {}", build.join(" "));
        println!("would run: sam {}", deploy.join(" "));
        for (route, reserved) in &reservations {
            if let Some(n) = reserved {
                println!(
                    "would reserve {n} concurrent executions for route {} (checked \
                     against the account's quota when deploying)",
                    route.name
                );
            }
        }
        return Ok(());
    }
    for name in &pushed.removed {
        println!("removed {name}");
    }
    sam.run(&build)?;
    sam.run(&deploy)?;
    let outputs = sam.stack_outputs(stack)?;
    let urls = route_urls(&plan, &outputs)?;
    DeployedUrls {
        stack: stack.clone(),
        urls: urls.clone(),
    }
    .save(&file.serve.data)?;
    println!("{}", urls_table(&plan, &urls));
    let functions = route_functions(&plan, &outputs)?;
    let changes = apply_reservations(&lambda, &reservations, &functions)
        .await
        .map_err(|e| anyhow::anyhow!("the stack is deployed, but {e}"))?;
    for change in changes {
        println!("{change}");
    }
    Ok(())
}
