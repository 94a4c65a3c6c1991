//! The routes page (`/routes`): each route's URL, secrets, last hour per minute (stored and
//! refused), handshakes, and its Test button. It reads `serve`'s own counts and sends Tests to
//! `serve`: over a stack it says where the same is found instead.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookcatch::clock::{Clock, SystemClock};

use super::Console;
use super::gate::{ActionForm, forged};
use super::pages::{self, RouteLine, RoutesPage};
use super::render::{message_page, refusal, render};
use crate::source::Source;
use crate::source::local::LocalSource;

pub(super) fn router(console: &Console) -> Router<Arc<Console>> {
    let router = Router::new().route("/routes", get(routes_page));
    if console.local.is_some() {
        router.route("/routes/{name}/test", post(test_route))
    } else {
        router
    }
}

async fn routes_page(State(console): State<Arc<Console>>) -> Response {
    match &console.local {
        Some(local) => routes_view(&console, local, None).await,
        None => stack_routes(&console),
    }
}

/// What a stack's console says in place of the routes page.
fn stack_routes(console: &Console) -> Response {
    message_page(
        console.source.label(),
        StatusCode::OK,
        "Routes",
        "The routes page reads serve's own counts and sends Tests to serve. For the \
         stack's routes, their Function URLs and which secrets are set: `hookcatch routes \
         list --aws`; to send a Test to a Function URL: `hookcatch routes test NAME --to \
         URL`."
            .into(),
    )
}

async fn routes_view(
    console: &Console,
    local: &LocalSource,
    result: Option<(bool, String)>,
) -> Response {
    let file = match local.config() {
        Ok(file) => file,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let store = &local.store;
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
    for refused in local.refusals.recent() {
        if let Ok(slot) = usize::try_from(refused.at_ms / 60_000 - first_minute)
            && slot < 60
        {
            charts.entry(refused.route).or_insert(([0; 60], [0; 60])).1[slot] += 1;
        }
    }
    let mut refused_last_hour: std::collections::HashMap<String, u32> =
        std::collections::HashMap::new();
    for refused in local.refusals.recent() {
        if refused.at_ms > now - 3_600_000 {
            *refused_last_hour.entry(refused.route).or_default() += 1;
        }
    }
    let handshakes = local.handshakes.last_hour(now);
    let deployed = crate::stack::urls::DeployedUrls::load(&file.serve.data);
    let routes = crate::views::rows(&file, &last, &deployed.urls)
        .into_iter()
        .map(|mut row| {
            // Where this serve listens, which `[serve] addr` may not say (`--addr`, port 0).
            row.url = local.hook_url(&row.name);
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
        data_dir: local.label().to_owned(),
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
    if let Some(refused) = forged(&console.csrf, &form) {
        return refused;
    }
    let Some(local) = &console.local else {
        return stack_routes(&console);
    };
    let outcome = async {
        let settings = local
            .config()?
            .resolve_route(&name)
            .await
            .map_err(|e| e.to_string())?;
        let url = local.hook_url(&name);
        let outcome = crate::send::test(&settings, &url)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((outcome.passed(), outcome.summary(&name, &url)))
    }
    .await;
    let result = outcome.unwrap_or_else(|error| (false, format!("{name}: {error}")));
    routes_view(&console, local, Some(result)).await
}
