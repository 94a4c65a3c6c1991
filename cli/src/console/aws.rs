//! `hookcatch console --aws`: the same console, pages and gate over a deployed stack, read on the
//! user's machine with their own AWS credentials (nothing of it is deployed or public).
//!
//! Where each page reads: stored events from the event index (a Query per route and shard, never
//! a Scan for a list), records through the same index (those its events last wrote), an event's
//! detail from its index entry, dead letters from the DLQ (received
//! with a zero visibility timeout, so listing moves nothing), refusals from the route functions'
//! logs. Queued events are not listed: SQS cannot show a message without taking it from the
//! consumer. The list is read when the page loads; it is not live. Replay sends to the events
//! queue; Resend posts to the route's Function URL, signed with its deployed secrets from SSM.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookcatch::aws::DynamoStore;
use hookcatch::clock::{Clock, SystemClock};
use hookcatch::config::SsmLayout;
use hookcatch::ports::{EventItem, StoreError};
use serde::Deserialize;
use tokio::sync::watch;

use super::pages::{
    DeadPage, DeadRow, EventDetail, EventPage, MessagePage, RecordRow, RecordsPage, RefusalRow,
    RefusalsPage, Row,
};
use super::{
    ActionForm, ConsoleSettings, Gate, ListQuery, Listed, PAGE, RecordQuery, Started, bind,
    events_view, forged, not_found_page, random_token, records_shown, refusal, render, script,
    serve, style,
};
use crate::inspect::EventView;

/// The stack the console reads, as flags or environment variables name it.
pub struct StackContext {
    pub sdk: aws_config::SdkConfig,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub layout: SsmLayout,
    /// The route functions' log groups, for `/refusals`.
    pub log_groups: Vec<String>,
    /// The routes the list reads when none is chosen (the deployed ones, from hookcatch.toml).
    pub routes: Vec<String>,
    /// Each route's Function URL (stack Outputs, or `--route-url`), where Resend posts.
    pub route_urls: std::collections::BTreeMap<String, String>,
}

struct StackConsole {
    context: StackContext,
    store: DynamoStore,
    /// What the header says the console reads.
    label: String,
    csrf: String,
}

pub async fn start(
    settings: ConsoleSettings,
    context: StackContext,
    stopped: watch::Receiver<bool>,
) -> Result<Started, String> {
    let (listener, addr, url) = bind(&settings).await?;
    let console = Arc::new(StackConsole {
        store: crate::aws::store(&context.sdk, &context.table),
        label: format!("stack {} · table {}", context.layout.stack(), context.table),
        context,
        csrf: random_token(),
    });
    let router = Router::new()
        .route("/", get(events_page))
        .route("/events/{id}", get(event_page))
        .route("/events/{id}/body", get(event_body))
        .route("/events/{id}/{action}", post(event_action))
        .route("/records", get(records_page))
        .route("/routes", get(routes_page))
        .route("/dead", get(dead_page))
        .route("/dead/replay", post(redrive))
        .route("/refusals", get(refusals_page))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .fallback(not_found)
        .with_state(console);
    let gate = Gate {
        addr,
        token: settings.token,
    };
    let server = serve(listener, gate, router, stopped);
    Ok(Started { addr, url, server })
}

fn failed(error: impl std::fmt::Display) -> String {
    format!("Reading the stack failed: {error}")
}

/// The DLQ's messages as events, left in place.
async fn dead_letters(console: &StackConsole) -> Result<Vec<EventView>, String> {
    let letters =
        crate::aws::peek_dead_letters(&console.context.sdk, &console.context.dlq_url, 1000).await?;
    Ok(letters
        .iter()
        .filter_map(EventView::from_dead_letter)
        .collect())
}

/// Where a stored event's index entry is: what its detail link carries, so that the detail is one
/// Query and one read instead of a Scan.
fn detail_query(route: &str, stored_ms: i64) -> String {
    let mut query = form_urlencoded::Serializer::for_suffix(String::from("?"), 1);
    query.append_pair("route", route);
    query.append_pair("stored", &stored_ms.to_string());
    query.finish()
}

/// One page: dead letters lead the first page of "all" (as locally); stored events come from the
/// index, every chosen route's newest first, merged by stored time. The cursor is the last entry's
/// index sort key (`{stored ms}#{id}`), which orders the same across routes.
async fn list(console: &StackConsole, query: &ListQuery) -> Result<Listed, String> {
    let filter = query.filter(SystemClock.now_ms())?;
    let matches = |view: &EventView| {
        filter.route.as_ref().is_none_or(|r| &view.route == r)
            && filter
                .event_type
                .as_ref()
                .is_none_or(|t| view.event_type.as_ref() == Some(t))
            && filter.since_ms.is_none_or(|s| view.received_at_ms >= s)
            && filter.until_ms.is_none_or(|u| view.received_at_ms < u)
    };
    let first_page = query.after.is_empty();
    let mut rows = Vec::new();
    match query.status.as_str() {
        "queued" => {
            return Err(
                "Queued events are not listed on AWS: SQS cannot show a message without taking it \
                 from the consumer for a while. Stored and dead ones are."
                    .into(),
            );
        }
        "dead" | "" if first_page => {
            let mut dead: Vec<EventView> = dead_letters(console).await?;
            dead.retain(|view| matches(view));
            dead.sort_by_key(|view| std::cmp::Reverse(view.received_at_ms));
            rows.extend(dead.iter().map(Row::from_view));
            if query.status == "dead" {
                return Ok(Listed {
                    rows,
                    next: None,
                    error: None,
                });
            }
        }
        "dead" => {
            return Ok(Listed {
                rows,
                next: None,
                error: None,
            });
        }
        _ => {}
    }
    let after = (!first_page)
        .then_some(query.after.as_str())
        .filter(|after| hookcatch::aws::is_cursor(after));
    let routes = match &filter.route {
        Some(route) => vec![route.clone()],
        None => console.context.routes.clone(),
    };
    // Every route's page at once: the console waits for the slowest route, not for their sum.
    let pages = futures::future::try_join_all(routes.iter().map(|route| {
        console
            .store
            .query_events(route, filter.since_ms, filter.until_ms, PAGE, after)
    }))
    .await
    .map_err(|e| failed(no_index(e)))?;
    let mut stored: Vec<(i64, EventItem)> = Vec::new();
    let mut more = false;
    for page in pages {
        more |= page.next.is_some();
        stored.extend(page.events.into_iter().map(|(event, ms)| (ms, event)));
    }
    stored.sort_by(|a, b| (b.0, &b.1.event_id).cmp(&(a.0, &a.1.event_id)));
    more |= stored.len() > PAGE;
    stored.truncate(PAGE);
    let next = more
        .then(|| {
            stored
                .last()
                .map(|(ms, event)| hookcatch::aws::index_sort_key(*ms, &event.event_id))
        })
        .flatten();
    for (stored_ms, event) in stored {
        let view = EventView::from_stored(event);
        if matches(&view) {
            let mut row = Row::from_view(&view);
            row.detail = detail_query(&view.route, stored_ms);
            rows.push(row);
        }
    }
    Ok(Listed {
        rows,
        next,
        error: None,
    })
}

async fn events_page(
    State(console): State<Arc<StackConsole>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let listed = list(&console, &query).await.unwrap_or_else(|error| Listed {
        rows: Vec::new(),
        next: None,
        error: Some(error),
    });
    render(&events_view(
        &console.label,
        &console.context.routes,
        &query,
        false,
        listed,
    ))
    .into_response()
}

/// Where the detail link says the event's index entry is.
#[derive(Debug, Default, Deserialize)]
struct DetailQuery {
    route: Option<String>,
    stored: Option<i64>,
}

/// An event by id: stored (by its index entry when the link names it, else by Scan), or dead.
enum Found {
    Stored(Box<EventItem>),
    Dead(Box<EventView>),
}

async fn find(console: &StackConsole, id: &str, at: &DetailQuery) -> Result<Found, Response> {
    let error = |e: String| refusal(StatusCode::INTERNAL_SERVER_ERROR, &failed(e));
    let stored = match (&at.route, at.stored) {
        (Some(route), Some(stored_ms)) => console
            .store
            .event_by_index_entry(route, stored_ms, id)
            .await
            .map_err(|e| error(e.to_string()))?,
        // A link without its index entry (pasted, or from a dead letter): the slow way.
        _ => console
            .store
            .scan_events(None, Some(id))
            .await
            .map_err(|e| error(e.to_string()))?
            .into_iter()
            .next(),
    };
    if let Some(event) = stored {
        return Ok(Found::Stored(Box::new(event)));
    }
    if let Some(view) = dead_letters(console)
        .await
        .map_err(error)?
        .into_iter()
        .find(|view| view.id == id)
    {
        return Ok(Found::Dead(Box::new(view)));
    }
    let page = MessagePage {
        data_dir: console.label.clone(),
        title: "No such event".into(),
        message: format!("No event `{id}` in the stack's table or its DLQ (it may have expired)."),
    };
    Err((StatusCode::NOT_FOUND, render(&page)).into_response())
}

async fn event_view(
    console: &StackConsole,
    id: &str,
    at: &DetailQuery,
    result: Option<(bool, String)>,
) -> Response {
    let view = match find(console, id, at).await {
        Ok(Found::Stored(event)) => EventView::from_stored(*event),
        Ok(Found::Dead(view)) => *view,
        Err(response) => return response,
    };
    let records = records_shown(&console.store, &view).await;
    let url = console.context.route_urls.get(&view.route);
    render(&EventPage {
        data_dir: console.label.clone(),
        event: EventDetail::new(&view, records, url.map_or("", |u| u.trim_end_matches('/'))),
        csrf: console.csrf.clone(),
        resend: url.is_some(),
        no_resend: format!(
            "Resend is not offered: route `{}`'s Function URL is not known here (it comes from \
             the stack's Outputs through `sam`, or `--route-url {}=URL`).",
            view.route, view.route
        ),
        detail: match (&at.route, at.stored) {
            (Some(route), Some(stored_ms)) => detail_query(route, stored_ms),
            _ => String::new(),
        },
        result,
    })
    .into_response()
}

async fn event_page(
    State(console): State<Arc<StackConsole>>,
    Path(id): Path<String>,
    Query(at): Query<DetailQuery>,
) -> Response {
    event_view(&console, &id, &at, None).await
}

async fn event_body(
    State(console): State<Arc<StackConsole>>,
    Path(id): Path<String>,
    Query(at): Query<DetailQuery>,
) -> Response {
    let view = match find(&console, &id, &at).await {
        Ok(Found::Stored(event)) => EventView::from_stored(*event),
        Ok(Found::Dead(view)) => *view,
        Err(response) => return response,
    };
    super::body_download(view)
}

/// A stored event's two actions on the stack: **replay** (its message rebuilt with the route's
/// deployed configuration from SSM, sent to the events queue, where the consumer function replaces
/// it and applies the rules) and **resend** (its request posted to the route's Function URL,
/// signed with the route's deployed secrets, through verification like any delivery).
async fn event_action(
    State(console): State<Arc<StackConsole>>,
    Path((id, action)): Path<(String, String)>,
    Query(at): Query<DetailQuery>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = forged(&console.csrf, &form) {
        return refused;
    }
    let event = match find(&console, &id, &at).await {
        Ok(Found::Stored(event)) => *event,
        Ok(Found::Dead(_)) => {
            let result = (
                false,
                "A dead letter is replayed from the dead letters page (the DLQ's redrive).".into(),
            );
            return event_view(&console, &id, &at, Some(result)).await;
        }
        Err(response) => return response,
    };
    let context = &console.context;
    let result = match action.as_str() {
        "replay" => {
            crate::aws::replay_on_stack(&context.sdk, &context.queue_url, &context.layout, &event)
                .await
                .map(|summary| {
                    (
                        true,
                        format!("{summary}: the consumer function stores it in a moment."),
                    )
                })
        }
        "resend" => match context.route_urls.get(&event.route) {
            None => Err(format!("route `{}` has no known Function URL", event.route)),
            Some(url) => crate::aws::resend_on_stack(&context.sdk, &context.layout, event, url)
                .await
                .map(|resent| ((200..300).contains(&resent.status), resent.summary(&id))),
        },
        _ => Err(format!("no action `{action}`")),
    };
    let result = result.unwrap_or_else(|error| (false, error));
    event_view(&console, &id, &at, Some(result)).await
}

async fn dead_view(console: &StackConsole, result: Option<String>) -> Response {
    let letters =
        match crate::aws::peek_dead_letters(&console.context.sdk, &console.context.dlq_url, 1000)
            .await
        {
            Ok(letters) => letters,
            Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &failed(error)),
        };
    let rows = letters
        .iter()
        .filter_map(|letter| {
            let view = EventView::from_dead_letter(letter)?;
            Some(DeadRow {
                seq: 0,
                id: view.id,
                route: view.route,
                received: crate::inspect::time_text(view.received_at_ms),
                attempts: letter.receives.map(|n| n.to_string()).unwrap_or_default(),
                last_error: "in the consumer function's log".into(),
            })
        })
        .collect();
    render(&DeadPage {
        data_dir: console.label.clone(),
        intro: "Messages the consumer function failed `MaxReceiveCount` times, in the stack's \
                dead-letter queue. Listing them leaves them there (each is received with a zero \
                visibility timeout; the attempts column counts those receives too). Replay all \
                moves every message back to the events queue: receive, send, then delete, so an \
                interruption can only duplicate, which the consumer absorbs. Fix the cause first."
            .into(),
        per_row_replay: false,
        csrf: console.csrf.clone(),
        result,
        progress: None,
        rows,
    })
    .into_response()
}

async fn dead_page(State(console): State<Arc<StackConsole>>) -> Response {
    dead_view(&console, None).await
}

async fn redrive(
    State(console): State<Arc<StackConsole>>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = forged(&console.csrf, &form) {
        return refused;
    }
    let context = &console.context;
    let result = match crate::aws::redrive(
        &context.sdk,
        &context.dlq_url,
        &context.queue_url,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    {
        Ok(moved) => format!(
            "{moved} message(s) moved back to the events queue: the consumer function takes them \
             now; watch them arrive on the events page."
        ),
        Err(error) => error,
    };
    dead_view(&console, Some(result)).await
}

async fn refusals_page(State(console): State<Arc<StackConsole>>) -> Response {
    let context = &console.context;
    let since = SystemClock.now_ms() - 24 * 3_600_000;
    let refusals =
        match crate::aws::refusals_from_logs(&context.sdk, &context.log_groups, since, 500).await {
            Ok(refusals) => refusals,
            Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &failed(error)),
        };
    let rows = refusals
        .iter()
        .map(|refused| RefusalRow {
            time: crate::inspect::time_text(refused.at_ms),
            route: refused.route.clone(),
            status: refused.status.unwrap_or_default(),
            reason: refused.reason.clone(),
            source: refused.source_ip.clone(),
            request: String::new(),
            size: String::new(),
            headers: Vec::new(),
        })
        .collect();
    let groups = if context.log_groups.is_empty() {
        "no log group was found: start the console with --stack (through `sam`) or --log-group"
            .to_owned()
    } else {
        format!("{} log group(s)", context.log_groups.len())
    };
    render(&RefusalsPage {
        data_dir: console.label.clone(),
        intro: format!(
            "The last day's requests the route functions refused (401, 403, 405, 413, 431, 429), \
             newest first, at most 500, from the WARN line each function logs per refusal \
             ({groups}). Nothing a stranger sends is stored in the table; headers and bodies are \
             not logged."
        ),
        rows,
    })
    .into_response()
}

/// A failed read of the event index, with the one cause a deployer can fix.
fn no_index(error: StoreError) -> String {
    format!("{error} (a stack deployed with EventIndex=off has no event index)")
}

/// Records through the event index: those the chosen route's (or every route's) events last
/// wrote, the 200 most recently written, merged by when.
async fn records_page(
    State(console): State<Arc<StackConsole>>,
    Query(query): Query<RecordQuery>,
) -> Response {
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let (route, record_type) = (nonempty(&query.route), nonempty(&query.record_type));
    let routes = match route {
        Some(route) => vec![route],
        None => console.context.routes.clone(),
    };
    let pages = futures::future::try_join_all(routes.iter().map(|route| {
        console
            .store
            .query_records(route, record_type.as_deref(), None, None, 200, None)
    }))
    .await;
    let mut records: Vec<_> = match pages {
        Ok(pages) => pages.into_iter().flat_map(|page| page.records).collect(),
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &failed(no_index(error))),
    };
    records.sort_by_key(|(record, _)| std::cmp::Reverse(record.updated_at_ms));
    records.truncate(200);
    let rows = records
        .iter()
        .map(|(record, stored_ms)| RecordRow {
            detail: detail_query(&record.route, *stored_ms),
            ..RecordRow::new(record)
        })
        .collect();
    render(&RecordsPage {
        data_dir: console.label.clone(),
        route: query.route,
        record_type: query.record_type,
        records: rows,
    })
    .into_response()
}

async fn routes_page(State(console): State<Arc<StackConsole>>) -> Response {
    let page = MessagePage {
        data_dir: console.label.clone(),
        title: "Routes".into(),
        message: "The routes page reads serve's own counts and sends Tests to serve. For the \
                  stack's routes, their Function URLs and which secrets are set: `hookcatch routes \
                  list --aws`; to send a Test to a Function URL: `hookcatch routes test NAME --to \
                  URL`."
            .into(),
    };
    render(&page).into_response()
}

async fn not_found(State(console): State<Arc<StackConsole>>) -> Response {
    not_found_page(&console.label)
}
