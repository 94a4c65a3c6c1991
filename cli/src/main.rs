//! `hookcatch`: run every route and the consumer on one machine, and inspect or drive a deployment.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hookcatch::clock::{Clock, SystemClock};
use hookcatch_cli::config::ConfigFile;
use hookcatch_cli::inspect::{self, EventView};
use hookcatch_cli::secrets_file::{LocalSecrets, SetMode};
use hookcatch_cli::store::LocalStore;
use hookcatch_cli::{routes, send, serve};

#[derive(Parser)]
#[command(
    name = "hookcatch",
    version,
    about = "Receive, verify, queue and store inbound webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every configured route at /hooks/{route} and the consumer, on an embedded durable store.
    Serve {
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
        /// Address to listen on (overrides [serve].addr).
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Directory of the local store (overrides [serve].data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address of the console (overrides [serve].console_addr; default 127.0.0.1:3001).
        /// Off loopback it asks for a token: HOOKCATCH_CONSOLE_TOKEN, or one printed at start.
        #[arg(long)]
        console_addr: Option<std::net::SocketAddr>,
        /// Run no console.
        #[arg(long, conflicts_with = "console_addr")]
        no_console: bool,
    },
    /// Send a route's sample event, signed like its provider would, to `serve` or a Function URL.
    Send {
        #[arg(long)]
        route: String,
        /// A Function URL event (payload v2.0) to send; default: the route's sample in events/.
        #[arg(long)]
        event: Option<PathBuf>,
        /// Where to send it; default: this machine's `serve` at /hooks/{route}.
        #[arg(long)]
        to: Option<String>,
        /// Print a freshly signed Function URL event (for `sam local invoke -e`) instead of sending.
        #[arg(long)]
        print_event: bool,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
    /// List or show received events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// List or get stored records.
    #[command(subcommand)]
    Records(RecordsCommand),
    /// Add, edit, remove, list and Test routes (edits hookcatch.toml; a running `serve` reloads).
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Set a route's secret in the local secrets file (hookcatch.secrets.toml, mode 0600).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Zoho CRM: enable or renew a zoho-crm route's notification channels.
    #[command(subcommand)]
    Zoho(ZohoCommand),
    /// Deploy every route of hookcatch.toml: check it, push each route's configuration to SSM,
    /// `sam build` and `sam deploy` with the route list, then print each route's Function URL.
    Deploy {
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
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
    /// Print the `sam local invoke --env-vars` file of a route's function (or `consumer`): SSM
    /// paths and resource names, never a secret value.
    EnvJson {
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
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
    /// Re-queue dead-lettered events so the consumer tries them again (--aws: redrive the SQS DLQ),
    /// or (--event) run a stored event through the consumer again with its route's current rules.
    Replay {
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
    },
    /// The console over a deployed stack, on this machine with your AWS credentials: stored events
    /// from the event index, dead letters from the DLQ (left in place), refusals from the route
    /// functions' logs, Replay through the events queue, Resend to the route's Function URL.
    Console {
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
        /// Where the console listens. Off loopback it asks for a token: HOOKCATCH_CONSOLE_TOKEN,
        /// or one printed at start.
        #[arg(long, default_value = "127.0.0.1:3001")]
        console_addr: std::net::SocketAddr,
        /// The routes the list reads (the deployed ones).
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
    /// The requests the deployed route functions refused (401, 403, 405, 413, 431, 429), newest
    /// first, from their CloudWatch logs (`serve`'s are on the console's /refusals page).
    Refusals {
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
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum RoutesCommand {
    /// Each route: provider, local URL, secrets set or missing, last event received, and its
    /// deployed URL once known.
    List {
        #[command(flatten)]
        output: OutputArgs,
        /// Read the deployed stack: each route's Function URL (kept for later `routes list`) and
        /// which of its secrets the stack holds.
        #[arg(long)]
        aws: bool,
        #[arg(long, default_value = "hookcatch", requires = "aws")]
        stack: String,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
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
        /// The signing secret (or API key): a value, `env:NAME` or `ssm:/name`.
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
        /// Route keys, `--key value` each.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY VALUE"
        )]
        keys: Vec<String>,
    },
    /// Change keys of a route: `routes edit orders --dedup header:x-delivery-id --unset open`.
    Edit {
        name: String,
        /// Replaces the route's `secrets`: a value, `env:NAME` or `ssm:/name`.
        #[arg(long)]
        secret: Option<String>,
        /// A key to remove (repeatable).
        #[arg(long)]
        unset: Vec<String>,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "--KEY VALUE"
        )]
        keys: Vec<String>,
    },
    /// Remove a route (its stored events and records stay).
    #[command(alias = "remove")]
    Rm {
        name: String,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
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
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
    /// The settings page's Test button: send what the provider's own test sends, signed.
    Test {
        name: String,
        /// A full route URL (local or a Function URL); default: `serve` at the configured address.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
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
        /// With --aws: the CloudFormation stack.
        #[arg(long, default_value = "hookcatch", requires = "aws")]
        stack: String,
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ZohoCommand {
    /// Enable or renew (the same Zoho call) every channel of the route, for `--days`.
    #[command(alias = "subscribe")]
    Renew {
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
        #[arg(long, default_value = "hookcatch.toml")]
        config: PathBuf,
        /// Directory of the local store (where the access token is cached).
        #[arg(long, default_value = ".hookcatch")]
        data: PathBuf,
    },
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Directory of the local store.
    #[arg(long, default_value = ".hookcatch")]
    data: PathBuf,
    /// Read the deployed stack (DynamoDB table, SQS queues) instead of the local store.
    #[arg(long)]
    aws: bool,
    /// The deployed DynamoDB table (stack output EventsTableName).
    #[arg(long, env = "HOOKCATCH_TABLE")]
    table: Option<String>,
}

#[derive(Args, Clone)]
struct OutputArgs {
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EventsCommand {
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

#[derive(Subcommand)]
enum RecordsCommand {
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn open(store: &StoreArgs) -> Result<LocalStore, String> {
    if !store.data.join("hookcatch.db").is_file() {
        return Err(format!(
            "no local store in {} (start `hookcatch serve` first, or pass --data)",
            store.data.display()
        ));
    }
    LocalStore::open(&store.data).map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            config,
            addr,
            data,
            console_addr,
            no_console,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let mut settings = file.serve.clone();
            settings.addr = addr.unwrap_or(settings.addr);
            settings.data = data.unwrap_or(settings.data);
            settings.console_addr = console_addr.unwrap_or(settings.console_addr);
            settings.console &= !no_console;
            let running = serve::start(&file, &settings).await?;
            if let Some(url) = &running.console_url {
                println!("hookcatch console: {url}");
            }
            println!("hookcatch serve: http://{}/hooks/{{route}}", running.addr);
            for route in &file.routes {
                println!(
                    "  {:<24} http://{}/hooks/{}",
                    route.name, running.addr, route.name
                );
            }
            println!(
                "routes reload when {} changes (`hookcatch routes add|edit|rm`)",
                config.display()
            );
            let shutdown = running.shutdown_handle();
            tokio::spawn(async move {
                wait_for_signal().await;
                eprintln!("shutting down: finishing in-flight requests and the current batch");
                let _ = shutdown.send(true);
            });
            running.wait().await
        }
        Command::Send {
            route,
            event,
            to,
            print_event,
            config,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let route_config = file
                .route(&route)
                .ok_or_else(|| format!("no route `{route}` in {}", config.display()))?;
            let events_dir = config
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("events");
            let sample = event.unwrap_or_else(|| {
                send::default_sample(&events_dir, route_config.provider.as_str())
            });
            let mut request = send::request_from_event(&sample)?;
            let settings = file.resolve_route(&route).await?;
            let url = to.unwrap_or_else(|| format!("http://{}/hooks/{route}", file.serve.addr));
            // The URL a provider signs (Twilio) is the one it calls.
            request.called_url = Some(if print_event {
                send::printed_event_url(&request)
            } else {
                url.split('?').next().unwrap_or_default().to_owned()
            });
            send::sign(&settings, &mut request)?;
            if print_event {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&send::function_url_event(&request))
                        .unwrap_or_default()
                );
                return Ok(());
            }
            let (status, body) = send::send(&request, &url).await?;
            println!("{status} {body}");
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!("{url} answered {status}"))
            }
        }
        Command::Events(EventsCommand::List {
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
        }) => {
            cursor_arg(after.as_deref(), "events")?;
            let (since_ms, until_ms) = time_window(since.as_deref(), until.as_deref())?;
            let mut views: Vec<EventView> = match Source::open(&store).await? {
                Source::Local(local) => {
                    let mut views: Vec<EventView> = local
                        .queue_entries()
                        .await
                        .map_err(|e| e.to_string())?
                        .iter()
                        .filter_map(EventView::from_queue)
                        .collect();
                    let stored = match &delivery {
                        Some(delivery) => {
                            local
                                .find_events_by_delivery(route.clone(), delivery.clone())
                                .await
                        }
                        None => {
                            local
                                .list_events(route.clone(), since_ms, until_ms, limit)
                                .await
                        }
                    }
                    .map_err(|e| e.to_string())?;
                    views.extend(stored.into_iter().map(EventView::from_stored));
                    views
                }
                Source::Aws(table) => {
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
                                .await
                                .map_err(|e| e.to_string())?
                                .into_iter()
                                .map(EventView::from_stored)
                                .collect()
                        }
                    };
                    // Dead letters join the first page, as locally; queued messages are not
                    // listed (SQS cannot show a message without receiving it).
                    if let (Some(dlq_url), None) = (&dlq_url, &after) {
                        let sdk = hookcatch_cli::aws::sdk().await;
                        let letters =
                            hookcatch_cli::aws::peek_dead_letters(&sdk, dlq_url, limit).await?;
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
                    println!("{}", inspect::json_text(&view.to_json(), false));
                }
            } else {
                println!("{}", inspect::events_table(&views));
            }
            Ok(())
        }
        Command::Events(EventsCommand::Show { id, store }) => {
            let found = match Source::open(&store).await? {
                Source::Local(local) => {
                    match local
                        .find_event_by_id(id.clone())
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        Some(event) => Some(EventView::from_stored(event)),
                        None => local
                            .queue_entries()
                            .await
                            .map_err(|e| e.to_string())?
                            .iter()
                            .filter_map(EventView::from_queue)
                            .find(|v| v.id == id),
                    }
                }
                Source::Aws(table) => table
                    .scan_events(None, Some(&id))
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .next()
                    .map(EventView::from_stored),
            };
            let view = found.ok_or_else(|| format!("no event with id {id}"))?;
            println!("{}", inspect::json_text(&view.to_json(), true));
            Ok(())
        }
        Command::Records(RecordsCommand::List {
            route,
            record_type,
            since,
            until,
            limit,
            after,
            output,
            store,
        }) => {
            cursor_arg(after.as_deref(), "records")?;
            let (since_ms, until_ms) = time_window(since.as_deref(), until.as_deref())?;
            let records = match Source::open(&store).await? {
                Source::Local(local) => local
                    .list_records(route, record_type, since_ms, until_ms, limit)
                    .await
                    .map_err(|e| e.to_string())?,
                // The records a route's events last wrote, from the event index.
                Source::Aws(table) => match &route {
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
                        let mut records = table
                            .scan_records(None, record_type.as_deref())
                            .await
                            .map_err(|e| e.to_string())?;
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
                    println!(
                        "{}",
                        inspect::json_text(&inspect::record_json(record), false)
                    );
                }
            } else {
                println!("{}", inspect::records_table(&records));
            }
            Ok(())
        }
        Command::Records(RecordsCommand::Get {
            route,
            record_type,
            id,
            store,
        }) => {
            use hookcatch::ports::EventStore;
            let record = match Source::open(&store).await? {
                Source::Local(local) => local.get_record(&route, &record_type, &id).await,
                Source::Aws(table) => table.get_record(&route, &record_type, &id).await,
            }
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no {record_type} record {id} on route {route}"))?;
            println!(
                "{}",
                inspect::json_text(&inspect::record_json(&record), true)
            );
            Ok(())
        }
        Command::Routes(command) => routes_command(command).await,
        Command::Deploy {
            stack,
            guided,
            dry_run,
            parameters,
            config,
        } => {
            use hookcatch_cli::deployment;
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            if let Some(bad) = parameters.iter().find(|p| {
                let key = p.split('=').next().unwrap_or_default();
                !p.contains('=') || ["Routes", "RouteConfigDigest"].contains(&key)
            }) {
                return Err(format!(
                    "`--parameter {bad}`: give KEY=VALUE; Routes and RouteConfigDigest come from the configuration"
                ));
            }
            let plan = deployment::Plan::new(&file, &stack)?;
            let stack_wide = deployment::stack_wide_reservation(&parameters)?;
            let reservations = plan.reservations(stack_wide);
            let reserved_total: u32 = reservations.iter().filter_map(|(_, n)| *n).sum();
            let sdk = hookcatch_cli::aws::sdk().await;
            let sam = deployment::Sam::beside(&config);
            let lambda = hookcatch_cli::lambda::Lambda::new(&sdk)?;
            if reserved_total > 0 && !dry_run {
                // Before the first deploy there is no stack, and nothing of it is reserved.
                let current = sam
                    .stack_outputs(&stack)
                    .ok()
                    .map(|outputs| deployment::stack_route_functions(&outputs))
                    .transpose()?
                    .unwrap_or_default();
                deployment::check_reservations(&lambda, &current, reserved_total).await?;
            }
            let pushed = deployment::push(&sdk, &plan, dry_run).await?;
            let (build, deploy) =
                deployment::sam_commands(&plan, &pushed.digest, &parameters, guided);
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
            let outputs = sam.stack_outputs(&stack)?;
            let urls = deployment::route_urls(&plan, &outputs)?;
            deployment::DeployedUrls {
                stack,
                urls: urls.clone(),
            }
            .save(&file.serve.data)?;
            println!("{}", deployment::urls_table(&plan, &urls));
            let functions = deployment::route_functions(&plan, &outputs)?;
            let changes = deployment::apply_reservations(&lambda, &reservations, &functions)
                .await
                .map_err(|e| format!("the stack is deployed, but {e}"))?;
            for change in changes {
                println!("{change}");
            }
            Ok(())
        }
        Command::EnvJson {
            function,
            stack,
            queue_url,
            bucket,
            table,
            config,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let plan = hookcatch_cli::deployment::Plan::new(&file, &stack)?;
            let resources = hookcatch_cli::deployment::StackResources {
                queue_url,
                bucket,
                table,
            };
            let json = hookcatch_cli::deployment::env_json(&plan, &function, &resources)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Secrets(SecretsCommand::Set {
            route,
            name,
            add,
            replace,
            from_env,
            stdin,
            aws,
            stack,
            config,
        }) => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let route_config = file
                .route(&route)
                .ok_or_else(|| format!("no route `{route}` in {}", config.display()))?;
            // Never from the command line, where it would stay in the shell's history.
            let value = match (from_env, stdin) {
                (Some(var), _) => std::env::var(&var)
                    .map_err(|_| format!("environment variable `{var}` is not set"))?,
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .map_err(|e| format!("reading standard input: {e}"))?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                (None, false) => return Err("give the value with --from-env VAR or --stdin".into()),
            };
            let mode = match (add, replace) {
                (true, _) => SetMode::Add,
                (_, true) => SetMode::Replace,
                _ => SetMode::New,
            };
            if aws {
                let layout = hookcatch::config::SsmLayout::new(&stack)?;
                let sdk = hookcatch_cli::aws::sdk().await;
                let count = hookcatch_cli::deployment::set_secret(
                    &sdk, &layout, &route, &name, &value, mode,
                )
                .await?;
                println!(
                    "route `{route}`: secret `{name}` now has {count} value(s) in {} \
                     (`hookcatch routes push --stack {stack}` and a deploy roll it out)",
                    layout.secret_name(&route, &name)
                );
                let reference = hookcatch::secrets::SecretRef::Local(name.clone());
                if !route_config.secret_refs().contains(&reference) {
                    println!(
                        "route `{route}` does not read `local:{name}` yet: `hookcatch secrets set \
                         {route} {name} --stdin` sets it locally and points the route at it"
                    );
                }
                return Ok(());
            }
            let secrets_path = LocalSecrets::path_beside(&config);
            let count =
                hookcatch_cli::secrets_file::set(&secrets_path, &route, &name, &value, mode)
                    .map_err(|e| e.to_string())?;
            println!(
                "route `{route}`: secret `{name}` now has {count} value(s) in {}",
                secrets_path.display()
            );
            let reference = hookcatch::secrets::SecretRef::Local(name.clone());
            if !route_config.secret_refs().contains(&reference) {
                routes::edit(&config, &route, Some(&format!("local:{name}")), &[], &[])
                    .map_err(|e| e.to_string())?;
                println!("route `{route}` now reads its secrets from `local:{name}`");
            }
            Ok(())
        }
        Command::Console {
            aws: _,
            stack,
            table,
            queue_url,
            dlq_url,
            log_groups,
            route_urls,
            console_addr,
            config,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let layout = hookcatch::config::SsmLayout::new(&stack)?;
            let routes: Vec<String> = file.routes.iter().map(|r| r.name.clone()).collect();
            let given_urls: std::collections::BTreeMap<String, String> =
                route_urls.into_iter().collect();
            // The stack's Outputs, when flags leave something to find there.
            let outputs =
                if log_groups.is_empty() || routes.iter().any(|r| !given_urls.contains_key(r)) {
                    hookcatch_cli::deployment::Sam::beside(&config)
                    .stack_outputs(&stack)
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
                (Some(outputs), true) => hookcatch_cli::aws::route_log_groups(outputs)?,
                _ => log_groups,
            };
            let mut route_urls = match &outputs {
                Some(outputs) => hookcatch_cli::deployment::urls_of_routes(
                    routes.iter().map(String::as_str),
                    outputs,
                )?,
                None => Default::default(),
            };
            route_urls.extend(given_urls);
            let settings = hookcatch_cli::console::ConsoleSettings::new(
                console_addr,
                std::env::var("HOOKCATCH_CONSOLE_TOKEN")
                    .ok()
                    .filter(|t| !t.trim().is_empty()),
            );
            let context = hookcatch_cli::console::aws::StackContext {
                sdk: hookcatch_cli::aws::sdk().await,
                table,
                queue_url,
                dlq_url,
                layout,
                log_groups,
                routes,
                route_urls,
            };
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let started = hookcatch_cli::console::aws::start(settings, context, stopped).await?;
            println!("console of stack {stack}: {}", started.url);
            wait_for_signal().await;
            let _ = stop.send(true);
            let _ = started.server.await;
            Ok(())
        }
        Command::Refusals {
            aws: _,
            stack,
            log_groups,
            since,
            route,
            limit,
            output,
            config,
        } => {
            let since_ms = inspect::parse_time("--since", &since, SystemClock.now_ms())?;
            let log_groups = if log_groups.is_empty() {
                let outputs =
                    hookcatch_cli::deployment::Sam::beside(&config).stack_outputs(&stack)?;
                hookcatch_cli::aws::route_log_groups(&outputs)?
            } else {
                log_groups
            };
            let sdk = hookcatch_cli::aws::sdk().await;
            // The route filter applies before the limit: read all, keep the route's.
            let mut refusals =
                hookcatch_cli::aws::refusals_from_logs(&sdk, &log_groups, since_ms, usize::MAX)
                    .await?;
            refusals.retain(|r| route.as_ref().is_none_or(|name| &r.route == name));
            refusals.truncate(limit);
            if output.json {
                for refusal in &refusals {
                    println!("{}", serde_json::to_string(refusal).unwrap_or_default());
                }
            } else {
                println!("{}", inspect::refusals_table(&refusals));
            }
            Ok(())
        }
        Command::Zoho(ZohoCommand::Renew {
            route,
            notify_url,
            days,
            config,
            data,
        }) => {
            let file =
                hookcatch_cli::config::ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let renewed =
                hookcatch_cli::zoho::renew(&file, route.as_deref(), &notify_url, days, &data)
                    .await?;
            for channel in renewed {
                println!(
                    "channel {} renewed until {}",
                    channel.channel_id, channel.expires
                );
            }
            Ok(())
        }
        Command::Replay {
            seqs,
            event,
            config,
            store,
            dlq_url,
            queue_url,
            stack,
        } => {
            if let (Some(event_id), true) = (&event, store.aws) {
                let table = store.table.ok_or(
                    "--aws needs --table (stack output EventsTableName) or HOOKCATCH_TABLE",
                )?;
                let queue_url = queue_url.ok_or(
                    "--aws needs --queue-url (stack output EventsQueueUrl) or HOOKCATCH_QUEUE_URL",
                )?;
                let layout = hookcatch::config::SsmLayout::new(&stack)?;
                eprintln!("finding the event by scanning the table (billed per item read)");
                let sdk = hookcatch_cli::aws::sdk().await;
                let summary = hookcatch_cli::aws::replay_stored_event(
                    &sdk, &table, &queue_url, &layout, event_id,
                )
                .await?;
                println!("{summary}; the consumer function processes it from the queue");
                return Ok(());
            }
            if let Some(event_id) = event {
                let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
                let summary =
                    hookcatch_cli::replay::replay_event(&open(&store)?, &file, &event_id).await?;
                println!("{summary}; a running `hookcatch serve` processes it now");
                return Ok(());
            }
            if store.aws {
                let dlq_url = dlq_url.ok_or(
                    "--aws needs --dlq-url (stack output DeadLetterQueueUrl) or HOOKCATCH_DLQ_URL",
                )?;
                let queue_url = queue_url.ok_or(
                    "--aws needs --queue-url (stack output EventsQueueUrl) or HOOKCATCH_QUEUE_URL",
                )?;
                let sdk = hookcatch_cli::aws::sdk().await;
                let progress = match hookcatch_cli::aws::approximate_depth(&sdk, &dlq_url).await {
                    Some(total) => indicatif::ProgressBar::new(total),
                    None => indicatif::ProgressBar::new_spinner(),
                };
                let moved =
                    hookcatch_cli::aws::redrive(&sdk, &dlq_url, &queue_url, &progress).await;
                progress.finish_and_clear();
                println!(
                    "moved {} message(s) from the DLQ back to the events queue",
                    moved?
                );
                return Ok(());
            }
            let store = open(&store)?;
            let chosen = (!seqs.is_empty()).then_some(seqs);
            let count = store
                .requeue(chosen, SystemClock.now_ms())
                .await
                .map_err(|e| e.to_string())?
                .len();
            println!("re-queued {count} event(s); a running `hookcatch serve` processes them now");
            Ok(())
        }
    }
}

async fn routes_command(command: RoutesCommand) -> Result<(), String> {
    match command {
        RoutesCommand::List {
            output,
            aws,
            stack,
            config,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            // The last event of each route, when a local store exists.
            let last = if file.serve.data.join("hookcatch.db").is_file() {
                LocalStore::open(&file.serve.data)
                    .map_err(|e| e.to_string())?
                    .last_received_by_route()
                    .await
                    .map_err(|e| e.to_string())?
            } else {
                Default::default()
            };
            let mut deployed = hookcatch_cli::deployment::DeployedUrls::load(&file.serve.data);
            let mut secrets_on_aws = std::collections::BTreeMap::new();
            if aws {
                use hookcatch_cli::deployment;
                let plan = deployment::Plan::new(&file, &stack)?;
                deployed = deployment::DeployedUrls {
                    stack: stack.clone(),
                    urls: deployment::route_urls(
                        &plan,
                        &deployment::Sam::beside(&config).stack_outputs(&stack)?,
                    )?,
                };
                deployed.save(&file.serve.data)?;
                let wanted = plan.routes.iter().flat_map(|r| r.secrets.clone()).collect();
                let sdk = hookcatch_cli::aws::sdk().await;
                let found = deployment::versions(&aws_sdk_ssm::Client::new(&sdk), &wanted).await?;
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
            let mut rows = routes::rows(&file, &last, &deployed.urls);
            for row in &mut rows {
                row.aws_secrets = secrets_on_aws.remove(&row.name);
            }
            if output.json {
                for row in &rows {
                    let value = serde_json::to_value(row).map_err(|e| e.to_string())?;
                    println!("{}", inspect::json_text(&value, false));
                }
            } else {
                println!("{}", routes::rows_table(&rows));
            }
            Ok(())
        }
        RoutesCommand::Add {
            name,
            provider,
            secret,
            config,
            keys,
        } => {
            let trailing = routes::parse_trailing(&keys).map_err(|e| e.to_string())?;
            let config = trailing.config.unwrap_or(config);
            let provider = trailing.provider.or(provider).ok_or_else(|| {
                format!(
                    "`routes add` needs --provider, one of: {}",
                    hookcatch::ProviderKind::ALL.map(|p| p.as_str()).join(", ")
                )
            })?;
            let secret = trailing.secret.or(secret);
            let file = routes::add(&config, &name, &provider, secret.as_deref(), &trailing.keys)
                .map_err(|e| e.to_string())?;
            let route = file.route(&name).ok_or("the added route is missing")?;
            println!(
                "added route `{name}`: http://{}/hooks/{name} (a running serve picks it up)",
                file.serve.addr
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
            config,
            keys,
        } => {
            let mut trailing = routes::parse_trailing(&keys).map_err(|e| e.to_string())?;
            let config = trailing.config.unwrap_or(config);
            let secret = trailing.secret.or(secret);
            let mut unset = unset;
            unset.append(&mut trailing.unset);
            if let Some(provider) = trailing.provider {
                trailing.keys.push(routes::RouteKey {
                    name: "provider".into(),
                    value: provider.as_str().into(),
                });
            }
            routes::edit(&config, &name, secret.as_deref(), &trailing.keys, &unset)
                .map_err(|e| e.to_string())?;
            println!("changed route `{name}` (a running serve picks it up)");
            Ok(())
        }
        RoutesCommand::Rm { name, config } => {
            let file = routes::remove(&config, &name).map_err(|e| e.to_string())?;
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
            config,
        } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            let plan = hookcatch_cli::deployment::Plan::new(&file, &stack)?;
            let sdk = hookcatch_cli::aws::sdk().await;
            let pushed = hookcatch_cli::deployment::push(&sdk, &plan, dry_run).await?;
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
        RoutesCommand::Test { name, to, config } => {
            let file = ConfigFile::load(&config).map_err(|e| e.to_string())?;
            if file.route(&name).is_none() {
                return Err(format!("no route `{name}` in {}", config.display()));
            }
            let settings = file.resolve_route(&name).await?;
            let url = to.unwrap_or_else(|| format!("http://{}/hooks/{name}", file.serve.addr));
            let outcome = routes::test(&settings, &url).await?;
            let summary = outcome.summary(&name, &url);
            if outcome.passed() {
                println!("{}", inspect::terminal_safe(&summary));
                Ok(())
            } else {
                Err(inspect::terminal_safe(&summary))
            }
        }
    }
}

/// `--route-url NAME=URL`.
fn route_url_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, url))
            if !name.is_empty() && (url.starts_with("https://") || url.starts_with("http://")) =>
        {
            Ok((name.to_owned(), url.to_owned()))
        }
        _ => Err(format!(
            "`{text}`: give NAME=URL, the URL with http:// or https://"
        )),
    }
}

/// A `--after` that is no cursor a page printed is refused before anything is read.
fn cursor_arg(after: Option<&str>, listing: &str) -> Result<(), String> {
    match after {
        Some(after) if !hookcatch::aws::is_cursor(after) => Err(format!(
            "--after {after}: not a cursor `{listing} list --aws --route` printed"
        )),
        _ => Ok(()),
    }
}

/// `--since` and `--until` as milliseconds, each an RFC 3339 time or a duration back.
fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), String> {
    let now_ms = SystemClock.now_ms();
    let at = |what, text: Option<&str>| {
        text.map(|t| inspect::parse_time(what, t, now_ms))
            .transpose()
    };
    let since_ms = at("--since", since)?;
    let until_ms = at("--until", until)?;
    if let (Some(since_ms), Some(until_ms)) = (since_ms, until_ms)
        && until_ms <= since_ms
    {
        return Err("--until is not after --since: the window is empty".into());
    }
    Ok((since_ms, until_ms))
}

fn index_error(error: &hookcatch::ports::StoreError) -> String {
    format!(
        "querying the event index failed ({error}); a stack deployed with EventIndex=off has \
         none: leave out --route to scan the table"
    )
}

/// Where the inspection commands read from.
enum Source {
    Local(LocalStore),
    Aws(hookcatch::aws::DynamoStore),
}

impl Source {
    async fn open(args: &StoreArgs) -> Result<Source, String> {
        if args.aws {
            let table = args
                .table
                .as_deref()
                .ok_or("--aws needs --table (stack output EventsTableName) or HOOKCATCH_TABLE")?;
            let sdk = hookcatch_cli::aws::sdk().await;
            Ok(Source::Aws(hookcatch_cli::aws::store(&sdk, table)))
        } else {
            open(args).map(Source::Local)
        }
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}
