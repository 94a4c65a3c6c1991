//! The events list (`/`, and locally its live rows), an event's detail (`/events/{id}`), its body
//! as a download, and its two actions: Replay and Resend.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookcatch::clock::{Clock, SystemClock};
use serde::Deserialize;

use super::Console;
use super::gate::{ActionForm, forged};
use super::pages::{self, EventDetail, EventPage, EventsPage, RecordShown, Row, RowsFragment};
use super::render::{message_page, refusal, render};
use crate::source::{EventFilter, EventQuery, IndexEntry, Source, SourceError, Status};
use crate::views::EventView;

/// How often the live list looks for changes.
const POLL: Duration = Duration::from_millis(250);

pub(super) fn router(console: &Console) -> Router<Arc<Console>> {
    let router = Router::new()
        .route("/", get(events_page))
        .route("/events/{id}", get(event_page))
        .route("/events/{id}/body", get(event_body))
        .route("/events/{id}/{action}", post(event_action));
    if console.local.is_some() {
        router
            .route("/rows", get(rows_fragment))
            .route("/live", get(live))
    } else {
        router
    }
}

/// The list's filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
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
                .map(|t| crate::term::parse_time(what, &t, now_ms))
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

impl ListQuery {
    /// What a source is asked for; `first_page` leaves out where the last page ended.
    fn query(&self, now_ms: i64, first_page: bool) -> Result<EventQuery, String> {
        let status = match self.status.as_str() {
            "" => Status::All,
            "queued" => Status::Queued,
            "dead" => Status::Dead,
            _ => Status::Stored,
        };
        Ok(EventQuery {
            filter: self.filter(now_ms)?,
            status,
            after: (!first_page).then(|| self.after.clone()),
        })
    }
}

/// One page of the list as read: its rows, where the next starts, or why it could not be read.
struct Listed {
    rows: Vec<Row>,
    next: Option<String>,
    error: Option<String>,
}

/// The rows of one page (each linking to its detail) and where the next one starts.
async fn list(
    source: &dyn Source,
    asked: &EventQuery,
) -> Result<(Vec<Row>, Option<String>), SourceError> {
    let page = source.events(asked).await?;
    let rows = page
        .events
        .into_iter()
        .map(|listed| {
            let mut row = Row::from_view(&listed.view);
            if let Some(at) = &listed.at {
                row.detail = at.link_query();
            }
            row
        })
        .collect();
    Ok((rows, page.next))
}

async fn events_page(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let source = console.source.as_ref();
    let read = match query.query(SystemClock.now_ms(), query.after.is_empty()) {
        Ok(asked) => list(source, &asked).await,
        Err(said) => Err(SourceError::Said(said)),
    };
    let listed = match read {
        Ok((rows, next)) => Listed {
            rows,
            next,
            error: None,
        },
        Err(error) => Listed {
            rows: Vec::new(),
            next: None,
            error: Some(match error {
                SourceError::Said(said) => said,
                SourceError::Failed(error) => {
                    format!("Reading the {} failed: {error}", source.reads())
                }
            }),
        },
    };
    render(&events_view(
        source.label(),
        &source.routes(),
        &query,
        source.live(),
        listed,
    ))
    .into_response()
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
    let asked = match query.query(SystemClock.now_ms(), true) {
        Ok(asked) => asked,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match list(console.source.as_ref(), &asked).await {
        Ok((rows, _)) => render(&RowsFragment {
            rows,
            filtered: query.is_filtered(),
        })
        .into_response(),
        Err(SourceError::Said(error) | SourceError::Failed(error)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, error).into_response()
        }
    }
}

/// Server-sent events: `changed` whenever an event is queued, stored, retried or dead-lettered.
async fn live(State(console): State<Arc<Console>>) -> impl IntoResponse {
    let store = console
        .local
        .as_ref()
        .map(|local| local.store.clone())
        .expect("/live is routed for a local console only");
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

/// Where a stack's detail link says the event's index entry is (a local link names none).
#[derive(Debug, Default, Deserialize)]
struct DetailQuery {
    route: Option<String>,
    stored: Option<i64>,
}

impl DetailQuery {
    fn entry(&self) -> Option<IndexEntry> {
        Some(IndexEntry {
            route: self.route.clone()?,
            stored_ms: self.stored?,
        })
    }
}

/// An event by id, or the page that says why there is none.
async fn find_view(
    console: &Console,
    id: &str,
    at: Option<&IndexEntry>,
) -> Result<EventView, Response> {
    let source = console.source.as_ref();
    match source.event(id, at).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(message_page(
            source.label(),
            StatusCode::NOT_FOUND,
            "No such event",
            crate::source::no_event(source, id),
        )),
        Err(error) => Err(refusal(StatusCode::INTERNAL_SERVER_ERROR, &error)),
    }
}

/// The body as the detail page shows it, as a download (never rendered by the browser).
async fn event_body(
    State(console): State<Arc<Console>>,
    Path(id): Path<String>,
    Query(at): Query<DetailQuery>,
) -> Response {
    match find_view(&console, &id, at.entry().as_ref()).await {
        Ok(view) => body_download(view),
        Err(response) => response,
    }
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

async fn event_page(
    State(console): State<Arc<Console>>,
    Path(id): Path<String>,
    Query(at): Query<DetailQuery>,
) -> Response {
    event_view(&console, &id, at.entry().as_ref(), None).await
}

async fn event_view(
    console: &Console,
    id: &str,
    at: Option<&IndexEntry>,
    result: Option<(bool, String)>,
) -> Response {
    let source = console.source.as_ref();
    let view = match find_view(console, id, at).await {
        Ok(view) => view,
        Err(response) => return response,
    };
    let records = records_shown(source, &view).await;
    let url = source.route_url(&view.route);
    render(&EventPage {
        data_dir: source.label().to_owned(),
        event: EventDetail::new(&view, records, url.as_deref().unwrap_or_default()),
        csrf: console.csrf.clone(),
        resend: url.is_some(),
        no_resend: format!(
            "Resend is not offered: route `{}`'s Function URL is not known here (it comes from \
             the stack's Outputs through `sam`, or `--route-url {}=URL`).",
            view.route, view.route
        ),
        detail: at.map(IndexEntry::link_query).unwrap_or_default(),
        result,
    })
    .into_response()
}

/// The records an event's rules named, as the store holds them now.
async fn records_shown(source: &dyn Source, view: &EventView) -> Vec<RecordShown> {
    let mut records = Vec::new();
    for key in view.detail["records"].as_array().into_iter().flatten() {
        let Some((record_type, record_id)) = key.as_str().and_then(|k| k.split_once('/')) else {
            continue;
        };
        let found = source.record(&view.route, record_type, record_id).await;
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
    Query(at): Query<DetailQuery>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = forged(&console.csrf, &form) {
        return refused;
    }
    let at = at.entry();
    let result = match action.as_str() {
        "replay" => console.source.replay(&id, at.as_ref()).await,
        "resend" => console.source.resend(&id, at.as_ref()).await,
        _ => Err(format!("no action `{action}`")),
    }
    .unwrap_or_else(|error| (false, error));
    event_view(&console, &id, at.as_ref(), Some(result)).await
}
