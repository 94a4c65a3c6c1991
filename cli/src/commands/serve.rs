//! `hookcatch serve`: every route and the consumer on this machine, with the console beside them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::args::{ConfigArg, wait_for_signal};
use crate::project::config::ConfigFile;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    project: ConfigArg,
    /// Address to listen on (overrides [serve].addr).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Directory of the local store (overrides [serve].data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address of the console (overrides [serve].console_addr; default 127.0.0.1:3001).
    /// It asks every browser for its token: HOOKCATCH_CONSOLE_TOKEN, or the one kept in the
    /// data directory (console-token) and printed at start.
    #[arg(long)]
    console_addr: Option<SocketAddr>,
    /// Run no console.
    #[arg(long, conflicts_with = "console_addr")]
    no_console: bool,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = ConfigFile::load(&args.project.config)?;
    let mut settings = file.serve.clone();
    settings.addr = args.addr.unwrap_or(settings.addr);
    settings.data = args.data.unwrap_or(settings.data);
    settings.console_addr = args.console_addr.unwrap_or(settings.console_addr);
    settings.console &= !args.no_console;
    let running = crate::serve::start(&file, &settings)
        .await
        .map_err(anyhow::Error::msg)?;
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
        args.project.config.display()
    );
    let shutdown = running.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("shutting down: finishing in-flight requests and the current batch");
        let _ = shutdown.send(true);
    });
    running.wait().await.map_err(anyhow::Error::msg)
}
