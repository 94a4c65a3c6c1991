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
    /// Required from every browser, on loopback too: another local user or a page in the owner's
    /// browser must not read stored bodies or act with the owner's secrets and AWS credentials.
    pub token: String,
}

/// The fewest characters a console token may have (a made one has 64 hex digits, 256 bits).
pub const MIN_TOKEN_CHARS: usize = 32;

impl ConsoleSettings {
    /// The settings for `addr` with `token` (`HOOKCATCH_CONSOLE_TOKEN`), or a new random one when
    /// none is given; a token too short to resist guessing is refused.
    pub fn new(addr: SocketAddr, token: Option<String>) -> Result<ConsoleSettings, String> {
        let token = match token {
            Some(token) => strong(token)?,
            None => random_token(),
        };
        Ok(ConsoleSettings { addr, token })
    }

    /// The settings for `addr` with `HOOKCATCH_CONSOLE_TOKEN` when set, else the token kept in
    /// `file` (made on first use, readable by its owner only), so that a bookmark and the
    /// browser's cookie outlive a restart of `serve`.
    pub fn kept_in(
        addr: SocketAddr,
        token: Option<String>,
        file: &std::path::Path,
    ) -> Result<ConsoleSettings, String> {
        match token {
            Some(token) => ConsoleSettings::new(addr, Some(token)),
            None => Ok(ConsoleSettings {
                addr,
                token: crate::store::kept_token(file, random_token, MIN_TOKEN_CHARS)?,
            }),
        }
    }
}

fn strong(token: String) -> Result<String, String> {
    let token = token.trim().to_owned();
    if token.chars().count() < MIN_TOKEN_CHARS
        || !token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return Err(format!(
            "HOOKCATCH_CONSOLE_TOKEN must be at least {MIN_TOKEN_CHARS} printable characters \
             without `;` or `,` (it guards every stored body); unset it and one is made"
        ));
    }
    Ok(token)
}

/// `HOOKCATCH_CONSOLE_TOKEN`, when set to anything but blanks.
pub fn token_from_env() -> Option<String> {
    std::env::var("HOOKCATCH_CONSOLE_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
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

/// A running console: its address and the URL to open (with its token).
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
    let token: String = form_urlencoded::byte_serialize(settings.token.as_bytes()).collect();
    Ok((listener, addr, format!("http://{addr}/?token={token}")))
}

/// Serves `router` behind the gate until `stopped` turns true.
fn serve(
    listener: tokio::net::TcpListener,
    gate: Gate,
    router: Router,
    stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(Arc::new(gate), guard));
    tokio::spawn(crate::server::serve(
        listener,
        router,
        crate::server::Limits::console(),
        stopped,
    ))
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
    let gate = Gate::new(addr, settings.token);
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
    fn a_token_is_made_everywhere_and_a_weak_one_is_refused() {
        let local = ConsoleSettings::new("127.0.0.1:3001".parse().unwrap(), None).unwrap();
        assert_eq!(local.token.len(), 64);
        let open = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), None).unwrap();
        assert_ne!(open.token, local.token);
        let strong_enough = "dev-only-console-token-0123456789";
        let given =
            ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), Some(strong_enough.into()))
                .unwrap();
        assert_eq!(given.token, strong_enough);
        for weak in ["a", "dev-only", "dev-only-console-token-012345678;"] {
            let refused = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), Some(weak.into()))
                .unwrap_err();
            assert!(refused.contains("at least 32"), "{refused}");
        }
    }

    #[test]
    fn the_kept_token_outlives_a_restart_and_only_its_owner_reads_it() {
        let dir = std::env::temp_dir().join(format!("hookcatch-token-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("console-token");
        let addr: SocketAddr = "127.0.0.1:3001".parse().unwrap();
        let first = ConsoleSettings::kept_in(addr, None, &file).unwrap();
        let again = ConsoleSettings::kept_in(addr, None, &file).unwrap();
        assert_eq!(first.token, again.token);
        assert_eq!(first.token.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A kept token too weak to keep (written by hand) is replaced.
        std::fs::write(&file, "short\n").unwrap();
        let replaced = ConsoleSettings::kept_in(addr, None, &file).unwrap();
        assert_eq!(replaced.token.len(), 64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
