//! Floor 6: one file per subcommand, each its clap arguments and one `run`. A command parses,
//! orders the steps, prints, and nothing else: the work happens on the floors below.

mod args;
mod console;
mod deploy;
mod env_json;
mod events;
mod records;
mod refusals;
mod replay;
mod routes;
mod secrets;
mod send;
mod serve;
mod zoho;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hookcatch",
    version,
    about = "Receive, verify, queue and store inbound webhooks"
)]
pub struct Cli {
    /// Log what the libraries underneath say too (the AWS SDK's retries and fallbacks, hyper);
    /// by default only hookcatch's own lines and the libraries' errors reach the terminal.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The log filter: `RUST_LOG` when set; else hookcatch's own lines at INFO and every other
    /// crate's errors only (`-v`: INFO from all), so that an SDK's multi-line warnings about a
    /// fallback it tried never bury the one line that says what to do.
    pub fn log_filter(&self) -> tracing_subscriber::EnvFilter {
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            if self.verbose {
                "info".into()
            } else {
                "error,hookcatch=info,hookcatch_cli=info".into()
            }
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run every configured route at /hooks/{route} and the consumer, on an embedded durable store.
    Serve(serve::ServeArgs),
    /// Send a route's sample event, signed like its provider would, to `serve` or a Function URL.
    Send(send::SendArgs),
    /// List or show received events.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// List or get stored records.
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// Add, edit, remove, list and Test routes (edits hookcatch.toml; a running `serve` reloads).
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Set a route's secret in the local secrets file (hookcatch.secrets.toml, mode 0600).
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Zoho CRM: enable or renew a zoho-crm route's notification channels.
    #[command(subcommand)]
    Zoho(zoho::ZohoCommand),
    /// Deploy every route of hookcatch.toml: check it, push each route's configuration to SSM,
    /// `sam build` and `sam deploy` with the route list, then print each route's Function URL.
    Deploy(deploy::DeployArgs),
    /// Print the `sam local invoke --env-vars` file of a route's function (or `consumer`): SSM
    /// paths and resource names, never a secret value.
    EnvJson(env_json::EnvJsonArgs),
    /// Re-queue dead-lettered events so the consumer tries them again (--aws: redrive the SQS DLQ),
    /// or (--event) run a stored event through the consumer again with its route's current rules.
    Replay(replay::ReplayArgs),
    /// The console over a deployed stack, on this machine with your AWS credentials: stored events
    /// from the event index, dead letters from the DLQ (left in place), refusals from the route
    /// functions' logs, Replay through the events queue, Resend to the route's Function URL.
    Console(console::ConsoleArgs),
    /// The requests the deployed route functions refused (401, 403, 405, 413, 431, 429), newest
    /// first, from their CloudWatch logs (`serve`'s are on the console's /refusals page).
    Refusals(refusals::RefusalsArgs),
}

/// Runs the parsed command; one line per command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Send(args) => send::run(args).await,
        Command::Events(command) => events::run(command).await,
        Command::Records(command) => records::run(command).await,
        Command::Routes(command) => routes::run(command).await,
        Command::Secrets(command) => secrets::run(command).await,
        Command::Zoho(command) => zoho::run(command).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::EnvJson(args) => env_json::run(args),
        Command::Replay(args) => replay::run(args).await,
        Command::Console(args) => console::run(args).await,
        Command::Refusals(args) => refusals::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own checks of every command's flags (conflicts, requirements, flattened groups).
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
