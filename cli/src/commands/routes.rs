//! `hookcatch routes list|add|edit|rm|push|test`: a route's settings page from the command line.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::args::{AwsStackArg, ConfigArg, OutputArgs, serve_addr};
use crate::project::config::ConfigFile;
use crate::project::rotation::SetMode;
use crate::project::routes_edit::{self, RouteKey};
use crate::project::secrets_file::{self, LocalSecrets};
use crate::stack::plan::Plan;
use crate::stack::urls::DeployedUrls;
use crate::store::LocalStore;
use crate::term::{json_text, terminal_safe};
use crate::views::{rows, rows_table};
use hookcatch::secrets::SecretRef;

#[derive(Subcommand)]
pub enum RoutesCommand {
    /// Each route: provider, local URL, secrets set or missing, last event received, and its
    /// deployed URL once known.
    List {
        #[command(flatten)]
        output: OutputArgs,
        /// Read the deployed stack: each route's Function URL (kept for later `routes list`) and
        /// which of its secrets the stack holds.
        #[arg(long)]
        aws: bool,
        #[command(flatten)]
        stack: AwsStackArg,
        #[command(flatten)]
        project: ConfigArg,
    },
    /// Add a route: `routes add orders --provider catch-raw --open true --dedup /id`.
    #[command(
        after_help = "Any route key is a flag: --event-type /event, --open true, \
                      --records '[{ type = \"order\", id = \"/order/id\" }]'. A value that reads \
                      as TOML is TOML; anything else is text."
    )]
    Add {
        name: String,
        /// The route's provider: catch-raw, github, stripe, … (`routes add --help`).
        #[arg(long)]
        provider: Option<String>,
        /// The signing secret (or API key): `env:NAME`, `ssm:/name`, `local:NAME`, or a value,
        /// which goes into hookcatch.secrets.toml (owner-only) and is read as `local:signing`.
        #[arg(long)]
        secret: Option<String>,
        #[command(flatten)]
        keys: RouteKeys,
    },
    /// Change keys of a route: `routes edit orders --dedup header:x-delivery-id --unset open`.
    Edit {
        name: String,
        /// Replaces the route's `secrets`: `env:NAME`, `ssm:/name`, `local:NAME`, or a value,
        /// which goes into hookcatch.secrets.toml (owner-only) and is read as `local:signing`.
        #[arg(long)]
        secret: Option<String>,
        /// A key to remove (repeatable).
        #[arg(long)]
        unset: Vec<String>,
        #[command(flatten)]
        keys: RouteKeys,
    },
    /// Remove a route (its stored events and records stay).
    #[command(alias = "remove")]
    Rm {
        name: String,
        #[command(flatten)]
        project: ConfigArg,
    },
    /// Write every route's configuration to the stack's SSM path (removing routes that are gone)
    /// and print the `sam deploy` parameters that roll it out.
    Push {
        /// The CloudFormation stack (its routes live under /hookcatch/STACK/routes).
        #[arg(long, default_value = "hookcatch")]
        stack: String,
        /// Print what would be written and removed; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        project: ConfigArg,
    },
    /// The settings page's Test button: send what the provider's own test sends, signed.
    Test {
        name: String,
        /// A full route URL (local or a Function URL); default: `serve` at the configured address.
        #[arg(long)]
        to: Option<String>,
        /// Allow `--to` a plain http URL on another machine (credentials in clear).
        #[arg(long)]
        insecure_http: bool,
        #[command(flatten)]
        project: ConfigArg,
    },
}

/// `--config` and the route keys after the name, which `add` and `edit` take alike.
#[derive(Args)]
pub struct RouteKeys {
    #[arg(long, default_value = "hookcatch.toml")]
    config: PathBuf,
    /// Route keys, `--key value` each.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "--KEY VALUE"
    )]
    keys: Vec<String>,
}

pub async fn run(command: RoutesCommand) -> anyhow::Result<()> {
    match command {
        RoutesCommand::List {
            output,
            aws,
            stack,
            project,
        } => list(output, aws, &stack.stack, &project.config).await,
        RoutesCommand::Add {
            name,
            provider,
            secret,
            keys,
        } => {
            let trailing = routes_edit::parse_trailing(&keys.keys)?;
            let config = trailing.config.unwrap_or(keys.config);
            let provider = trailing.provider.or(provider).with_context(|| {
                format!(
                    "`routes add` needs --provider, one of: {}",
                    hookcatch::ProviderKind::ALL.map(|p| p.as_str()).join(", ")
                )
            })?;
            let secret = trailing.secret.or(secret);
            if ConfigFile::load(&config)
                .ok()
                .is_some_and(|file| file.route(&name).is_some())
            {
                bail!("route `{name}` exists; change it with `hookcatch routes edit {name} …`");
            }
            let secret = keep_literal_secret(&config, &name, secret)?;
            let file =
                routes_edit::add(&config, &name, &provider, secret.as_deref(), &trailing.keys)?;
            let route = file.route(&name).context("the added route is missing")?;
            println!(
                "added route `{name}`: http://{}/hooks/{name} (a running serve picks it up)",
                serve_addr(&file)
            );
            println!(
                "paste its URL into: {}",
                hookcatch::providers::paste_hint(route.provider)
            );
            Ok(())
        }
        RoutesCommand::Edit {
            name,
            secret,
            unset,
            keys,
        } => {
            let mut trailing = routes_edit::parse_trailing(&keys.keys)?;
            let config = trailing.config.unwrap_or(keys.config);
            let secret = trailing.secret.or(secret);
            let mut unset = unset;
            unset.append(&mut trailing.unset);
            if let Some(provider) = trailing.provider {
                trailing.keys.push(RouteKey {
                    name: "provider".into(),
                    value: provider.as_str().into(),
                });
            }
            let literal = secret
                .as_deref()
                .is_some_and(|s| matches!(SecretRef::parse(s), SecretRef::Literal(_)));
            let reference = if literal {
                Some(LITERAL_SECRET_REF.to_owned())
            } else {
                secret.clone()
            };
            routes_edit::edit(&config, &name, reference.as_deref(), &trailing.keys, &unset)?;
            if literal {
                keep_literal_secret(&config, &name, secret).with_context(|| {
                    format!(
                        "route `{name}` now reads `{LITERAL_SECRET_REF}`, but its value was not \
                         written: `hookcatch secrets set {name} signing --stdin` sets it"
                    )
                })?;
            }
            println!("changed route `{name}` (a running serve picks it up)");
            Ok(())
        }
        RoutesCommand::Rm { name, project } => {
            let file = routes_edit::remove(&project.config, &name)?;
            println!(
                "removed route `{name}`: it answers 404 once serve reloads; its stored events and \
                 records stay in {}",
                file.serve.data.display()
            );
            Ok(())
        }
        RoutesCommand::Push {
            stack,
            dry_run,
            project,
        } => {
            let file = ConfigFile::load(&project.config)?;
            let plan = Plan::new(&file, &stack)?;
            let sdk = crate::stack::sdk().await?;
            let pushed = crate::stack::ssm::push(&sdk, &plan, dry_run).await?;
            let verb = if dry_run { "would write" } else { "wrote" };
            for name in &pushed.written {
                println!("{verb} {name}");
            }
            let verb = if dry_run { "would remove" } else { "removed" };
            for name in &pushed.removed {
                println!("{verb} {name}");
            }
            println!(
                "deploy it with:\n  sam build && sam deploy --stack-name {stack} --parameter-overrides {}",
                plan.parameter_overrides(&pushed.digest)
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            Ok(())
        }
        RoutesCommand::Test {
            name,
            to,
            insecure_http,
            project,
        } => {
            if let Some(to) = &to {
                crate::send::credentials_may_go_to(to, insecure_http)?;
            }
            let (file, _) = project.route(&name)?;
            let settings = file.resolve_route(&name).await?;
            let url = to.unwrap_or_else(|| format!("http://{}/hooks/{name}", serve_addr(&file)));
            let outcome = crate::send::test(&settings, &url).await?;
            let summary = terminal_safe(&outcome.summary(&name, &url));
            if !outcome.passed() {
                bail!(summary);
            }
            println!("{summary}");
            Ok(())
        }
    }
}

/// `routes list`: the configured routes, with what this machine's store and the stack know.
async fn list(
    output: OutputArgs,
    aws: bool,
    stack: &str,
    config: &std::path::Path,
) -> anyhow::Result<()> {
    let file = ConfigFile::load(config)?;
    // The last event of each route, when a local store exists.
    let last = if file.serve.data.join("hookcatch.db").is_file() {
        LocalStore::open(&file.serve.data)?
            .last_received_by_route()
            .await?
    } else {
        Default::default()
    };
    let mut deployed = DeployedUrls::load(&file.serve.data);
    let mut secrets_on_aws = std::collections::BTreeMap::new();
    if aws {
        let plan = Plan::new(&file, stack)?;
        deployed = DeployedUrls {
            stack: stack.to_owned(),
            urls: crate::stack::sam::route_urls(
                &plan,
                &crate::stack::sam::Sam::beside(config).stack_outputs(stack)?,
            )?,
        };
        deployed.save(&file.serve.data)?;
        let wanted = plan.routes.iter().flat_map(|r| r.secrets.clone()).collect();
        let sdk = crate::stack::sdk().await?;
        let found = crate::stack::ssm::versions(&aws_sdk_ssm::Client::new(&sdk), &wanted).await?;
        for route in &plan.routes {
            let missing: Vec<&str> = route
                .secrets
                .iter()
                .filter(|s| !found.contains_key(*s))
                .map(|s| s.rsplit('/').next().unwrap_or(s))
                .collect();
            let status = match (route.secrets.is_empty(), missing.is_empty()) {
                (true, _) => "not needed".to_owned(),
                (false, true) => "set".to_owned(),
                (false, false) => format!("missing: {}", missing.join(", ")),
            };
            secrets_on_aws.insert(route.name.clone(), status);
        }
    }
    let mut file = file;
    file.serve.addr = serve_addr(&file);
    let mut rows = rows(&file, &last, &deployed.urls);
    for row in &mut rows {
        row.aws_secrets = secrets_on_aws.remove(&row.name);
    }
    if output.json {
        for row in &rows {
            println!("{}", json_text(&serde_json::to_value(row)?, false));
        }
    } else {
        println!("{}", rows_table(&rows));
    }
    Ok(())
}

/// What a route reads a secret given on the command line as.
const LITERAL_SECRET_REF: &str = "local:signing";

/// A literal `--secret` goes into the secrets file beside `config` (readable by its owner only)
/// as the route's `signing`, and the route reads it as `local:signing`: `hookcatch.toml`, often
/// shared and readable by all, never holds it. References (`env:`, `ssm:`, `local:`) pass as they
/// are.
fn keep_literal_secret(
    config: &std::path::Path,
    route: &str,
    secret: Option<String>,
) -> anyhow::Result<Option<String>> {
    let Some(value) = secret else {
        return Ok(None);
    };
    if !matches!(SecretRef::parse(&value), SecretRef::Literal(_)) {
        return Ok(Some(value));
    }
    let path = LocalSecrets::path_beside(config);
    secrets_file::set(&path, route, "signing", &value, SetMode::Replace)?;
    println!(
        "route `{route}`: the secret went into {} (readable by you alone) and the route reads it \
         as `{LITERAL_SECRET_REF}`; `hookcatch secrets set {route} signing --stdin` keeps the \
         next one off the command line",
        path.display()
    );
    Ok(Some(LITERAL_SECRET_REF.to_owned()))
}
