//! The dead letters (`/dead`): listed in place, replayed (one locally, all at once from a
//! stack's DLQ), and locally the last replay's progress.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::Console;
use super::gate::{ActionForm, forged};
use super::pages::{DeadPage, DeadRow};
use super::render::{refusal, render};

pub(super) fn router(console: &Console) -> Router<Arc<Console>> {
    let router = Router::new()
        .route("/dead", get(dead_page))
        .route("/dead/replay", post(replay_dead));
    if console.local.is_some() {
        router.route("/dead/progress", get(replay_progress))
    } else {
        router
    }
}

async fn dead_page(State(console): State<Arc<Console>>) -> Response {
    dead_view(&console, None).await
}

async fn dead_view(console: &Console, result: Option<String>) -> Response {
    let source = console.source.as_ref();
    let letters = match source.dead_letters().await {
        Ok(letters) => letters,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let rows = letters
        .into_iter()
        .map(|dead| DeadRow {
            seq: dead.seq,
            id: dead.view.id,
            route: dead.view.route,
            received: crate::term::time_text(dead.view.received_at_ms),
            attempts: dead.attempts,
            last_error: dead.last_error,
        })
        .collect();
    let progress = match source.replay_progress().await {
        Ok(progress) => progress,
        Err(error) => return refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    render(&DeadPage {
        data_dir: source.label().to_owned(),
        intro: source.dead_intro().into(),
        per_row_replay: source.replays_one_dead_letter(),
        csrf: console.csrf.clone(),
        result,
        progress,
        rows,
    })
    .into_response()
}

/// The last replay's progress alone, for the page to refresh as events move.
async fn replay_progress(State(console): State<Arc<Console>>) -> Response {
    match console.source.replay_progress().await {
        Ok(progress) => progress.unwrap_or_default().into_response(),
        Err(error) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

/// Replay: the dead letter (or all of them) back in the queue, attempts reset.
async fn replay_dead(
    State(console): State<Arc<Console>>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = forged(&console.csrf, &form) {
        return refused;
    }
    match console.source.requeue_dead(form.seq).await {
        Ok(said) => dead_view(&console, Some(said)).await,
        Err(failed) => refusal(StatusCode::INTERNAL_SERVER_ERROR, &failed.0),
    }
}
