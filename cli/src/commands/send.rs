//! `hookcatch send`: a route's sample event, signed like its provider would, to `serve` or a
//! Function URL (or printed as a Function URL event for `sam local invoke`).

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::args::ConfigArg;

use crate::send;

#[derive(Args)]
pub struct SendArgs {
    #[arg(long)]
    route: String,
    /// A Function URL event (payload v2.0) to send; default: the route's sample in events/.
    #[arg(long)]
    event: Option<PathBuf>,
    /// Where to send it; default: this machine's `serve` at /hooks/{route}.
    #[arg(long)]
    to: Option<String>,
    /// Allow `--to` a plain http URL on another machine (credentials in clear).
    #[arg(long)]
    insecure_http: bool,
    /// Print a freshly signed Function URL event (for `sam local invoke -e`) instead of sending.
    #[arg(long)]
    print_event: bool,
    #[command(flatten)]
    project: ConfigArg,
}

pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let SendArgs {
        route,
        event,
        to,
        insecure_http,
        print_event,
        project,
    } = args;
    if let Some(to) = &to {
        send::credentials_may_go_to(to, insecure_http)?;
    }
    let (file, route_config) = project.route(&route)?;
    let events_dir = project
        .config
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("events");
    let sample =
        event.unwrap_or_else(|| send::default_sample(&events_dir, route_config.provider.as_str()));
    let mut request = send::request_from_event(&sample)?;
    let settings = file.resolve_route(&route).await?;
    let url =
        to.unwrap_or_else(|| format!("http://{}/hooks/{route}", super::args::serve_addr(&file)));
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
            serde_json::to_string_pretty(&send::function_url_event(&request)).unwrap_or_default()
        );
        return Ok(());
    }
    let (status, body) = send::send(&request, &url).await?;
    println!("{status} {body}");
    if !(200..300).contains(&status) {
        bail!("{url} answered {status}");
    }
    Ok(())
}
