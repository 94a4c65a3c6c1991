//! The web console: what arrived, in a browser, over either home (`serve`'s store, live; a
//! deployed stack, read on each load). Its own listener (never the webhook one, which users expose
//! through tunnels), server-rendered with escaping everywhere, a little JavaScript, and no request
//! it answers for a stranger (`gate.rs`). One file per page, each ending in its router; every
//! handler reads and acts through the [`Source`] it is given, so a page is written once for both
//! homes. What only `serve` has (the live list, the routes page's counts and Test button, the
//! replay progress) is routed when the console is a local one.

pub mod aws;
mod dead;
mod events;
mod gate;
mod pages;
mod records;
mod refusals;
mod render;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use tokio::sync::watch;

use crate::project::config::ConfigFile;
use crate::source::Source;
use crate::source::local::LocalSource;
use crate::store::LocalStore;
use gate::{Gate, guard};

/// Where the console listens and who may use it.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub addr: SocketAddr,
    /// Required from every browser when the console listens off loopback.
    pub token: Option<String>,
}

impl ConsoleSettings {
    /// The settings for `addr`: off loopback, `token` or a new random one.
    pub fn new(addr: SocketAddr, token: Option<String>) -> ConsoleSettings {
        let token = if addr.ip().is_loopback() {
            token
        } else {
            Some(token.unwrap_or_else(random_token))
        };
        ConsoleSettings { addr, token }
    }
}

/// What the console shows and acts on: `serve`'s store, configuration and webhook address.
pub struct Context {
    pub store: LocalStore,
    /// The requests `serve` refused lately.
    pub refusals: crate::refusals::Refusals,
    /// The handshakes `serve` answered in the last hour.
    pub handshakes: crate::handshakes::Handshakes,
    /// The configuration `serve` started with; re-read from its file, when it has one, for the
    /// routes page (routes reload without a restart).
    pub config: ConfigFile,
    /// Where `serve` takes webhooks (a Test is sent there).
    pub hooks_addr: SocketAddr,
    pub data_dir: String,
}

/// A console's state: the home it reads, and `serve`'s extras when it is a local one.
struct Console {
    source: Arc<dyn Source>,
    local: Option<Arc<LocalSource>>,
    /// What every form carries back, so that a page on another site cannot post one.
    csrf: String,
    stopped: watch::Receiver<bool>,
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A running console: its address and the URL to open (with the token, when one is needed).
pub struct Started {
    pub addr: SocketAddr,
    pub url: String,
    pub server: tokio::task::JoinHandle<()>,
}

/// The console's listener, its address and the URL to open.
async fn bind(
    settings: &ConsoleSettings,
) -> Result<(tokio::net::TcpListener, SocketAddr, String), String> {
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| format!("the console cannot listen on {}: {e}", settings.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = match &settings.token {
        Some(token) => format!("http://{addr}/?token={token}"),
        None => format!("http://{addr}/"),
    };
    Ok((listener, addr, url))
}

/// Serves `router` behind the gate until `stopped` turns true.
fn serve(
    listener: tokio::net::TcpListener,
    gate: Gate,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(Arc::new(gate), guard));
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the console stopped");
        }
    })
}

/// The console over `serve`'s store.
pub async fn start(
    settings: ConsoleSettings,
    context: Context,
    stopped: watch::Receiver<bool>,
) -> Result<Started, String> {
    let local = Arc::new(LocalSource::new(
        context.store,
        context.refusals,
        context.handshakes,
        context.config,
        context.hooks_addr,
        &context.data_dir,
    ));
    start_over(settings, local.clone(), Some(local), stopped).await
}

/// The console over `source` (with `local`, `serve`'s own pages too).
async fn start_over(
    settings: ConsoleSettings,
    source: Arc<dyn Source>,
    local: Option<Arc<LocalSource>>,
    stopped: watch::Receiver<bool>,
) -> Result<Started, String> {
    let (listener, addr, url) = bind(&settings).await?;
    let console = Console {
        source,
        local,
        csrf: random_token(),
        stopped: stopped.clone(),
    };
    let router = Router::new()
        .merge(events::router(&console))
        .merge(records::router())
        .merge(routes::router(&console))
        .merge(dead::router(&console))
        .merge(refusals::router())
        .route("/assets/console.js", get(render::script))
        .route("/assets/console.css", get(render::style))
        .fallback(not_found)
        .with_state(Arc::new(console));
    let gate = Gate {
        addr,
        token: settings.token,
    };
    let server = serve(listener, gate, router, stopped);
    Ok(Started { addr, url, server })
}

async fn not_found(State(console): State<Arc<Console>>) -> Response {
    render::not_found_page(console.source.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_off_loopback_only() {
        let local = ConsoleSettings::new("127.0.0.1:3001".parse().unwrap(), None);
        assert!(local.token.is_none());
        let open = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), None);
        assert_eq!(open.token.as_deref().map(str::len), Some(64));
        let given = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), Some("dev-only".into()));
        assert_eq!(given.token.as_deref(), Some("dev-only"));
    }
}
