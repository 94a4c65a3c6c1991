//! Flags several commands share, declared once, and the small parsers behind them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use hookcatch::clock::{Clock, SystemClock};

use hookcatch::RouteConfig;

use crate::project::config::ConfigFile;
use crate::store::LocalStore;
use crate::term::parse_time;

/// Where this machine's `serve` takes webhooks: the running one's address (it may have been
/// started with `--addr`), else `hookcatch.toml`'s; says which on stderr.
pub fn serve_addr(file: &ConfigFile) -> std::net::SocketAddr {
    let data = file.serve.data.display();
    match crate::store::RunningServe::find(&file.serve.data) {
        Some(running) => {
            eprintln!("using the serve running on {data}: {}", running.hooks);
            running.hooks
        }
        None => {
            eprintln!(
                "no serve runs on {data}: using hookcatch.toml's address {}",
                file.serve.addr
            );
            file.serve.addr
        }
    }
}

/// `--config`: the project's `hookcatch.toml`.
#[derive(Args, Clone)]
pub struct ConfigArg {
    #[arg(long, default_value = "hookcatch.toml")]
    pub config: PathBuf,
}

/// `--stack` beside an `--aws` flag: the CloudFormation stack it reads or writes.
#[derive(Args, Clone)]
pub struct AwsStackArg {
    /// With --aws: the CloudFormation stack.
    #[arg(long, default_value = "hookcatch", requires = "aws")]
    pub stack: String,
}

#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Directory of the local store.
    #[arg(long, default_value = ".hookcatch")]
    pub data: PathBuf,
    /// Read the deployed stack (DynamoDB table, SQS queues) instead of the local store.
    #[arg(long)]
    pub aws: bool,
    /// The deployed DynamoDB table (stack output EventsTableName).
    #[arg(long, env = "HOOKCATCH_TABLE")]
    pub table: Option<String>,
}

#[derive(Args, Clone)]
pub struct OutputArgs {
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// This machine's store in `--data`, which `serve` must have made.
pub fn open_local(store: &StoreArgs) -> anyhow::Result<LocalStore> {
    if !store.data.join("hookcatch.db").is_file() {
        bail!(
            "no local store in {} (start `hookcatch serve` first, or pass --data)",
            store.data.display()
        );
    }
    Ok(LocalStore::open(&store.data)?)
}

/// Where the inspection commands read from: this machine's store or a stack's table (the console
/// reads through `crate::source::Source` instead; these keep their own scan and delivery rules).
pub enum Home {
    Local(LocalStore),
    Aws(hookcatch::aws::DynamoStore),
}

impl Home {
    pub async fn open(args: &StoreArgs) -> anyhow::Result<Home> {
        if args.aws {
            let table = args
                .table
                .as_deref()
                .context("--aws needs --table (stack output EventsTableName) or HOOKCATCH_TABLE")?;
            let sdk = crate::stack::sdk().await?;
            Ok(Home::Aws(crate::stack::store(&sdk, table)))
        } else {
            open_local(args).map(Home::Local)
        }
    }
}

/// `--route-url NAME=URL`.
pub fn route_url_arg(text: &str) -> Result<(String, String), String> {
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
fn cursor_arg(after: Option<&str>, listing: &str) -> anyhow::Result<()> {
    match after {
        Some(after) if !hookcatch::aws::is_cursor(after) => {
            bail!("--after {after}: not a cursor `{listing} list --aws --route` printed")
        }
        _ => Ok(()),
    }
}

/// A listing's `--after` (refused unless it is a cursor a page printed) and its window.
pub fn listing_window(
    listing: &str,
    after: Option<&str>,
    since: Option<&str>,
    until: Option<&str>,
) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    cursor_arg(after, listing)?;
    time_window(since, until)
}

/// `--since` and `--until` as milliseconds, each an RFC 3339 time or a duration back.
fn time_window(
    since: Option<&str>,
    until: Option<&str>,
) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    let now_ms = SystemClock.now_ms();
    let at = |what, text: Option<&str>| text.map(|t| parse_time(what, t, now_ms)).transpose();
    let since_ms = at("--since", since).map_err(anyhow::Error::msg)?;
    let until_ms = at("--until", until).map_err(anyhow::Error::msg)?;
    if let (Some(since_ms), Some(until_ms)) = (since_ms, until_ms)
        && until_ms <= since_ms
    {
        bail!("--until is not after --since: the window is empty");
    }
    Ok((since_ms, until_ms))
}

/// What a failed query of the event index tells the user to do.
pub fn index_error(error: &hookcatch::ports::StoreError) -> anyhow::Error {
    anyhow::anyhow!(
        "querying the event index failed ({error}); a stack deployed with EventIndex=off has \
         none: leave out --route to scan the table"
    )
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
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

impl ConfigArg {
    /// The configuration file and its route `name`.
    pub fn route(&self, name: &str) -> anyhow::Result<(ConfigFile, RouteConfig)> {
        let file = ConfigFile::load(&self.config)?;
        let route = file
            .route(name)
            .with_context(|| format!("no route `{name}` in {}", self.config.display()))?
            .clone();
        Ok((file, route))
    }
}
