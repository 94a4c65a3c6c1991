//! `hookcatch secrets set`: a route's secret, in the local secrets file or the stack's SSM.

use anyhow::bail;
use clap::Subcommand;
use hookcatch::secrets::SecretRef;

use super::args::{AwsStackArg, ConfigArg};

use crate::project::rotation::SetMode;
use crate::project::secrets_file::{self, LocalSecrets};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Write a route's secret NAME (`local:NAME` in hookcatch.toml) from an environment variable or
    /// standard input, never from the command line.
    Set {
        route: String,
        name: String,
        /// Put the new value first and keep the old (a rotation's overlap).
        #[arg(long, conflicts_with = "replace")]
        add: bool,
        /// The new value alone.
        #[arg(long)]
        replace: bool,
        /// Read the value from this environment variable.
        #[arg(long, conflicts_with = "stdin", required_unless_present = "stdin")]
        from_env: Option<String>,
        /// Read the value from standard input (one line).
        #[arg(long)]
        stdin: bool,
        /// Write it to the deployed stack's SSM path as a SecureString instead of the local file.
        #[arg(long)]
        aws: bool,
        #[command(flatten)]
        stack: AwsStackArg,
        #[command(flatten)]
        project: ConfigArg,
    },
}

pub async fn run(command: SecretsCommand) -> anyhow::Result<()> {
    let SecretsCommand::Set {
        route,
        name,
        add,
        replace,
        from_env,
        stdin,
        aws,
        stack,
        project,
    } = command;
    let config = &project.config;
    let stack = &stack.stack;
    let (_, route_config) = project.route(&route)?;
    // Never from the command line, where it would stay in the shell's history.
    let value = match (from_env, stdin) {
        (Some(var), _) => std::env::var(&var)
            .map_err(|_| anyhow::anyhow!("environment variable `{var}` is not set"))?,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| anyhow::anyhow!("reading standard input: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, false) => bail!("give the value with --from-env VAR or --stdin"),
    };
    let mode = match (add, replace) {
        (true, _) => SetMode::Add,
        (_, true) => SetMode::Replace,
        _ => SetMode::New,
    };
    let reference = SecretRef::Local(name.clone());
    if aws {
        let layout = hookcatch::config::SsmLayout::new(stack).map_err(anyhow::Error::msg)?;
        let sdk = crate::stack::sdk().await?;
        let count =
            crate::stack::ssm::set_secret(&sdk, &layout, &route, &name, &value, mode).await?;
        println!(
            "route `{route}`: secret `{name}` now has {count} value(s) in {} \
             (`hookcatch routes push --stack {stack}` and a deploy roll it out)",
            layout.secret_name(&route, &name)
        );
        if !route_config.secret_refs().contains(&reference) {
            println!(
                "route `{route}` does not read `local:{name}` yet: `hookcatch secrets set \
                 {route} {name} --stdin` sets it locally and points the route at it"
            );
        }
        return Ok(());
    }
    let secrets_path = LocalSecrets::path_beside(config);
    let count = secrets_file::set(&secrets_path, &route, &name, &value, mode)?;
    println!(
        "route `{route}`: secret `{name}` now has {count} value(s) in {}",
        secrets_path.display()
    );
    if !route_config.secret_refs().contains(&reference) {
        crate::project::routes_edit::edit(
            config,
            &route,
            Some(&format!("local:{name}")),
            &[],
            &[],
        )?;
        println!("route `{route}` now reads its secrets from `local:{name}`");
    }
    Ok(())
}
