//! `hookcatch serve`'s console: what arrived, live, in a browser. Its own listener (never the
//! webhook one, which users expose through tunnels), read-only, server-rendered with escaping
//! everywhere, a little JavaScript for the live list, and no request it answers for a stranger:
//! the `Host` must be the console's own address (DNS rebinding), and off loopback a token is
//! required.

pub mod aws;
mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::ports::EventStore;
use serde::Deserialize;
use tokio::sync::watch;

use crate::config::ConfigFile;
use crate::inspect::EventView;
use crate::store::{Cursor, EventFilter, LocalStore, QueueState};
use pages::{
    DeadPage, DeadRow, EventDetail, EventPage, EventsPage, MessagePage, RecordRow, RecordShown,
    RecordsPage, RefusalRow, RefusalsPage, RouteLine, RoutesPage, Row, RowsFragment,
};

/// Events on one page of the list.
const PAGE: usize = 50;
/// How often the live list looks for changes.
const POLL: Duration = Duration::from_millis(250);
const TOKEN_COOKIE: &str = "hookcatch_console";

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

/// Who may use a console: its address (the `Host` every request must name) and its token.
pub(crate) struct Gate {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

struct Console {
    context: Context,
    store: LocalStore,
    routes: Vec<String>,
    data_dir: String,
    addr: SocketAddr,
    token: Option<String>,
    /// What every form carries back, so that a page on another site cannot post one.
    csrf: String,
    /// The queue entries the last Replay on `/dead` put back, whose progress `/dead` shows.
    last_replay: std::sync::Mutex<Vec<i64>>,
    stopped: watch::Receiver<bool>,
}

pub(crate) fn random_token() -> String {
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

pub async fn start(
    settings: ConsoleSettings,
    context: Context,
    stopped: watch::Receiver<bool>,
) -> Result<Started, String> {
    let (listener, addr, url) = bind(&settings).await?;
    let console = Arc::new(Console {
        store: context.store.clone(),
        routes: context
            .config
            .routes
            .iter()
            .map(|r| r.name.clone())
            .collect(),
        // What the header says the console reads.
        data_dir: format!("serve · {}", context.data_dir),
        context,
        addr,
        token: settings.token,
        csrf: random_token(),
        last_replay: std::sync::Mutex::new(Vec::new()),
        stopped: stopped.clone(),
    });
    let router = Router::new()
        .route("/", get(events_page))
        .route("/rows", get(rows_fragment))
        .route("/live", get(live))
        .route("/events/{id}", get(event_page))
        .route("/events/{id}/body", get(event_body))
        .route("/events/{id}/{action}", post(event_action))
        .route("/records", get(records_page))
        .route("/routes", get(routes_page))
        .route("/routes/{name}/test", post(test_route))
        .route("/dead", get(dead_page))
        .route("/dead/replay", post(replay_dead))
        .route("/dead/progress", get(replay_progress))
        .route("/refusals", get(refusals_page))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .fallback(not_found)
        .with_state(console.clone());
    let gate = Gate {
        addr: console.addr,
        token: console.token.clone(),
    };
    let server = serve(listener, gate, router, stopped);
    Ok(Started { addr, url, server })
}

/// Whether `host` (a `Host` header) names this console: its own address, `localhost` on
/// loopback, or any IP address on its port when it listens on all of them. Never a DNS name
/// it was not started with, which is what a DNS-rebinding page would send.
fn host_allowed(host: &str, addr: SocketAddr) -> bool {
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    if port.parse::<u16>().ok() != Some(addr.port()) {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    match name.parse::<IpAddr>() {
        Ok(ip) => ip == addr.ip() || addr.ip().is_unspecified(),
        Err(_) => {
            name.eq_ignore_ascii_case("localhost")
                && (addr.ip().is_loopback() || addr.ip().is_unspecified())
        }
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .map(|(_, value)| value)
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
}

fn matches_token(expected: &str, given: &str) -> bool {
    hookcatch::secrets::Secret::new(expected).matches(given.as_bytes())
}

/// Every request: its own `Host`, the token off loopback (from the cookie, or once from
/// `?token=`, which sets the cookie), a POST only from the console's own pages (`Origin`; the
/// handlers check the form's CSRF token), and headers that keep the pages from being framed,
/// sniffed or made to run anything but their own script.
pub(crate) async fn guard(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let mut response = match check(&gate, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with the
    // console's own forms, which the Origin check would refuse.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refusal for `request`, or `None` when it may pass.
fn check(console: &Gate, request: &Request) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let method = request.method();
    if method == Method::POST {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if origin != Some(format!("http://{host}").as_str()) {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                "Refused: a change must come from the console's own pages (Origin).",
            ));
        }
    } else if method != Method::GET && method != Method::HEAD {
        return Some(refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "The console reads with GET and acts with its own forms' POSTs.",
        ));
    }
    if !host_allowed(host, console.addr) {
        return Some(refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "Refused: this console answers only to its own address, http://{}/ (a page on \
                 another site may not reach it through your browser).",
                console.addr
            ),
        ));
    }
    let expected = console.token.as_deref()?;
    if cookie_token(request.headers()).is_some_and(|given| matches_token(expected, given)) {
        return None;
    }
    match query_token(request.uri().query()) {
        Some(given) if matches_token(expected, &given) => {
            // Once: the token moves into a cookie this site alone sends, and out of the address bar.
            let mut response = Redirect::to(request.uri().path()).into_response();
            let cookie = format!("{TOKEN_COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            Some(response)
        }
        _ => Some(refusal(
            StatusCode::UNAUTHORIZED,
            "This console listens beyond this machine, so it needs its token: open the URL \
             `hookcatch serve` printed at start (…/?token=…).",
        )),
    }
}

pub(crate) fn refusal(status: StatusCode, message: &str) -> Response {
    let page = MessagePage {
        data_dir: String::new(),
        title: status.canonical_reason().unwrap_or("Refused").to_owned(),
        message: message.to_owned(),
    };
    (status, render(&page)).into_response()
}

pub(crate) fn render(page: &impl Template) -> Html<String> {
    Html(page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a console page failed to render");
        "<!doctype html><title>error</title><p>This page failed to render; see serve's log.</p>"
            .to_owned()
    }))
}

async fn not_found(State(console): State<Arc<Console>>) -> Response {
    not_found_page(&console.data_dir)
}

fn not_found_page(data_dir: &str) -> Response {
    let page = MessagePage {
        data_dir: data_dir.to_owned(),
        title: "Not found".into(),
        message: "Nothing here. The events are at /.".into(),
    };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

/// The list's filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    route: String,
    #[serde(default, rename = "type")]
    event_type: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    /// Where the previous page ended: a stored event's cursor, or a queue sequence number.
    #[serde(default)]
    after: String,
}

const STATUSES: [(&str, &str); 4] = [
    ("", "all"),
    ("stored", "stored"),
    ("queued", "queued or retrying"),
    ("dead", "dead"),
];

impl ListQuery {
    fn filter(&self, now_ms: i64) -> Result<EventFilter, String> {
        let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let time = |text: &str, what: &str| {
            nonempty(text)
                .map(|t| crate::inspect::parse_time(what, &t, now_ms))
                .transpose()
        };
        Ok(EventFilter {
            route: nonempty(&self.route),
            event_type: nonempty(&self.event_type),
            since_ms: time(&self.since, "From")?,
            until_ms: time(&self.until, "To")?,
        })
    }

    fn is_filtered(&self) -> bool {
        [
            &self.route,
            &self.event_type,
            &self.status,
            &self.since,
            &self.until,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// This query's filters with `after` set (or not), as a link.
    fn link(&self, after: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("route", &self.route),
            ("type", &self.event_type),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
        format!("/?{}", query.finish())
    }
}

/// The rows of one page and where the next one starts.
async fn list(
    store: &LocalStore,
    query: &ListQuery,
    filter: &EventFilter,
    first_page: bool,
) -> Result<(Vec<Row>, Option<String>), String> {
    let pending_matches = |view: &EventView| {
        filter.route.as_ref().is_none_or(|r| &view.route == r)
            && filter.event_type.is_none()
            && filter.since_ms.is_none_or(|s| view.received_at_ms >= s)
            && filter.until_ms.is_none_or(|u| view.received_at_ms < u)
    };
    let failed = |e: hookcatch::ports::StoreError| e.to_string();
    match query.status.as_str() {
        "queued" | "dead" => {
            let state = if query.status == "dead" {
                QueueState::Dead
            } else {
                QueueState::Queued
            };
            let before = if first_page {
                None
            } else {
                query.after.parse().ok()
            };
            let entries = store
                .browse_queue(state, before, PAGE)
                .await
                .map_err(failed)?;
            let next = (entries.len() == PAGE)
                .then(|| entries.last().map(|e| e.seq.to_string()))
                .flatten();
            let rows = entries
                .iter()
                .filter_map(EventView::from_queue)
                .filter(|view| pending_matches(view))
                .map(|view| Row::from_view(&view))
                .collect();
            Ok((rows, next))
        }
        status => {
            let mut rows = Vec::new();
            // Events not stored yet lead the first page of "all": normally a few, for a moment.
            if status.is_empty() && first_page {
                for state in [QueueState::Dead, QueueState::Queued] {
                    let entries = store
                        .browse_queue(state, None, PAGE)
                        .await
                        .map_err(failed)?;
                    rows.extend(
                        entries
                            .iter()
                            .filter_map(EventView::from_queue)
                            .filter(|view| pending_matches(view))
                            .map(|view| Row::from_view(&view)),
                    );
                }
                rows.sort_by_key(|row| std::cmp::Reverse(row.received_at_ms));
            }
            let after = if first_page {
                None
            } else {
                Cursor::parse(&query.after)
            };
            let page = store
                .browse_events(filter.clone(), after, PAGE)
                .await
                .map_err(failed)?;
            let next = (page.len() == PAGE)
                .then(|| page.last().map(|(_, cursor)| cursor.to_text()))
                .flatten();
            rows.extend(
                page.into_iter()
                    .map(|(event, _)| Row::from_view(&EventView::from_stored(event))),
            );
            Ok((rows, next))
        }
    }
}

async fn events_page(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let first_page = query.after.is_empty();
    let (rows, next, error) = match query.filter(SystemClock.now_ms()) {
        Ok(filter) => match list(&console.store, &query, &filter, first_page).await {
            Ok((rows, next)) => (rows, next, None),
            Err(error) => (
                Vec::new(),
                None,
                Some(format!("Reading the store failed: {error}")),
            ),
        },
        Err(error) => (Vec::new(), None, Some(error)),
    };
    let listed = Listed { rows, next, error };
    render(&events_view(
        &console.data_dir,
        &console.routes,
        &query,
        true,
        listed,
    ))
    .into_response()
}

/// One page of the list as read: its rows, where the next starts, or why it could not be read.
struct Listed {
    rows: Vec<Row>,
    next: Option<String>,
    error: Option<String>,
}

/// The events page for `query` over `routes`, live (local) or read on each load (AWS).
fn events_view(
    data_dir: &str,
    routes: &[String],
    query: &ListQuery,
    live: bool,
    listed: Listed,
) -> EventsPage {
    let mut routes = routes.to_vec();
    if !query.route.is_empty() && !routes.contains(&query.route) {
        routes.push(query.route.clone());
    }
    EventsPage {
        data_dir: data_dir.to_owned(),
        routes: routes
            .into_iter()
            .map(|r| {
                let selected = r == query.route;
                (r, selected)
            })
            .collect(),
        event_type: query.event_type.clone(),
        statuses: STATUSES
            .iter()
            .map(|(value, label)| (*value, *label, *value == query.status))
            .collect(),
        since: query.since.clone(),
        until: query.until.clone(),
        filtered: query.is_filtered(),
        first_page: query.after.is_empty(),
        live,
        newest_link: query.link(None),
        next_link: listed.next.map(|after| query.link(Some(&after))),
        error: listed.error,
        rows: listed.rows,
    }
}

/// The first page's rows alone, for the live list to swap in.
async fn rows_fragment(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let filter = match query.filter(SystemClock.now_ms()) {
        Ok(filter) => filter,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match list(&console.store, &query, &filter, true).await {
        Ok((rows, _)) => render(&RowsFragment {
            rows,
            filtered: query.is_filtered(),
        })
        .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error).into_response(),
    }
}

/// Server-sent events: `changed` whenever an event is queued, stored, retried or dead-lettered.
async fn live(State(console): State<Arc<Console>>) -> impl IntoResponse {
    let store = console.store.clone();
    let stopped = console.stopped.clone();
    let changes = futures::stream::unfold(
        (store, stopped, None),
        |(store, mut stopped, last)| async move {
            loop {
                if *stopped.borrow() {
                    return None;
                }
                let marker = store.change_marker().await.ok();
                if marker.is_some() && marker != last {
                    let data = format!("{marker:?}");
                    let event = Event::default().event("changed").data(data);
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (store, stopped, marker),
                    ));
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    // A closed channel (serve gone) ends the stream instead of waking it forever.
                    changed = stopped.changed() => if changed.is_err() { return None; },
                }
            }
        },
    );
    Sse::new(changes).keep_alive(KeepAlive::default())
}

/// An event by id: stored, or still in the queue (queued, retrying or dead).
async fn find_view(console: &Console, id: &str) -> Result<EventView, Response> {
    let store = &console.store;
    let failed = |error: hookcatch::ports::StoreError| {
        refusal(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
    };
    let view = match store
        .find_event_by_id(id.to_owned())
        .await
        .map_err(failed)?
    {
        Some(event) => Some(EventView::from_stored(event)),
        None => store
            .queue_entry_of(id.to_owned())
            .await
            .map_err(failed)?
            .as_ref()
            .and_then(EventView::from_queue),
    };
    view.ok_or_else(|| {
        let page = MessagePage {
            data_dir: console.data_dir.clone(),
            title: "No such event".into(),
            message: format!("No event `{id}` in this store (it may have expired)."),
        };
        (StatusCode::NOT_FOUND, render(&page)).into_response()
    })
}

/// The body as the detail page shows it, as a download (never rendered by the browser).
async fn event_body(State(console): State<Arc<Console>>, Path(id): Path<String>) -> Response {
    let view = match find_view(&console, &id).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    body_download(view)
}

/// An event's body as a download (never rendered by the browser).
fn body_download(view: EventView) -> Response {
    let name: String = view
        .id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.body\""),
            ),
        ],
        view.body.unwrap_or_default(),
    )
        .into_response()
}

/// The list's record filters.
#[derive(Debug, Default, Deserialize)]
struct RecordQuery {
    #[serde(default)]
    route: String,
    #[serde(default, rename = "type")]
    record_type: String,
}

async fn records_page(
    State(console): State<Arc<Console>>,
    Query(query): Query<RecordQuery>,
) -> Response {
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let records = match console
        .store
        .list_records(
            nonempty(&query.route),
            nonempty(&query.record_type),
            None,
            None,
            200,
        )
        .await
    {
        Ok(records) => records,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    render(&RecordsPage {
        data_dir: console.data_dir.clone(),
        route: query.route,
        record_type: query.record_type,
        records: records.iter().map(RecordRow::new).collect(),
    })
    .into_response()
}

async fn event_page(State(console): State<Arc<Console>>, Path(id): Path<String>) -> Response {
    event_view(&console, &id, None).await
}

async fn event_view(console: &Console, id: &str, result: Option<(bool, String)>) -> Response {
    let store = &console.store;
    let view = match find_view(console, id).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let records = records_shown(store, &view).await;
    let page = EventPage {
        data_dir: console.data_dir.clone(),
        event: EventDetail::new(&view, records, &console.route_url(&view.route)),
        csrf: console.csrf.clone(),
        resend: true,
        no_resend: String::new(),
        detail: String::new(),
        result,
    };
    render(&page).into_response()
}

/// The records an event's rules named, as the store holds them now.
async fn records_shown(store: &dyn EventStore, view: &EventView) -> Vec<RecordShown> {
    let mut records = Vec::new();
    for key in view.detail["records"].as_array().into_iter().flatten() {
        let Some((record_type, record_id)) = key.as_str().and_then(|k| k.split_once('/')) else {
            continue;
        };
        let found = store
            .get_record(&view.route, record_type, record_id)
            .await
            .ok()
            .flatten();
        records.push(RecordShown {
            key: format!("{record_type}/{record_id}"),
            version: found
                .as_ref()
                .map(|r| pages::version_text(&r.version))
                .unwrap_or_default(),
            deleted: found.as_ref().is_some_and(|r| r.deleted),
            written_by_this: found.as_ref().is_none_or(|r| r.event_id == view.id),
            data: found.map(|r| serde_json::to_string_pretty(&r.data).unwrap_or_default()),
        });
    }
    records
}

/// A stored event's two actions: **replay** (the consumer again, with its route's current rules)
/// and **resend** (its request to the route again, re-signed, through verification).
async fn event_action(
    State(console): State<Arc<Console>>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let outcome = async {
        let config = console.config()?;
        match action.as_str() {
            "replay" => crate::replay::replay_event(&console.store, &config, &id)
                .await
                .map(|summary| (true, format!("{summary}: reload in a moment to see it."))),
            "resend" => {
                let url = |route: &str| console.route_url(route);
                let resent =
                    crate::replay::resend_event(&console.store, &config, &id, &url).await?;
                Ok(((200..300).contains(&resent.status), resent.summary(&id)))
            }
            _ => Err(format!("no action `{action}`")),
        }
    }
    .await;
    let result = outcome.unwrap_or_else(|error| (false, error));
    event_view(&console, &id, Some(result)).await
}

/// A form's fields: the CSRF token, and the queue entry a replay names.
#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    seq: Option<i64>,
}

/// A refusal for a form that does not carry the console's CSRF token `csrf`.
fn forged(csrf: &str, form: &ActionForm) -> Option<Response> {
    (!matches_token(csrf, &form.csrf)).then(|| {
        refusal(
            StatusCode::FORBIDDEN,
            "Refused: the form's CSRF token is missing or stale; reload the page.",
        )
    })
}

impl Console {
    fn forged(&self, form: &ActionForm) -> Option<Response> {
        forged(&self.csrf, form)
    }

    /// The configuration as it is now (re-read from its file, which routes commands edit).
    fn config(&self) -> Result<ConfigFile, String> {
        match &self.context.config.source {
            Some(path) => ConfigFile::load(path).map_err(|e| e.to_string()),
            None => Ok(self.context.config.clone()),
        }
    }

    fn route_url(&self, route: &str) -> String {
        format!("http://{}/hooks/{route}", self.context.hooks_addr)
    }
}

async fn routes_page(State(console): State<Arc<Console>>) -> Response {
    routes_view(&console, None).await
}

async fn routes_view(console: &Console, result: Option<(bool, String)>) -> Response {
    let file = match console.config() {
        Ok(file) => file,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let store = &console.store;
    let now = SystemClock.now_ms();
    let (Ok(last), Ok(last_hour)) = (
        store.last_received_by_route().await,
        store.stored_since_by_route(now - 3_600_000).await,
    ) else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Reading the store failed.",
        );
    };
    // The last hour by route and minute: stored events, and refusals from the ring.
    let first_minute = now / 60_000 - 59;
    let mut charts: std::collections::HashMap<String, ([u32; 60], [u32; 60])> =
        std::collections::HashMap::new();
    let Ok(per_minute) = store.stored_per_minute(first_minute * 60_000).await else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Reading the store failed.",
        );
    };
    for (route, minute, count) in per_minute {
        if let Ok(slot) = usize::try_from(minute - first_minute)
            && slot < 60
        {
            charts.entry(route).or_insert(([0; 60], [0; 60])).0[slot] =
                u32::try_from(count).unwrap_or(u32::MAX);
        }
    }
    for refused in console.context.refusals.recent() {
        if let Ok(slot) = usize::try_from(refused.at_ms / 60_000 - first_minute)
            && slot < 60
        {
            charts.entry(refused.route).or_insert(([0; 60], [0; 60])).1[slot] += 1;
        }
    }
    let mut refused_last_hour: std::collections::HashMap<String, u32> =
        std::collections::HashMap::new();
    for refused in console.context.refusals.recent() {
        if refused.at_ms > now - 3_600_000 {
            *refused_last_hour.entry(refused.route).or_default() += 1;
        }
    }
    let handshakes = console.context.handshakes.last_hour(now);
    let deployed = crate::deployment::DeployedUrls::load(&file.serve.data);
    let routes = crate::routes::rows(&file, &last, &deployed.urls)
        .into_iter()
        .map(|mut row| {
            // Where this serve listens, which `[serve] addr` may not say (`--addr`, port 0).
            row.url = console.route_url(&row.name);
            let (stored, refused) = charts.get(&row.name).copied().unwrap_or(([0; 60], [0; 60]));
            RouteLine {
                last_hour: last_hour.get(&row.name).copied().unwrap_or(0),
                refused_last_hour: refused_last_hour.get(&row.name).copied().unwrap_or(0),
                handshakes_last_hour: handshakes.get(&row.name).copied().unwrap_or(0),
                chart: pages::minutes_chart(&stored, &refused),
                row,
            }
        })
        .collect();
    render(&RoutesPage {
        data_dir: console.data_dir.clone(),
        csrf: console.csrf.clone(),
        result,
        routes,
    })
    .into_response()
}

/// The Test button: what `hookcatch routes test NAME` does, to this serve.
async fn test_route(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let outcome = async {
        let settings = console.config()?.resolve_route(&name).await?;
        let url = console.route_url(&name);
        let outcome = crate::routes::test(&settings, &url).await?;
        Ok::<_, String>((outcome.passed(), outcome.summary(&name, &url)))
    }
    .await;
    let result = outcome.unwrap_or_else(|error| (false, format!("{name}: {error}")));
    routes_view(&console, Some(result)).await
}

async fn dead_page(State(console): State<Arc<Console>>) -> Response {
    dead_view(&console, None).await
}

async fn dead_view(console: &Console, result: Option<String>) -> Response {
    let entries = match console
        .store
        .browse_queue(QueueState::Dead, None, 1000)
        .await
    {
        Ok(entries) => entries,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let rows = entries
        .iter()
        .filter_map(|entry| {
            let view = EventView::from_queue(entry)?;
            Some(DeadRow {
                seq: entry.seq,
                id: view.id,
                route: view.route,
                received: crate::inspect::time_text(view.received_at_ms),
                attempts: entry.attempts.to_string(),
                last_error: entry.last_error.clone().unwrap_or_default(),
            })
        })
        .collect();
    let progress = match replay_progress_text(console).await {
        Ok(progress) => progress,
        Err(response) => return response,
    };
    render(&DeadPage {
        data_dir: console.data_dir.clone(),
        intro: "Events the consumer gave up on after `max_attempts`. Replaying one puts it back \
                in the queue with its attempts reset: the worker tries it again at once (fix the \
                cause first, such as a hydrator's credentials). An event whose record was written \
                meanwhile is still stored once."
            .into(),
        per_row_replay: true,
        csrf: console.csrf.clone(),
        result,
        progress,
        rows,
    })
    .into_response()
}

/// Where the last Replay stands: how many of its events are stored, still queued, dead again.
async fn replay_progress_text(console: &Console) -> Result<Option<String>, Response> {
    let replayed = console
        .last_replay
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if replayed.is_empty() {
        return Ok(None);
    }
    let total = replayed.len();
    let (queued, dead) = console
        .store
        .queue_progress(replayed)
        .await
        .map_err(|e| refusal(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    let done = total - queued - dead;
    let state = if queued == 0 { "done" } else { "in progress" };
    Ok(Some(format!(
        "Last replay ({state}): {done} of {total} stored, {queued} still queued, {dead} dead again."
    )))
}

/// The last replay's progress alone, for the page to refresh as events move.
async fn replay_progress(State(console): State<Arc<Console>>) -> Response {
    match replay_progress_text(&console).await {
        Ok(progress) => progress.unwrap_or_default().into_response(),
        Err(response) => response,
    }
}

/// Replay: the dead letter (or all of them) back in the queue, attempts reset.
async fn replay_dead(
    State(console): State<Arc<Console>>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let seqs = form.seq.map(|seq| vec![seq]);
    match console.store.requeue(seqs, SystemClock.now_ms()).await {
        Ok(requeued) => {
            let result = format!(
                "{} event(s) back in the queue: watch them on the events page.",
                requeued.len()
            );
            *console
                .last_replay
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = requeued;
            dead_view(&console, Some(result)).await
        }
        Err(error) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

async fn refusals_page(State(console): State<Arc<Console>>) -> Response {
    let rows = console
        .context
        .refusals
        .recent()
        .iter()
        .map(RefusalRow::new)
        .collect();
    render(&RefusalsPage {
        data_dir: console.data_dir.clone(),
        intro: format!(
            "The last {} requests this serve refused (401, 403, 405, 413, 429), newest first, \
             kept in memory until it stops: why a sender's Test never arrived. Credential headers \
             and query keys are masked; bodies are not kept.",
            crate::refusals::KEPT
        ),
        rows,
    })
    .into_response()
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/console.js"),
    )
}

pub(crate) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console.css"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_host_is_answered() {
        let loopback: SocketAddr = "127.0.0.1:3001".parse().unwrap();
        assert!(host_allowed("127.0.0.1:3001", loopback));
        assert!(host_allowed("localhost:3001", loopback));
        assert!(!host_allowed("attacker.example:3001", loopback));
        assert!(!host_allowed("127.0.0.1:3002", loopback));
        assert!(!host_allowed("127.0.0.1", loopback));
        assert!(!host_allowed("", loopback));
        let everywhere: SocketAddr = "0.0.0.0:3001".parse().unwrap();
        assert!(host_allowed("192.168.1.20:3001", everywhere));
        assert!(!host_allowed("rebound.example:3001", everywhere));
        let v6: SocketAddr = "[::1]:3001".parse().unwrap();
        assert!(host_allowed("[::1]:3001", v6));
    }

    #[test]
    fn a_token_is_made_off_loopback_only() {
        let local = ConsoleSettings::new("127.0.0.1:3001".parse().unwrap(), None);
        assert!(local.token.is_none());
        let open = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), None);
        assert_eq!(open.token.as_deref().map(str::len), Some(64));
        let given = ConsoleSettings::new("0.0.0.0:3001".parse().unwrap(), Some("dev-only".into()));
        assert_eq!(given.token.as_deref(), Some("dev-only"));
    }

    #[test]
    fn tokens_come_from_the_cookie_or_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; hookcatch_console=t0k; c=d"),
        );
        assert_eq!(cookie_token(&headers), Some("t0k"));
        assert_eq!(query_token(Some("x=1&token=t%2F1")).as_deref(), Some("t/1"));
        assert_eq!(query_token(None), None);
    }
}
